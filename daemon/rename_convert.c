/*
 * rename_convert.c - a save by rename across classes (issue 16).
 *
 * Editors, sed -i, git's credential store and ssh-keygen -R write a
 * temporary file beside the target and rename it over the target. With
 * everything under /.ssh sensitive but /.ssh/known_hosts public, the temporary file
 * is encrypted and the target's path wants plaintext: a plain rename would
 * leave ciphertext where the policy says public (or plaintext where it says
 * sensitive), so rename_class.c refuses it with EXDEV, and those programs
 * fail. Here such a rename converts instead:
 *
 *   the content is copied, in the target's form, into an unnamed file
 *   (O_TMPFILE in BACKING/.wardfs, on the same file system), with the
 *   original's owner, mode, ACLs, xattrs and times; it is synced, given a
 *   name in .wardfs, renamed over the target (atomic), and the source name
 *   is removed. A crash leaves the old target or the new one, never half a
 *   file; a leftover convert.* in .wardfs is removed at the next mount.
 *
 * Only when nothing is shed: the old path's decision narrows no access
 * (no allow-* option: anyone who may rename it may read it and write it
 * anywhere), neither path is deny, the file has one name (a hard link
 * would keep the old form), no open handle of it exists (its writes would
 * go to the file renamed away), and it holds at most WFS_CONVERT_MAX bytes.
 * Anything else stays EXDEV, and `mv` copies.
 *
 * The kernel now maps the new name to the old file's inode. The daemon
 * forgets that inode's name, so the next request on it is answered ESTALE
 * and the kernel looks the name up again (as for a name removed while the
 * file keeps others; inode.c), finding the converted file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "fs_policy.h"
#include "inode.h"
#include "names.h"
#include "rename.h"

#define CONVERT_PREFIX "convert."
#define CONVERT_CHUNK  (1u << 20)

/* Copies src (st) into a new file named over np/newname, in the other
 * form. Caller holds n's open_lock. 0 or -errno. */
