/* file_fd.h - the fds of open files: borrowed by handle after a passthrough open, and counted per
 * user. */
#ifndef WARDFS_FILE_FD_H
#define WARDFS_FILE_FD_H

#include "fs.h"

/* file_fd.c: a passthrough open gives up its fd before it is answered;
 * requests that need one borrow it (by handle) between get and put. */
void wfs_file_shed_fd(struct wfs_file *f);
/* Counts an open that keeps a daemon fd against its user (not root):
 * -EMFILE beyond fs->max_held; unhold when it closes (file_fd.c). */
int wfs_file_hold(struct wfs_file *f, uid_t uid);
struct wfs_holders *wfs_holders_new(void);
void wfs_holders_free(struct wfs_holders *hs);
void wfs_file_unhold(struct wfs_file *f);
int wfs_file_get_fd(struct wfs_file *f); /* fd or -errno */
void wfs_file_put_fd(struct wfs_file *f, int fd);

#endif
