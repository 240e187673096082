/*
 * metabench.c - metadata benchmark for bench/run.sh.
 *
 *   metabench csr    DIR NFILES NDIRS FILESIZE   create, stat, read phases
 *   metabench delete DIR NFILES NDIRS            delete phase
 *
 * File i lives at DIR/dNNN/fNNNNNNN with NNN = i % NDIRS, so consecutive
 * operations hop between directories as they would in a real tree.
 *
 * The delete phase is a separate invocation on purpose: on this ext4 (no
 * journal, discard) creating files soon after a mass delete is 10-30x slower
 * for minutes, so run.sh runs every create phase first and every delete
 * phase at the very end (see docs/benchmarks.md, "Hygiene").
 *
 * Output, one line per phase:  PHASE SECONDS OPS_PER_SECOND
 * Exit status 1 (with the failing path and errno on stderr) on any error:
 * a benchmark that silently skips files measures nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static const char *dir;
static long nfiles, ndirs;

static void file_path(char *buf, size_t len, long i)
{
	bench_file_path(buf, len, dir, ndirs, i);
}

static void dir_path(char *buf, size_t len, long d)
{
	bench_dir_path(buf, len, dir, d);
}

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "metabench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void report(const char *phase, double t0, long ops)
{
	double s = now() - t0;
	printf("%s %.6f %.1f\n", phase, s, s > 0 ? (double)ops / s : 0.0);
	fflush(stdout);
}

static void phase_create(size_t fsize)
{
	char p[4096];
	char *buf = malloc(fsize ? fsize : 1);
	if (!buf)
		exit(1);
	memset(buf, 'x', fsize);
	double t0 = now();
	for (long d = 0; d < ndirs; d++) {
		dir_path(p, sizeof(p), d);
		if (mkdir(p, 0755) < 0)
			fail("mkdir", p);
	}
	for (long i = 0; i < nfiles; i++) {
		file_path(p, sizeof(p), i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			fail("create", p);
		if (fsize && write(fd, buf, fsize) != (ssize_t)fsize)
			fail("write", p);
		if (close(fd) < 0)
			fail("close", p);
	}
	report("create", t0, nfiles);
	free(buf);
}

static void phase_stat(size_t fsize)
{
	char p[4096];
	struct stat st;
	double t0 = now();
	for (long i = 0; i < nfiles; i++) {
		file_path(p, sizeof(p), i);
		if (stat(p, &st) < 0)
			fail("stat", p);
		if ((size_t)st.st_size != fsize) {
			errno = EIO;
			fail("wrong size from stat", p);
		}
	}
	report("stat", t0, nfiles);
}

static void phase_read(size_t fsize)
{
	char p[4096];
	size_t cap = fsize + 1;
	char *buf = malloc(cap);
	if (!buf)
		exit(1);
	double t0 = now();
	for (long i = 0; i < nfiles; i++) {
		file_path(p, sizeof(p), i);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail("open", p);
		size_t got = 0;
		ssize_t n;
		while ((n = read(fd, buf, cap)) > 0)
			got += (size_t)n;
		if (n < 0)
			fail("read", p);
		if (got != fsize) {
			errno = EIO;
			fail("short read", p);
		}
		close(fd);
	}
	report("read", t0, nfiles);
	free(buf);
}

static void phase_delete(void)
{
	char p[4096];
	double t0 = now();
	for (long i = 0; i < nfiles; i++) {
		file_path(p, sizeof(p), i);
		if (unlink(p) < 0)
			fail("unlink", p);
	}
	for (long d = 0; d < ndirs; d++) {
		dir_path(p, sizeof(p), d);
		if (rmdir(p) < 0)
			fail("rmdir", p);
	}
	report("delete", t0, nfiles);
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[1], "csr") && strcmp(argv[1], "delete")) ||
	    (!strcmp(argv[1], "csr") && argc != 6)) {
		fprintf(stderr, "usage: metabench csr DIR NFILES NDIRS FILESIZE\n"
				"       metabench delete DIR NFILES NDIRS\n");
		return 2;
	}
	dir = argv[2];
	nfiles = atol(argv[3]);
	ndirs = atol(argv[4]);
	if (nfiles < 1 || ndirs < 1 || ndirs > 999) {
		fprintf(stderr, "metabench: need NFILES >= 1 and 1 <= NDIRS <= 999\n");
		return 2;
	}
	if (!strcmp(argv[1], "delete")) {
		phase_delete();
		return 0;
	}
	size_t fsize = (size_t)atol(argv[5]);
	phase_create(fsize);
	phase_stat(fsize);
	phase_read(fsize);
	return 0;
}
