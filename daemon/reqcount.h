/* reqcount.h - per-request counters: which FUSE requests reached the
 * daemon's handlers, and how many of them came through io_uring. */
#ifndef WARDFS_REQCOUNT_H
#define WARDFS_REQCOUNT_H

#include <stddef.h>

#include "fs.h"

/*
 * Wraps every handler set in ops so that each request is counted in the
 * filesystem (fs->req_count, fs->req_uring) before it is handled. Call
 * once, after the table is filled and before the session starts; handlers
 * left NULL stay NULL (libfuse answers those itself).
 */
void wfs_reqcount_wrap(struct fuse_lowlevel_ops *ops);

/* Appends "requests: NAME=N ..." (the non-zero counters, in the
 * protocol's names) and the transport counts to the status text. */
void wfs_reqcount_status(struct wfs_fs *fs, char *buf, size_t len);

#endif
