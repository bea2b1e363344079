// Network calls of every kind the analysis reports, on loopback only, each
// printed on stdout as the program knows it (the reference its analysis is
// checked against):
//
//	OP FAMILY ADDRESS PORT    inet and inet6 (bind, listen: the local
//	                          address; connect, sendto, sendmsg: the remote;
//	                          accept: the peer)
//	OP unix PATH              a unix socket's path, @NAME when abstract
//	OP netlink PORTID
//	... ERRNO                 a call that failed, its errno's name last
//
// Usage: net DIR [N]: unix sockets go in DIR; N (default 0) more send()s
// on a connected UDP socket, which carry no address (the recorder's rules
// leave them out).
#define _GNU_SOURCE // accept4
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

static const char *errname(int e) {
	switch (e) {
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ENOENT:
		return "ENOENT";
	}
	return "?";
}

// show prints an inet or inet6 address as OP FAMILY ADDRESS PORT.
static void show(const char *op, const struct sockaddr *sa, const char *err) {
	char buf[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
		printf("%s inet %s %d%s%s\n", op, buf, ntohs(in->sin_port), err ? " " : "", err ? err : "");
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
		printf("%s inet6 %s %d%s%s\n", op, buf, ntohs(in6->sin6_port), err ? " " : "", err ? err : "");
	}
}

// server binds a listening TCP socket to addr (its port chosen by the
// kernel) and fills addr with its address.
static int server(struct sockaddr_storage *addr, socklen_t len) {
	int s = socket(addr->ss_family, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	if (bind(s, (struct sockaddr *)addr, len) < 0)
		die("bind");
	show("bind", (struct sockaddr *)addr, NULL);
	if (listen(s, 4) < 0)
		die("listen");
	// The address it was bound to: listen's own record has none.
	show("listen", (struct sockaddr *)addr, NULL);
	if (getsockname(s, (struct sockaddr *)addr, &len) < 0)
		die("getsockname");
	return s;
}

// tcp connects to a listening socket at addr and accepts the connection,
// with accept4 when four is set.
static void tcp(int family, const char *ip, int four) {
	struct sockaddr_storage a = {0}, peer;
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)&a;
		in->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &in->sin_addr);
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (void *)&a;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
		len = sizeof *in6;
	}
	int s = server(&a, len);
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0)
		die("socket");
	if (connect(c, (struct sockaddr *)&a, len) < 0)
		die("connect");
	show("connect", (struct sockaddr *)&a, NULL);
	socklen_t plen = sizeof peer;
	int k = four ? accept4(s, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC) : accept(s, (struct sockaddr *)&peer, &plen);
	if (k < 0)
		die("accept");
	show("accept", (struct sockaddr *)&peer, NULL);
	close(k);
	close(c);
	close(s);
}

// refused connects to a port nobody listens on: a port bound, then closed.
static void refused(void) {
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0)
		die("bind");
	show("bind", (struct sockaddr *)&a, NULL);
	if (getsockname(s, (struct sockaddr *)&a, &len) < 0)
		die("getsockname");
	close(s);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0)
		die("socket");
	if (connect(c, (struct sockaddr *)&a, len) == 0 || errno != ECONNREFUSED)
		die("connect to a closed port");
	show("connect", (struct sockaddr *)&a, "ECONNREFUSED");
	close(c);
}

// unixsock binds a listening unix socket at path (abstract when it starts
// with '@'), connects to it and accepts.
static void unixsock(const char *path) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof a.sun_path)
		die("path too long");
	memcpy(a.sun_path, path, n);
	socklen_t len = sizeof a;
	if (path[0] == '@') {
		a.sun_path[0] = 0; // abstract: exactly the name's bytes
		len = offsetof(struct sockaddr_un, sun_path) + n;
	}
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, len) < 0)
		die("bind unix");
	printf("bind unix %s\n", path);
	if (listen(s, 4) < 0)
		die("listen unix");
	printf("listen unix %s\n", path);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, len) < 0)
		die("connect unix");
	printf("connect unix %s\n", path);
	int k = accept(s, NULL, NULL); // no address: the peer is unnamed anyway
	if (k < 0)
		die("accept unix");
	printf("accept unix\n");
	close(k);
	close(c);
	close(s);
	if (path[0] != '@')
		unlink(path);
}

