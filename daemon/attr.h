/* attr.h - attributes as the mount shows them. */
#ifndef WARDFS_ATTR_H
#define WARDFS_ATTR_H

#include "fs.h"

/* attr.c */
int wfs_getattr_fd(struct wfs_inode *n, int fd, struct stat *st);
int wfs_stat_inode(struct wfs_inode *n, struct stat *st);
/* Shows an encrypted file's plaintext size in *st (its form, not class). */
void wfs_show_plain_size(struct wfs_inode *n, struct stat *st);
void wfs_fill_entry(struct fuse_entry_param *e, struct wfs_inode *n, const struct stat *st);

#endif
