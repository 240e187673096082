/*
 * changes.c - changes of files that are not opens: truncate, chmod,
 * chown, utimes, xattrs, unlink, rmdir, rename and link.
 *
 * An open is judged and recorded in access.c; these reach the daemon by
 * path or inode without one, and were neither refused nor recorded: a
 * deny file could be truncated or given new xattrs, and a sensitive file
 * removed, without a trace. Public files' changes stay unrecorded, as
 * their opens' rows already say who uses them, and cost one classification.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "fs_policy.h"
#include "inode.h"

/* Changes of a file's content or extended attributes: judged like a
 * write-open (deny refuses, the rule's options must allow the caller). */
static bool changes_content(enum wfs_audit_kind kind)
{
	return kind == WFS_AUDIT_TRUNCATE || kind == WFS_AUDIT_SETXATTR ||
	       kind == WFS_AUDIT_REMOVEXATTR;
}

int wfs_change_begin(fuse_req_t req, struct wfs_change *ch, enum wfs_audit_kind kind,
		     struct wfs_inode *n, struct wfs_inode *parent, const char *name,
		     const char *detail)
{
	memset(&ch->c, 0, sizeof(ch->c));
	ch->c.fs = wfs_fs_of(req);
	ch->audited = false;
	ch->path = NULL;
	ch->c.kind = kind;
	ch->c.change_detail = detail;
	ch->c.flags = changes_content(kind) ? O_WRONLY : 0;
	int r = n ? wfs_inode_path(n, &ch->path) : wfs_child_path(parent, name, &ch->path);
	if (r == -ENOENT)
		return 0; /* no name to judge by (removed); the kernel checked the caller */
	if (r)
		return r;
	ch->c.path = ch->path;
	if (n)
		wfs_classify(n, ch->path, &ch->c.dec);
	else
		wfs_classify_path(ch->c.fs, ch->path, &ch->c.dec);
	bool content = changes_content(kind);
	if (ch->c.dec.cls == WFS_PUBLIC && !(content && ch->c.dec.opts))
		return 0; /* wfs_change_end lets the decision go */
	ch->audited = ch->c.dec.cls != WFS_PUBLIC;
	/* Also fills in the caller for the row. Removing, renaming or
	 * relabelling is not opening: the kernel's permission check decides
	 * those, and the row records them. */
	r = wfs_access_check(req, &ch->c);
	if (r && content) {
		wfs_change_end(ch, r);
		return r;
	}
	return 0;
}

void wfs_change_end(struct wfs_change *ch, int err)
{
	if (ch->audited) {
		ch->audited = false;  /* once */
		if (ch->c.caller_pid) /* else never judged: no caller details to record */
			wfs_access_record(&ch->c, err);
	}
	wfs_decision_put(&ch->c.dec);
	free(ch->path);
	ch->path = NULL;
}
