/*
 * ops_entry.c - FUSE operations on names and attributes: lookup, forget,
 * getattr/setattr, mknod/mkdir/symlink/link, unlink/rmdir, rename, statfs.
 * Each handler replies exactly once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "access.h"
#include "attr.h"
#include "creds.h"
#include "file_open.h"
#include "fs_policy.h"
#include "inode.h"
#include "ops.h"
#include "keys_lock.h"
#include "names.h"
#include "rename.h"

#define PROCFD_LEN 32

static void procfd(char *buf, int fd)
{
	snprintf(buf, PROCFD_LEN, "/proc/self/fd/%d", fd);
}

/* The mount hides the vault directory at the root. */
static bool hidden(struct wfs_inode *parent, const char *name)
{
	struct wfs_fs *fs = parent->fs;
	return parent == &fs->root && !strcmp(name, WFS_VAULT_DIR);
}

/* bname: name's backing name when known (NULL: looked up). */
static int do_lookup(struct wfs_inode *parent, const char *name, const char *bname,
		     struct fuse_entry_param *e)
{
	if (hidden(parent, name))
		return -ENOENT;
	struct stat st;
	struct wfs_inode *n;
	int r = wfs_inode_lookup_at(parent, name, bname, &st, &n);
	if (r)
		return r;
	wfs_show_plain_size(n, &st);
	wfs_fill_entry(e, n, &st);
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	struct fuse_entry_param e;
	wfs_names_hold(fs);
	int r = do_lookup(wfs_inode_of(req, parent), name, NULL, &e);
	wfs_names_release(fs);
	if (r == -ENOENT) {
		/* A negative entry the kernel may cache. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = wfs_fs_of(req)->timeout;
		r = 0;
	}
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	wfs_inode_forget(wfs_inode_of(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		wfs_inode_forget(wfs_inode_of(req, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	struct wfs_inode *n = wfs_inode_of(req, ino);
	struct stat st;
	int r;
	struct wfs_file *f = fi && fi->fh ? (struct wfs_file *)(uintptr_t)fi->fh : NULL;
	if (f && f->fd >= 0)
		r = wfs_getattr_fd(n, f->fd, &st);
	else
		r = wfs_stat_inode(n, &st); /* also for a passthrough open: no fd to borrow */
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->timeout);
}

/*
 * Whether a truncate to size may have to leave n encrypted: it is already,
 * or it is an empty file about to grow, which truncate_encrypted decides
 * under open_lock (a plain ftruncate of an empty file that must become
 * encrypted would let later writes extend it in the clear).
 */
static bool truncate_encrypts(struct wfs_inode *n, off_t size)
{
	struct wfs_fs *fs = n->fs;
	int form = atomic_load(&n->form);
	if (form == WFS_FORM_ENCRYPTED)
		return true;
	return form == WFS_FORM_EMPTY && size > 0 && fs->keys;
}

/*
 * Whether empty file n, about to grow, becomes encrypted. Called with
 * open_lock held. While n is open, its opens decide: the kernel serves a
 * passthrough open's writes straight to the backing file, so a header
 * must not appear under it, and an encrypted open must not meet plain
 * bytes. Otherwise the class of its path does.
 */
static bool empty_becomes_encrypted(struct wfs_inode *n)
{
	if (n->opens > 0)
		return n->serve == WFS_SERVE_ENCRYPTED;
	WFS_AUTOFREE char *path = NULL;
	struct wfs_decision d;
	if (wfs_inode_path(n, &path))
		return false;
	wfs_classify_path(n->fs, path, &d); /* not wfs_classify: it takes open_lock */
	bool sensitive = d.cls == WFS_SENSITIVE;
	wfs_decision_put(&d);
	return sensitive;
}

/*
 * Truncates an encrypted (or to-be-encrypted empty) file on fd. open_lock
 * keeps a concurrent first open from sniffing the file while its header is
 * written; n->hdr is what open handles use, so a new header goes there.
 */
