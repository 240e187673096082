/* creds.h - acting as the caller: creation with its ids and umask, data writes as the writer,
 * capabilities. */
#ifndef WARDFS_CREDS_H
#define WARDFS_CREDS_H

#include "fs.h"

/* creds.c: act as the calling user for object creation, with the
 * caller's umask (this thread's only, until restore). */
struct wfs_creds {
	uid_t uid;
	gid_t gid;
	bool switched;
	bool masked; /* the thread's umask is the request's */
};
int wfs_creds_become(fuse_req_t req, struct wfs_creds *c);
void wfs_creds_restore(struct wfs_creds *c);
/* Data writes as the writer (creds.c's comment: space, ext4's reserve and
 * quotas): fsuid becomes the caller's, or fd's owner's for root's and the
 * kernel's requests, until write_end with what begin returned. */
uid_t wfs_creds_write_begin(fuse_req_t req, int fd);
void wfs_creds_write_end(uid_t was);
/* fuse_passthrough_open as fd's owner: the kernel keeps these credentials
 * for every passthrough read and write of the file. */
int wfs_creds_passthrough_open(fuse_req_t req, int fd);
/* Gives up every capability the daemon does not use (CAP_SYS_RESOURCE
 * first), from all sets and the bounding set; before any thread starts. */
int wfs_creds_drop_unused(void);

#endif
