/*
 * ops_dir.c - directory listing: opendir, readdir and readdirplus,
 * releasedir, fsyncdir. The vault directory at the root is never listed.
 * Where the kernel can do without directory handles (fs.no_opendir),
 * there are none: readdir and fsyncdir open the directory themselves.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "inode.h"
#include "names.h"
#include "ops.h"

struct wfs_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry; /* read but not yet returned */
};

static struct wfs_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct wfs_dir *)(uintptr_t)fi->fh;
}

/* A stream of directory n, or NULL with -errno in *err. */
static struct wfs_dir *do_opendir(struct wfs_inode *n, int *err)
{
	struct wfs_dir *d = calloc(1, sizeof(*d));
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	int fd = wfs_inode_open(n, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		free(d);
		*err = fd;
		return NULL;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		*err = -errno;
		close(fd);
		free(d);
		return NULL;
	}
	return d;
}

static void close_dir(struct wfs_dir *d)
{
	closedir(d->dp);
	free(d);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (atomic_load(&wfs_fs_of(req)->no_opendir)) {
		/* no handles: the kernel sends no OPENDIR or RELEASEDIR again
		 * (session.c), and readdir opens the directory itself */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	int r = 0;
	struct wfs_dir *d = do_opendir(wfs_inode_of(req, ino), &r);
	if (!d) {
		fuse_reply_err(req, -r);
	} else {
		fi->fh = (uintptr_t)d;
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
		if (fuse_reply_open(req, fi) == -ENOENT)
			close_dir(d); /* interrupted */
	}
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

static void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		 struct fuse_file_info *fi, bool plus);

/* Names are decrypted with the keys held (names.h). */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	wfs_names_hold(fs);
	list(req, ino, size, offset, fi, plus);
	wfs_names_release(fs);
}

static void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		 struct fuse_file_info *fi, bool plus)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	struct wfs_inode *dir = wfs_inode_of(req, ino);
	struct wfs_dir *d = dir_of(fi);
	/* Without a handle (fs.no_opendir): the directory opened for this
	 * request, read from offset (an offset of the backing file system's,
	 * which a new stream of the same directory takes as the old one). */
	struct wfs_dir *own = NULL;
	if (!d) {
		int r = 0;
		if (!(own = do_opendir(dir, &r))) {
			fuse_reply_err(req, -r);
			return;
		}
		d = own;
	}
	char *buf = malloc(size);
	if (!buf) {
		if (own)
			close_dir(own);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	size_t used = 0;
	int err = 0;
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		struct dirent *de = d->entry;
		off_t next = de->d_off;
		if (dir == &fs->root && !strcmp(de->d_name, WFS_VAULT_DIR)) {
			d->entry = NULL;
			d->offset = next;
			continue;
		}
		/* the name it shows: decrypted, unescaped; wardfs's own files
		 * and names that cannot be shown are skipped (names.c) */
		const char *shown = de->d_name;
		char plain[WFS_NAME_MAX + 1];
		if (fs->names && !is_dot(de->d_name)) {
			if (wfs_bname_show(dir, dirfd(d->dp), de->d_name, plain) <= 0 ||
			    wfs_bname_shadowed(dir, dirfd(d->dp), de->d_name, plain)) {
				d->entry = NULL;
				d->offset = next;
				continue;
			}
			shown = plain;
		}
		size_t len;
		if (plus) {
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			struct stat st;
			struct wfs_inode *child = NULL;
			if (is_dot(de->d_name)) {
				e.attr.st_ino = de->d_ino;
				e.attr.st_mode = (mode_t)de->d_type << 12;
			} else {
				int r = wfs_inode_lookup_at(dir, shown, de->d_name, &st, &child);
				if (r == -ENOENT) { /* raced with unlink */
					d->entry = NULL;
					d->offset = next;
					continue;
				}
				if (r) {
					err = -r;
					break;
				}
				wfs_show_plain_size(child, &st);
				wfs_fill_entry(&e, child, &st);
			}
			len = fuse_add_direntry_plus(req, buf + used, size - used, shown, &e, next);
			if (len > size - used) {
				if (child)
					wfs_inode_forget(child, 1);
				break;
			}
		} else {
			struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)de->d_type << 12};
			len = fuse_add_direntry(req, buf + used, size - used, shown, &st, next);
			if (len > size - used)
				break;
		}
		used += len;
		d->entry = NULL;
		d->offset = next;
	}
	if (own)
		close_dir(own);
	if (err && used == 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_dir *d = dir_of(fi);
	if (d)
		close_dir(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct wfs_dir *d = dir_of(fi);
	/* without a handle (fs.no_opendir): through a descriptor of its own */
	int fd = d ? dirfd(d->dp) : wfs_inode_open(wfs_inode_of(req, ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	int r = datasync ? fdatasync(fd) : fsync(fd);
	int err = r < 0 ? errno : 0;
	if (!d)
		close(fd);
	fuse_reply_err(req, err);
}

void wfs_fill_dir_ops(struct fuse_lowlevel_ops *ops)
{
	ops->opendir = op_opendir;
	ops->readdir = op_readdir;
	ops->readdirplus = op_readdirplus;
	ops->releasedir = op_releasedir;
	ops->fsyncdir = op_fsyncdir;
}
