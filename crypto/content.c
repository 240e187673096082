/*
 * content.c - random-access I/O on an encrypted file: a 64-byte header and
 * then 4096-byte plaintext blocks stored as nonce || AES-256-GCM ciphertext
 * || tag, authenticated with the file id, the block index and (format 2)
 * whether the block is the file's end block (block.c). Reads fetch the
 * whole cipher range in one pread; writes build every changed block in the
 * thread's scratch buffer and store it with one pwrite (per 1 MiB). Runs
 * of whole blocks are opened or sealed on two cores (parallel.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

#define PB ((off_t)WFS_BLOCK_SIZE)
#define CB ((size_t)WFS_CBLOCK_SIZE)

/*
 * Runs of whole blocks (the bulk of any large read or write) are opened or
 * sealed on two cores (parallel.c): below PAR_MIN blocks, waking the
 * helper costs more than it saves. A run never holds an end block.
 */
#define PAR_MIN 16

struct run {
	const struct wfs_keys *k;
	const struct wfs_file_hdr *h;
	uint64_t first;	   /* index of the run's first block */
	const uint8_t *in; /* cipher blocks (open) or plaintext (seal) */
	uint8_t *out;	   /* plaintext (open) or cipher blocks, nonces in place (seal) */
};

static int open_range(void *arg, size_t lo, size_t hi)
{
	const struct run *r = arg;

	for (size_t j = lo; j < hi; j++) {
		ssize_t n = wfs__open_block(r->k, r->h, r->first + j, false, r->in + j * CB, CB,
					    r->out + j * (size_t)PB);
		if (n < 0)
			return (int)n;
	}
	return 0;
}

static int seal_range(void *arg, size_t lo, size_t hi)
{
	const struct run *r = arg;

	for (size_t j = lo; j < hi; j++) {
		int e = wfs__seal_block_nonce(r->k, r->h, r->first + j, false,
					      r->in + j * (size_t)PB, (size_t)PB, r->out + j * CB);
		if (e != 0)
			return e;
	}
	return 0;
}

/* Opens count whole stored blocks from cb into pt (count * 4096 bytes). */
static int open_blocks(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t first,
		       const uint8_t *cb, size_t count, uint8_t *pt)
{
	struct run r = {k, h, first, cb, pt};

	return wfs__par_range(count, PAR_MIN, open_range, &r);
}

/* Seals count (<= WFS_SCRATCH_BLOCKS) whole plaintext blocks into cb
 * (count * CB bytes). The nonces are drawn here, in block order, on the
 * calling thread. */
static int seal_blocks(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t first,
		       const uint8_t *pt, size_t count, uint8_t *cb)
{
	struct run r = {k, h, first, pt, cb};
	uint8_t nonces[WFS_SCRATCH_BLOCKS * WFS_NONCE_LEN];

	/* one draw for the run: a getrandom(2) per block showed in profiles */
	wfs__random(nonces, count * WFS_NONCE_LEN);
	for (size_t j = 0; j < count; j++)
		memcpy(cb + j * CB, nonces + j * WFS_NONCE_LEN, WFS_NONCE_LEN);
	return wfs__par_range(count, PAR_MIN, seal_range, &r);
}

/* Reads and opens stored block i of a file of plain bytes: -EIO unless it
 * authenticates and holds what the size says. */
static int read_block(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, off_t plain,
		      uint64_t i, uint8_t *pt)
{
	uint8_t cb[WFS_CBLOCK_SIZE];
	size_t want = wfs__blen(h, plain, i);
	ssize_t n = wfs__pread_full(fd, cb, want + WFS_BLOCK_OVERHEAD, wfs__cblock_off(i));

	if (n < 0)
		return (int)n;
	n = wfs__open_block(k, h, i, wfs__is_end(h, plain, i), cb, (size_t)n, pt);
	if (n < 0)
		return (int)n;
	return (size_t)n == want ? 0 : -EIO;
}

