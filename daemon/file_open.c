/*
 * file_open.c - opening and creating regular files: the policy decision,
 * the audit row, and the choice of how the file's data is served.
 *
 * The serving mode is fixed per inode while it is open (the kernel refuses
 * to mix passthrough and cached opens of one inode): files that are
 * plaintext on disk use passthrough (or forwarding), files that are
 * encrypted on disk are served by the daemon. The form is the daemon's
 * own mark (crypto/mark.c), neither assumed from the policy nor read from
 * bytes a user may have written.
 *
 * Each open and create computes its result through functions returning
 * -errno and ends in open_finish, which writes its audit row; the handler
 * (ops_file.c) replies once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "attr.h"
#include "creds.h"
#include "file_fd.h"
#include "file_open.h"
#include "keys_lock.h"
#include "fs_policy.h"
#include "inode.h"
#include "names.h"
#include "stream.h"
#include "vault.h"

/* Flags the daemon's own backing fd is opened with: read-write unless
 * read-only (encrypted blocks need read-modify-write), never O_APPEND
 * (the kernel computes the append offset; pwrite must honour it), and
 * never O_DIRECT: the header sniff and encrypted blocks are not sector
 * aligned, and one backing file serves every open of an inode. The kernel
 * still gives an O_DIRECT caller uncached I/O on the FUSE side. */
static int backing_flags(int flags)
{
	int acc = (flags & O_ACCMODE) == O_RDONLY ? O_RDONLY : O_RDWR;
	flags &= ~(O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NOCTTY | O_DIRECT);
	return flags | acc | O_CLOEXEC;
}

static const char *form_label(int form)
{
	return form < 0 ? NULL : wfs_form_name((enum wfs_form)form);
}

/*
 * With handle_killpriv_v2 (asked for so writes skip a GETXATTR each) the
 * kernel leaves clearing setuid/setgid on write to the daemon, and a
 * passthrough write never reaches the daemon (and runs with the daemon's
 * CAP_FSETID on the backing file). So files whose write must clear those
 * bits are forwarded; security.capability is cleared by the backing
 * filesystem itself on any write.
 */
static bool kills_privs(const struct stat *st)
{
	return (st->st_mode & S_ISUID) ||
	       (st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
}

/* Registers the inode's backing file once; shared by all its opens. */
static int passthrough_id(fuse_req_t req, struct wfs_inode *n, int fd)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	if (n->backing_id > 0)
		return n->backing_id;
	int id = wfs_creds_passthrough_open(req, fd);
	if (id <= 0) {
		if (!atomic_exchange(&fs->passthrough_warned, true))
			fprintf(stderr,
				"wardfs: passthrough registration failed (%s); "
				"serving public files through the daemon\n",
				strerror(errno ? errno : EPERM));
		fs->passthrough = false;
		return 0;
	}
	n->backing_id = id;
	return id;
}

void wfs_inode_undo(struct wfs_inode *n, struct wfs_file_hdr *h, off_t cipher_size)
{
	struct wfs_fs *fs = n->fs;
	struct wfs_undo_file *u = atomic_load(&n->undo), *none = NULL;
	if (!u && fs->undo) {
		u = wfs_undo_file_new(fs->undo, (int)n->handle_type, n->handle, n->handle_bytes,
				      cipher_size);
		if (u && !atomic_compare_exchange_strong(&n->undo, &none, u)) {
			wfs_undo_file_free(u); /* another thread made it first */
			u = none;
		}
	}
	h->undo = u;
}

int wfs_file_begin_encrypted(struct wfs_inode *n, int fd)
{
	struct wfs_fs *fs = n->fs;
	int r = wfs_hdr_write(fs->keys, fd, &n->hdr);
	if (r < 0)
		return r;
	wfs_inode_undo(n, &n->hdr, 0); /* nothing of a new file is durable yet */
	atomic_store(&n->form, WFS_FORM_ENCRYPTED);
	return 0;
}

/*
 * Decides the serving mode for an open of n on backing fd and fills fi.
 * Called with n->open_lock held. Returns 0 or -errno.
 */
