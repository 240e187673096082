/*
 * savetest.c - the atomic-save pattern of git and every editor, as fast as
 * one process can run it: write DIR/NAME.tmp, rename it over DIR/NAME, then
 * open and read DIR/NAME back. Any error (ESTALE above all) or a read that
 * does not return the bytes just saved is reported and counted.
 *
 *   savetest DIR NAME ITERATIONS
 *
 * Prints "iterations N errors E" and exits 1 when E > 0. Several copies
 * with different NAMEs in one directory make inode numbers recycle fast.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long errors;

static void fail(const char *what, const char *path, long i)
{
	if (errors++ < 20)
		fprintf(stderr, "savetest: iteration %ld: %s '%s': %s\n", i, what, path,
			strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: savetest DIR NAME ITERATIONS\n");
		return 2;
	}
	char path[4096], tmp[4096], want[64], got[64];
	snprintf(path, sizeof(path), "%s/%s", argv[1], argv[2]);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", argv[1], argv[2]);
	long n = atol(argv[3]);
	for (long i = 0; i < n; i++) {
		int len = snprintf(want, sizeof(want), "%s version %ld\n", argv[2], i);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			fail("create", tmp, i);
			continue;
		}
		if (write(fd, want, (size_t)len) != len)
			fail("write", tmp, i);
		if (close(fd) < 0)
			fail("close", tmp, i);
		if (rename(tmp, path) < 0) {
			fail("rename over", path, i);
			continue;
		}
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			fail("open", path, i);
			continue;
		}
		ssize_t r = read(fd, got, sizeof(got));
		if (r < 0)
			fail("read", path, i);
		else if (r != len || memcmp(got, want, (size_t)len)) {
			errno = EILSEQ;
			fail("read back other bytes from", path, i);
		}
		close(fd);
	}
	printf("iterations %ld errors %ld\n", n, errors);
	return errors ? 1 : 0;
}
