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
 * the daemon serves (encrypted, forwarded) keep their fd, so one user may
 * hold at most half of the daemon's fds that way (wfs_file_hold): more
 * opens get EMFILE, as a process's own limit would give, and the other
 * users keep the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "file_fd.h"
#include "inode.h"

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

/* Daemon-held opens per user (lock). A home has few users: a list. */
struct holder {
	uid_t uid;
	unsigned n;
};
struct wfs_holders {
	pthread_mutex_t lock;
	struct holder *v;
	size_t n, cap;
	time_t logged;
};

struct wfs_holders *wfs_holders_new(void)
{
	struct wfs_holders *hs = calloc(1, sizeof(*hs));
	if (hs)
		pthread_mutex_init(&hs->lock, NULL);
	return hs;
}

void wfs_holders_free(struct wfs_holders *hs)
{
	if (!hs)
		return;
	pthread_mutex_destroy(&hs->lock);
	free(hs->v);
	free(hs);
}

static struct holder *holder_of(struct wfs_holders *hs, uid_t uid)
{
	for (size_t i = 0; i < hs->n; i++)
		if (hs->v[i].uid == uid)
			return &hs->v[i];
	if (hs->n == hs->cap) {
		size_t cap = hs->cap ? 2 * hs->cap : 16;
		struct holder *v = realloc(hs->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		hs->v = v;
		hs->cap = cap;
	}
	hs->v[hs->n] = (struct holder){.uid = uid};
	return &hs->v[hs->n++];
}

int wfs_file_hold(struct wfs_file *f, uid_t uid)
{
	struct wfs_fs *fs = f->inode->fs;
	if (f->serve == WFS_SERVE_PASSTHROUGH || uid == 0 || fs->max_held == 0)
		return 0;
	struct wfs_holders *hs = fs->holders;
	pthread_mutex_lock(&hs->lock);
	struct holder *h = holder_of(hs, uid);
	int r = 0;
	if (!h) {
		r = -ENOMEM;
	} else if (h->n >= fs->max_held) {
		time_t now = time(NULL);
		if (now != hs->logged) {
			hs->logged = now;
			fprintf(stderr,
				"wardfs: uid %u holds %u files open through the daemon, its limit: "
				"more opens get EMFILE until it closes some\n",
				(unsigned)uid, h->n);
		}
		r = -EMFILE;
	} else {
		h->n++;
		f->held = true;
		f->uid = uid;
	}
	pthread_mutex_unlock(&hs->lock);
	return r;
}

void wfs_file_unhold(struct wfs_file *f)
{
	if (!f->held)
		return;
	struct wfs_holders *hs = f->inode->fs->holders;
	pthread_mutex_lock(&hs->lock);
	struct holder *h = holder_of(hs, f->uid);
	if (h && h->n > 0)
		h->n--;
	pthread_mutex_unlock(&hs->lock);
	f->held = false;
}