static int convert(int src, const struct stat *st, bool encrypt, struct wfs_inode *np,
		   const char *newname, const char *newbname, unsigned flags)
{
	struct wfs_fs *fs = np->fs;
	char tmpname[64];
	int vdfd = -1, tmp = -1, npfd = -1, r;
	void *buf = NULL;
	bool linked = false;
	struct stat vst, nst, over;

	vdfd = openat(fs->root_fd, WFS_VAULT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (vdfd < 0)
		return -EXDEV;
	npfd = wfs_inode_fd(np);
	if (npfd < 0) {
		r = npfd;
		npfd = -1;
		goto out;
	}
	/* The new file is made in .wardfs and renamed into place: both must
	 * be on one file system (a bind mount inside the backing dir). */
	if (fstat(vdfd, &vst) < 0 || fstat(npfd, &nst) < 0 || vst.st_dev != nst.st_dev) {
		r = -EXDEV;
		goto out;
	}
	tmp = openat(vdfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tmp < 0) {
		r = errno == EOPNOTSUPP || errno == EISDIR ? -EXDEV : -errno;
		goto out;
	}
	if (!(buf = malloc(CONVERT_CHUNK))) {
		r = -ENOMEM;
		goto out;
	}
	r = wfs_convert_content(fs->keys, src, tmp, st->st_size, encrypt, buf, CONVERT_CHUNK);
	if (!encrypt)
		explicit_bzero(buf, CONVERT_CHUNK); /* it held plaintext */
	if (r || (r = wfs_copy_file_attrs(src, tmp, st)) != 0)
		goto out;
	if (fsync(tmp) < 0) {
		r = -errno;
		goto out;
	}
	snprintf(tmpname, sizeof tmpname, CONVERT_PREFIX "%d.%u", (int)getpid(),
		 atomic_fetch_add(&fs->convert_seq, 1));
	if (linkat(tmp, "", vdfd, tmpname, AT_EMPTY_PATH) < 0) {
		r = -errno;
		goto out;
	}
	linked = true;
	bool replaces = fstatat(npfd, newbname, &over, AT_SYMLINK_NOFOLLOW) == 0;
	if (renameat2(vdfd, tmpname, npfd, newbname, flags & RENAME_NOREPLACE) < 0) {
		r = -errno;
		goto out;
	}
	linked = false;
	if (replaces)
		wfs_inode_name_removed(np, newname, &over);
	r = 0;
out:
	if (linked)
		unlinkat(vdfd, tmpname, 0);
	free(buf);
	if (tmp >= 0)
		close(tmp);
	if (npfd >= 0)
		wfs_inode_put_fd(np);
	close(vdfd);
	return r;
}

int wfs_rename_convert(struct wfs_inode *parent, const struct wfs_bname *from_b, const char *name,
		       struct wfs_inode *n, struct wfs_inode *np, const char *newname,
		       const char *newbname, unsigned flags)
{
	struct wfs_fs *fs = n->fs;
	WFS_AUTOFREE char *from = NULL;
	WFS_AUTOFREE char *to = NULL;
	struct wfs_decision a, b;
	struct stat st;
	enum wfs_form form;
	int src = -1, r;

	if (n->type != S_IFREG || (flags & ~RENAME_NOREPLACE))
		return -EXDEV;
	if (wfs_child_path(parent, name, &from) || wfs_child_path(np, newname, &to))
		return -EXDEV;
	wfs_classify_paths(fs, from, to, &a, &b);
	/* Only the classes are needed: no option of either outlives this. */
	bool sheds = a.opts || a.cls == WFS_DENY || b.cls == WFS_DENY;
	bool b_sensitive = b.cls == WFS_SENSITIVE;
	bool encrypt = b_sensitive && fs->keys;
	wfs_decision_put(&a);
	wfs_decision_put(&b);
	if (sheds)
		return -EXDEV; /* it would shed a rule, or touch a deny path */

	pthread_mutex_lock(&n->open_lock);
	if (n->opens > 0) {
		r = -EXDEV;
		goto out;
	}
	src = wfs_inode_open(n, O_RDONLY | O_NOATIME);
	if (src == -EPERM)
		src = wfs_inode_open(n, O_RDONLY);
	if (src < 0) {
		r = src;
		goto out;
	}
	if (fstat(src, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_size > WFS_CONVERT_MAX) {
		r = -EXDEV;
		goto out;
	}
	if ((r = wfs_form_of(src, st.st_size, &form)) < 0)
		goto out;
	if (atomic_load(&fs->locked) && form != WFS_FORM_EMPTY &&
	    (form == WFS_FORM_ENCRYPTED || b_sensitive)) {
		r = -ENOKEY; /* `wardfs lock`: it would need the keys (op_rename holds them) */
		goto out;
	}
	if (form == WFS_FORM_EMPTY || (form == WFS_FORM_ENCRYPTED) == encrypt) {
		r = 1; /* already in the target's form: a plain rename */
		goto out;
	}
	if (form == WFS_FORM_ENCRYPTED && !fs->keys) {
		r = -EXDEV;
		goto out;
	}
	r = convert(src, &st, encrypt, np, newname, newbname, flags);
	if (r == -EIO)
		wfs_fs_integrity_failure(n, "a rename that converts the file found it damaged; "
					    "nothing was renamed");
	if (r)
		goto out;
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0 || unlinkat(pfd, from_b->name, 0) < 0)
		fprintf(stderr,
			"wardfs: renamed '%s' to '%s' in the new form, but cannot remove the old "
			"name: %s\n",
			from, to, strerror(pfd < 0 ? -pfd : errno));
	else
		wfs_bname_removed(pfd, from_b);
	if (pfd >= 0)
		wfs_inode_put_fd(parent);
	wfs_inode_unname(n);
out:
	pthread_mutex_unlock(&n->open_lock);
	if (src >= 0)
		close(src);
	return r;
}

void wfs_rename_convert_cleanup(int vault_dirfd)
{
	int fd = openat(vault_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, CONVERT_PREFIX, strlen(CONVERT_PREFIX)))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}