static int serve_open(fuse_req_t req, struct wfs_inode *n, struct wfs_file *f,
		      struct fuse_file_info *fi, const struct wfs_decision *dec, int *formp)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	int form;
	/* Locked (`wardfs lock`; the caller holds the keys): no key, no
	 * sensitive file, open or new; public ones are served as ever. */
	bool locked = atomic_load(&fs->locked);
	if (locked &&
	    (dec->cls == WFS_SENSITIVE || (n->opens > 0 && n->serve == WFS_SERVE_ENCRYPTED)))
		return -ENOKEY;
	if (n->opens > 0) {
		f->serve = n->serve;
		form = atomic_load(&n->form);
	} else {
		struct stat st;
		if (fstat(f->fd, &st) < 0)
			return -errno;
		enum wfs_form disk;
		int marked = wfs_form_of(f->fd, st.st_size, &disk);
		form = (int)disk;
		if (marked < 0) {
			if (marked == -EIO)
				wfs_fs_integrity_failure(n,
							 "the file's wardfs mark is not one this "
							 "build knows");
			return marked;
		}
		if (form == WFS_FORM_EMPTY && dec->cls == WFS_SENSITIVE && fs->keys &&
		    (fi->flags & O_ACCMODE) != O_RDONLY) {
			/* First write of an empty sensitive file: give it a header. */
			int w = wfs_file_begin_encrypted(n, f->fd);
			if (w < 0)
				return w;
			form = WFS_FORM_ENCRYPTED;
		} else if (form == WFS_FORM_ENCRYPTED) {
			if (!fs->keys)
				return locked ? -ENOKEY : -EACCES;
			int h = wfs_hdr_read(fs->keys, f->fd, &n->hdr);
			wfs_inode_undo(n, &n->hdr, st.st_size);
			if (h != WFS_FORM_ENCRYPTED) {
				/* Marked, so ours: a header that fails or is gone
				 * (replaced by plaintext) is damage, not plain bytes. */
				if (h >= 0 || h == -EIO) {
					wfs_fs_integrity_failure(
						n, h >= 0 ? "the file header is missing"
							  : "file header failed "
							    "authentication");
					h = -EIO;
				}
				return h;
			}
			if (!wfs_cipher_size_ok(&n->hdr, st.st_size))
				/* served all the same: the blocks before it still read */
				wfs_fs_integrity_failure(n,
							 "the file does not end in its end block: "
							 "cut, or a write cut short by a crash "
							 "(see 'wardfs fsck --repair')");
		}
		if (form == WFS_FORM_ENCRYPTED ||
		    (form == WFS_FORM_EMPTY && dec->cls == WFS_SENSITIVE && fs->keys))
			n->serve = WFS_SERVE_ENCRYPTED;
		else if (kills_privs(&st))
			n->serve = WFS_SERVE_FORWARD;
		else
			n->serve = fs->passthrough ? WFS_SERVE_PASSTHROUGH : WFS_SERVE_FORWARD;
		if (marked && n->serve != WFS_SERVE_ENCRYPTED) {
			/* Empty, and about to be written in the clear. */
			int c = wfs_mark_clear(f->fd);
			if (c < 0)
				return c;
		}
		atomic_store(&n->form, form);
		f->serve = n->serve;
	}
	if (f->serve == WFS_SERVE_PASSTHROUGH) {
		int id = passthrough_id(req, n, f->fd);
		if (id > 0) {
			fi->backing_id = id;
		} else if (n->opens == 0) {
			n->serve = f->serve = WFS_SERVE_FORWARD;
		} else {
			return -EIO;
		}
	}
	fi->keep_cache = f->serve == WFS_SERVE_ENCRYPTED;
	fi->noflush = 1;
	*formp = form;
	return 0;
}

/* Makes the open file of n on backing fd (taken over on success) and
 * puts it in fi->fh; its form's name in *form for the audit row. */
