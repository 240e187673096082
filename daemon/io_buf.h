/* io_buf.h - each worker's buffer for encrypted I/O. */
#ifndef WARDFS_IO_BUF_H
#define WARDFS_IO_BUF_H

#include "fs.h"

/* The largest READ or WRITE the daemon serves (the mount's max_write and
 * max_readahead): one worker's buffer. */
#define WFS_MAX_IO (1u << 20)

/* Each worker's buffer for encrypted I/O, wiped when the
 * worker ends; the key is made with the filesystem and deleted after
 * its workers. */
void wfs_io_bufs_init(struct wfs_fs *fs);
void wfs_io_bufs_destroy(struct wfs_fs *fs);
/* Wipes every worker's buffer (the vault is being locked: no worker is
 * inside an encrypted read or write). */
void wfs_io_bufs_wipe(struct wfs_fs *fs);
/* This worker's buffer, or NULL (out of memory: answer ENOMEM). */
char *wfs_io_buf(struct wfs_fs *fs);

#endif
