/*
 * ws_pingpong: WebSocket echo messages per second against the daemon's
 * http listener, or (-r) the same exchange on a plain TCP echo listener,
 * so that the two are measured by one client.  Each of -c connections
 * sends one -s byte message (a masked binary frame; raw bytes with -r),
 * waits for all of its echo, checks it, and repeats, for -d seconds.
 *
 *   ws_pingpong [-r] [-o port] [-c conns] [-s bytes] [-d secs]
 *
 * Prints "msgs/s N".  Loopback only (127.0.0.1).  A benchmark, not a test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC	1024

struct pc {
	int	 fd;
	size_t	 got;		/* of the expected reply */
};

static int raw, port = 8080, nconn = 1, size = 64, secs = 5;
static unsigned char *msg, *reply;
static size_t msglen, replylen;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* The frame we send and the one we expect back (server frames are
   unmasked). */
static void
frames(void)
{
	size_t h = size < 126 ? 2 : 4, i;

	msg = malloc((size_t)size + 8);
	reply = malloc((size_t)size + 4);
	if (msg == NULL || reply == NULL)
		die("malloc");
	if (raw) {
		for (i = 0; i < (size_t)size; i++)
			msg[i] = reply[i] = (unsigned char)('a' + i % 26);
		msglen = replylen = (size_t)size;
		return;
	}
	msg[0] = reply[0] = 0x82;
	if (h == 2) {
		msg[1] = (unsigned char)(0x80 | size);
		reply[1] = (unsigned char)size;
	} else {
		msg[1] = 0x80 | 126;
		reply[1] = 126;
		msg[2] = reply[2] = (unsigned char)(size >> 8);
		msg[3] = reply[3] = (unsigned char)size;
	}
	memset(msg + h, 0, 4);		/* mask key 0: payload as is */
	for (i = 0; i < (size_t)size; i++)
		msg[h + 4 + i] = reply[h + i] = (unsigned char)('a' + i % 26);
	msglen = h + 4 + (size_t)size;
	replylen = h + (size_t)size;
}

static int
dial(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char buf[1024];
	ssize_t n;
	size_t got = 0;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (raw)
		return fd;
	snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n");
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
		die("handshake");
	while (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4) != 0) {
		if ((n = read(fd, buf + got, 1)) != 1)
			die("handshake reply");
		if (++got == sizeof(buf))
			die("handshake too long");
	}
	if (strncmp(buf, "HTTP/1.1 101 ", 13) != 0) {
		fprintf(stderr, "no 101: %.*s\n", (int)got, buf);
		exit(1);
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static struct pc pcs[MAXC];
	struct epoll_event ev, evs[64];
	unsigned char *buf;
	unsigned long long msgs = 0;
	double end, start;
	int ep, i, opt;

	while ((opt = getopt(argc, argv, "ro:c:s:d:")) != -1) {
		switch (opt) {
		case 'r': raw = 1; break;
		case 'o': port = atoi(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: ws_pingpong [-r] [-o port] "
			    "[-c conns] [-s bytes] [-d secs]\n");
			return 64;
		}
	}
	if (nconn < 1 || nconn > MAXC || size < 1 || size > 65535)
		return 64;
	frames();
	if ((buf = malloc(replylen)) == NULL || (ep = epoll_create1(0)) == -1)
		die("setup");
	for (i = 0; i < nconn; i++) {
		pcs[i].fd = dial();
		ev.events = EPOLLIN;
		ev.data.ptr = &pcs[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, pcs[i].fd, &ev) == -1 ||
		    write(pcs[i].fd, msg, msglen) != (ssize_t)msglen)
			die("start");
	}
	start = now();
	end = start + secs;
	while (now() < end) {
		int n = epoll_wait(ep, evs, 64, 100);

		for (i = 0; i < n; i++) {
			struct pc *p = evs[i].data.ptr;
			ssize_t k = read(p->fd, buf + p->got, replylen - p->got);

			if (k <= 0)
				die("read");
			p->got += (size_t)k;
			if (p->got < replylen)
				continue;
			if (memcmp(buf, reply, replylen) != 0) {
				fprintf(stderr, "echo differs\n");
				return 1;
			}
			p->got = 0;
			msgs++;
			if (write(p->fd, msg, msglen) != (ssize_t)msglen)
				die("write");
		}
	}
	printf("msgs/s %.0f\n", (double)msgs / (now() - start));
	return 0;
}
