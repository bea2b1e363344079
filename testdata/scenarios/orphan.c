// An orphan: the middle process exits first, so the kernel reparents its
// child to init or a subreaper; the orphan then creates a thread and execs.
// Usage: orphan PROGRAM ARGS...
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *idle(void *arg) {
	(void)arg;
	pause();
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: orphan PROGRAM ARGS...\n");
		return 2;
	}
	pid_t middle = fork();
	if (middle < 0) {
		perror("fork");
		return 1;
	}
	if (middle == 0) {
		pid_t self = getpid();
		pid_t orphan = fork();
		if (orphan < 0) {
			_exit(1);
		}
		if (orphan == 0) {
			while (getppid() == self) // wait until reparented
				usleep(1000);
			pthread_t t;
			pthread_create(&t, NULL, idle, NULL);
			usleep(10 * 1000);
			execv(argv[1], argv + 1);
			perror("execv");
			_exit(127);
		}
		_exit(0); // the middle parent exits first
	}
	waitpid(middle, NULL, 0);
	usleep(300 * 1000); // the orphan finishes meanwhile; we are not its parent any more
	return 0;
}