/*
 * Opens plaintext [pos, pos+n) out of stored blocks b0.. held in cb (got
 * bytes from the start of block b0; pos lies in block b0) into out. eof
 * says that got ends where the file ends; otherwise bytes past the last
 * whole block in cb are not looked at. Returns the bytes produced: n, or
 * fewer where the file ends; or -EIO.
 */
static ssize_t open_span(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t b0,
			 const uint8_t *cb, size_t got, bool eof, uint8_t *out, size_t n, off_t pos)
{
	uint8_t tmp[WFS_BLOCK_SIZE];
	uint64_t stored = got / CB;	  /* whole blocks held */
	size_t tail = eof ? got % CB : 0; /* and a short last one */
	uint64_t need = (uint64_t)((pos + (off_t)n - 1) / PB) - b0 + 1;
	size_t done = 0;
	ssize_t r = 0;

	/* Format 2 ends in a short end block. When the range reaches the last
	 * whole block: nothing after it means the file was cut at a block
	 * boundary; an end block without data is checked here, as no read of
	 * data will ever need it (one with data is, by the read of its data). */
	if (wfs__v2(h) && eof && got > 0 && need >= stored) {
		if (tail == 0)
			return -EIO;
		if (need == stored && tail <= WFS_BLOCK_OVERHEAD &&
		    wfs__open_block(k, h, b0 + stored, true, cb + stored * CB, tail, tmp) < 0)
			return -EIO;
	}
	for (uint64_t j = 0; done < n && (j < stored || (j == stored && tail > 0)); j++) {
		uint64_t bi = b0 + j;
		size_t skip = (size_t)(pos + (off_t)done - (off_t)bi * PB);
		size_t want = WFS_BLOCK_SIZE - skip, plen, take;
		bool whole = j < stored;

		if (want > n - done)
			want = n - done;
		if (whole && skip == 0 && want == WFS_BLOCK_SIZE) {
			/* blocks j.. that are whole, stored whole, and wanted whole */
			size_t run = (n - done) / WFS_BLOCK_SIZE;

			if (run > stored - j)
				run = stored - j;
			if ((r = open_blocks(k, h, bi, cb + j * CB, run, out + done)) < 0)
				goto fail;
			done += run * WFS_BLOCK_SIZE;
			j += run - 1;
			continue;
		}
		/* a short stored block is the last one: the end block in format 2 */
		r = wfs__open_block(k, h, bi, wfs__v2(h) && !whole, cb + j * CB, whole ? CB : tail,
				    tmp);
		if (r < 0)
			goto fail;
		plen = (size_t)r;
		take = plen > skip ? plen - skip : 0;
		if (take > want)
			take = want;
		memcpy(out + done, tmp + skip, take);
		done += take;
		if (plen < WFS_BLOCK_SIZE)
			break;
	}
	sodium_memzero(tmp, sizeof(tmp));
	return (ssize_t)done;
fail:
	sodium_memzero(tmp, sizeof(tmp));
	return r;
}

/* Clamps a request so that off + n fits off_t and n fits ssize_t. */
static size_t clamp_len(size_t n, off_t off)
{
	if (n > (size_t)SSIZE_MAX)
		n = (size_t)SSIZE_MAX;
	if ((off_t)n > INT64_MAX - off)
		n = (size_t)(INT64_MAX - off);
	return n;
}

