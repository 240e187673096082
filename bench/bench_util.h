/*
 * bench_util.h - what bench/metabench.c and bench/openbench.c share: the
 * clock they time with, and where their files are (NDIRS directories
 * d000, d001, ... under DIR; file i in directory i % NDIRS), so that one
 * can open what the other made.
 */
#ifndef WARDFS_BENCH_UTIL_H
#define WARDFS_BENCH_UTIL_H

#include <stdio.h>
#include <time.h>

static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_file_path(char *buf, size_t len, const char *dir, long ndirs, long i)
{
	snprintf(buf, len, "%s/d%03ld/f%07ld", dir, i % ndirs, i);
}

static inline void bench_dir_path(char *buf, size_t len, const char *dir, long d)
{
	snprintf(buf, len, "%s/d%03ld", dir, d);
}

#endif