static int truncate_encrypted(struct wfs_inode *n, int fd, off_t size)
{
	struct wfs_fs *fs = n->fs;
	struct wfs_file_hdr h;
	struct stat st;
	int r;
	pthread_mutex_lock(&n->open_lock);
	wfs_io_change_begin(n);
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size == 0) {
		if (size == 0) {
			r = 0;
			goto out;
		}
		if (!empty_becomes_encrypted(n)) {
			r = ftruncate(fd, size) < 0 ? -errno : 0;
			goto out;
		}
		r = wfs_file_begin_encrypted(n, fd);
		if (r < 0)
			goto out;
		st.st_size = wfs_cipher_size(0);
	}
	/* By the mark, as at open: a plain file's bytes may look like a
	 * header, and a marked file whose header is gone is damaged. */
	enum wfs_form form;
	r = wfs_form_of(fd, st.st_size, &form);
	if (r >= 0 && form == WFS_FORM_ENCRYPTED) {
		r = wfs_hdr_read(fs->keys, fd, &h);
		wfs_inode_undo(n, &h, st.st_size);
		if (r == WFS_FORM_ENCRYPTED)
			r = wfs_content_truncate(fs->keys, fd, &h, size);
		else if (r >= 0 || r == -EIO)
			r = -EIO;
	} else if (r >= 0) {
		r = ftruncate(fd, size) < 0 ? -errno : 0;
	}
out:
	wfs_io_change_end(n);
	pthread_mutex_unlock(&n->open_lock);
	return r;
}

