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
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "crypto_internal.h"

static const char mark_value[] = {'1'}; /* the mark's version */

/* fd may be an O_PATH fd, which the f*xattr calls refuse (EBADF): those
 * go through its /proc/self/fd link, which names the same inode. */
static void proc_link(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Only the daemon and the admin's tools write it: another value is a
 * mark from a newer format, not something to read as plain. */
static int mark_value_check(ssize_t n, const char *v)
{
	if (n < 0)
		return errno == ENODATA ? 0 : -errno;
	if (n != sizeof(mark_value) || memcmp(v, mark_value, sizeof(mark_value)) != 0)
		return -EIO;
	return 1;
}

int wfs_mark_get(int fd)
{
	char v[8], link[40];
	ssize_t n = fgetxattr(fd, WFS_MARK_XATTR, v, sizeof(v));
	if (n < 0 && errno == EBADF) {
		proc_link(link, sizeof(link), fd);
		n = getxattr(link, WFS_MARK_XATTR, v, sizeof(v));
	}
	return mark_value_check(n, v);
}

/* getxattrat(2), Linux 6.13: Debian 12's headers predate it. The number
 * is the same on every architecture (a syscall added after 424). */
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
struct xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

int wfs_mark_get_at(int dirfd, const char *name)
{
	/* One call and a one-component lookup; a lookup of every file in a
	 * big tree pays it. Where the kernel lacks it, by an O_PATH fd. */
	static _Atomic int no_getxattrat;
	char v[8];
	if (!no_getxattrat) {
		struct xattr_args a = {.value = (uintptr_t)v, .size = sizeof(v)};
		ssize_t n = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW,
				    WFS_MARK_XATTR, &a, sizeof(a));
		if (n >= 0 || errno != ENOSYS)
			return mark_value_check(n, v);
		no_getxattrat = 1;
	}
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = wfs_mark_get(fd);
	close(fd);
	return r;
}

/* The form of a file of size bytes whose mark read gave m. */
static int form_by_mark(int m, off_t size, enum wfs_form *form)
{
	if (m < 0)
		return m;
	*form = size == 0 ? WFS_FORM_EMPTY : m ? WFS_FORM_ENCRYPTED : WFS_FORM_PLAIN;
	return m;
}

int wfs_form_of_at(int dirfd, const char *name, off_t size, enum wfs_form *form)
{
	return form_by_mark(wfs_mark_get_at(dirfd, name), size, form);
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
	return form_by_mark(wfs_mark_get(fd), size, form);
}
