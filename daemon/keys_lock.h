/* keys_lock.h - the vault's keys in a running daemon: held by each
 * operation that uses them, wiped by `wardfs lock`, brought back by
 * `wardfs unlock`. */
#ifndef WARDFS_KEYS_LOCK_H
#define WARDFS_KEYS_LOCK_H

#include "fs.h"

/* The attributes lock and unlock come through: wardfs_status.h. */
#include "wardfs_status.h"

/* Sets up fs's keys lock and the id of its keys (fs->keys set). */
int wfs_fs_keys_init(struct wfs_fs *fs);
void wfs_fs_keys_destroy(struct wfs_fs *fs);

/*
 * Holds the keys for one operation: until wfs_keys_release, fs->keys
 * and fs->locked do not change (NULL keys: the vault has none, or it is
 * locked). Taken before any other lock of the daemon; a thread that
 * holds them may hold them again (counted).
 */
void wfs_keys_hold(struct wfs_fs *fs);
void wfs_keys_release(struct wfs_fs *fs);

/* Locks: waits for the operations that hold the keys, wipes the keys,
 * every thread's key schedules and plaintext buffers, drops the kernel's
 * cached pages of encrypted files, and records the row. 0, -EALREADY
 * (locked already) or -ENOKEY (the vault has no keys). */
int wfs_fs_lock_keys(fuse_req_t req, struct wfs_fs *fs);
/* Unlocks with the master key in value[0, WFS_MASTER_KEY_LEN) and an
 * optional note after it; wipes value. 0, -EALREADY, -EKEYREJECTED (not
 * this vault's key) or -EINVAL. */
int wfs_fs_unlock_keys(fuse_req_t req, struct wfs_fs *fs, char *value, size_t size);
/* "/a/b\n" per encrypted file open now, into a malloc'd *out: its length
 * or -errno. */
ssize_t wfs_fs_open_sensitive(struct wfs_fs *fs, char **out);

#endif
