/*
 * ops_data.c - file data served by the daemon: reads and writes of files
 * that are forwarded (no passthrough) or encrypted, plus fallocate and
 * lseek for every mode (the kernel still sends those with passthrough).
 *
 * Encrypted files: readers share n->io_lock, writers and truncates take it
 * exclusively (read-modify-write of partial blocks) through
 * wfs_io_change_begin/end. Reads of a file read in order come from its
 * read-ahead stream (stream.c) when it holds them. Buffers are per thread
 * and sized for max_write, so the hot path does not allocate.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "creds.h"
#include "file_fd.h"
#include "file_open.h"
#include "io_buf.h"
#include "ops.h"
#include "stream.h"
#include "keys_lock.h"
#include "writebehind.h"

static struct wfs_file *file_of(struct fuse_file_info *fi)
{
	return (struct wfs_file *)(uintptr_t)fi->fh;
}

/*
 * Starts a write of an encrypted file that may grow it (crypto's grow
 * guard: a failed write leaves the file as it was), and gives a
 * header-less empty file (opened read-only first, so its open did not
 * write one) its header. Called with io_lock held exclusively.
 */
static int grow_begin(struct wfs_file *f, struct wfs_inode *n, struct wfs_grow_guard *g,
		      off_t new_plain_end)
{
	struct stat st;
	g->grows = false;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		int w = wfs_file_begin_encrypted(n, f->fd);
		if (w < 0)
			return w;
		st.st_size = wfs_cipher_size(0);
	}
	wfs_grow_guard_begin(f->fd, st.st_size, new_plain_end, g);
	return 0;
}

/* Decrypts [off, off + size) of f into this worker's buffer (*out): the
 * bytes read, or -errno (-EIO recorded as an integrity failure). */
static ssize_t read_encrypted(struct wfs_fs *fs, struct wfs_file *f, size_t size, off_t off,
			      char **out)
{
	char *buf = *out = wfs_io_buf(fs);
	if (!buf)
		return -ENOMEM;
	if (size > WFS_MAX_IO)
		size = WFS_MAX_IO;
	ssize_t r = wfs_stream_pread(f, buf, size, off, NULL);
	if (r == -EIO) {
		char what[96];
		snprintf(what, sizeof(what), "block at plaintext offset %lld failed authentication",
			 (long long)off);
		wfs_fs_integrity_failure(f->inode, what);
	}
	return r;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_fs *fs = wfs_fs_of(req);
	struct wfs_file *f = file_of(fi);
	struct fuse_bufvec data = FUSE_BUFVEC_INIT(size);
	ssize_t r = 0;
	bool encrypted = f->serve == WFS_SERVE_ENCRYPTED;
	atomic_fetch_add_explicit(&fs->reads_served, 1, memory_order_relaxed);
	if (!encrypted) {
		/* spliced from the backing file */
		data.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		data.buf[0].fd = f->fd;
		data.buf[0].pos = off;
	} else {
		/* Held to the reply: the plaintext in this worker's buffer is
		 * not wiped by a lock before it is sent. Locked: EIO, as the
		 * file's pages are gone from the kernel too. */
		wfs_keys_hold(fs);
		char *plain = NULL;
		r = fs->keys ? read_encrypted(fs, f, size, off, &plain) : -EIO;
		data.buf[0].mem = plain;
		data.buf[0].size = r > 0 ? (size_t)r : 0;
	}
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_data(req, &data, FUSE_BUF_SPLICE_MOVE);
	if (encrypted)
		wfs_keys_release(fs);
}

