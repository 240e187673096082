/*
 * mark.c - the daemon's mark on the files it encrypted.
 *
 * A file is served as ciphertext only when it carries this mark: an
 * extended attribute in the trusted namespace, which only a process with
 * CAP_SYS_ADMIN can read or write (the kernel checks before any file
 * system, FUSE included, sees the request) and which the daemon refuses
 * through the mount even to root. Bytes a user wrote that look like a
 * header are just bytes: without the mark the daemon never decrypts them,
 * so a stolen ciphertext copied into the mount reads as the ciphertext it
 * is. Layout in docs/format.md ("The mark").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "crypto_internal.h"

static const char mark_value[] = {'1'}; /* the mark's version */

/* fd may be an O_PATH fd, which the f*xattr calls refuse (EBADF): those
 * go through its /proc/self/fd link, which names the same inode. */
static void proc_link(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int wfs_mark_get(int fd)
{
	char v[8], link[40];
	ssize_t n = fgetxattr(fd, WFS_MARK_XATTR, v, sizeof(v));
	if (n < 0 && errno == EBADF) {
		proc_link(link, sizeof(link), fd);
		n = getxattr(link, WFS_MARK_XATTR, v, sizeof(v));
	}
	if (n < 0)
		return errno == ENODATA ? 0 : -errno;
	/* Only the daemon and the admin's tools write it: another value is
	 * a mark from a newer format, not something to read as plain. */
	if (n != sizeof(mark_value) || memcmp(v, mark_value, sizeof(mark_value)) != 0)
		return -EIO;
	return 1;
}

int wfs_mark_set(int fd)
{
	char link[40];
	int r = fsetxattr(fd, WFS_MARK_XATTR, mark_value, sizeof(mark_value), 0);
	if (r < 0 && errno == EBADF) {
		proc_link(link, sizeof(link), fd);
		r = setxattr(link, WFS_MARK_XATTR, mark_value, sizeof(mark_value), 0);
	}
	return r < 0 ? -errno : 0;
}

int wfs_mark_clear(int fd)
{
	char link[40];
	int r = fremovexattr(fd, WFS_MARK_XATTR);
	if (r < 0 && errno == EBADF) {
		proc_link(link, sizeof(link), fd);
		r = removexattr(link, WFS_MARK_XATTR);
	}
	return r < 0 && errno != ENODATA ? -errno : 0;
}

int wfs_form_of(int fd, off_t size, enum wfs_form *form)
{
	int m = wfs_mark_get(fd);
	if (m < 0)
		return m;
	*form = size == 0 ? WFS_FORM_EMPTY : m ? WFS_FORM_ENCRYPTED : WFS_FORM_PLAIN;
	return m;
}
