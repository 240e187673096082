/*
 * ops_file.c - FUSE operations on open regular files: open, create,
 * release, flush, fsync. The work is file_open.c's; each handler replies
 * exactly once.
 */
#include <errno.h>
#include <unistd.h>

#include "file_fd.h"
#include "file_open.h"
#include "inode.h"
#include "ops.h"

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = wfs_open_file(req, wfs_inode_of(req, ino), fi);
	if (r)
		fuse_reply_err(req, -r);
	else if (fuse_reply_open(req, fi) == -ENOENT)
		wfs_file_close(req, (struct wfs_file *)(uintptr_t)fi->fh); /* interrupted */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int r = wfs_create_file(req, wfs_inode_of(req, parent), name, mode, fi, &e);
	if (r) {
		fuse_reply_err(req, -r);
	} else if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		struct wfs_file *f = (struct wfs_file *)(uintptr_t)fi->fh;
		struct wfs_inode *n = f->inode;
		wfs_file_close(req, f); /* interrupted */
		wfs_inode_forget(n, 1);
	}
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	wfs_file_close(req, (struct wfs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	/* Any fd of the file flushes its data: a passthrough open's is by
	 * handle (file_fd.c). */
	struct wfs_file *f = (struct wfs_file *)(uintptr_t)fi->fh;
	int fd = wfs_file_get_fd(f);
	int r = fd < 0 ? fd : f->serve == WFS_SERVE_ENCRYPTED ? wfs_io_flush(f->inode) : 0;
	if (r == 0)
		r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	struct stat st;
	if (r == 0 && f->serve == WFS_SERVE_ENCRYPTED && fstat(fd, &st) == 0)
		/* what the undo journal kept of the file may go now */
		wfs_undo_file_synced(atomic_load(&f->inode->undo), st.st_size);
	wfs_file_put_fd(f, fd);
	fuse_reply_err(req, -r);
}

void wfs_fill_file_ops(struct fuse_lowlevel_ops *ops)
{
	ops->open = op_open;
	ops->create = op_create;
	ops->release = op_release;
	ops->flush = op_flush;
	ops->fsync = op_fsync;
}
