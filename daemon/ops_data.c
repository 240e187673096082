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

#include "fs.h"

#define WFS_MAX_IO (1u << 20)

static struct wfs_file *file_of(struct fuse_file_info *fi)
{
	return (struct wfs_file *)(uintptr_t)fi->fh;
}

/*
 * Each worker thread keeps one WFS_MAX_IO buffer. It holds plaintext of
 * sensitive files, so a thread that exits (libfuse ends workers it no
 * longer needs) wipes and frees it in the key's destructor; a plain
 * __thread pointer would leak a megabyte per exited thread.
 */
static pthread_key_t io_buf_key;
static pthread_once_t io_buf_once = PTHREAD_ONCE_INIT;
static bool io_buf_key_made;

static void io_buf_free(void *buf)
{
	wfs_freezero(buf, WFS_MAX_IO);
}

static void io_buf_key_init(void)
{
	io_buf_key_made = pthread_key_create(&io_buf_key, io_buf_free) == 0;
}

static char *thread_buf(void)
{
	pthread_once(&io_buf_once, io_buf_key_init);
	if (!io_buf_key_made)
		return NULL; /* the callers answer ENOMEM */
	char *buf = pthread_getspecific(io_buf_key);
	if (buf)
		return buf;
	if ((buf = malloc(WFS_MAX_IO)) != NULL && pthread_setspecific(io_buf_key, buf) != 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/*
 * Growing an encrypted file rewrites its last partial block in place and
 * appends new blocks. If that fails half way (ENOSPC, EIO), the old last
 * block may be half overwritten: bytes a caller already had acknowledged
 * would then read as EIO. grow_begin saves the old tail block's raw bytes
 * and size; grow_end(failed) puts them back and cuts the file to its old
 * size, so a failed write that grows the file leaves it as it was.
 * grow_begin also gives a header-less empty file (opened read-only first,
 * so its open did not write one) its header. Called with io_lock held
 * exclusively.
 */
struct grow_guard {
	bool grows;
	off_t old_size;	  /* cipher size before the write */
	off_t tail_off;	  /* cipher offset of the saved tail block */
	ssize_t tail_len; /* bytes saved, 0 when the old end is block-aligned */
	unsigned char tail[WFS_CBLOCK_SIZE];
};

static int grow_begin(struct wfs_file *f, struct wfs_inode *n, struct grow_guard *g,
		      off_t new_plain_end)
{
	struct stat st;
	g->grows = false;
	g->tail_len = 0;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		int w = wfs_file_begin_encrypted(n, f->fd);
		if (w < 0)
			return w;
		st.st_size = wfs_cipher_size(0);
	}
	g->old_size = st.st_size;
	off_t P = wfs_plain_size(st.st_size);
	if (new_plain_end <= P)
		return 0;
	g->grows = true;
	g->tail_off = (off_t)WFS_HDR_SIZE + (P / WFS_BLOCK_SIZE) * (off_t)WFS_CBLOCK_SIZE;
	if (g->tail_off < st.st_size) {
		size_t want = (size_t)(st.st_size - g->tail_off);
		if (want > sizeof(g->tail))
			want = sizeof(g->tail);
		ssize_t got = pread(f->fd, g->tail, want, g->tail_off);
		g->tail_len = got > 0 ? got : 0;
	}
	return 0;
}

static void grow_end(struct wfs_file *f, struct grow_guard *g, bool failed)
{
	if (!g->grows || !failed)
		return;
	if (g->tail_len > 0 && pwrite(f->fd, g->tail, (size_t)g->tail_len, g->tail_off) < 0) {
		/* the old tail block stays damaged; reads report EIO */
	}
	if (ftruncate(f->fd, g->old_size) < 0) {
		/* the cut tail reads as EIO, never as garbage */
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_file *f = file_of(fi);
	atomic_fetch_add_explicit(&wfs.reads_served, 1, memory_order_relaxed);
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = f->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	char *buf = thread_buf();
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (size > WFS_MAX_IO)
		size = WFS_MAX_IO;
	struct wfs_inode *n = f->inode;
	struct wfs_stream *s = atomic_load(&f->stream);
	ssize_t r = -EAGAIN;
	pthread_rwlock_rdlock(&n->io_lock);
	if (s)
		r = wfs_stream_read(s, buf, size, off);
	bool streamed = r != -EAGAIN;
	if (!streamed)
		r = wfs_content_pread(wfs.keys, f->fd, &n->hdr, buf, size, off);
	pthread_rwlock_unlock(&n->io_lock);
	if (r > 0)
		wfs_stream_note(f, off, (size_t)r, !streamed);
	if (r == -EIO) {
		char what[96];
		snprintf(what, sizeof(what), "block at plaintext offset %lld failed authentication",
			 (long long)off);
		wfs_fs_integrity_failure(n, what);
	}
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_buf(req, buf, (size_t)r);
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
	(void)ino;
	struct wfs_file *f = file_of(fi);
	ssize_t r;
	atomic_fetch_add_explicit(&wfs.writes_served, 1, memory_order_relaxed);
	uid_t as = wfs_creds_write_begin(req, f->fd);
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		r = pwrite(f->fd, buf, size, off);
		if (r < 0)
			r = -errno;
		else
			wfs_write_behind(f->inode, f->fd, off, off + r);
	} else {
		struct wfs_inode *n = f->inode;
		struct grow_guard g;
		wfs_io_change_begin(n);
		r = grow_begin(f, n, &g, off + (off_t)size);
		if (r == 0) {
			r = wfs_content_pwrite(wfs.keys, f->fd, &n->hdr, buf, size, off);
			grow_end(f, &g, r < 0);
		}
		wfs_io_change_end(n);
		/* the blocks rewritten: from the one holding off to the new end */
		if (r > 0)
			wfs_write_behind(n, f->fd, wfs_cipher_size(off - off % WFS_BLOCK_SIZE),
					 wfs_cipher_size(off + r));
	}
	wfs_creds_write_end(as);
	if (r >= 0 && !fi->writepage)
		kill_suid(req, f->fd);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_file *f = file_of(fi);
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		int fd = wfs_file_get_fd(f);
		uid_t as = wfs_creds_write_begin(req, fd);
		int r = fd < 0 ? fd : fallocate(fd, mode, off, len) < 0 ? -errno : 0;
		wfs_creds_write_end(as);
		wfs_file_put_fd(f, fd);
		fuse_reply_err(req, -r);
		return;
	}
	/* Encrypted: punching and zeroing make holes (crypto/holes.c); an
	 * allocation reserves the blocks' cipher range and grows the file. */
	struct wfs_inode *n = f->inode;
	int r = 0;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	struct grow_guard g;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep || (mode & FALLOC_FL_ZERO_RANGE)))) {
		fuse_reply_err(req, (mode & FALLOC_FL_PUNCH_HOLE) ? EINVAL : EOPNOTSUPP);
		return;
	}
	uid_t as = wfs_creds_write_begin(req, f->fd);
	wfs_io_change_begin(n);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		r = wfs_content_zero(wfs.keys, f->fd, &n->hdr, off, len);
	else
		r = wfs_content_reserve(f->fd, &n->hdr, off, len, mode);
	if (r == 0 && !keep && !(mode & FALLOC_FL_PUNCH_HOLE)) {
		r = grow_begin(f, n, &g, off + len);
		if (r == 0 && g.grows) {
			r = wfs_content_truncate(wfs.keys, f->fd, &n->hdr, off + len);
			grow_end(f, &g, r < 0);
		}
	}
	wfs_io_change_end(n);
	wfs_creds_write_end(as);
	fuse_reply_err(req, -r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)ino;
	struct wfs_file *f = file_of(fi);
	if (f->serve != WFS_SERVE_ENCRYPTED) {
		int fd = wfs_file_get_fd(f);
		off_t r = fd < 0 ? fd : lseek(fd, off, whence);
		if (fd >= 0 && r < 0)
			r = -errno;
		wfs_file_put_fd(f, fd);
		if (r < 0)
			fuse_reply_err(req, (int)-r);
		else
			fuse_reply_lseek(req, r);
		return;
	}
	/* Encrypted: from the backing file's holes (crypto/holes.c). */
	struct wfs_inode *n = f->inode;
	pthread_rwlock_rdlock(&n->io_lock);
	off_t r = whence == SEEK_DATA || whence == SEEK_HOLE
			  ? wfs_content_seek(f->fd, &n->hdr, off, whence)
			  : -EINVAL;
	pthread_rwlock_unlock(&n->io_lock);
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
