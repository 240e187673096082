/*
 * names.c - the backing name of a plaintext name, in a vault made with
 * `init --encrypt-names` (docs/format.md, "Encrypted names"): a name whose
 * path the policy classifies sensitive is stored encrypted with AES-SIV
 * under its directory's id (crypto/names.c); every other name as it is,
 * escaped when it starts with "wfs~". The policy decides by the plaintext
 * path, so a lookup is one backing lookup: the name's own form, and only
 * on a miss the other one, where a policy change left it.
 *
 * Why no lock of the daemon's own orders creates and removals of a name:
 * the kernel holds the FUSE directory's lock (i_rwsem) exclusively for
 * every create, link, unlink, rmdir and rename in it, and the backing
 * tree is reached only through the mount. "Is it there in the other
 * form?", the sidecar and the create that follow, or a removal and its
 * sidecar's, are therefore never interleaved with another request's for
 * the same directory. Lookups and listings run beside them and only read.
 *
 * Directory ids are read once per inode and kept (fs.names_lock orders
 * the reads and the make; readers of a known id take no lock). An id is
 * never replaced and leaves only with its directory, so a kept one stays
 * true; "none" is kept too, since only this daemon makes one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_policy.h"
#include "inode.h"
#include "names.h"

enum { DIRID_UNKNOWN = 0, DIRID_NONE, DIRID_OK, DIRID_CORRUPT };

/* The directory's id: 0 and *id; -ENOENT when it has none; -EIO when it
 * is damaged (lookups and creates of encrypted names there fail rather
 * than make a second one); -errno when it cannot be read now. */
static int dirid_get(struct wfs_inode *dir, int dfd, const uint8_t **id)
{
	struct wfs_fs *fs = dir->fs;
	int s = atomic_load_explicit(&dir->dirid_state, memory_order_acquire);
	if (s == DIRID_UNKNOWN) {
		pthread_mutex_lock(&fs->names_lock);
		s = atomic_load_explicit(&dir->dirid_state, memory_order_relaxed);
		if (s == DIRID_UNKNOWN) {
			int r = wfs_dirid_read(dfd, dir->dirid);
			if (r && r != -ENOENT && r != -EUCLEAN) {
				pthread_mutex_unlock(&fs->names_lock);
				return r; /* not known: asked again next time */
			}
			s = !r ? DIRID_OK : r == -ENOENT ? DIRID_NONE : DIRID_CORRUPT;
			atomic_store_explicit(&dir->dirid_state, s, memory_order_release);
		}
		pthread_mutex_unlock(&fs->names_lock);
	}
	*id = dir->dirid;
	return s == DIRID_OK ? 0 : s == DIRID_NONE ? -ENOENT : -EIO;
}

/* The directory's id, made when it has none (the first encrypted name in
 * it). -EIO for a damaged one, or encrypted names there without an id. */
static int dirid_make(struct wfs_inode *dir, int dfd, const uint8_t **id)
{
	struct wfs_fs *fs = dir->fs;
	int r = dirid_get(dir, dfd, id);
	if (r != -ENOENT)
		return r;
	pthread_mutex_lock(&fs->names_lock);
	r = 0;
	if (atomic_load_explicit(&dir->dirid_state, memory_order_relaxed) != DIRID_OK) {
		r = wfs_dirid_create(dfd, dir->dirid);
		if (!r)
			atomic_store_explicit(&dir->dirid_state, DIRID_OK, memory_order_release);
	}
	pthread_mutex_unlock(&fs->names_lock);
	if (r == -EUCLEAN) {
		WFS_AUTOFREE char *path = NULL;
		wfs_inode_path(dir, &path);
		fprintf(stderr,
			"wardfs: directory '%s' holds encrypted names but no directory id: no "
			"encrypted name is made there (see 'wardfs fsck')\n",
			path ? path : "?");
		r = -EIO;
	}
	*id = dir->dirid;
	return r;
}

int wfs_bname_encrypted_by_policy(struct wfs_inode *parent, const char *name, bool *enc)
{
	WFS_AUTOFREE char *path = NULL;
	int r = wfs_child_path(parent, name, &path);
	if (r)
		return r;
	struct wfs_decision d;
	wfs_classify_path(parent->fs, path, &d);
	*enc = d.cls == WFS_SENSITIVE;
	wfs_decision_put(&d);
	return 0;
}

/* name's backing form: encrypted (make: its directory's id made first,
 * and e filled for the sidecar) or plain. */
