/* openloop: the open/read/close flood of the benchmark workload (issue 4).
 * openloop N FILE opens FILE, reads up to 4 KiB and closes it, N times, in
 * one process, then prints the loop's duration in nanoseconds on stdout
 * (CLOCK_MONOTONIC, excluding exec and dynamic loading).
 * Under the forensic rules each iteration is two audit events (openat,
 * close); read is not audited. Build: gcc -O2 -o openloop openloop.c */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: openloop N FILE\n");
		return 2;
	}
	long n = atol(argv[1]);
	const char *path = argv[2];
	char buf[4096];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		if (read(fd, buf, sizeof buf) < 0) {
			perror("read");
			return 1;
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	return 0;
}
