/* lifecycle.h - what the session starts at mount and stops at the end: the log, the audit lineage
 * check, the policy watcher, the readahead raise. */
#ifndef WARDFS_LIFECYCLE_H
#define WARDFS_LIFECYCLE_H

#include "fs.h"

/* audit_lineage.c: at mount, a chain-break row when the vault's audit
 * database is not the one it wrote to before; records the one in use. */
void wfs_fs_check_audit_lineage(struct wfs_fs *fs, const char *db_path);

/* log.c: from now on, each line on stderr gets a timestamp and the mount */
void wfs_log_start(const char *mount);

/* policy_watch.c: reloads on SIGHUP and on changes to the policy's sources */
void wfs_fs_policy_watch_start(struct wfs_fs *fs);
void wfs_fs_policy_watch_stop(struct wfs_fs *fs);

/* readahead.c: once the kernel has answered INIT, raises the mount's
 * readahead to 1 MiB (a detached thread; failures are logged). */
void wfs_readahead_raise_async(const char *mountpoint);

#endif
