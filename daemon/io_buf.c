/*
 * io_buf.c - each worker thread's buffer for encrypted I/O (WFS_MAX_IO
 * bytes): made on a worker's first encrypted read or write, kept for its
 * next ones, wiped when the worker ends, and wiped in every worker at once
 * when the vault is locked (keys_lock.c).
 */
#include <pthread.h>
#include <stdlib.h>

#include "io_buf.h"

/* A buffer and its place in the filesystem's list (io_bufs_lock). */
struct wfs_io_buf {
	struct wfs_fs *fs;
	struct wfs_io_buf *prev, *next;
	char data[WFS_MAX_IO];
};

/*
 * Each worker thread keeps one buffer. It holds plaintext of sensitive
 * files, so a thread that exits (libfuse ends workers it no longer needs)
 * wipes and frees it in the key's destructor; a plain __thread pointer
 * would leak a megabyte per exited thread.
 */
static void io_buf_free(void *arg)
{
	struct wfs_io_buf *b = arg;
	struct wfs_fs *fs = b->fs;
	pthread_mutex_lock(&fs->io_bufs_lock);
	if (b->prev)
		b->prev->next = b->next;
	else
		fs->io_bufs = b->next;
	if (b->next)
		b->next->prev = b->prev;
	pthread_mutex_unlock(&fs->io_bufs_lock);
	wfs_freezero(b, sizeof *b);
}

void wfs_io_bufs_init(struct wfs_fs *fs)
{
	pthread_mutex_init(&fs->io_bufs_lock, NULL);
	fs->io_buf_key_made = pthread_key_create(&fs->io_buf_key, io_buf_free) == 0;
}

void wfs_io_bufs_destroy(struct wfs_fs *fs)
{
	/* after the workers: each one's buffer went when it ended */
	if (fs->io_buf_key_made)
		pthread_key_delete(fs->io_buf_key);
	fs->io_buf_key_made = false;
	pthread_mutex_destroy(&fs->io_bufs_lock);
}

void wfs_io_bufs_wipe(struct wfs_fs *fs)
{
	pthread_mutex_lock(&fs->io_bufs_lock);
	for (struct wfs_io_buf *b = fs->io_bufs; b; b = b->next)
		wfs_memzero(b->data, sizeof b->data);
	pthread_mutex_unlock(&fs->io_bufs_lock);
}

char *wfs_io_buf(struct wfs_fs *fs)
{
	if (!fs->io_buf_key_made)
		return NULL; /* the callers answer ENOMEM */
	struct wfs_io_buf *b = pthread_getspecific(fs->io_buf_key);
	if (b)
		return b->data;
	if ((b = malloc(sizeof *b)) == NULL)
		return NULL;
	b->fs = fs;
	b->prev = NULL;
	if (pthread_setspecific(fs->io_buf_key, b) != 0) {
		free(b);
		return NULL;
	}
	pthread_mutex_lock(&fs->io_bufs_lock);
	b->next = fs->io_bufs;
	if (b->next)
		b->next->prev = b;
	fs->io_bufs = b;
	pthread_mutex_unlock(&fs->io_bufs_lock);
	return b->data;
}
