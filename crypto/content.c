/*
 * content.c - random-access I/O on an encrypted file: a 64-byte header and
 * then 4096-byte plaintext blocks stored as nonce || AES-256-GCM ciphertext
 * || tag, authenticated with the file id and the block index. Reads fetch
 * the whole cipher range in one pread; writes build every changed block in
 * the thread's scratch buffer and store it with one pwrite (per 1 MiB).
 * Runs of whole blocks are opened or sealed on two cores (parallel.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

#define PB	((off_t)WFS_BLOCK_SIZE)
#define CB	((size_t)WFS_CBLOCK_SIZE)
#define AAD_LEN (WFS_FILE_ID_LEN + 8)

static off_t cblock_off(uint64_t i)
{
	return (off_t)WFS_HDR_SIZE + (off_t)i * (off_t)CB;
}

static void block_aad(uint8_t aad[AAD_LEN], const struct wfs_file_hdr *h, uint64_t i)
{
	memcpy(aad, h->file_id, WFS_FILE_ID_LEN);
	wfs__put_le64(aad + WFS_FILE_ID_LEN, i);
}

/* Opens stored block i (clen bytes) into pt: plaintext length or -EIO. */
static ssize_t open_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			  const uint8_t *cb, size_t clen, uint8_t *pt)
{
	uint8_t aad[AAD_LEN];
	size_t len;
	int r;

	if (clen <= WFS_BLOCK_OVERHEAD || clen > CB)
		return -EIO; /* truncated (or empty) block */
	len = clen - WFS_BLOCK_OVERHEAD;
	block_aad(aad, h, i);
	r = wfs__gcm_open(k->content, wfs__cache_id(k, WFS_KP_CONTENT), cb, aad, sizeof(aad),
			  cb + WFS_NONCE_LEN, len, cb + WFS_NONCE_LEN + len, pt);
	return r != 0 ? r : (ssize_t)len;
}

/* Seals len (1..4096) plaintext bytes as block i into cb (len + 28 bytes)
 * under the nonce already in cb's first 12 bytes. */
static int seal_with_nonce(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			   const uint8_t *pt, size_t len, uint8_t *cb)
{
	uint8_t aad[AAD_LEN];

	block_aad(aad, h, i);
	return wfs__gcm_seal(k->content, wfs__cache_id(k, WFS_KP_CONTENT), cb, aad, sizeof(aad), pt,
			     len, cb + WFS_NONCE_LEN, cb + WFS_NONCE_LEN + len);
}

/* The same with a fresh nonce: for every block write. */
static int seal_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
		      const uint8_t *pt, size_t len, uint8_t *cb)
{
	wfs__random(cb, WFS_NONCE_LEN);
	return seal_with_nonce(k, h, i, pt, len, cb);
}

/*
 * Runs of whole blocks (the bulk of any large read or write) are opened or
 * sealed on two cores (parallel.c): below PAR_MIN blocks, waking the
 * helper costs more than it saves.
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
		ssize_t n = open_block(r->k, r->h, r->first + j, r->in + j * CB, CB,
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
		int e = seal_with_nonce(r->k, r->h, r->first + j, r->in + j * (size_t)PB,
					(size_t)PB, r->out + j * CB);
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

/* Reads and opens stored block i, which must hold exactly want bytes. */
static int read_block(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h, uint64_t i,
		      size_t want, uint8_t *pt)
{
	uint8_t cb[WFS_CBLOCK_SIZE];
	ssize_t n = wfs__pread_full(fd, cb, want + WFS_BLOCK_OVERHEAD, cblock_off(i));

	if (n < 0)
		return (int)n;
	n = open_block(k, h, i, cb, (size_t)n, pt);
	if (n < 0)
		return (int)n;
	return (size_t)n == want ? 0 : -EIO;
}

/*
 * Opens plaintext [pos, pos+n) out of stored blocks b0.. held in cb (got
 * bytes from the start of block b0; pos lies in block b0) into out.
 * Returns the bytes produced: n, or fewer where the stored blocks end (the
 * file's end); or -EIO.
 */