ssize_t wfs_content_pread(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, void *buf,
			  size_t n, off_t off)
{
	uint8_t *out = buf, *scr;
	size_t done = 0;
	ssize_t r;

	if (off < 0)
		return -EINVAL;
	if ((n = clamp_len(n, off)) == 0)
		return 0;
	if ((r = wfs_undo_file_settle(h->undo, wfs__cblock_off((uint64_t)(off / PB)),
				      wfs__cblock_off((uint64_t)((off + (off_t)n - 1) / PB) + 1))) <
	    0)
		return r;
	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	while (done < n) {
		off_t pos = off + (off_t)done;
		uint64_t b0 = (uint64_t)(pos / PB);
		size_t span = (size_t)((off_t)WFS_SCRATCH_BLOCKS * PB - (pos - (off_t)b0 * PB));

		if (span > n - done)
			span = n - done;
		uint64_t nb = (uint64_t)((pos + (off_t)span - 1) / PB) - b0 + 1;
		/* a little more than the blocks: what follows them? */
		size_t ask = nb * CB + WFS_PEEK;
		if ((r = wfs__pread_full(fd, scr, ask, wfs__cblock_off(b0))) < 0)
			goto fail;
		bool eof = (size_t)r < ask;
		if ((r = open_span(k, h, b0, scr, eof ? (size_t)r : nb * CB, eof, out + done, span,
				   pos)) < 0)
			goto fail;
		done += (size_t)r;
		if ((size_t)r < span)
			break; /* the file ends here */
	}
	return (ssize_t)done;
fail:
	sodium_memzero(buf, n); /* nothing unauthenticated leaves here */
	return r;
}

ssize_t wfs_content_open(const struct wfs_keys *k, const struct wfs_file_hdr *h, const void *cipher,
			 size_t clen, off_t coff, bool eof, void *buf, size_t n, off_t off)
{
	ssize_t r;

	if (off < 0)
		return -EINVAL;
	if ((n = clamp_len(n, off)) == 0)
		return 0;
	uint64_t b0 = (uint64_t)(off / PB);
	off_t at = wfs__cblock_off(b0);
	if (at < coff || at - coff > (off_t)clen)
		return -EINVAL; /* the range does not start inside cipher */
	r = open_span(k, h, b0, (const uint8_t *)cipher + (at - coff), clen - (size_t)(at - coff),
		      eof, buf, n, off);
	if (r < 0)
		sodium_memzero(buf, n);
	return r;
}

/*
 * A write in progress: data [off, end) (data NULL: only grow to end) over
 * a file of plain size P that will have newsize bytes.
 */
struct wctx {
	const struct wfs_keys *k;
	const struct wfs_file_hdr *h;
	int fd;
	const uint8_t *data;
	off_t off, end, P, newsize;
	off_t S; /* cipher size before the write (for the undo journal) */
};

/* Stores n cipher bytes at at, the old ones kept in the undo journal
 * (undo.c) until the write is done. */
static ssize_t store(const struct wfs_file_hdr *h, int fd, const uint8_t *buf, size_t n, off_t at,
		     off_t old_size)
{
	struct wfs__undo_ticket t;
	int r = wfs__undo_begin(h->undo, fd, h, at, n, old_size, &t);
	ssize_t w;

	if (r < 0)
		return r;
	w = wfs__pwrite_full(fd, buf, n, at);
	wfs__undo_end(h->undo, &t);
	return w;
}

/*
 * Seals block i as it is after the write into cb: the write's bytes over
 * the old ones (read and opened only where the write leaves some of them),
 * zeros past the old end. Returns the cipher bytes or -errno.
 */
static ssize_t build_block(const struct wctx *w, uint64_t i, uint8_t *cb, uint8_t tmp[PB])
{
	const struct wfs_file_hdr *h = w->h;
	off_t bs = (off_t)i * PB;
	size_t nl = wfs__blen(h, w->newsize, i);
	size_t ol = i < wfs__nblocks(h, w->P) ? wfs__blen(h, w->P, i) : 0;
	off_t lo = w->off > bs ? w->off : bs, hi = w->end < bs + PB ? w->end : bs + PB;
	size_t ws = 0, we = 0;
	const uint8_t *pt = tmp;
	int r;

	if (w->data != NULL && hi > lo) {
		ws = (size_t)(lo - bs);
		we = (size_t)(hi - bs);
	}
	if (nl > 0 && ws == 0 && we >= nl) {
		pt = w->data + (bs - w->off); /* the write covers the whole block */
	} else {
		memset(tmp, 0, nl);
		if (ol > 0 && !(ws == 0 && we >= ol) &&
		    (r = read_block(w->k, w->fd, h, w->P, i, tmp)) < 0)
			return r;
		if (we > ws)
			memcpy(tmp + ws, w->data + (bs + (off_t)ws - w->off), we - ws);
	}
	r = wfs__seal_block(w->k, h, i, wfs__is_end(h, w->newsize, i), pt, nl, cb);
	return r < 0 ? r : (ssize_t)(nl + WFS_BLOCK_OVERHEAD);
}