/* do_truncate with the keys held (and needed only if the vault is unlocked). */
static int truncate_held(fuse_req_t req, struct wfs_inode *n, struct fuse_file_info *fi, off_t size)
{
	(void)req;
	int fd = fi && fi->fh ? ((struct wfs_file *)(uintptr_t)fi->fh)->fd : -1;
	bool own = false;
	bool enc = truncate_encrypts(n, size);
	if (enc && (fd < 0 || (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY)) {
		fd = wfs_inode_open(n, O_RDWR);
		own = true;
	} else if (fd < 0) {
		fd = wfs_inode_open(n, O_WRONLY);
		own = true;
	}
	if (fd < 0)
		return fd;
	int r = 0;
	if (enc)
		r = truncate_encrypted(n, fd, size);
	else if (ftruncate(fd, size) < 0)
		r = -errno;
	if (own)
		close(fd);
	return r;
}

/* Locked (`wardfs lock`): whether the truncate needs the keys it cannot
 * have, for an encrypted file or an empty one that must become one. */
static bool truncate_needs_keys(struct wfs_inode *n, off_t size)
{
	int form = atomic_load(&n->form);
	if (form == WFS_FORM_ENCRYPTED)
		return true;
	if (form != WFS_FORM_EMPTY || size == 0)
		return false;
	pthread_mutex_lock(&n->open_lock);
	bool e = empty_becomes_encrypted(n);
	pthread_mutex_unlock(&n->open_lock);
	return e;
}

/* Truncates a regular file in the form it has (or must get) on disk. */
static int do_truncate(fuse_req_t req, struct wfs_inode *n, struct fuse_file_info *fi, off_t size)
{
	wfs_keys_hold(n->fs); /* op_setattr holds them already; counted */
	int r = atomic_load(&n->fs->locked) && truncate_needs_keys(n, size)
			? -ENOKEY
			: truncate_held(req, n, fi, size);
	wfs_keys_release(n->fs);
	return r;
}

/* Applies what setattr asks of n, whose O_PATH fd is fd. */
static int apply_attrs(fuse_req_t req, struct wfs_inode *n, int fd, const struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	char pf[PROCFD_LEN];
	procfd(pf, fd);
	if (!(valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
		       FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		       FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
	    fchownat(fd, "", (uid_t)-1, (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		/* chown(f, -1, -1) changes nothing but the ctime, as on ext4 */
		return -errno;
	if ((valid & FUSE_SET_ATTR_MODE) && chmod(pf, attr->st_mode & 07777) < 0)
		return -errno;
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		int r = do_truncate(req, n, fi, attr->st_size);
		if (r)
			return r;
	}
	if (valid & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) {
		/* handle_killpriv_v2: a truncate or write by the caller drops
		 * setuid/setgid, which root's own ftruncate would keep. */
		struct stat st;
		if (fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 &&
		    (st.st_mode & (S_ISUID | S_ISGID))) {
			mode_t m = st.st_mode & 07777 & ~S_ISUID;
			if (st.st_mode & S_IXGRP)
				m &= ~S_ISGID;
			chmod(pf, m);
		}
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2];
		tv[0].tv_sec = tv[1].tv_sec = 0;
		tv[0].tv_nsec = tv[1].tv_nsec = UTIME_OMIT;
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		int res = n->type == S_IFLNK ? utimensat(fd, "", tv, AT_EMPTY_PATH)
					     : utimensat(AT_FDCWD, pf, tv, 0);
		if (res < 0)
			return -errno;
	}
	return 0;
}

/* setattr: judged and recorded as a change (changes.c) unless it only
 * truncates through an open file, which was judged at its open. */
static int do_setattr(fuse_req_t req, struct wfs_inode *n, const struct stat *attr, int valid,
		      struct fuse_file_info *fi, struct stat *st)
{
	enum wfs_audit_kind kind =
		(valid & FUSE_SET_ATTR_SIZE) && !fi			? WFS_AUDIT_TRUNCATE
		: (valid & FUSE_SET_ATTR_MODE)				? WFS_AUDIT_CHMOD
		: (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))	? WFS_AUDIT_CHOWN
		: (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) ? WFS_AUDIT_UTIMES
									: WFS_AUDIT_OPEN; /* none */
	struct wfs_change ch = {.audited = false};
	int r = 0;
	if (kind != WFS_AUDIT_OPEN && (r = wfs_change_begin(req, &ch, kind, n, NULL, NULL, NULL)))
		return r;
	int fd = wfs_inode_fd(n);
	r = fd < 0 ? fd : apply_attrs(req, n, fd, attr, valid, fi);
	wfs_change_end(&ch, r);
	if (fd >= 0) {
		if (!r)
			r = wfs_getattr_fd(n, fd, st);
		wfs_inode_put_fd(n);
	}
	return r;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct stat st;
	struct wfs_fs *fs = wfs_fs_of(req);
	/* A truncate may need the keys: held first, before the locks its
	 * change takes (fs.h), not in the middle. */
	bool keys = valid & FUSE_SET_ATTR_SIZE;
	if (keys)
		wfs_keys_hold(fs);
	int r = do_setattr(req, wfs_inode_of(req, ino), attr, valid, fi, &st);
	if (keys)
		wfs_keys_release(fs);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, wfs_fs_of(req)->timeout);
}

static int do_readlink(struct wfs_inode *n, char *buf, size_t len)
{
	int fd = wfs_inode_fd(n);
	if (fd < 0)
		return fd;
	ssize_t r = readlinkat(fd, "", buf, len);
	int err = r < 0 ? -errno : (size_t)r == len ? -ENAMETOOLONG : 0;
	wfs_inode_put_fd(n);
	if (!err)
		buf[r] = '\0';
	return err;
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	int r = do_readlink(wfs_inode_of(req, ino), buf, sizeof(buf));
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, buf);
}

/* Creates a directory entry of any non-regular kind as the caller. Its
 * name's form follows its path's class, which a directory rename above
 * could change meanwhile: tree_lock from the name to the entry (fs.h). */
