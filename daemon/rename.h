/* rename.h - renames across classes: the class check of a moved tree, and converting a file into
 * its new form. */
#ifndef WARDFS_RENAME_H
#define WARDFS_RENAME_H

#include "fs.h"

/* rename_class.c: 0 when n moved to newparent/newname keeps the class of
 * every file it holds, -EXDEV when not (so mv copies into the new form). */
int wfs_rename_keeps_class(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname);

/* rename_convert.c: a rename of a regular file to a path of another class
 * that sheds nothing, done by converting it into the new path's form. 0
 * when done (n has lost its name: the kernel looks it up again), 1 when
 * the file is in that form already (rename it as usual), -EXDEV when it
 * may not be converted, -errno. */
#define WFS_CONVERT_MAX ((off_t)64 << 20)
struct wfs_bname;
/* from_b and newbname: the two names on disk (names.h). */
int wfs_rename_convert(struct wfs_inode *parent, const struct wfs_bname *from_b, const char *name,
		       struct wfs_inode *n, struct wfs_inode *np, const char *newname,
		       const char *newbname, unsigned flags);
/* Removes what a crash left of conversions in BACKING/.wardfs. */
void wfs_rename_convert_cleanup(int vault_dirfd);

#endif
