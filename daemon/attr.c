/*
 * attr.c - a file's attributes as the mount shows them: an encrypted
 * file's plaintext size, and the entries handed to the kernel with their
 * timeouts. Shared by the handlers of names, files and data.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "attr.h"
#include "inode.h"

void wfs_show_plain_size(struct wfs_inode *n, struct stat *st)
{
	if (n && S_ISREG(st->st_mode) && atomic_load(&n->form) == WFS_FORM_ENCRYPTED)
		st->st_size = wfs_plain_size(st->st_size);
}

int wfs_getattr_fd(struct wfs_inode *n, int fd, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	wfs_show_plain_size(n, st);
	return 0;
}

int wfs_stat_inode(struct wfs_inode *n, struct stat *st)
{
	struct wfs_fs *fs = n->fs;
	/* Files: by name (cheap, and there are more of them than cached fds);
	 * directories keep their fds cached as parents anyway. */
	if (n != &fs->root && n->type != S_IFDIR && wfs_inode_stat_by_name(n, st) == 0) {
		wfs_show_plain_size(n, st);
		return 0;
	}
	int fd = wfs_inode_fd(n);
	if (fd < 0)
		return fd;
	int r = wfs_getattr_fd(n, fd, st);
	wfs_inode_put_fd(n);
	return r;
}

void wfs_fill_entry(struct fuse_entry_param *e, struct wfs_inode *n, const struct stat *st)
{
	struct wfs_fs *fs = n->fs;
	memset(e, 0, sizeof(*e));
	e->ino = wfs_inode_ino(n);
	e->attr = *st;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
}
