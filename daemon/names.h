/* names.h - the names of files on disk: encrypted for sensitive paths in a
 * vault made with `init --encrypt-names`, as they are otherwise. */
#ifndef WARDFS_NAMES_H
#define WARDFS_NAMES_H

#include "fs.h"
#include "keys_lock.h"

/* A plaintext name's backing name in its directory. */
struct wfs_bname {
	char name[WFS_NAME_MAX + 1];
	bool is_long; /* a long encrypted name: its sidecar goes with it */
};

/*
 * In a vault without encrypted names every name is its own backing name:
 * find and make copy it, and nothing else happens. With them, callers
 * hold the keys (wfs_names_hold) from the top of their request, before
 * tree_lock (fs.h): these read fs->keys.
 */
static inline void wfs_names_hold(struct wfs_fs *fs)
{
	if (fs->names)
		wfs_keys_hold(fs);
}
static inline void wfs_names_release(struct wfs_fs *fs)
{
	if (fs->names)
		wfs_keys_release(fs);
}

/* The backing name under which name exists in parent (pfd: its fd): the
 * form its path's class asks for, else the other one (a policy change
 * since it was made). When it exists in neither: the first form, or
 * -ENOENT when that cannot exist (an encrypted name in a directory
 * without an id). 0; -ENOKEY (locked, and it would take the keys); -EIO
 * (a damaged directory id); -ENAMETOOLONG; -ENOMEM. */
int wfs_bname_find(struct wfs_inode *parent, int pfd, const char *name, struct wfs_bname *b);
/* Whether name in parent is stored encrypted by its path's class. 0 or
 * -errno (a name on the path was removed: -ENOENT). */
int wfs_bname_encrypted_by_policy(struct wfs_inode *parent, const char *name, bool *enc);
/* name's backing name in the encrypted form (enc) or the plain one, not
 * looked up: lookups try the form the class asks for, then the other,
 * with one classification. Errors as wfs_bname_find. */
int wfs_bname_form(struct wfs_inode *parent, int pfd, const char *name, bool enc,
		   struct wfs_bname *b);
/* For a create, link or rename target: as wfs_bname_find when the name
 * exists (the caller then meets EEXIST or the file), else the form its
 * class asks for, made ready: the directory's id made, a long name's
 * sidecar written. The kernel holds the FUSE directory's lock for every
 * create and removal in it, so nothing makes or removes the name between
 * this and the caller's create. */
int wfs_bname_make(struct wfs_inode *parent, int pfd, const char *name, struct wfs_bname *b);
/* The entry b was removed from (or renamed out of) the directory pfd:
 * its sidecar goes too, after it (docs/format.md). */
void wfs_bname_removed(int pfd, const struct wfs_bname *b);
/* Before rmdir(2) of parent's entry b: removes wardfs's own files from
 * the directory when nothing else is left in it (else -ENOTEMPTY). */
int wfs_bname_rmdir_prepare(struct wfs_fs *fs, int pfd, const struct wfs_bname *b);
/* What the backing name bname in directory dir (dfd: an fd of it that
 * reads) shows as in a listing: its length in plain; 0 for a name never
 * listed, -errno for an encrypted name that cannot be shown (skipped,
 * and said once per directory). */
ssize_t wfs_bname_show(struct wfs_inode *dir, int dfd, const char *bname,
		       char plain[WFS_NAME_MAX + 1]);

/* Whether the entry bname, shown as plain, has a twin in the form its
 * path's class asks for (both made behind the mount): a listing shows
 * the twin only, the one a lookup finds. */
bool wfs_bname_shadowed(struct wfs_inode *dir, int dfd, const char *bname, const char *plain);

#endif
