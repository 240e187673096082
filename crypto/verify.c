/*
 * verify.c - checks every block of an encrypted file (wardfs fsck) and
 * trims a damaged tail (fsck --repair): what a crash in the middle of a
 * write that grew the file can leave when nothing else repaired it, or,
 * asked to, turns damaged blocks in the middle into holes (fsck --repair
 * --hole-damaged: a power cut's torn writes in a file nobody fsync'ed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

#define PB ((off_t)WFS_BLOCK_SIZE)
#define CB ((size_t)WFS_CBLOCK_SIZE)

/* What the walk found: the first damaged block and whether any block
 * after it was intact (damage in the middle, not only at the end). */
struct scan {
	wfs_damage_fn fn;
	void *arg;
	long bad;
	uint64_t first_bad;
	bool good_after_bad;
};

static void damage(struct scan *s, uint64_t i, off_t at, const char *why)
{
	if (s->bad++ == 0)
		s->first_bad = i;
	if (s->fn != NULL)
		s->fn(s->arg, i, at, why);
}

/* Why stored block i (clen bytes) fails, trying the other reading of its
 * end flag to tell blocks appended or cut from plain damage. */
static const char *why_bad(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			   bool end, const uint8_t *cb, size_t clen, uint8_t *tmp)
{
	if (clen < WFS_BLOCK_OVERHEAD || (!wfs__v2(h) && clen == WFS_BLOCK_OVERHEAD))
		return "truncated block";
	if (wfs__v2(h) && !end && wfs__open_block(k, h, i, true, cb, clen, tmp) >= 0)
		return "the end block is followed by more blocks (blocks appended)";
	return "authentication failed";
}

/* Format 2: a block in a hole reads as zeros, which is what a hole is, so
 * a walk goes on where the data starts again (or at the end block): a
 * terabyte hole is not read through. Format 1 has no holes: every block. */
