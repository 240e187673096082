/* ops.h - the FUSE handler table, filled in by each ops_*.c. */
#ifndef WARDFS_OPS_H
#define WARDFS_OPS_H

#include "fs.h"

/* session.c: the handler table */
void wfs_fill_ops(struct fuse_lowlevel_ops *ops);

/* The handlers, by file: each ops_*.c fills in its share of the table
 * (session.c puts it together). */
void wfs_fill_entry_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_dir_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_file_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_data_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_xattr_ops(struct fuse_lowlevel_ops *ops);

#endif
