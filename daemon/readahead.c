/*
 * readahead.c - raises the mount's readahead to 1 MiB. The kernel offers a
 * FUSE connection at most its default bdi readahead (128 KiB) in INIT and
 * keeps the lower of that and the daemon's max_readahead, so sequential
 * reads that the daemon serves (sensitive files, --no-passthrough) came in
 * 128 KiB requests: measured here, a cold 1 GiB read of a sensitive file
 * went from 410-710 MB/s to 990-1,130 MB/s with 1 MiB. The bdi's sysfs
 * knob is the only way to raise it (mergerfs does the same). Passthrough
 * files read through the backing file and are not affected. Best effort.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lifecycle.h"

#define READAHEAD_KIB 1024

static void *raise_readahead(void *arg)
{
	char *mnt = arg, path[96], cur[32] = "";
	struct stat st;
	/* Blocks until the kernel has processed our INIT reply (which sets the
	 * readahead), and is answered by the session's workers. */
	if (stat(mnt, &st) < 0)
		goto out;
	snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "wardfs: cannot raise the readahead of '%s' (%s: %s)\n", mnt, path,
			strerror(errno));
		goto out;
	}
	ssize_t n = read(fd, cur, sizeof cur - 1);
	if (n > 0 && strtol(cur, NULL, 10) < READAHEAD_KIB) {
		char want[16];
		int len = snprintf(want, sizeof want, "%d", READAHEAD_KIB);
		if (pwrite(fd, want, (size_t)len, 0) != len)
			fprintf(stderr, "wardfs: cannot raise the readahead of '%s' (%s: %s)\n",
				mnt, path, strerror(errno));
	}
	close(fd);
out:
	free(mnt);
	return NULL;
}

void wfs_readahead_raise_async(const char *mountpoint)
{
	pthread_t t;
	pthread_attr_t attr;
	char *mnt = strdup(mountpoint);
	if (!mnt)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, raise_readahead, mnt) != 0)
		free(mnt);
	pthread_attr_destroy(&attr);
}
