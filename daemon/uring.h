/* uring.h - FUSE over io_uring (--io-uring): asked for, offered, in use. */
#ifndef WARDFS_URING_H
#define WARDFS_URING_H

#include <stdbool.h>
#include <stddef.h>

#include "fs.h"

/* Before the session: whether to ask libfuse for io_uring ("io_uring" in
 * its options). When --io-uring cannot be had, records why for the status
 * and logs a warning: the mount then serves through /dev/fuse. */
bool wfs_uring_plan(struct wfs_fs *fs);

/* At INIT: asks the kernel for io_uring when planned and offered;
 * otherwise makes sure it is not asked for. */
void wfs_uring_init(struct wfs_fs *fs, struct fuse_conn_info *conn);

/* Appends "io-uring: on|off[ (why)]" to the status text. */
void wfs_uring_status(struct wfs_fs *fs, char *buf, size_t len);

#endif
