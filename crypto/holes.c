/*
 * holes.c - holes in encrypted files (format 2): a block whose stored bytes
 * are all zeros reads as 4096 zero bytes (block.c). Making a range read as
 * zeros punches whole blocks out of the backing file; SEEK_DATA and
 * SEEK_HOLE are answered from the backing file's own holes; space is
 * reserved with fallocate(2) on the blocks' cipher range.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto_internal.h"

#define PB ((off_t)WFS_BLOCK_SIZE)
#define CB ((off_t)WFS_CBLOCK_SIZE)

static off_t plain_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL;
	return wfs_plain_size(st.st_size);
}

/* Zeros [off, end), which holds no whole block, by rewriting its blocks. */
static int zero_in_block(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, off_t off,
			 off_t end)
{
	static const uint8_t zeros[WFS_BLOCK_SIZE];

	while (off < end) {
		size_t n = end - off < PB ? (size_t)(end - off) : (size_t)PB;
		ssize_t w = wfs_content_pwrite(k, fd, h, zeros, n, off);
		if (w < 0)
			return (int)w;
		off += w;
	}
	return 0;
}

/* Makes blocks [a, b) holes: punched, or where the backing file system
 * cannot punch, overwritten with zeros (which read the same). */
static int punch_blocks(int fd, uint64_t a, uint64_t b)
{
	static const uint8_t zeros[WFS_CBLOCK_SIZE];
	off_t at = wfs__cblock_off(a), len = (off_t)(b - a) * CB;

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	for (uint64_t i = a; i < b; i++) {
		ssize_t w = wfs__pwrite_full(fd, zeros, sizeof(zeros), wfs__cblock_off(i));
		if (w < 0)
			return (int)w;
	}
	return 0;
}

int wfs_content_zero(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, off_t off,
		     off_t len)
{
	off_t P, end;
	uint64_t a, b;
	int r;

	if (!wfs__v2(h))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((r = wfs_undo_file_flush(h->undo)) < 0)
		return r;
	if ((P = plain_of(fd)) < 0)
		return (int)P;
	end = len > P - off ? P : off + len;
	if (off >= end)
		return 0;
	/* whole blocks inside the range, never the end block */
	a = (uint64_t)((off + PB - 1) / PB);
	b = (uint64_t)(end / PB);
	if (b > (uint64_t)(P / PB))
		b = (uint64_t)(P / PB);
	if (a >= b)
		return zero_in_block(k, fd, h, off, end);
	if ((off_t)a * PB > off && (r = zero_in_block(k, fd, h, off, (off_t)a * PB)) < 0)
		return r;
	if ((r = punch_blocks(fd, a, b)) < 0)
		return r;
	if ((off_t)b * PB < end && (r = zero_in_block(k, fd, h, (off_t)b * PB, end)) < 0)
		return r;
	return 0;
}

int wfs_content_reserve(int fd, const struct wfs_file_hdr *h, off_t off, off_t len, int mode)
{
	(void)mode;
	if (off < 0 || len <= 0 || len > INT64_MAX - off)
		return -EINVAL;
	if (!wfs__v2(h))
		return 0; /* format 1 stores zeros when it grows: nothing to reserve */
	uint64_t a = (uint64_t)(off / PB), b = (uint64_t)((off + len - 1) / PB) + 1;
	off_t at = wfs__cblock_off(a), clen = (off_t)(b - a) * CB;
	/* The backing file keeps its size: the caller grows the plaintext,
	 * which stores the end block; the blocks reserved read as holes. */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, at, clen) != 0)
		return -errno;
	return 0;
}

/* The block holding cipher offset c (the header counts as block 0). */
static uint64_t block_at(off_t c)
{
	return c < (off_t)WFS_HDR_SIZE ? 0 : (uint64_t)((c - (off_t)WFS_HDR_SIZE) / CB);
}

static off_t seek_data(int fd, off_t P, off_t off)
{
	uint64_t i = (uint64_t)(off / PB);
	off_t d = lseek(fd, wfs__cblock_off(i), SEEK_DATA);

	if (d < 0)
		return errno == ENXIO ? -ENXIO : -errno;
	uint64_t j = block_at(d);
	if (j <= i)
		return off;
	return (off_t)j * PB < P ? (off_t)j * PB : -ENXIO;
}

static off_t seek_hole(int fd, off_t P, off_t off)
{
	uint64_t i = (uint64_t)(off / PB), end = (uint64_t)(P / PB);

	while (i < end) {
		off_t h0 = lseek(fd, wfs__cblock_off(i), SEEK_HOLE), h1;
		if (h0 < 0)
			return -errno;
		if (h0 >= wfs__cblock_off(end))
			break;
		/* the first block that starts in this backing hole */
		uint64_t j = (uint64_t)((h0 - (off_t)WFS_HDR_SIZE + CB - 1) / CB);
		if ((h1 = lseek(fd, h0, SEEK_DATA)) < 0) {
			if (errno != ENXIO)
				return -errno;
			h1 = INT64_MAX;
		}
		if (j < end && wfs__cblock_off(j) + CB <= h1)
			return (off_t)j * PB > off ? (off_t)j * PB : off;
		uint64_t next = block_at(h1);
		i = next > i ? next : i + 1;
	}
	return P; /* the end of the file counts as a hole */
}

off_t wfs_content_seek(int fd, const struct wfs_file_hdr *h, off_t off, int whence)
{
	/* blocks a redo entry holds are data */
	int r = wfs_undo_file_settle(h->undo, 0, INT64_MAX);
	off_t P = r < 0 ? r : plain_of(fd);

	if (P < 0)
		return P;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0 || off >= P)
		return -ENXIO;
	if (!wfs__v2(h))
		return whence == SEEK_DATA ? off : P;
	return whence == SEEK_DATA ? seek_data(fd, P, off) : seek_hole(fd, P, off);
}
