/*
 * io_buf.c - each worker thread's buffer for encrypted I/O (WFS_MAX_IO
 * bytes): made on a worker's first encrypted read or write, kept for its
 * next ones, wiped when the worker ends.
 */
#include <pthread.h>
#include <stdlib.h>

#include "io_buf.h"

/*
 * Each worker thread keeps one WFS_MAX_IO buffer. It holds plaintext of
 * sensitive files, so a thread that exits (libfuse ends workers it no
 * longer needs) wipes and frees it in the key's destructor; a plain
 * __thread pointer would leak a megabyte per exited thread.
 */
static void io_buf_free(void *buf)
{
	wfs_freezero(buf, WFS_MAX_IO);
}

void wfs_io_bufs_init(struct wfs_fs *fs)
{
	fs->io_buf_key_made = pthread_key_create(&fs->io_buf_key, io_buf_free) == 0;
}

void wfs_io_bufs_destroy(struct wfs_fs *fs)
{
	/* after the workers: each one's buffer went when it ended */
	if (fs->io_buf_key_made)
		pthread_key_delete(fs->io_buf_key);
	fs->io_buf_key_made = false;
}

char *wfs_io_buf(struct wfs_fs *fs)
{
	if (!fs->io_buf_key_made)
		return NULL; /* the callers answer ENOMEM */
	char *buf = pthread_getspecific(fs->io_buf_key);
	if (buf)
		return buf;
	if ((buf = malloc(WFS_MAX_IO)) != NULL && pthread_setspecific(fs->io_buf_key, buf) != 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}
