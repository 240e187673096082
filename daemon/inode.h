/* inode.h - the inode table: inodes by file handle, their cached fds and their names. */
#ifndef WARDFS_INODE_H
#define WARDFS_INODE_H

#include "fs.h"

/* inode.c */
int wfs_table_init(struct wfs_fs *fs);
void wfs_table_destroy(struct wfs_fs *fs);
struct wfs_inode *wfs_inode_get(struct wfs_fs *fs, fuse_ino_t ino);
/* The inode a request names (handlers). */
static inline struct wfs_inode *wfs_inode_of(fuse_req_t req, fuse_ino_t ino)
{
	return wfs_inode_get(fuse_req_userdata(req), ino);
}
fuse_ino_t wfs_inode_ino(struct wfs_inode *n);
/* Looks up or creates the inode for name in parent; fills *st. Takes one
 * lookup reference. Returns 0 or -errno. */
int wfs_inode_lookup(struct wfs_inode *parent, const char *name, struct stat *st,
		     struct wfs_inode **out);
/* The same when the caller knows name's backing name bname (a listing;
 * NULL: find it as wfs_inode_lookup does). */
int wfs_inode_lookup_at(struct wfs_inode *parent, const char *name, const char *bname,
			struct stat *st, struct wfs_inode **out);
void wfs_inode_forget(struct wfs_inode *n, uint64_t nlookup);
/* Returns an O_PATH fd for n (cached) or -errno; pair with wfs_inode_put_fd. */
int wfs_inode_fd(struct wfs_inode *n);
void wfs_inode_put_fd(struct wfs_inode *n);
/* stat(2) of n by its parent and name; -ESTALE etc. when that misses. */
int wfs_inode_stat_by_name(struct wfs_inode *n, struct stat *st);
/* parent/name, which led to the file st describes (stat before the
 * removal), was removed: the entry forgets that name if the file has
 * others, and drops its cached fd if that was its last. */
/* n's backing file was replaced under its name by another (a converting
 * rename): n forgets its name, so requests on it get ESTALE and the kernel
 * looks the name up again; its cached fd is closed. */
void wfs_inode_unname(struct wfs_inode *n);
void wfs_inode_name_removed(struct wfs_inode *parent, const char *name, const struct stat *st);
/* After an open failed with err: closes idle cached fds if err is EMFILE
 * or ENFILE; true when it freed any (try again). Logs when it cannot. */
bool wfs_fds_reclaim(struct wfs_fs *fs, int err);
/* Opens the backing object with real flags (not O_PATH). */
int wfs_inode_open(struct wfs_inode *n, int flags);
/* Moves n's policy name after a rename (newbname: its name on disk, NULL
 * when it is newname). */
void wfs_inode_rename(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname,
		      const char *newbname);
/* The path of n relative to the mount root ("/a/b"), malloc'd into *out
 * (the caller frees it): 0, -ENOENT when a name on the way was removed, or
 * -ENOMEM. No PATH_MAX: a path may be as deep as the kernel lets a
 * program reach by relative names (issue 16). */
int wfs_inode_path(struct wfs_inode *n, char **out);
/* The same, with fs->table_lock held by the caller. */
int wfs_inode_path_locked(struct wfs_inode *n, char **out);
/* Calls fn for every inode of the table, hashed or not, with table_lock
 * held: fn may read what table_lock and atomics guard, and take no lock
 * that comes before table_lock (fs.h). */
void wfs_table_each(struct wfs_fs *fs, void (*fn)(struct wfs_inode *n, void *arg), void *arg);
int wfs_child_path(struct wfs_inode *parent, const char *name, char **out);

#endif
