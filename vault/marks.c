/*
 * marks.c - bringing a vault's files under the daemon's mark.
 *
 * The daemon serves a file as ciphertext only when it carries the mark
 * (crypto/mark.c). Vaults made before the mark existed, and backing trees
 * restored by a tool that dropped extended attributes, hold ciphertext
 * without it. Adoption walks the tree once and marks each file whose
 * header authenticates under this vault's key; the stamp BACKING/.wardfs/
 * marked, itself marked, says that it has been done here. A stamp that
 * lost its mark is a tree restored without xattrs: adoption runs again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vault.h"

#define STAMP "marked"

static int stamp_open(const char *backing, int flags)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", backing, WFS_VAULT_DIR, STAMP) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int wfs_vault_marks_done(const char *backing)
{
	int fd = stamp_open(backing, O_RDONLY);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	int m = wfs_mark_get(fd);
	close(fd);
	return m;
}

struct adopt {
	const struct wfs_keys *keys;
	unsigned adopted;
};

static int adopt_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct adopt *a = arg;
	struct wfs_file_hdr h;
	(void)rel;
	if (st->st_size < (off_t)WFS_HDR_SIZE)
		return 0;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone, or not ours to read: the daemon will say */
	/* Only a header this vault's key authenticates is ours; bytes that
	 * merely start with the magic stay plain. */
	if (wfs_mark_get(fd) == 0 && wfs_hdr_read(a->keys, fd, &h) == WFS_FORM_ENCRYPTED) {
		int r = wfs_mark_set(fd);
		if (r < 0) {
			close(fd);
			return r;
		}
		a->adopted++;
	}
	close(fd);
	return 0;
}

int wfs_vault_stamp_marks(const char *backing)
{
	int fd = stamp_open(backing, O_RDWR | O_CREAT);
	if (fd < 0)
		return fd;
	int r = wfs_mark_set(fd);
	if (r == 0 && fsync(fd) != 0)
		r = -errno;
	close(fd);
	return r;
}

int wfs_vault_adopt_marks(const char *backing, const struct wfs_keys *keys, unsigned *adopted)
{
	struct adopt a = {.keys = keys};
	unsigned errors = 0;
	/* The stamp first: a file system that cannot keep the mark fails
	 * here (-ENOTSUP), before the walk. */
	int r = wfs_vault_stamp_marks(backing);
	if (r == 0)
		r = wfs_vault_walk(backing, adopt_one, &a, &errors);
	*adopted = a.adopted;
	if (r == 0 && errors)
		r = -EIO; /* a directory could not be read: not done */
	if (r != 0) {
		int fd = stamp_open(backing, O_RDONLY);
		if (fd >= 0) {
			wfs_mark_clear(fd); /* not done: the next mount tries again */
			close(fd);
		}
	}
	return r;
}