static ssize_t open_span(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t b0,
			 const uint8_t *cb, size_t got, uint8_t *out, size_t n, off_t pos)
{
	uint8_t tmp[WFS_BLOCK_SIZE];
	size_t done = 0;
	ssize_t r;

	for (uint64_t j = 0; done < n; j++) {
		uint64_t bi = b0 + j;
		size_t avail = got > j * CB ? got - j * CB : 0;
		size_t skip = (size_t)(pos + (off_t)done - (off_t)bi * PB);
		size_t want = WFS_BLOCK_SIZE - skip, plen, take;

		if (avail == 0)
			break; /* EOF at a block boundary */
		if (avail > CB)
			avail = CB;
		if (want > n - done)
			want = n - done;
		if (skip == 0 && want == WFS_BLOCK_SIZE && avail == CB) {
			/* blocks j.. that are whole, stored whole, and wanted whole */
			size_t run = (n - done) / WFS_BLOCK_SIZE, stored = got / CB - j;

			if (run > stored)
				run = stored;
			if ((r = open_blocks(k, h, bi, cb + j * CB, run, out + done)) < 0)
				goto fail;
			done += run * WFS_BLOCK_SIZE;
			j += run - 1;
			continue;
		}
		if ((r = open_block(k, h, bi, cb + j * CB, avail, tmp)) < 0)
			goto fail;
		plen = (size_t)r;
		take = plen > skip ? plen - skip : 0;
		if (take > want)
			take = want;
		memcpy(out + done, tmp + skip, take);
		done += take;
		if (plen < WFS_BLOCK_SIZE)
			break; /* a short block is the last one */
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
	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	while (done < n) {
		off_t pos = off + (off_t)done;
		uint64_t b0 = (uint64_t)(pos / PB);
		size_t span = (size_t)((off_t)WFS_SCRATCH_BLOCKS * PB - (pos - (off_t)b0 * PB));

		if (span > n - done)
			span = n - done;
		uint64_t nb = (uint64_t)((pos + (off_t)span - 1) / PB) - b0 + 1;
		if ((r = wfs__pread_full(fd, scr, nb * CB, cblock_off(b0))) < 0)
			goto fail;
		if ((r = open_span(k, h, b0, scr, (size_t)r, out + done, span, pos)) < 0)
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
			 size_t clen, off_t coff, void *buf, size_t n, off_t off)
{
	ssize_t r;

	if (off < 0)
		return -EINVAL;
	if ((n = clamp_len(n, off)) == 0)
		return 0;
	uint64_t b0 = (uint64_t)(off / PB);
	off_t at = cblock_off(b0);
	if (at < coff || at - coff > (off_t)clen)
		return -EINVAL; /* the range does not start inside cipher */
	r = open_span(k, h, b0, (const uint8_t *)cipher + (at - coff), clen - (size_t)(at - coff),
		      buf, n, off);
	if (r < 0)
		sodium_memzero(buf, n);
	return r;
}

/*
 * Stores data [off, off+n) (data NULL and n 0 to only grow to off) over a
 * file of plain size P: every block from the one holding min(off, P) to
 * the one holding the end is rebuilt; blocks between P and off become
 * zeros, and old bytes the write doesn't cover are kept (read, opened,
 * merged) in the first and last block only.
 */
static ssize_t write_range(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			   const uint8_t *data, size_t n, off_t off)
{
	uint8_t *scr, tmp[WFS_BLOCK_SIZE];
	struct stat st;
	off_t P, end, newsize, start;
	uint64_t first, last;
	ssize_t r = 0;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL; /* no header: the caller must wfs_hdr_write first */
	if ((off_t)n > INT64_MAX - off || wfs_cipher_size(off + (off_t)n) < 0)
		return -EFBIG;
	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	P = wfs_plain_size(st.st_size);
	end = off + (off_t)n;
	newsize = end > P ? end : P;
	start = off < P ? off : P;
	if (start >= end)
		return 0;
	first = (uint64_t)(start / PB);
	last = (uint64_t)((end - 1) / PB);

	for (uint64_t c = first; c <= last;) {
		uint64_t nb = last - c + 1;
		size_t clen = 0;

		if (nb > WFS_SCRATCH_BLOCKS)
			nb = WFS_SCRATCH_BLOCKS;
		for (uint64_t j = 0; j < nb; j++) {
			uint64_t i = c + j;
			off_t bs = (off_t)i * PB;
			size_t nl = (size_t)(newsize - bs < PB ? newsize - bs : PB);
			size_t ol = bs < P ? (size_t)(P - bs < PB ? P - bs : PB) : 0;
			off_t lo = off > bs ? off : bs, hi = end < bs + PB ? end : bs + PB;
			size_t ws = 0, we = 0;
			const uint8_t *pt = tmp;

			if (data != NULL && hi > lo) {
				ws = (size_t)(lo - bs);
				we = (size_t)(hi - bs);
			}
			if (ws == 0 && we >= nl && nl == (size_t)PB) {
				/* blocks j.. that the write covers whole */
				size_t run = nb - j, covered = (size_t)((end - bs) / PB);

				if (run > covered)
					run = covered;
				if ((r = seal_blocks(k, h, i, data + (bs - off), run, scr + clen)) <
				    0)
					goto out;
				clen += run * CB;
				j += run - 1;
				continue;
			}
			if (ws == 0 && we >= nl) {
				pt = data +
				     (bs - off); /* the write covers the whole (last) block */
			} else {
				memset(tmp, 0, nl);
				if (ol > 0 && !(ws == 0 && we >= ol) &&
				    (r = read_block(k, fd, h, i, ol, tmp)) < 0)
					goto out;
				if (we > ws)
					memcpy(tmp + ws, data + (bs + (off_t)ws - off), we - ws);
			}
			if ((r = seal_block(k, h, i, pt, nl, scr + clen)) < 0)
				goto out;
			clen += nl + WFS_BLOCK_OVERHEAD;
		}
		if ((r = wfs__pwrite_full(fd, scr, clen, cblock_off(c))) < 0)
			goto out;
		c += nb;
	}
	r = (ssize_t)n;
out:
	sodium_memzero(tmp, sizeof(tmp));
	return r;
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
	off_t cs = wfs_cipher_size(new_plain_size), P;
	struct stat st;
	int r;

	if (new_plain_size < 0)
		return -EINVAL;
	if (cs < 0)
		return (int)cs;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size < (off_t)WFS_HDR_SIZE)
		return -EINVAL;
	P = wfs_plain_size(st.st_size);
	if (new_plain_size > P) {
		ssize_t w = write_range(k, fd, h, NULL, 0, new_plain_size);
		return w < 0 ? (int)w : 0;
	}
	if (new_plain_size < P && new_plain_size % PB != 0) {
		/* the new last block is cut: store it again, shorter */
		uint64_t i = (uint64_t)(new_plain_size / PB);
		off_t bs = (off_t)i * PB;
		size_t ol = (size_t)(P - bs < PB ? P - bs : PB);
		size_t nl = (size_t)(new_plain_size - bs);
		ssize_t w;

		if ((r = read_block(k, fd, h, i, ol, tmp)) < 0 ||
		    (r = seal_block(k, h, i, tmp, nl, cb)) < 0)
			goto out;
		if ((w = wfs__pwrite_full(fd, cb, nl + WFS_BLOCK_OVERHEAD, cblock_off(i))) < 0) {
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

long wfs_content_verify(const struct wfs_keys *k, int fd, wfs_damage_fn fn, void *arg)
{
	uint8_t *scr, tmp[WFS_BLOCK_SIZE];
	struct wfs_file_hdr h;
	long bad = 0;
	int r;

	if ((scr = wfs__scratch()) == NULL)
		return -ENOMEM;
	r = wfs_hdr_read(k, fd, &h);
	if (r == -EIO) {
		uint8_t raw[WFS_HDR_SIZE];
		ssize_t n = wfs__pread_full(fd, raw, sizeof(raw), 0);

		bad++;
		if (fn != NULL)
			fn(arg, WFS_BLOCK_HEADER, 0, "authentication failed");
		if (n < (ssize_t)WFS_HDR_SIZE)
			return bad; /* too short to hold blocks */
		/* check the blocks against the file id the header claims */
		memcpy(h.file_id, raw + WFS_HDR_OFF_FILE_ID, WFS_FILE_ID_LEN);
	} else if (r < 0) {
		return r;
	} else if (r != WFS_FORM_ENCRYPTED) {
		return -EINVAL;
	}
	for (uint64_t b0 = 0;; b0 += WFS_SCRATCH_BLOCKS) {
		ssize_t got = wfs__pread_full(fd, scr, WFS_SCRATCH_BLOCKS * CB, cblock_off(b0));

		if (got < 0) {
			bad = got; /* tmp may hold an earlier block's plaintext */
			break;
		}
		for (uint64_t j = 0; j * CB < (size_t)got; j++) {
			size_t avail = (size_t)got - j * CB;

			if (avail > CB)
				avail = CB;
			if (open_block(k, &h, b0 + j, scr + j * CB, avail, tmp) >= 0)
				continue;
			bad++;
			if (fn != NULL)
				fn(arg, b0 + j, cblock_off(b0 + j),
				   avail <= WFS_BLOCK_OVERHEAD ? "truncated block"
							       : "authentication failed");
		}
		if ((size_t)got < WFS_SCRATCH_BLOCKS * CB)
			break;
	}
	sodium_memzero(tmp, sizeof(tmp));
	return bad;
}
