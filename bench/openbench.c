/*
 * openbench.c - open-heavy benchmark for bench/run.sh (the audit path: every
 * open(2) on wardfs writes an audit row).
 *
 *   openbench create DIR NFILES NDIRS          make NFILES empty files (untimed prep)
 *   openbench open   DIR NFILES NDIRS THREADS  open+close every file once
 *
 * "open" first stats every file (untimed) so the dentry/attribute caches are
 * warm and the timed loop measures open/close, not lookup. The files are split
 * into THREADS contiguous slices; all threads start together on a barrier.
 *
 * Output of "open":  open-THREADSt SECONDS OPS_PER_SECOND
 * Exit status 1 on any error (path and errno on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static const char *dir;
static long nfiles, ndirs;
static pthread_barrier_t start;

struct slice {
	long from, to;
	int err;
	char path[4096];
};

static void file_path(char *buf, size_t len, long i)
{
	bench_file_path(buf, len, dir, ndirs, i);
}

static int do_create(void)
{
	char p[4096];
	for (long d = 0; d < ndirs; d++) {
		bench_dir_path(p, sizeof(p), dir, d);
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "openbench: mkdir %s: %s\n", p, strerror(errno));
			return 1;
		}
	}
	for (long i = 0; i < nfiles; i++) {
		file_path(p, sizeof(p), i);
		int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "openbench: create %s (file %ld of %ld): %s\n", p, i + 1,
				nfiles, strerror(errno));
			return 1;
		}
		close(fd);
	}
	return 0;
}

static void *worker(void *arg)
{
	struct slice *s = arg;
	pthread_barrier_wait(&start);
	for (long i = s->from; i < s->to; i++) {
		file_path(s->path, sizeof(s->path), i);
		int fd = open(s->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			s->err = errno;
			return NULL;
		}
		close(fd);
	}
	return NULL;
}

static int do_open(int threads)
{
	char p[4096];
	struct stat st;
	for (long i = 0; i < nfiles; i++) { /* warm lookups, untimed */
		file_path(p, sizeof(p), i);
		if (stat(p, &st) < 0) {
			fprintf(stderr, "openbench: stat %s: %s\n", p, strerror(errno));
			return 1;
		}
	}
	struct slice *sl = calloc((size_t)threads, sizeof(*sl));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	if (!sl || !tid)
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int t = 0; t < threads; t++) {
		sl[t].from = nfiles * t / threads;
		sl[t].to = nfiles * (t + 1) / threads;
		if (pthread_create(&tid[t], NULL, worker, &sl[t])) {
			fprintf(stderr, "openbench: cannot start thread %d\n", t);
			return 1;
		}
	}
	double t0 = now();
	pthread_barrier_wait(&start);
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	double s = now() - t0;
	for (int t = 0; t < threads; t++)
		if (sl[t].err) {
			fprintf(stderr, "openbench: open %s: %s\n", sl[t].path,
				strerror(sl[t].err));
			return 1;
		}
	printf("open-%dt %.6f %.1f\n", threads, s, s > 0 ? (double)nfiles / s : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (!strcmp(argv[1], "open") && argc != 6) ||
	    (strcmp(argv[1], "open") && strcmp(argv[1], "create"))) {
		fprintf(stderr, "usage: openbench create DIR NFILES NDIRS\n"
				"       openbench open DIR NFILES NDIRS THREADS\n");
		return 2;
	}
	dir = argv[2];
	nfiles = atol(argv[3]);
	ndirs = atol(argv[4]);
	if (nfiles < 1 || ndirs < 1 || ndirs > 999) {
		fprintf(stderr, "openbench: need NFILES >= 1 and 1 <= NDIRS <= 999\n");
		return 2;
	}
	if (!strcmp(argv[1], "create"))
		return do_create();
	int threads = atoi(argv[5]);
	if (threads < 1 || threads > 256) {
		fprintf(stderr, "openbench: THREADS must be 1..256\n");
		return 2;
	}
	return do_open(threads);
}
