/* writebehind.h - early writeback of the bytes the daemon wrote. */
#ifndef WARDFS_WRITEBEHIND_H
#define WARDFS_WRITEBEHIND_H

#include "fs.h"

/* writebehind.c: the daemon wrote backing bytes [start, end) of n through
 * fd; starts their writeback once a contiguous run is long enough. */
void wfs_write_behind(struct wfs_inode *n, int fd, off_t start, off_t end);

#endif