/* Rebuilds and stores blocks first..last, a scratch buffer (1 MiB) per pwrite. */
static int store_blocks(const struct wctx *w, uint64_t first, uint64_t last)
{
	uint8_t *scr, tmp[WFS_BLOCK_SIZE];
	ssize_t r = 0;

	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	for (uint64_t c = first; c <= last;) {
		uint64_t nb = last - c + 1;
		size_t clen = 0;

		if (nb > WFS_SCRATCH_BLOCKS)
			nb = WFS_SCRATCH_BLOCKS;
		for (uint64_t j = 0; j < nb; j++) {
			uint64_t i = c + j;
			off_t bs = (off_t)i * PB;

			if (w->data != NULL && w->off <= bs && w->end >= bs + PB &&
			    !wfs__is_end(w->h, w->newsize, i)) {
				/* blocks j.. that the write covers whole */
				size_t run = nb - j, covered = (size_t)((w->end - bs) / PB);

				if (run > covered)
					run = covered;
				if ((r = seal_blocks(w->k, w->h, i, w->data + (bs - w->off), run,
						     scr + clen)) < 0)
					goto out;
				clen += run * CB;
				j += run - 1;
				continue;
			}
			if ((r = build_block(w, i, scr + clen, tmp)) < 0)
				goto out;
			clen += (size_t)r;
		}
		if ((r = store(w->h, w->fd, scr, clen, wfs__cblock_off(c), w->S)) < 0)
			goto out;
		c += nb;
	}
	r = 0;
out:
	sodium_memzero(tmp, sizeof(tmp));
	return (int)r;
}

/*
 * A write of whole blocks first..last below the end block (format 2): its
 * sealed blocks go to a redo entry (undo.c) instead of over durable bytes.
 * 0 when they did, 1 when the write is to be made in place, or -errno.
 */
static int redo_blocks(const struct wctx *w, uint64_t first, uint64_t last)
{
	size_t nb = (size_t)(last - first + 1);
	uint8_t *scr;
	int r;

	if (w->h->undo == NULL || nb * CB > WFS_REDO_MAX)
		return 1;
	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	if ((r = seal_blocks(w->k, w->h, first, w->data, nb, scr)) < 0)
		return r;
	return wfs__undo_redo(w->h->undo, w->fd, w->h, scr, nb * CB, wfs__cblock_off(first), w->S);
}

/*
 * Stores data [off, off+n) (data NULL and n 0 to only grow to off). Format
 * 1 rebuilds every block from the one holding min(off, P) to the one
 * holding the end, zeros in between. Format 2 rebuilds the blocks the data
 * touches and, when the file grows, its old end block and its new one;
 * whole blocks between the old end and off are left as holes.
 */
