/*
 * reqcount.c - counts the requests that reach the daemon's handlers, by
 * kind and by transport (/dev/fuse or io_uring), for `wardfs status`: the
 * macro benchmarks explain their ratios with them (how many requests of
 * which kind a workload costs per file), and the io_uring test sees from
 * them that requests really came through the ring.
 *
 * Each handler of the table is wrapped by one that counts and calls it;
 * the counters are relaxed atomics, a few nanoseconds per request.
 */
#include <stdio.h>
#include <string.h>

#include "reqcount.h"
#include "wardfs_status.h"

/* The handlers the wrappers call: set once before the session starts,
 * only read afterwards. One table per process (one session per daemon). */
static struct fuse_lowlevel_ops real;

static const char *const req_names[WFS_REQ_N] = {
	[WFS_REQ_LOOKUP] = "lookup",
	[WFS_REQ_FORGET] = "forget",
	[WFS_REQ_FORGET_MULTI] = "batch_forget",
	[WFS_REQ_GETATTR] = "getattr",
	[WFS_REQ_SETATTR] = "setattr",
	[WFS_REQ_READLINK] = "readlink",
	[WFS_REQ_MKNOD] = "mknod",
	[WFS_REQ_MKDIR] = "mkdir",
	[WFS_REQ_UNLINK] = "unlink",
	[WFS_REQ_RMDIR] = "rmdir",
	[WFS_REQ_SYMLINK] = "symlink",
	[WFS_REQ_RENAME] = "rename",
	[WFS_REQ_LINK] = "link",
	[WFS_REQ_OPEN] = "open",
	[WFS_REQ_READ] = "read",
	[WFS_REQ_WRITE] = "write",
	[WFS_REQ_FLUSH] = "flush",
	[WFS_REQ_RELEASE] = "release",
	[WFS_REQ_FSYNC] = "fsync",
	[WFS_REQ_OPENDIR] = "opendir",
	[WFS_REQ_READDIR] = "readdir",
	[WFS_REQ_READDIRPLUS] = "readdirplus",
	[WFS_REQ_RELEASEDIR] = "releasedir",
	[WFS_REQ_FSYNCDIR] = "fsyncdir",
	[WFS_REQ_STATFS] = "statfs",
	[WFS_REQ_SETXATTR] = "setxattr",
	[WFS_REQ_GETXATTR] = "getxattr",
	[WFS_REQ_LISTXATTR] = "listxattr",
	[WFS_REQ_REMOVEXATTR] = "removexattr",
	[WFS_REQ_CREATE] = "create",
	[WFS_REQ_FALLOCATE] = "fallocate",
	[WFS_REQ_LSEEK] = "lseek",
	[WFS_REQ_TMPFILE] = "tmpfile",
};

static void tally(fuse_req_t req, enum wfs_req kind)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	atomic_fetch_add_explicit(&fs->req_count[kind], 1, memory_order_relaxed);
	if (fuse_req_is_uring(req)) {
		atomic_fetch_add_explicit(&fs->req_uring, 1, memory_order_relaxed);
		atomic_store_explicit(&fs->uring_seen, true, memory_order_relaxed);
	}
}

/* Reading the status is not counted: two reads of an idle mount say the
 * same, and a benchmark that reads it between workloads adds nothing to
 * their counts. Its transport still counts as seen (uring.c). */
static void wrap_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (ino == FUSE_ROOT_ID && !strcmp(name, WFS_STATUS_XATTR)) {
		if (fuse_req_is_uring(req))
			atomic_store_explicit(&wfs_fs_of(req)->uring_seen, true,
					      memory_order_relaxed);
	} else {
		tally(req, WFS_REQ_GETXATTR);
	}
	real.getxattr(req, ino, name, size);
}

/* One wrapper per handler: count, then call the real one. */
#define WRAP(op, KIND, params, args)                                                               \
	static void wrap_##op params                                                               \
	{                                                                                          \
		tally(req, KIND);                                                                  \
		real.op args;                                                                      \
	}
/* clang-format off: it takes the invocations, which end without a
 * semicolon, for one statement */
