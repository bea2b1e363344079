/* groupload: one syscall group of the forensic preset, in a loop, for
 * bench/rulecost.py's cost per group (issue 14).
 *
 *   groupload GROUP N DIR
 *
 * runs N iterations of GROUP in one process, then prints the loop's
 * duration in nanoseconds on stdout (CLOCK_MONOTONIC, excluding exec,
 * dynamic loading and the setup). DIR is a scratch directory. Groups, and
 * the syscalls each iteration makes (those the preset audits in brackets):
 *
 *   fs        [mkdir chmod chown utimensat symlink unlink rmdir]
 *   net       [socket connect close]: a UDP socket connected to 127.0.0.1
 *   sendto    [sendto]: a datagram to 127.0.0.1 from an unconnected socket
 *   send      send on a connected UDP socket (no address: filtered out)
 *   kill      [kill SIGWINCH] to itself (ignored by default)
 *   kill0     kill 0 to itself, a liveness probe (filtered out)
 *   fcntl     [fcntl F_DUPFD_CLOEXEC close]
 *   fcntlfl   fcntl F_GETFL (filtered out)
 *
 * The filtered-out groups show what a rule that does not match costs: the
 * kernel's walk of the rules at the syscall's exit.
 * Build: gcc -O2 -o groupload groupload.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: groupload fs|net|sendto|send|kill|kill0|fcntl|fcntlfl N DIR\n");
		return 2;
	}
	const char *g = argv[1];
	long n = atol(argv[2]);
	char d[4096], l[4096];
	snprintf(d, sizeof d, "%s/d", argv[3]);
	snprintf(l, sizeof l, "%s/l", argv[3]);

	/* A receiver on 127.0.0.1, so that datagrams have somewhere to go
	 * (when its buffer is full they are dropped, which costs nothing). */
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (rx < 0 || bind(rx, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(rx, (struct sockaddr *)&a, &al) < 0)
		die("receiver");
	int tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (tx < 0)
		die("socket");
	if (strcmp(g, "send") == 0 && connect(tx, (struct sockaddr *)&a, sizeof a) < 0)
		die("connect");
	signal(SIGWINCH, SIG_IGN);
	char b = 'x';
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		if (strcmp(g, "fs") == 0) {
			struct timespec ts[2] = {{1, 0}, {1, 0}};
			if (mkdir(d, 0755) < 0 || chmod(d, 0700) < 0 || chown(d, 0, 0) < 0 ||
			    utimensat(AT_FDCWD, d, ts, 0) < 0 || symlink(d, l) < 0 || unlink(l) < 0 || rmdir(d) < 0)
				die(d);
		} else if (strcmp(g, "net") == 0) {
			int s = socket(AF_INET, SOCK_DGRAM, 0);
			if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0)
				die("connect");
			close(s);
		} else if (strcmp(g, "sendto") == 0) {
			if (sendto(tx, &b, 1, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof a) < 0)
				die("sendto");
		} else if (strcmp(g, "send") == 0) {
			if (send(tx, &b, 1, MSG_DONTWAIT) < 0)
				die("send");
		} else if (strcmp(g, "kill") == 0) {
			if (kill(getpid(), SIGWINCH) < 0)
				die("kill");
		} else if (strcmp(g, "kill0") == 0) {
			if (kill(getpid(), 0) < 0)
				die("kill");
		} else if (strcmp(g, "fcntl") == 0) {
			int fd = fcntl(tx, F_DUPFD_CLOEXEC, 10);
			if (fd < 0)
				die("fcntl");
			close(fd);
		} else if (strcmp(g, "fcntlfl") == 0) {
			if (fcntl(tx, F_GETFL) < 0)
				die("fcntl");
		} else {
			fprintf(stderr, "groupload: unknown group %s\n", g);
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
	return 0;
}
