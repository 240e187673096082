/*
 * mounted.h - a running wardfs mount as umount and status see it: is a
 * path one, and what does its daemon say, without hanging on a daemon
 * that is stopped or stuck.
 */
#ifndef WARDFS_MOUNTED_H
#define WARDFS_MOUNTED_H

#include <stddef.h>

#define WFS_FSTYPE "fuse.wardfs"
/* How long umount, status and reload wait for a daemon to answer. */
#define WFS_STATUS_TIMEOUT_MS 5000

/* The file system type of the topmost mount at path (as /proc/self/
 * mountinfo shows it) into type. 0, -EINVAL when path is not a mount
 * point, -errno. Never touches the mount itself. */
int wfs_mount_type(const char *path, char *type, size_t len);

/* 0 when mnt is a wardfs mount; otherwise says why not (one line) and
 * returns 1. Refusing others keeps `wardfs umount` or `lock` from acting
 * on a tmpfs that happens to be named. Never touches the mount. */
int wfs_require_wardfs(const char *mnt);

/* Is the vault at backing (as given to mount: the daemon's fsname) served
 * by a wardfs mount? 1 and its mount point in mnt, 0, or -errno. */
int wfs_backing_mounted(const char *backing, char *mnt, size_t len);

/* Calls fn for each wardfs mount, in mount order, until it returns
 * non-zero (which is returned); 0, or -errno when the table is unreadable. */
int wfs_each_mount(int (*fn)(void *arg, const char *mnt, const char *backing), void *arg);

/* Reads the daemon's status text (wardfs_status.h) from the mount root within timeout_ms:
 * 0, -ETIMEDOUT when the daemon does not answer, -errno. */
int wfs_read_status(const char *mnt, char *buf, size_t len, int timeout_ms);

#endif
