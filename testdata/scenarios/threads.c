// Threads that exit at different times; the main thread exits first, while
// the others still run (pthread_exit), so the process ends with its last
// thread.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *worker(void *arg) {
	long ms = (long)arg;
	usleep(ms * 1000);
	return NULL;
}

int main(void) {
	pthread_t t[3];
	for (long i = 0; i < 3; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(100 * (i + 1))) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	usleep(20 * 1000);
	pthread_exit(NULL); // the main thread ends; the process lives on
}
