/*
 * writebehind.c - starts the disk writeback of backing data the daemon has
 * just written, once a contiguous run of it reaches WFS_WRITE_BEHIND bytes.
 *
 * The mount has no writeback cache (it would rule out passthrough,
 * docs/design.md), so every write(2) reaches the daemon before it returns,
 * and the backing file's copy would then sit dirty until an fsync or the
 * kernel's flusher (30 s). A program that writes a large file and fsyncs it
 * would wait for encryption and then for the disk, one after the other.
 * Starting the writeback as each run completes lets the disk write one part
 * while the daemon encrypts the next (1 GiB written and fsync'ed to a
 * sensitive file: 780-870 MB/s instead of 480-590 MB/s here; runs of 8 MiB
 * measured slower than 1 MiB). It also narrows what a crash can lose.
 *
 * The price: a large file deleted within seconds of being written has been
 * written to disk anyway. Files under 1 MiB and scattered writes
 * (databases, editors) never form such a run and are left to the backing
 * filesystem's own writeback and the fsync.
 */
#include <fcntl.h>

#include "writebehind.h"

#define WFS_WRITE_BEHIND (1 << 20)

void wfs_write_behind(struct wfs_inode *n, int fd, off_t start, off_t end)
{
	off_t from = 0, len = 0;

	pthread_mutex_lock(&n->wb_lock);
	/* a write that starts inside or right after the run extends it;
	 * anything else starts a new run (writes may arrive out of order) */
	if (start < n->wb_start || start > n->wb_end) {
		n->wb_start = start;
		n->wb_end = end;
	} else if (end > n->wb_end) {
		n->wb_end = end;
	}
	if (n->wb_end - n->wb_start >= WFS_WRITE_BEHIND) {
		from = n->wb_start;
		len = n->wb_end - n->wb_start;
		n->wb_start = n->wb_end;
	}
	pthread_mutex_unlock(&n->wb_lock);
	/* SYNC_FILE_RANGE_WRITE starts the writeback without waiting for it
	 * (only, like any writer, for room in a full device queue) */
	if (len > 0 && sync_file_range(fd, from, len, SYNC_FILE_RANGE_WRITE) < 0) {
		/* a hint: the fsync that matters still writes everything */
	}
}
