/* access.h - the open-time decision and its audit row, and changes that are not opens. */
#ifndef WARDFS_ACCESS_H
#define WARDFS_ACCESS_H

#include "fs.h"

/* access.c: the open-time decision and its audit record */
struct wfs_open_ctx {
	struct wfs_fs *fs;
	const char *path;
	int flags;
	bool create;
	struct wfs_decision dec;
	const char *form;
	uid_t caller_uid;
	gid_t caller_gid;
	pid_t caller_pid;
	bool have_proc;
	struct wfs_procinfo proc;
	/* audit detail: an allow-exe= decision's program identity and reason */
	char detail[192];
	/* a change other than an open (changes.c), or WFS_AUDIT_OPEN */
	enum wfs_audit_kind kind;
	const char *change_detail; /* e.g. a rename's new path */
	/* file_open.c: a row holds the outcome so far; the audit could not
	 * keep it */
	bool recorded, unrecordable;
};
/* 0, or -EACCES when the class or the rule's options refuse the caller. */
int wfs_access_check(fuse_req_t req, struct wfs_open_ctx *c);
/* Records the open with its outcome; -EACCES when the row cannot be kept
 * and the audit fails closed. */
int wfs_access_record(struct wfs_open_ctx *c, int err);
void wfs_fs_integrity_failure(struct wfs_inode *n, const char *what);

/*
 * changes.c: changes of files that are not opens. A deny path refuses
 * every change of its content and xattrs (truncate, setxattr,
 * removexattr), as do the options of a rule that would refuse the caller
 * a write-open; every change of a sensitive or deny file is an audit row,
 * refused ones included. Between begin (0 or -EACCES, already recorded)
 * and end (records the outcome) the handler makes the change.
 */
struct wfs_change {
	struct wfs_open_ctx c;
	char *path; /* freed by wfs_change_end */
	bool audited;
};
/* Of the file n, or (n NULL) of name in parent. */
int wfs_change_begin(fuse_req_t req, struct wfs_change *ch, enum wfs_audit_kind kind,
		     struct wfs_inode *n, struct wfs_inode *parent, const char *name,
		     const char *detail);
void wfs_change_end(struct wfs_change *ch, int err);

#endif