// missing connects to a unix path that does not exist.
static void missing(const char *path) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		die("path too long");
	memcpy(a.sun_path, path, strlen(path));
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0)
		die("socket");
	if (connect(c, (struct sockaddr *)&a, sizeof a) == 0 || errno != ENOENT)
		die("connect to a missing path");
	printf("connect unix %s %s\n", path, errname(errno));
	close(c);
}

// udp sends a datagram with sendto (inet) and one with sendmsg (inet6) to
// bound receivers, then n send()s on a connected socket.
static void udp(int n) {
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	socklen_t len = sizeof a;
	int r = socket(AF_INET, SOCK_DGRAM, 0);
	if (r < 0 || bind(r, (struct sockaddr *)&a, len) < 0)
		die("udp receiver");
	show("bind", (struct sockaddr *)&a, NULL);
	if (getsockname(r, (struct sockaddr *)&a, &len) < 0)
		die("getsockname");
	int c = socket(AF_INET, SOCK_DGRAM, 0);
	if (c < 0 || sendto(c, "x", 1, 0, (struct sockaddr *)&a, len) != 1)
		die("sendto");
	show("sendto", (struct sockaddr *)&a, NULL);

	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t len6 = sizeof a6;
	int r6 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (r6 < 0 || bind(r6, (struct sockaddr *)&a6, len6) < 0)
		die("udp6 receiver");
	show("bind", (struct sockaddr *)&a6, NULL);
	if (getsockname(r6, (struct sockaddr *)&a6, &len6) < 0)
		die("getsockname");
	int c6 = socket(AF_INET6, SOCK_DGRAM, 0);
	struct iovec iov = {.iov_base = "y", .iov_len = 1};
	struct msghdr m = {.msg_name = &a6, .msg_namelen = len6, .msg_iov = &iov, .msg_iovlen = 1};
	if (c6 < 0 || sendmsg(c6, &m, 0) != 1)
		die("sendmsg");
	show("sendmsg", (struct sockaddr *)&a6, NULL);

	// A connected socket: connect is the one call with the address.
	if (connect(c, (struct sockaddr *)&a, len) < 0)
		die("connect udp");
	show("connect", (struct sockaddr *)&a, NULL);
	char buf[1];
	for (int i = 0; i < n; i++) {
		if (send(c, "z", 1, 0) != 1)
			die("send");
		recv(r, buf, 1, MSG_DONTWAIT); // keep the receiver's queue short
	}
	close(c);
	close(r);
	close(c6);
	close(r6);
}

// netlink binds a route netlink socket (the kernel assigns its port id)
// and asks the kernel for its links: a sendto with the kernel's address,
// which the recorder's rules leave out (netlink requests are a flood).
static void netlink(void) {
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		die("socket netlink");
	struct sockaddr_nl a = {.nl_family = AF_NETLINK};
	socklen_t len = sizeof a;
	if (bind(s, (struct sockaddr *)&a, len) < 0)
		die("bind netlink");
	printf("bind netlink 0\n");
	if (getsockname(s, (struct sockaddr *)&a, &len) < 0)
		die("getsockname netlink");
	struct {
		struct nlmsghdr h;
		char pad[16];
	} req = {.h = {.nlmsg_len = NLMSG_LENGTH(16), .nlmsg_type = 18 /* RTM_GETLINK */, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP}};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(s, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		die("sendto netlink");
	close(s);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: net DIR [N]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int n = argc > 2 ? atoi(argv[2]) : 0;
	char path[200];
	tcp(AF_INET, "127.0.0.1", 0);
	tcp(AF_INET6, "::1", 1);
	refused();
	snprintf(path, sizeof path, "%s/sock", argv[1]);
	unixsock(path);
	unixsock("@proctrail-net-test");
	snprintf(path, sizeof path, "%s/missing.sock", argv[1]);
	missing(path);
	udp(n);
	netlink();
	return 0;
}