/* A write by an ordinary user clears setuid/setgid, as on any filesystem. */
static void kill_suid(fuse_req_t req, int fd)
{
	if (fuse_req_ctx(req)->uid == 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
		mode_t m = st.st_mode & 07777 & ~S_ISUID;
		if (st.st_mode & S_IXGRP)
			m &= ~S_ISGID;
		if (fchmod(fd, m) < 0) {
			/* best effort, as the kernel's own file_remove_privs */
		}
	}
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	(void)ino;
	struct wfs_file *f = file_of(fi);
	ssize_t r;
	atomic_fetch_add_explicit(&fs->writes_served, 1, memory_order_relaxed);
	uid_t as = wfs_creds_write_begin(req, f->fd);
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		r = pwrite(f->fd, buf, size, off);
		if (r < 0)
			r = -errno;
		else
			wfs_write_behind(f->inode, f->fd, off, off + r);
	} else {
		struct wfs_inode *n = f->inode;
		struct wfs_grow_guard g;
		wfs_keys_hold(fs); /* before io_lock (fs.h); locked: EIO */
		wfs_io_change_begin(n);
		r = fs->keys ? grow_begin(f, n, &g, off + (off_t)size) : -EIO;
		if (r == 0) {
			r = wfs_content_pwrite(fs->keys, f->fd, &n->hdr, buf, size, off);
			wfs_grow_guard_end(f->fd, &g, r < 0);
		}
		wfs_io_change_end(n);
		wfs_keys_release(fs);
		if (r > 0) {
			off_t cstart, cend; /* the stored bytes the write rewrote */
			wfs_write_cipher_span(off, (size_t)r, &cstart, &cend);
			wfs_write_behind(n, f->fd, cstart, cend);
		}
	}
	wfs_creds_write_end(as);
	if (r >= 0 && !fi->writepage)
		kill_suid(req, f->fd);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

/* fallocate of an encrypted file: punching and zeroing make holes
 * (crypto/holes.c); an allocation reserves the blocks' cipher range and
 * grows the file. */
static int fallocate_encrypted(struct wfs_fs *fs, struct wfs_file *f, int mode, off_t off,
			       off_t len)
{
	struct wfs_inode *n = f->inode;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	struct wfs_grow_guard g;
	int r;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep || (mode & FALLOC_FL_ZERO_RANGE))))
		return (mode & FALLOC_FL_PUNCH_HOLE) ? -EINVAL : -EOPNOTSUPP;
	wfs_io_change_begin(n);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		r = wfs_content_zero(fs->keys, f->fd, &n->hdr, off, len);
	else
		r = wfs_content_reserve(f->fd, &n->hdr, off, len, mode);
	if (r == 0 && !keep && !(mode & FALLOC_FL_PUNCH_HOLE)) {
		r = grow_begin(f, n, &g, off + len);
		if (r == 0 && g.grows) {
			r = wfs_content_truncate(fs->keys, f->fd, &n->hdr, off + len);
			wfs_grow_guard_end(f->fd, &g, r < 0);
		}
	}
	wfs_io_change_end(n);
	return r;
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_file *f = file_of(fi);
	int fd = wfs_file_get_fd(f);
	uid_t as = wfs_creds_write_begin(req, fd);
	int r;
	if (fd < 0)
		r = fd;
	else if (f->serve == WFS_SERVE_ENCRYPTED) {
		struct wfs_fs *fs = wfs_fs_of(req);
		wfs_keys_hold(fs);
		r = fs->keys ? fallocate_encrypted(fs, f, mode, off, len) : -EIO;
		wfs_keys_release(fs);
	} else
		r = fallocate(fd, mode, off, len) < 0 ? -errno : 0;
	wfs_creds_write_end(as);
	wfs_file_put_fd(f, fd);
	fuse_reply_err(req, -r);
}

static off_t do_lseek(struct wfs_file *f, off_t off, int whence)
{
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		int fd = wfs_file_get_fd(f);
		off_t r = fd < 0 ? fd : lseek(fd, off, whence);
		if (fd >= 0 && r < 0)
			r = -errno;
		wfs_file_put_fd(f, fd);
		return r;
	}
	/* Encrypted: from the backing file's holes (crypto/holes.c). */
	struct wfs_inode *n = f->inode;
	pthread_rwlock_rdlock(&n->io_lock);
	off_t r = wfs_io_settle(n, 0, INT64_MAX); /* blocks a redo entry holds are data */
	if (r == 0)
		r = whence == SEEK_DATA || whence == SEEK_HOLE
			    ? wfs_content_seek(f->fd, &n->hdr, off, whence)
			    : -EINVAL;
	pthread_rwlock_unlock(&n->io_lock);
	return r;
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)ino;
	off_t r = do_lseek(file_of(fi), off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

void wfs_fill_data_ops(struct fuse_lowlevel_ops *ops)
{
	ops->read = op_read;
	ops->write = op_write;
	ops->fallocate = op_fallocate;
	ops->lseek = op_lseek;
}
