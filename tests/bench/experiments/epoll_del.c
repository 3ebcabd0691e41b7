/*
 * epoll_del.c - what an EPOLL_CTL_DEL before a close costs, alone: a
 * socketpair, one end added to an epoll set, closed with or without
 * deleting it first, in rounds that alternate.  Prints the thread's CPU
 * per round and the means (tests/bench/README.md, "The connection's
 * allocation, daytime's linger, and two that did not pay").
 *
 *   cc -O2 -o epoll_del tests/bench/experiments/epoll_del.c && ./epoll_del
 */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS	10
#define EACH	300000

static double
cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int
main(void)
{
	double sum[2] = { 0, 0 };
	int ep = epoll_create1(0), r, del, i;

	if (ep == -1)
		return 1;
	for (r = 0; r < ROUNDS; r++)
		for (del = 0; del < 2; del++) {
			double t0 = cpu_ns(), each;

			for (i = 0; i < EACH; i++) {
				struct epoll_event ev = { .events = EPOLLIN |
				    EPOLLRDHUP };
				int sv[2];

				if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
					return 1;
				ev.data.fd = sv[0];
				epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
				if (del)
					epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], NULL);
				close(sv[0]);
				close(sv[1]);
			}
			each = (cpu_ns() - t0) / EACH;
			sum[del] += each;
			printf("round %d %-13s %.0f ns\n", r + 1,
			    del ? "add+del+close" : "add+close", each);
		}
	printf("mean: add+close %.0f ns, add+del+close %.0f ns\n",
	    sum[0] / ROUNDS, sum[1] / ROUNDS);
	return 0;
}
