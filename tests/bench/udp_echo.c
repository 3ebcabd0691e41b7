/*
 * udp_echo - the raw UDP echo reference for the benchmarks: what the
 * least an echo server can do per datagram, with the system calls
 * echo-oracled uses: recvmmsg(2) a batch, sendmmsg(2) the same
 * buffers straight back (no copy, no checks, no guards).
 *
 *   udp_echo [-H host] [-o port] [-t threads] [-b batch]
 *
 * Threads: each its own socket, bound with SO_REUSEPORT, so the kernel
 * spreads the sources over them; with -t 1, one socket, one thread, as
 * the daemon serves one UDP socket.  Runs until killed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* recvmmsg, sendmmsg */
#endif

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BATCH	64
#define DGRAM_MAX	65536

static const char *host = "127.0.0.1";
static unsigned port = 17011, batch = 32;

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

static int
open_socket(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		fprintf(stderr, "udp_echo: bad address %s\n", host);
		exit(2);
	}
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		die("bind");
	return fd;
}

static void *
serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	struct sockaddr_storage from[MAX_BATCH];
	unsigned char *bufs = malloc((size_t)MAX_BATCH * DGRAM_MAX);
	struct pollfd p = { fd, POLLIN, 0 };
	unsigned i;
	int n;

	if (bufs == NULL)
		die("malloc");
	for (;;) {
		for (i = 0; i < batch; i++) {
			iov[i].iov_base = bufs + (size_t)i * DGRAM_MAX;
			iov[i].iov_len = DGRAM_MAX;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, msgs, batch, MSG_DONTWAIT, NULL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				poll(&p, 1, -1);
			continue;
		}
		/* The same buffers back, each cut to what it received. */
		for (i = 0; i < (unsigned)n; i++)
			iov[i].iov_len = msgs[i].msg_len;
		sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	unsigned i, threads = 1;
	pthread_t t;
	int ch;

	while ((ch = getopt(argc, argv, "H:o:t:b:")) != -1) {
		switch (ch) {
		case 'H': host = optarg; break;
		case 'o': port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': batch = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: udp_echo [-H host] [-o port] "
			    "[-t threads] [-b batch]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || batch < 1 || batch > MAX_BATCH ||
	    port < 1 || port > 65535) {
		fprintf(stderr, "udp_echo: bad -t, -b or -o\n");
		return 2;
	}
	for (i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, serve, (void *)(intptr_t)
		    open_socket()) != 0)
			die("pthread_create");
	serve((void *)(intptr_t)open_socket());
	return 0;
}
