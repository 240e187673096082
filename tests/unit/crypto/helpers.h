/*
 * helpers.h - shared by the crypto unit tests: cmocka includes, memfd
 * files, temporary directories, and (from tests/common) fixed test keys
 * and a byte pattern.
 */
#ifndef WFS_TEST_CRYPTO_HELPERS_H
#define WFS_TEST_CRYPTO_HELPERS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "crypto_internal.h"
#include "test_bytes.h" /* tests/common: test_pattern */
#include "test_keys.h"	/* tests/common: test_keys */

static inline int test_memfd(void)
{
	int fd = memfd_create("wfs-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static inline off_t test_fsize(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_size;
}

static inline void test_pread_raw(int fd, void *buf, size_t n, off_t off)
{
	assert_int_equal(pread(fd, buf, n, off), (ssize_t)n);
}

static inline void test_pwrite_raw(int fd, const void *buf, size_t n, off_t off)
{
	assert_int_equal(pwrite(fd, buf, n, off), (ssize_t)n);
}

/* A fresh directory /tmp/wfs-NAME-XXXXXX in dir (64 bytes), for tests
 * that need real files; test_tmpdir_remove takes it away with its tree. */
static inline void test_tmpdir_make(char dir[64], const char *name)
{
	snprintf(dir, 64, "/tmp/wfs-%s-XXXXXX", name);
	assert_non_null(mkdtemp(dir));
}

static inline void test_tmpdir_remove(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#endif