static ssize_t write_range(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			   const uint8_t *data, size_t n, off_t off)
{
	struct wctx w = {.k = k, .h = h, .fd = fd, .data = data, .off = off};
	struct stat st;
	uint64_t first, last, old_end;
	int r;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL; /* no header: the caller must wfs_hdr_write first */
	if ((off_t)n > INT64_MAX - off || wfs__cipher_size(h, off + (off_t)n) < 0)
		return -EFBIG;
	w.S = st.st_size;
	w.P = wfs_plain_size(st.st_size);
	w.end = off + (off_t)n;
	w.newsize = w.end > w.P ? w.end : w.P;
	if (!wfs__v2(h)) {
		off_t start = off < w.P ? off : w.P;
		if (start >= w.end)
			return 0;
		r = store_blocks(&w, (uint64_t)(start / PB), (uint64_t)((w.end - 1) / PB));
		return r < 0 ? r : (ssize_t)n;
	}
	if (data == NULL && w.end <= w.P)
		return 0;
	first = (uint64_t)((data != NULL ? off : w.newsize) / PB);
	last = w.newsize > w.P ? (uint64_t)(w.newsize / PB) : (uint64_t)((w.end - 1) / PB);
	old_end = (uint64_t)(w.P / PB);
	if (data != NULL && off % PB == 0 && w.end % PB == 0 && w.end <= w.P &&
	    !wfs__is_end(h, w.P, last) && (r = redo_blocks(&w, first, last)) <= 0)
		return r < 0 ? r : (ssize_t)n;
	/* the blocks it rebuilds are read and replaced in place */
	if ((r = wfs_undo_file_settle(h->undo, wfs__cblock_off(first < old_end ? first : old_end),
				      wfs__cblock_off(last + 1))) < 0)
		return r;
	/* The new blocks first: a write the backing file system refuses
	 * (EFBIG past its largest file, ENOSPC) then leaves the file as it
	 * was, end block and all, instead of a resealed old end block and no
	 * end at all. */
	if ((r = store_blocks(&w, first, last)) < 0)
		return r;
	if (w.newsize > w.P && old_end < first &&
	    (r = store_blocks(&w, old_end, old_end)) < 0) /* no longer the end */
		return r;
	return (ssize_t)n;
}

ssize_t wfs_content_pwrite(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			   const void *buf, size_t n, off_t off)
{
	if (off < 0)
		return -EINVAL;
	if (n > (size_t)SSIZE_MAX)
		n = (size_t)SSIZE_MAX;
	if (n == 0)
		return 0;
	return write_range(k, fd, h, buf, n, off);
}

int wfs_content_truncate(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			 off_t new_plain_size)
{
	uint8_t tmp[WFS_BLOCK_SIZE], cb[WFS_CBLOCK_SIZE];
	off_t cs, P;
	struct stat st;
	int r;

	if (new_plain_size < 0)
		return -EINVAL;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL;
	/* the blocks a redo entry holds are in place before any is cut */
	if ((r = wfs_undo_file_flush(h->undo)) < 0)
		return r;
	if ((cs = wfs__cipher_size(h, new_plain_size)) < 0)
		return (int)cs;
	P = wfs_plain_size(st.st_size);
	if (new_plain_size > P) {
		ssize_t w = write_range(k, fd, h, NULL, 0, new_plain_size);
		return w < 0 ? (int)w : 0;
	}
	uint64_t i = (uint64_t)(new_plain_size / PB);
	size_t nl = (size_t)(new_plain_size % PB);
	if ((new_plain_size < P || st.st_size != cs) && (nl > 0 || wfs__v2(h))) {
		/* the new last block is cut (or, format 2, becomes the end
		 * block, or the end was torn): store it again, shorter */
		ssize_t w;

		memset(tmp, 0, sizeof(tmp));
		if ((nl > 0 && (r = read_block(k, fd, h, P, i, tmp)) < 0) ||
		    (r = wfs__seal_block(k, h, i, wfs__v2(h), tmp, nl, cb)) < 0)
			goto out;
		if ((w = store(h, fd, cb, nl + WFS_BLOCK_OVERHEAD, wfs__cblock_off(i),
			       st.st_size)) < 0) {
			r = (int)w;
			goto out;
		}
	}
	r = 0;
	if (st.st_size != cs && ftruncate(fd, cs) != 0)
		r = -errno;
out:
	sodium_memzero(tmp, sizeof(tmp));
	return r;
}