static int file_open(fuse_req_t req, struct wfs_inode *n, int fd, struct fuse_file_info *fi,
		     const struct wfs_decision *dec, const char **form)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	struct wfs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fd = fd;
	f->inode = n;
	int formv = -1;
	pthread_mutex_lock(&n->open_lock);
	int r = 0;
	if (fs->o->strict_forms && dec->cls == WFS_SENSITIVE &&
	    atomic_load(&n->form) == WFS_FORM_PLAIN) {
		/* --strict-forms: plaintext where the policy wants ciphertext is
		 * refused until `wardfs migrate` encrypts it. */
		formv = WFS_FORM_PLAIN;
		r = -EACCES;
	} else {
		r = serve_open(req, n, f, fi, dec, &formv);
		/* Nothing of serve_open to undo when this fails: an open that
		 * keeps a daemon fd registered no passthrough file. */
		if (!r)
			r = wfs_file_hold(f, fuse_req_ctx(req)->uid);
	}
	if (!r) {
		n->opens++;
		if (f->serve == WFS_SERVE_ENCRYPTED)
			atomic_fetch_add(&n->enc_opens, 1);
	}
	pthread_mutex_unlock(&n->open_lock);
	if (formv >= 0 && wfs_vault_form_fix(dec->cls, (enum wfs_form)formv) != WFS_FIX_NONE)
		atomic_fetch_add(&fs->form_disagrees, 1); /* vault/form.c's one rule */
	*form = form_label(formv);
	if (r) {
		free(f);
		return r;
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

void wfs_file_close(fuse_req_t req, struct wfs_file *f)
{
	struct wfs_inode *n = f->inode;
	wfs_stream_stop(f);
	pthread_mutex_lock(&n->open_lock);
	if (f->serve == WFS_SERVE_ENCRYPTED)
		atomic_fetch_sub(&n->enc_opens, 1);
	/* the blocks are in place once no one has the file open: a rename
	 * that converts it (opens == 0) reads it as it stands. An error
	 * leaves them in the journal, for the next flush or the mount. */
	if (n->opens == 1 && f->serve == WFS_SERVE_ENCRYPTED)
		wfs_io_flush(n);
	if (--n->opens == 0 && n->backing_id > 0) {
		fuse_passthrough_close(req, n->backing_id);
		n->backing_id = 0;
	}
	pthread_mutex_unlock(&n->open_lock);
	wfs_file_unhold(f);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* Truncates at open time (O_TRUNC) in the file's own form. */
static int open_truncate(struct wfs_file *f)
{
	struct wfs_fs *fs = f->inode->fs;
	if (f->serve != WFS_SERVE_ENCRYPTED)
		return ftruncate(f->fd, 0) < 0 ? -errno : 0;
	wfs_io_change_begin(f->inode);
	int r = wfs_content_truncate(fs->keys, f->fd, &f->inode->hdr, 0);
	wfs_io_change_end(f->inode);
	return r;
}

/*
 * The one end of an open or a create: records its outcome unless a row
 * already holds it, and lets the decision go. A success is recorded
 * before the file changes (open_record), so a later failure is a second
 * row: the open failed after all. Returns the error to reply with: the
 * audit's own when the row cannot be kept (it fails closed).
 */
static int open_finish(struct wfs_open_ctx *c, int r)
{
	if (c->path && (!c->recorded || (r && !c->unrecordable))) {
		int a = wfs_access_record(c, r);
		if (a)
			r = a;
	}
	wfs_decision_put(&c->dec);
	return r;
}

/* Records an allowed open before it changes the file (O_TRUNC): an open
 * refused for want of an audit row must leave the file as it was. */
static int open_record(struct wfs_open_ctx *c)
{
	int r = wfs_access_record(c, 0);
	c->recorded = true;
	c->unrecordable = r != 0;
	return r;
}

static int open_inode(fuse_req_t req, struct wfs_inode *n, struct wfs_open_ctx *c,
		      struct fuse_file_info *fi)
{
	int r = wfs_access_check(req, c);
	if (r)
		return r;
	int fd = wfs_inode_open(n, backing_flags(fi->flags));
	if (fd < 0)
		return fd;
	r = file_open(req, n, fd, fi, &c->dec, &c->form);
	if (r) {
		close(fd);
		return r;
	}
	struct wfs_file *f = (struct wfs_file *)(uintptr_t)fi->fh;
	r = open_record(c);
	if (!r && (fi->flags & O_TRUNC))
		r = open_truncate(f);
	if (r) {
		wfs_file_close(req, f);
		return r;
	}
	wfs_file_shed_fd(f);
	return 0;
}

int wfs_open_file(fuse_req_t req, struct wfs_inode *n, struct fuse_file_info *fi)
{
	WFS_AUTOFREE char *path = NULL;
	struct wfs_open_ctx c = {.fs = n->fs, .flags = fi->flags};
	int r = wfs_inode_path(n, &path);
	if (r)
		/* The name we knew was removed while the file kept others
		 * (wfs_inode_name_removed): ESTALE makes the kernel look the
		 * path up again and retry, and the open is judged by the name
		 * it really came through, never by a removed one. */
		return r == -ENOENT ? -ESTALE : r;
	c.path = path;
	wfs_classify(n, path, &c.dec);
	wfs_keys_hold(n->fs); /* the open, and its O_TRUNC, see one state of the keys */
	r = open_inode(req, n, &c, fi);
	wfs_keys_release(n->fs);
	return open_finish(&c, r);
}

/* Removes the file a create made (O_EXCL: this request's own) when the
 * create fails after all (its audit row cannot be recorded, its header
 * cannot be written on a full disk, ...): a failed creat(2) leaves no file.
 * Only if the name still is that file (fd: the create's, still open). */
static void undo_create(struct wfs_inode *parent, const char *name, const struct wfs_bname *b,
			int fd)
{
	struct stat made, st;
	if (fstat(fd, &made) < 0)
		return;
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return;
	if (fstatat(pfd, b->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == made.st_ino &&
	    st.st_dev == made.st_dev) {
		if (unlinkat(pfd, b->name, 0) < 0)
			fprintf(stderr, "wardfs: cannot remove '%s' after a failed create: %s\n",
				name, strerror(errno));
		else
			wfs_bname_removed(pfd, b);
	}
	wfs_inode_put_fd(parent);
}

/* Creates parent/name as the caller (O_EXCL unless the caller's open may
 * find it made): the backing fd in *fdp, and whether this made it. Holds
 * tree_lock for reading from the classification (done by the caller,
 * under it) to the new name. */
static int create_backing(fuse_req_t req, struct wfs_inode *parent, const char *name, mode_t mode,
			  int flags, struct wfs_bname *b, int *fdp, bool *created)
{
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	struct wfs_creds cr;
	int r = wfs_bname_make(parent, pfd, name, b); /* as the daemon: its own files */
	if (!r && !(r = wfs_creds_become(req, &cr))) {
		int bf = backing_flags(flags);
		int fd;
		*created = true;
		do
			fd = openat(pfd, b->name, bf | O_CREAT | O_EXCL, mode & ~S_IFMT);
		while (fd < 0 && wfs_fds_reclaim(parent->fs, errno));
		if (fd < 0 && errno == EEXIST && !(flags & O_EXCL)) {
			*created = false;
			fd = openat(pfd, b->name, bf | O_NOFOLLOW);
		}
		r = fd < 0 ? -errno : 0;
		*fdp = fd;
		wfs_creds_restore(&cr);
		if (r && r != -EEXIST)
			wfs_bname_removed(pfd, b); /* a long name's sidecar, for nothing */
	}
	wfs_inode_put_fd(parent);
	return r;
}

/* The rest of a create once the backing file exists: its inode, its open
 * file, its row and its attributes. Undoes the create on failure. */
static int create_open(fuse_req_t req, struct wfs_inode *parent, const char *name,
		       const struct wfs_bname *b, struct wfs_open_ctx *c, int fd, bool created,
		       struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct stat st;
	struct wfs_inode *n;
	struct wfs_file *f = NULL;
	int r = wfs_inode_lookup_at(parent, name, b->name, &st, &n);
	if (r)
		goto fail_fd;
	if (created)
		atomic_store(&n->form, WFS_FORM_EMPTY);
	r = file_open(req, n, fd, fi, &c->dec, &c->form);
	if (r)
		goto fail_inode;
	f = (struct wfs_file *)(uintptr_t)fi->fh;
	r = open_record(c);
	if (!r && !created && (c->flags & O_TRUNC))
		r = open_truncate(f);
	if (!r)
		r = wfs_getattr_fd(n, f->fd, &st);
	if (r)
		goto fail_inode;
	wfs_fill_entry(e, n, &st);
	return 0;

fail_inode:
	if (created)
		undo_create(parent, name, b, fd);
	if (f)
		wfs_file_close(req, f); /* closes fd */
	else
		close(fd);
	wfs_inode_forget(n, 1);
	return r;
fail_fd:
	if (created)
		undo_create(parent, name, b, fd);
	close(fd);
	return r;
}

int wfs_create_file(fuse_req_t req, struct wfs_inode *parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	WFS_AUTOFREE char *path = NULL;
	struct wfs_open_ctx c = {.fs = fs, .flags = fi->flags | O_CREAT, .create = true};
	int fd = -1, r;
	bool created = false;
	struct wfs_bname b;
	if (parent == &fs->root && !strcmp(name, WFS_VAULT_DIR))
		return -EPERM;
	/* keys_lock before tree_lock (fs.h) */
	wfs_keys_hold(fs);
	/* From the path until the name exists (fs.h, tree_lock): a directory
	 * above may be moving to another class. */
	pthread_rwlock_rdlock(&fs->tree_lock);
	r = wfs_child_path(parent, name, &path);
	if (!r) {
		c.path = path;
		wfs_classify_path(fs, path, &c.dec);
		r = wfs_access_check(req, &c);
	}
	/* Locked: not even the name of a new sensitive file (the file
	 * would be left empty, without a header). */
	if (!r && atomic_load(&fs->locked) && c.dec.cls == WFS_SENSITIVE)
		r = -ENOKEY;
	if (!r)
		r = create_backing(req, parent, name, mode, fi->flags, &b, &fd, &created);
	pthread_rwlock_unlock(&fs->tree_lock);
	if (!r)
		r = create_open(req, parent, name, &b, &c, fd, created, fi, e);
	if (!r)
		wfs_file_shed_fd((struct wfs_file *)(uintptr_t)fi->fh);
	wfs_keys_release(fs);
	return open_finish(&c, r);
}