WRAP(lookup, WFS_REQ_LOOKUP, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(forget, WFS_REQ_FORGET, (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup),
     (req, ino, nlookup))
WRAP(forget_multi, WFS_REQ_FORGET_MULTI,
     (fuse_req_t req, size_t count, struct fuse_forget_data *forgets), (req, count, forgets))
WRAP(getattr, WFS_REQ_GETATTR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(setattr, WFS_REQ_SETATTR,
     (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi),
     (req, ino, attr, to_set, fi))
WRAP(readlink, WFS_REQ_READLINK, (fuse_req_t req, fuse_ino_t ino), (req, ino))
WRAP(mknod, WFS_REQ_MKNOD,
     (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev),
     (req, parent, name, mode, rdev))
WRAP(mkdir, WFS_REQ_MKDIR, (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
     (req, parent, name, mode))
WRAP(unlink, WFS_REQ_UNLINK, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(rmdir, WFS_REQ_RMDIR, (fuse_req_t req, fuse_ino_t parent, const char *name),
     (req, parent, name))
WRAP(symlink, WFS_REQ_SYMLINK,
     (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
     (req, link, parent, name))
WRAP(rename, WFS_REQ_RENAME,
     (fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
      const char *newname, unsigned int flags),
     (req, parent, name, newparent, newname, flags))
WRAP(link, WFS_REQ_LINK,
     (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname),
     (req, ino, newparent, newname))
WRAP(open, WFS_REQ_OPEN, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(read, WFS_REQ_READ,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))
WRAP(write, WFS_REQ_WRITE,
     (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
      struct fuse_file_info *fi),
     (req, ino, buf, size, off, fi))
WRAP(flush, WFS_REQ_FLUSH, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(release, WFS_REQ_RELEASE, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(fsync, WFS_REQ_FSYNC,
     (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
     (req, ino, datasync, fi))
WRAP(opendir, WFS_REQ_OPENDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(readdir, WFS_REQ_READDIR,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))
WRAP(readdirplus, WFS_REQ_READDIRPLUS,
     (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi),
     (req, ino, size, off, fi))
WRAP(releasedir, WFS_REQ_RELEASEDIR, (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
     (req, ino, fi))
WRAP(fsyncdir, WFS_REQ_FSYNCDIR,
     (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
     (req, ino, datasync, fi))
WRAP(statfs, WFS_REQ_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
WRAP(setxattr, WFS_REQ_SETXATTR,
     (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags),
     (req, ino, name, value, size, flags))
WRAP(listxattr, WFS_REQ_LISTXATTR, (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
WRAP(removexattr, WFS_REQ_REMOVEXATTR, (fuse_req_t req, fuse_ino_t ino, const char *name),
     (req, ino, name))
WRAP(create, WFS_REQ_CREATE,
     (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi),
     (req, parent, name, mode, fi))
WRAP(fallocate, WFS_REQ_FALLOCATE,
     (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
      struct fuse_file_info *fi),
     (req, ino, mode, offset, length, fi))
WRAP(lseek, WFS_REQ_LSEEK,
     (fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi),
     (req, ino, off, whence, fi))
WRAP(tmpfile, WFS_REQ_TMPFILE,
     (fuse_req_t req, fuse_ino_t parent, mode_t mode, struct fuse_file_info *fi),
     (req, parent, mode, fi))
/* clang-format on */

void wfs_reqcount_wrap(struct fuse_lowlevel_ops *ops)
{
	real = *ops;
	if (ops->lookup)
		ops->lookup = wrap_lookup;
	if (ops->forget)
		ops->forget = wrap_forget;
	if (ops->forget_multi)
		ops->forget_multi = wrap_forget_multi;
	if (ops->getattr)
		ops->getattr = wrap_getattr;
	if (ops->setattr)
		ops->setattr = wrap_setattr;
	if (ops->readlink)
		ops->readlink = wrap_readlink;
	if (ops->mknod)
		ops->mknod = wrap_mknod;
	if (ops->mkdir)
		ops->mkdir = wrap_mkdir;
	if (ops->unlink)
		ops->unlink = wrap_unlink;
	if (ops->rmdir)
		ops->rmdir = wrap_rmdir;
	if (ops->symlink)
		ops->symlink = wrap_symlink;
	if (ops->rename)
		ops->rename = wrap_rename;
	if (ops->link)
		ops->link = wrap_link;
	if (ops->open)
		ops->open = wrap_open;
	if (ops->read)
		ops->read = wrap_read;
	if (ops->write)
		ops->write = wrap_write;
	if (ops->flush)
		ops->flush = wrap_flush;
	if (ops->release)
		ops->release = wrap_release;
	if (ops->fsync)
		ops->fsync = wrap_fsync;
	if (ops->opendir)
		ops->opendir = wrap_opendir;
	if (ops->readdir)
		ops->readdir = wrap_readdir;
	if (ops->readdirplus)
		ops->readdirplus = wrap_readdirplus;
	if (ops->releasedir)
		ops->releasedir = wrap_releasedir;
	if (ops->fsyncdir)
		ops->fsyncdir = wrap_fsyncdir;
	if (ops->statfs)
		ops->statfs = wrap_statfs;
	if (ops->setxattr)
		ops->setxattr = wrap_setxattr;
	if (ops->getxattr)
		ops->getxattr = wrap_getxattr;
	if (ops->listxattr)
		ops->listxattr = wrap_listxattr;
	if (ops->removexattr)
		ops->removexattr = wrap_removexattr;
	if (ops->create)
		ops->create = wrap_create;
	if (ops->fallocate)
		ops->fallocate = wrap_fallocate;
	if (ops->lseek)
		ops->lseek = wrap_lseek;
	if (ops->tmpfile)
		ops->tmpfile = wrap_tmpfile;
}

void wfs_reqcount_status(struct wfs_fs *fs, char *buf, size_t len)
{
	size_t used = strlen(buf);
	uint64_t total = 0;

	if (used + 1 >= len)
		return;
	used += (size_t)snprintf(buf + used, len - used, "requests:");
	for (int k = 0; k < WFS_REQ_N && used + 1 < len; k++) {
		uint64_t c = atomic_load_explicit(&fs->req_count[k], memory_order_relaxed);
		total += c;
		if (c)
			used += (size_t)snprintf(buf + used, len - used, " %s=%llu", req_names[k],
						 (unsigned long long)c);
	}
	if (used + 1 < len)
		snprintf(buf + used, len - used,
			 "\nrequests-total: %llu\nrequests-by-io-uring: %llu\n",
			 (unsigned long long)total,
			 (unsigned long long)atomic_load_explicit(&fs->req_uring,
								  memory_order_relaxed));
}