static int make_node(fuse_req_t req, struct wfs_inode *parent, const char *name, mode_t mode,
		     dev_t rdev, const char *link, struct fuse_entry_param *e)
{
	struct wfs_fs *fs = parent->fs;
	if (hidden(parent, name))
		return -EPERM;
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	struct wfs_bname b;
	wfs_names_hold(fs);
	if (fs->names)
		pthread_rwlock_rdlock(&fs->tree_lock);
	struct wfs_creds c;
	int r = wfs_bname_make(parent, pfd, name, &b);
	if (!r && !(r = wfs_creds_become(req, &c))) {
		if (S_ISDIR(mode))
			r = mkdirat(pfd, b.name, mode);
		else if (S_ISLNK(mode) && link)
			r = symlinkat(link, pfd, b.name);
		else
			r = mknodat(pfd, b.name, mode, rdev);
		r = r < 0 ? -errno : 0;
		wfs_creds_restore(&c);
		if (r && r != -EEXIST)
			wfs_bname_removed(pfd, &b); /* a long name's sidecar, for nothing */
	}
	if (fs->names)
		pthread_rwlock_unlock(&fs->tree_lock);
	wfs_inode_put_fd(parent);
	if (!r)
		r = do_lookup(parent, name, b.name, e);
	wfs_names_release(fs);
	return r;
}

static void reply_entry_or_err(fuse_req_t req, int r, const struct fuse_entry_param *e)
{
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, e);
}

