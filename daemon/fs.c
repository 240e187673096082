/*
 * fs.c - the daemon's filesystem object: everything a mount's handlers
 * share, made and unmade in one place. The session (session.c) makes one
 * per mount and hands it to libfuse as the session's userdata; handlers
 * reach it through the request (wfs_fs_of), services through the inode.
 */
#include <stdlib.h>
#include <unistd.h>

#include "file_fd.h"
#include "inode.h"
#include "io_buf.h"
#include "procinfo.h"
#include "keys_lock.h"

struct wfs_fs *wfs_fs_new(struct wfs_daemon_opts *o)
{
	struct wfs_fs *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return NULL;
	fs->o = o;
	fs->keys = o->keys; /* the filesystem's from now on: wiped in wfs_fs_free */
	fs->names = o->keys && (wfs_keys_vault_flags(o->keys) & WFS_VAULT_ENCRYPT_NAMES);
	pthread_mutex_init(&fs->names_lock, NULL);
	fs->timeout = 86400.0;
	fs->root_fd = fs->mount_fd = -1;
	pthread_rwlock_init(&fs->policy_lock, NULL);
	/* tree_lock prefers writers: creates never starve a directory rename */
	pthread_rwlockattr_t tl;
	pthread_rwlockattr_init(&tl);
	pthread_rwlockattr_setkind_np(&tl, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->tree_lock, &tl);
	pthread_rwlockattr_destroy(&tl);
	pthread_mutex_init(&fs->streams_lock, NULL);
	wfs_io_bufs_init(fs);
	fs->procs = wfs_procinfo_cache_new();
	fs->holders = wfs_holders_new();
	if (!fs->procs || !fs->holders || wfs_fs_keys_init(fs)) {
		fs->keys = NULL; /* the caller still owns them */
		wfs_fs_free(fs);
		return NULL;
	}
	return fs;
}

void wfs_fs_free(struct wfs_fs *fs)
{
	if (!fs)
		return;
	if (fs->buckets)
		wfs_table_destroy(fs);
	wfs_undo_close(fs->undo);    /* after every file: syncs, then empties it */
	wfs_policy_free(fs->policy); /* after the inodes, whose decisions hold it */
	wfs_keys_free(fs->keys);
	wfs_holders_free(fs->holders);
	wfs_procinfo_cache_free(fs->procs);
	wfs_io_bufs_destroy(fs);
	wfs_fs_keys_destroy(fs);
	pthread_mutex_destroy(&fs->streams_lock);
	pthread_mutex_destroy(&fs->names_lock);
	pthread_rwlock_destroy(&fs->tree_lock);
	pthread_rwlock_destroy(&fs->policy_lock);
	if (fs->root_fd >= 0)
		close(fs->root_fd);
	if (fs->mount_fd >= 0)
		close(fs->mount_fd); /* the vault's lock */
	free(fs);
}
