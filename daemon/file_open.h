/* file_open.h - opening, creating and closing regular files. */
#ifndef WARDFS_FILE_OPEN_H
#define WARDFS_FILE_OPEN_H

#include "fs.h"

/* file_open.c: opens n as fi asks (the policy's decision, its audit row,
 * the serving mode); fi->fh is the open file. 0 or -errno. */
int wfs_open_file(fuse_req_t req, struct wfs_inode *n, struct fuse_file_info *fi);
/* Creates parent/name, a regular file, as the caller, in the form its
 * class requires, and opens it as fi asks; *e is its entry. */
int wfs_create_file(fuse_req_t req, struct wfs_inode *parent, const char *name, mode_t mode,
		    struct fuse_file_info *fi, struct fuse_entry_param *e);
/* Closes an open file (release, or one the kernel never got). */
void wfs_file_close(fuse_req_t req, struct wfs_file *f);
/* Makes empty file fd (inode n, sensitive) encrypted: writes a fresh header
 * into the file and n->hdr. The caller keeps other opens from racing it
 * (open_lock or io_lock). Returns 0 or -errno. */
int wfs_file_begin_encrypted(struct wfs_inode *n, int fd);
/* Gives h (n's header, just read or written) n's undo journal state, made
 * on first use. */
void wfs_inode_undo(struct wfs_inode *n, struct wfs_file_hdr *h, off_t cipher_size);

#endif
