/*
 * convert.c - a file's content in the other form, and everything else of
 * it: what `wardfs migrate` does to each file whose form disagrees with
 * the policy, and the daemon to a file renamed across classes (a save by
 * rename from a sensitive directory to a public one, or back).
 *
 * The copy goes into a new, empty file that the caller then renames over
 * the name (so a crash leaves the old file or the new one, never half of
 * either); it gets the original's owner, mode, ACLs, extended attributes
 * (but the mark, which wfs_hdr_write gives an encrypted copy) and times.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "crypto.h"
#include "crypto_internal.h"

#define ACL_ACCESS  "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"

/* Makes dst's ACL of that name src's: the same, or none when src has none. */
static int copy_acl(int src, int dst, const char *name)
{
	char buf[8192]; /* an ACL of 1,000 entries */
	ssize_t n = fgetxattr(src, name, buf, sizeof(buf));

	if (n < 0 && errno != ENODATA && errno != ENOTSUP)
		return -errno;
	if (n >= 0)
		return fsetxattr(dst, name, buf, (size_t)n, 0) != 0 ? -errno : 0;
	/* None: dst may have inherited its directory's default ACL when it
	 * was created, which would give it entries the original never had. */
	if (fremovexattr(dst, name) != 0 && errno != ENODATA && errno != ENOTSUP)
		return -errno;
	return 0;
}

int wfs_copy_acls(int src, int dst)
{
	struct stat st;
	int r;

	if (fstat(src, &st) != 0)
		return -errno;
	if ((r = copy_acl(src, dst, ACL_ACCESS)) != 0)
		return r;
	return S_ISDIR(st.st_mode) ? copy_acl(src, dst, ACL_DEFAULT) : 0;
}

/* Copies extended attributes but the mark and the ACLs (wfs_copy_acls);
 * only user.* failures are fatal. */
static int copy_xattrs(int src, int dst)
{
	ssize_t n = flistxattr(src, NULL, 0), v;
	char *names = NULL, *val = NULL;
	int r = 0;

	if (n <= 0)
		return n < 0 && errno != ENOTSUP ? -errno : 0;
	if ((names = malloc((size_t)n)) == NULL || (n = flistxattr(src, names, (size_t)n)) < 0) {
		r = n < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		bool must = strncmp(p, "user.", 5) == 0;

		if (!strcmp(p, WFS_MARK_XATTR))
			continue; /* the form is the copy's own (wfs_hdr_write marks) */
		if (!strcmp(p, ACL_ACCESS) || !strcmp(p, ACL_DEFAULT))
			continue; /* exactly, and fatally: wfs_copy_acls */

		free(val);
		val = NULL;
		if ((v = fgetxattr(src, p, NULL, 0)) < 0 || (val = malloc((size_t)v + 1)) == NULL ||
		    (v = fgetxattr(src, p, val, (size_t)v)) < 0 ||
		    fsetxattr(dst, p, val, (size_t)v, 0) != 0) {
			if (must) {
				r = errno ? -errno : -ENOMEM;
				goto out;
			}
		}
	}
out:
	free(names);
	free(val);
	return r;
}

int wfs_convert_content(const struct wfs_keys *k, int src, int dst, off_t size, bool encrypt,
			void *buf, size_t len)
{
	struct wfs_file_hdr h;
	off_t off = 0;
	ssize_t n, w;
	int r;

	if (encrypt) {
		if ((r = wfs_hdr_write(k, dst, &h)) != 0)
			return r;
		for (;;) {
			n = pread(src, buf, len, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				break;
			if ((w = wfs_content_pwrite(k, dst, &h, buf, (size_t)n, off)) < 0)
				return (int)w;
			off += n;
		}
		return off == size ? 0 : -EAGAIN; /* it changed under us */
	}
	if ((r = wfs_hdr_read(k, src, &h)) < 0)
		return r;
	if (r != WFS_FORM_ENCRYPTED)
		return -EAGAIN;
	for (off_t plain = wfs_plain_size(size); off < plain; off += n) {
		if ((n = wfs_content_pread(k, src, &h, buf, len, off)) < 0)
			return (int)n;
		if (n == 0)
			break;
		if ((w = wfs__pwrite_full(dst, buf, (size_t)n, off)) < 0)
			return (int)w;
	}
	return off == wfs_plain_size(size) ? 0 : -EIO;
}

int wfs_copy_file_attrs(int src, int dst, const struct stat *st)
{
	int r;
	if (fchown(dst, st->st_uid, st->st_gid) != 0 &&
	    !(errno == EPERM && st->st_uid == geteuid()))
		return -errno;
	struct timespec times[2] = {st->st_atim, st->st_mtim};
	/* The ACL after the mode: setting an access ACL sets the group bits
	 * from its mask, which the original's mode already shows. */
	if (fchmod(dst, st->st_mode & 07777) != 0)
		return -errno;
	if ((r = wfs_copy_acls(src, dst)) != 0 || (r = copy_xattrs(src, dst)) != 0)
		return r;
	return futimens(dst, times) != 0 ? -errno : 0;
}
