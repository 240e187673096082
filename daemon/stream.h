/* stream.h - read-ahead of encrypted files read in order. */
#ifndef WARDFS_STREAM_H
#define WARDFS_STREAM_H

#include "fs.h"

/* stream.c: read-ahead of encrypted files read in order. */
struct wfs_stream;
/* Opens [off, off + size) from f's ring: bytes, -EIO, or -EAGAIN when the
 * ring does not hold it. Called with n->io_lock held shared. */
ssize_t wfs_stream_read(struct wfs_stream *s, char *buf, size_t size, off_t off);
/* Notes a served read of f (missed: not from the ring): starts f's stream
 * once reads run in order, and moves it to where they went. */
void wfs_stream_note(struct wfs_file *f, off_t off, size_t size, bool missed);
/* Reads plaintext [off, off + size) of encrypted f: from its stream's
 * ring when that holds the range, else from the file; then notes the
 * read. Bytes or -errno; *streamed (may be NULL): the ring served it. */
ssize_t wfs_stream_pread(struct wfs_file *f, char *buf, size_t size, off_t off, bool *streamed);
/* Ends f's stream, if any: at release. */
void wfs_stream_stop(struct wfs_file *f);

#endif