/* A regular file comes from the policy-aware create, closed at once. */
static int mknod_file(fuse_req_t req, struct wfs_inode *parent, const char *name, mode_t mode,
		      struct fuse_entry_param *e)
{
	struct fuse_file_info fi = {.flags = O_CREAT | O_EXCL | O_WRONLY};
	int r = wfs_create_file(req, parent, name, mode, &fi, e);
	if (!r)
		wfs_file_close(req, (struct wfs_file *)(uintptr_t)fi.fh);
	return r;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct wfs_inode *p = wfs_inode_of(req, parent);
	struct fuse_entry_param e;
	int r = S_ISREG(mode) ? mknod_file(req, p, name, mode, &e)
			      : make_node(req, p, name, mode, rdev, NULL, &e);
	reply_entry_or_err(req, r, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	int r = make_node(req, wfs_inode_of(req, parent), name, S_IFDIR | mode, 0, NULL, &e);
	reply_entry_or_err(req, r, &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = make_node(req, wfs_inode_of(req, parent), name, S_IFLNK, 0, link, &e);
	reply_entry_or_err(req, r, &e);
}

/* "WORD /path/of/np/name" for a change row's detail (malloc'd); NULL when
 * the path cannot be made. */
static char *to_detail(const char *word, struct wfs_inode *np, const char *name)
{
	WFS_AUTOFREE char *path = NULL;
	char *detail;
	if (wfs_child_path(np, name, &path) || asprintf(&detail, "%s %s", word, path) < 0)
		return NULL;
	return detail;
}

static int do_link(struct wfs_inode *n, struct wfs_inode *np, const char *newname,
		   struct fuse_entry_param *e)
{
	struct wfs_fs *fs = n->fs;
	struct wfs_bname b;
	pthread_rwlock_rdlock(&fs->tree_lock); /* fs.h */
	int r = wfs_rename_keeps_class(n, np, newname);
	int fd = r ? r : wfs_inode_fd(n);
	if (fd < 0) {
		pthread_rwlock_unlock(&fs->tree_lock);
		return fd;
	}
	int pfd = wfs_inode_fd(np);
	if (pfd >= 0) {
		r = wfs_bname_make(np, pfd, newname, &b);
		if (!r)
			r = linkat(fd, "", pfd, b.name, AT_EMPTY_PATH) < 0 ? -errno : 0;
		if (r && r != -EEXIST)
			wfs_bname_removed(pfd, &b);
		wfs_inode_put_fd(np);
	} else {
		r = pfd;
	}
	wfs_inode_put_fd(n);
	pthread_rwlock_unlock(&fs->tree_lock);
	return r ? r : do_lookup(np, newname, b.name, e);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent_ino, const char *newname)
{
	struct wfs_inode *n = wfs_inode_of(req, ino);
	struct wfs_inode *np = wfs_inode_of(req, newparent_ino);
	struct fuse_entry_param e;
	int r = -EPERM;
	if (!hidden(np, newname)) {
		struct wfs_change ch;
		WFS_AUTOFREE char *as = to_detail("as", np, newname);
		wfs_names_hold(n->fs);
		wfs_change_begin(req, &ch, WFS_AUDIT_LINK, n, NULL, NULL, as);
		r = do_link(n, np, newname, &e);
		wfs_change_end(&ch, r);
		wfs_names_release(n->fs);
	}
	reply_entry_or_err(req, r, &e);
}

/* An rmdir that failed may have removed the directory's id first (it was
 * empty but for wardfs's files): its inode must read it again. */
static void forget_dirid(struct wfs_inode *parent, const char *name, const char *bname)
{
	struct stat st;
	struct wfs_inode *n;
	if (wfs_inode_lookup_at(parent, name, bname, &st, &n) == 0) {
		atomic_store(&n->dirid_state, 0);
		wfs_inode_forget(n, 1);
	}
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent_ino, const char *name, int flags)
{
	struct wfs_inode *parent = wfs_inode_of(req, parent_ino);
	if (hidden(parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	struct wfs_fs *fs = parent->fs;
	struct wfs_change ch;
	struct wfs_bname b;
	wfs_names_hold(fs);
	wfs_change_begin(req, &ch, flags & AT_REMOVEDIR ? WFS_AUDIT_RMDIR : WFS_AUDIT_UNLINK, NULL,
			 parent, name, NULL); /* never refused: recorded */
	struct stat st;
	int r = -wfs_bname_find(parent, pfd, name, &b);
	bool known = !r && fstatat(pfd, b.name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	/* an emptied directory's own files (its id, orphan sidecars) first */
	if (!r && known && (flags & AT_REMOVEDIR) && S_ISDIR(st.st_mode))
		r = -wfs_bname_rmdir_prepare(fs, pfd, &b);
	if (!r)
		r = unlinkat(pfd, b.name, flags) < 0 ? errno : 0;
	if (!r)
		wfs_bname_removed(pfd, &b);
	if (r && known && fs->names && (flags & AT_REMOVEDIR))
		forget_dirid(parent, name, b.name);
	wfs_inode_put_fd(parent);
	if (!r && known)
		wfs_inode_name_removed(parent, name, &st);
	wfs_change_end(&ch, -r);
	wfs_names_release(fs);
	fuse_reply_err(req, r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, AT_REMOVEDIR);
}

/* renameat2 of parent/name to np/newname through their fds (from and to:
 * their names on disk); -errno. */
static int rename_at(struct wfs_inode *parent, const struct wfs_bname *from, struct wfs_inode *np,
		     const char *newname, const struct wfs_bname *to, unsigned flags,
		     const struct stat *st)
{
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	int npfd = wfs_inode_fd(np);
	if (npfd < 0) {
		wfs_inode_put_fd(parent);
		return npfd;
	}
	struct stat over; /* the file renamed over, if another one */
	bool replaces = !(flags & RENAME_EXCHANGE) &&
			fstatat(npfd, to->name, &over, AT_SYMLINK_NOFOLLOW) == 0 &&
			(over.st_dev != st->st_dev || over.st_ino != st->st_ino);
	int r = renameat2(pfd, from->name, npfd, to->name, flags) < 0 ? -errno : 0;
	if (!r && !(flags & RENAME_EXCHANGE))
		wfs_bname_removed(pfd, from);
	wfs_inode_put_fd(np);
	wfs_inode_put_fd(parent);
	if (!r && replaces)
		wfs_inode_name_removed(np, newname, &over);
	return r;
}

/* A rename that failed after its target's name was made ready: a long
 * name's sidecar made for nothing goes (docs/format.md). */
static void drop_unused(struct wfs_inode *np, const struct wfs_bname *to)
{
	int npfd = wfs_inode_fd(np);
	if (npfd >= 0) {
		wfs_bname_removed(npfd, to);
		wfs_inode_put_fd(np);
	}
}

/* The two names on disk of a rename (the target made ready). */
static int rename_bnames(struct wfs_inode *parent, const char *name, struct wfs_inode *np,
			 const char *newname, unsigned flags, struct wfs_bname *from,
			 struct wfs_bname *to)
{
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	int npfd = wfs_inode_fd(np);
	int r = npfd;
	if (npfd >= 0) {
		r = wfs_bname_find(parent, pfd, name, from);
		if (!r)
			r = flags & RENAME_EXCHANGE ? wfs_bname_find(np, npfd, newname, to)
						    : wfs_bname_make(np, npfd, newname, to);
		wfs_inode_put_fd(np);
	}
	wfs_inode_put_fd(parent);
	return r;
}

static int do_rename(struct wfs_inode *parent, const char *name, struct wfs_inode *np,
		     const char *newname, unsigned int flags)
{
	struct wfs_fs *fs = parent->fs;
	/* Learn the moving inode to check decisions (and to track its name). */
	struct stat st;
	struct wfs_inode *n = NULL, *other = NULL;
	int r = wfs_inode_lookup(parent, name, &st, &n);
	if (r)
		return r;
	if (flags & RENAME_EXCHANGE) {
		struct stat ost;
		r = wfs_inode_lookup(np, newname, &ost, &other);
		if (r) {
			wfs_inode_forget(n, 1);
			return r;
		}
	}
	/* A directory's walk and move exclude creates below it (fs.h). */
	bool tree = n->type == S_IFDIR || (other && other->type == S_IFDIR);
	if (tree)
		pthread_rwlock_wrlock(&fs->tree_lock);
	else
		pthread_rwlock_rdlock(&fs->tree_lock);
	struct wfs_bname from, to = {.is_long = false};
	r = rename_bnames(parent, name, np, newname, flags, &from, &to);
	if (!r)
		r = wfs_rename_keeps_class(n, np, newname);
	bool converted = false;
	if (r == -EXDEV && !other) {
		/* a save by rename across classes (rename_convert.c) */
		r = wfs_rename_convert(parent, &from, name, n, np, newname, to.name, flags);
		converted = r == 0;
		if (r == 1)
			r = 0;
	}
	if (!r && other)
		r = wfs_rename_keeps_class(other, parent, name);
	if (!r && !converted)
		r = rename_at(parent, &from, np, newname, &to, flags, &st);
	if (!r && !converted) {
		wfs_inode_rename(n, np, newname, to.name);
		if (other)
			wfs_inode_rename(other, parent, name, from.name);
	}
	if (r)
		drop_unused(np, &to);
	pthread_rwlock_unlock(&fs->tree_lock);
	if (other)
		wfs_inode_forget(other, 1);
	wfs_inode_forget(n, 1);
	return r;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		      fuse_ino_t newparent_ino, const char *newname, unsigned int flags)
{
	struct wfs_inode *parent = wfs_inode_of(req, parent_ino);
	struct wfs_inode *np = wfs_inode_of(req, newparent_ino);
	int r = -EPERM;
	if (!hidden(parent, name) && !hidden(np, newname)) {
		struct wfs_change ch;
		WFS_AUTOFREE char *to = to_detail("to", np, newname);
		/* a rename across classes converts the file: the keys first (fs.h) */
		wfs_keys_hold(parent->fs);
		wfs_change_begin(req, &ch, WFS_AUDIT_RENAME, NULL, parent, name, to);
		r = do_rename(parent, name, np, newname, flags);
		wfs_change_end(&ch, r);
		wfs_keys_release(parent->fs);
	}
	fuse_reply_err(req, -r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	(void)ino;
	struct statvfs sv;
	if (fstatvfs(fs->root_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

void wfs_fill_entry_ops(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->readlink = op_readlink;
	ops->mknod = op_mknod;
	ops->mkdir = op_mkdir;
	ops->symlink = op_symlink;
	ops->link = op_link;
	ops->unlink = op_unlink;
	ops->rmdir = op_rmdir;
	ops->rename = op_rename;
	ops->statfs = op_statfs;
}
