/*
 * file_fd.c - the daemon's backing fd of an open file, and what it costs.
 *
 * The daemon's fds are shared by every user of the mount: a process may
 * hold 20,000 here, and one user holding that many files open must not
 * leave others unable to create a file. A passthrough open's I/O goes
 * from the kernel to the backing file it registered, which the kernel
 * holds itself, so the daemon closes its own fd before answering the open
 * and reopens the file by handle for the few requests that still reach it
 * (fsync, fallocate, lseek, getattr and truncate of the open file). Opens
 * the daemon serves (encrypted, forwarded) keep their fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fs.h"

void wfs_file_shed_fd(struct wfs_file *f)
{
	if (f->serve != WFS_SERVE_PASSTHROUGH || f->fd < 0)
		return;
	f->acc = fcntl(f->fd, F_GETFL) & O_ACCMODE;
	close(f->fd);
	f->fd = -1;
}

int wfs_file_get_fd(struct wfs_file *f)
{
	if (f->fd >= 0)
		return f->fd;
	return wfs_inode_open(f->inode, f->acc | O_NOATIME);
}

void wfs_file_put_fd(struct wfs_file *f, int fd)
{
	if (fd >= 0 && fd != f->fd)
		close(fd);
}
