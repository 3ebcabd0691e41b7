/*
 * A client's address as the daemon counts and logs it: the per-source
 * key and the text forms.  Plain functions of their arguments, any
 * thread; at the bottom (base), so that the listener, UDP, connections
 * and systemd's socket adoption all use them without calling each other.
 */
#ifndef EO_PEER_H
#define EO_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A client's address, as the per-source limit counts it. */
struct peer_key {
	uint8_t		family;		/* AF_INET, AF_INET6; 0: none */
	uint8_t		addr[16];
};

/* Extracts the counting key of a peer address: an IPv4-mapped IPv6
   address gives its IPv4 one's key. */
void	peer_key_from(struct peer_key *k, const struct sockaddr *sa);
/* The key's address alone ("127.0.0.1", "::1"), as it is counted. */
void	peer_key_format(const struct peer_key *k, char *buf, size_t len);
/* "127.0.0.1:34567" or "[::1]:34567" into buf. */
void	peer_format(const struct sockaddr *sa, char *buf, size_t len);
/* The port of an IPv4 or IPv6 address; 0 for anything else. */
uint16_t peer_port(const struct sockaddr *sa);

#endif