static int form_of(struct wfs_inode *parent, int pfd, const char *name, bool enc, bool make,
		   struct wfs_bname *b, struct wfs_name_enc *e)
{
	struct wfs_fs *fs = parent->fs;
	size_t len = strlen(name);
	b->is_long = false;
	if (!enc) {
		ssize_t n = wfs_name_escape(name, len, b->name);
		return n < 0 ? (int)n : 0;
	}
	/* Without an id the name cannot exist encrypted (-ENOENT), which
	 * needs no keys to know; locked, no id is made. */
	const uint8_t *id;
	int r = make && !fs->keys ? -ENOKEY
		: make		  ? dirid_make(parent, pfd, &id)
				  : dirid_get(parent, pfd, &id);
	if (!r && !fs->keys)
		r = -ENOKEY;
	if (r)
		return r;
	r = wfs_name_encrypt(fs->keys, id, name, len, e);
	if (r)
		return r;
	memcpy(b->name, e->name, e->len + 1);
	b->is_long = e->is_long;
	return 0;
}

int wfs_bname_form(struct wfs_inode *parent, int pfd, const char *name, bool enc,
		   struct wfs_bname *b)
{
	struct wfs_name_enc e;
	return form_of(parent, pfd, name, enc, false, b, &e);
}

static bool exists(int pfd, const char *bname)
{
	struct stat st;
	return fstatat(pfd, bname, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* find and make: the existing entry in either form, else the first
 * form's name (made ready when make). */
static int resolve(struct wfs_inode *parent, int pfd, const char *name, bool make,
		   struct wfs_bname *b)
{
	struct wfs_name_enc e;
	struct wfs_bname other;
	bool enc;
	if (!parent->fs->names) {
		size_t len = strlen(name);
		if (len > WFS_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(b->name, name, len + 1);
		b->is_long = false;
		return 0;
	}
	int r = wfs_bname_encrypted_by_policy(parent, name, &enc);
	if (r)
		return r;
	int rf = form_of(parent, pfd, name, enc, false, b, &e);
	if (!rf && exists(pfd, b->name))
		return 0;
	int ro = form_of(parent, pfd, name, !enc, false, &other, &e);
	if (!ro && exists(pfd, other.name)) {
		*b = other;
		return 0;
	}
	/* The other form could not be checked while locked: a create could
	 * make a second entry for the name (a policy change since). */
	if (make && ro == -ENOKEY)
		return -ENOKEY;
	if (!make)
		return rf;
	if (rf && rf != -ENOENT)
		return rf;
	r = form_of(parent, pfd, name, enc, true, b, &e);
	if (!r && b->is_long)
		r = wfs_name_sidecar_write(pfd, &e);
	return r;
}

int wfs_bname_find(struct wfs_inode *parent, int pfd, const char *name, struct wfs_bname *b)
{
	return resolve(parent, pfd, name, false, b);
}

int wfs_bname_make(struct wfs_inode *parent, int pfd, const char *name, struct wfs_bname *b)
{
	return resolve(parent, pfd, name, true, b);
}

void wfs_bname_removed(int pfd, const struct wfs_bname *b)
{
	/* A rename between two hard links of one file leaves both names. */
	if (b->is_long && !exists(pfd, b->name))
		wfs_name_sidecar_remove(pfd, b->name, strlen(b->name));
}

int wfs_bname_rmdir_prepare(struct wfs_fs *fs, int pfd, const struct wfs_bname *b)
{
	if (!fs->names)
		return 0;
	int fd = openat(pfd, b->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOTDIR : 0; /* rmdir(2) says what is wrong */
	int r = wfs_names_rmdir_prepare(fd);
	close(fd);
	return r;
}

bool wfs_bname_shadowed(struct wfs_inode *dir, int dfd, const char *bname, const char *plain)
{
	const uint8_t *id;
	struct wfs_name_enc e;
	struct wfs_bname b;
	bool enc;
	/* Without an id the directory holds no encrypted name: no twin. */
	if (dirid_get(dir, dfd, &id) || wfs_bname_encrypted_by_policy(dir, plain, &enc) ||
	    enc == wfs_name_is_encrypted(bname, strlen(bname)))
		return false;
	return form_of(dir, dfd, plain, enc, false, &b, &e) == 0 && exists(dfd, b.name);
}

ssize_t wfs_bname_show(struct wfs_inode *dir, int dfd, const char *bname,
		       char plain[WFS_NAME_MAX + 1])
{
	struct wfs_fs *fs = dir->fs;
	size_t len = strlen(bname);
	const uint8_t *id = NULL;
	if (wfs_name_is_encrypted(bname, len) && (!fs->keys || dirid_get(dir, dfd, &id)))
		id = NULL; /* shown as it can be: not at all */
	ssize_t r = wfs_name_show(fs->keys, id, dfd, bname, len, NULL, plain);
	if (r < 0 && fs->keys && !atomic_exchange(&dir->names_logged, true)) {
		WFS_AUTOFREE char *path = NULL;
		wfs_inode_path(dir, &path);
		fprintf(stderr,
			"wardfs: directory '%s' holds names that cannot be decrypted (%s): "
			"listings skip them; see 'wardfs fsck'\n",
			path ? path : "?", strerror((int)-r));
	}
	return r;
}