static uint64_t next_data_block(int fd, uint64_t b, uint64_t nb)
{
	off_t at = wfs__cblock_off(b);
	off_t d = lseek(fd, at, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? nb : b;
	if (d <= at)
		return b;
	uint64_t nd = (uint64_t)(d - (off_t)WFS_HDR_SIZE) / CB;
	return nd > nb ? nb : nd;
}

static long walk(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, struct scan *s)
{
	uint8_t *scr, tmp[WFS_BLOCK_SIZE];
	struct stat st;
	uint64_t nb;
	size_t tail;

	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL;
	nb = (uint64_t)(st.st_size - WFS_HDR_SIZE) / CB; /* whole stored blocks */
	tail = (size_t)(st.st_size - WFS_HDR_SIZE) % CB;
	for (uint64_t b0 = 0; b0 <= nb; b0 += WFS_SCRATCH_BLOCKS) {
		if (wfs__v2(h) && b0 < nb)
			b0 = next_data_block(fd, b0, nb);
		ssize_t got =
			wfs__pread_full(fd, scr, WFS_SCRATCH_BLOCKS * CB, wfs__cblock_off(b0));

		if (got < 0) {
			sodium_memzero(tmp, sizeof(tmp));
			return got;
		}
		for (uint64_t j = 0; j * CB < (size_t)got; j++) {
			uint64_t i = b0 + j;
			size_t avail = (size_t)got - j * CB;
			bool end;

			if (avail > CB)
				avail = CB;
			/* format 2: only the short last block is the end block */
			end = wfs__v2(h) && i == nb;
			if (wfs__open_block(k, h, i, end, scr + j * CB, avail, tmp) >= 0) {
				if (s->bad > 0)
					s->good_after_bad = true;
				continue;
			}
			damage(s, i, wfs__cblock_off(i),
			       why_bad(k, h, i, end, scr + j * CB, avail, tmp));
		}
		if ((size_t)got < WFS_SCRATCH_BLOCKS * CB)
			break;
	}
	if (wfs__v2(h) && tail == 0)
		damage(s, nb, wfs__cblock_off(nb),
		       "no end block: the file was cut at a block boundary");
	sodium_memzero(tmp, sizeof(tmp));
	return s->bad;
}

long wfs_content_verify(const struct wfs_keys *k, int fd, wfs_damage_fn fn, void *arg)
{
	struct scan s = {.fn = fn, .arg = arg};
	struct wfs_file_hdr h = {0};
	int r = wfs_hdr_read(k, fd, &h);

	if (r == -EIO) {
		uint8_t raw[WFS_HDR_SIZE];
		ssize_t n = wfs__pread_full(fd, raw, sizeof(raw), 0);

		damage(&s, WFS_BLOCK_HEADER, 0, "authentication failed");
		if (n < (ssize_t)WFS_HDR_SIZE)
			return s.bad; /* too short to hold blocks */
		/* check the blocks against the file id and format the header claims */
		memcpy(h.file_id, raw + WFS_HDR_OFF_FILE_ID, WFS_FILE_ID_LEN);
		h.version = wfs__get_le16(raw + 8) == WFS_FORMAT_1 ? WFS_FORMAT_1 : WFS_FORMAT_2;
	} else if (r < 0) {
		return r;
	} else if (r == WFS_FORM_PLAIN) {
		/* The caller found the mark: a header that never reached the
		 * disk (a power cut after the create), or one overwritten. */
		damage(&s, WFS_BLOCK_HEADER, 0, "no header (the file is marked encrypted)");
		return s.bad;
	} else if (r != WFS_FORM_ENCRYPTED) {
		return -EINVAL;
	}
	return walk(k, fd, &h, &s);
}

off_t wfs_content_trim_tail(const struct wfs_keys *k, int fd, off_t *was)
{
	struct scan s = {0};
	struct wfs_file_hdr h;
	struct stat st;
	long r;

	if (fstat(fd, &st) != 0)
		return -errno;
	r = wfs_hdr_read(k, fd, &h);
	if (r == WFS_FORM_PLAIN || r == WFS_FORM_EMPTY ||
	    (r == -EIO && st.st_size < (off_t)WFS_HDR_SIZE)) {
		/* marked, and no header: nothing in it can be read (the blocks
		 * are sealed with the header's file id), so nothing is kept */
		*was = st.st_size;
		return ftruncate(fd, 0) != 0 || fsync(fd) != 0 ? -errno : 0;
	}
	if (r < 0)
		return r;
	if (r != WFS_FORM_ENCRYPTED)
		return -EINVAL;
	*was = wfs_plain_size(st.st_size);
	if ((r = walk(k, fd, &h, &s)) < 0)
		return r;
	if (s.bad == 0)
		return *was;
	if (s.good_after_bad)
		return -EIO; /* damage before intact blocks: trimming would lose them */
	/* keep blocks [0, first_bad): whole ones; give format 2 a new end block */
	off_t keep = (off_t)s.first_bad * PB;
	if (wfs__v2(&h)) {
		uint8_t cb[WFS_BLOCK_OVERHEAD];
		ssize_t w;

		if ((r = wfs__seal_block(k, &h, s.first_bad, true, NULL, 0, cb)) < 0)
			return r;
		if ((w = wfs__pwrite_full(fd, cb, sizeof(cb), wfs__cblock_off(s.first_bad))) < 0)
			return w;
	}
	if (ftruncate(fd, wfs__cipher_size(&h, keep)) != 0 || fsync(fd) != 0)
		return -errno;
	return keep;
}

struct damaged_list {
	uint64_t *at;
	size_t n, cap;
	int err;
};

static void collect(void *arg, uint64_t block, off_t cipher_off, const char *why)
{
	struct damaged_list *l = arg;
	(void)cipher_off, (void)why;
	if (block == WFS_BLOCK_HEADER || l->err)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		uint64_t *at = realloc(l->at, cap * sizeof(*at));
		if (at == NULL) {
			l->err = -ENOMEM;
			return;
		}
		l->at = at, l->cap = cap;
	}
	l->at[l->n++] = block;
}

long wfs_content_hole_damaged(const struct wfs_keys *k, int fd)
{
	struct damaged_list l = {0};
	struct scan s = {.fn = collect, .arg = &l};
	struct wfs_file_hdr h;
	struct stat st;
	long r, holed = 0;

	if ((r = wfs_hdr_read(k, fd, &h)) != WFS_FORM_ENCRYPTED)
		return r == -EIO || r >= 0 ? 0 : r; /* no header to go by: trim_tail's */
	if (!wfs__v2(&h))
		return -EOPNOTSUPP; /* format 1 has no holes to stand for lost blocks */
	if (fstat(fd, &st) != 0)
		return -errno;
	uint64_t nb = (uint64_t)(st.st_size - WFS_HDR_SIZE) / CB; /* the end block's index */
	if ((r = walk(k, fd, &h, &s)) < 0 || (r = l.err) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		if (l.at[i] >= nb)
			continue; /* the end block: never a hole; wfs_content_trim_tail's */
		off_t at = wfs__cblock_off(l.at[i]);
		/* punched, or written as zeros where the file system cannot */
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, (off_t)CB) != 0) {
			static const uint8_t zeros[WFS_CBLOCK_SIZE];
			ssize_t w = wfs__pwrite_full(fd, zeros, CB, at);
			if (w < 0) {
				r = w;
				goto out;
			}
		}
		holed++;
	}
	r = holed && fsync(fd) != 0 ? -errno : holed;
out:
	free(l.at);
	return r;
}
