/*
 * block.c - the block layer of an encrypted file: where block i sits, how
 * many plaintext bytes it holds for a given file size, and sealing and
 * opening one block with its additional data (file id, index and, in
 * format 2, whether it is the end block). Layout in docs/format.md.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "crypto_internal.h"

#define PB ((off_t)WFS_BLOCK_SIZE)
#define CB ((size_t)WFS_CBLOCK_SIZE)

/* Format 1: file id || le64(index). Format 2 adds one byte, 1 for the end
 * block and 0 for any other, so that cutting a file at a block boundary or
 * appending blocks to it changes which block must be the end. */
#define AAD_V1 (WFS_FILE_ID_LEN + 8)
#define AAD_V2 (AAD_V1 + 1)

uint64_t wfs__nblocks(const struct wfs_file_hdr *h, off_t plain)
{
	if (wfs__v2(h))
		return (uint64_t)(plain / PB) + 1;
	return (uint64_t)((plain + PB - 1) / PB);
}

size_t wfs__blen(const struct wfs_file_hdr *h, off_t plain, uint64_t i)
{
	off_t left = plain - (off_t)i * PB;

	(void)h;
	if (left <= 0)
		return 0;
	return left < PB ? (size_t)left : (size_t)PB;
}

bool wfs__is_end(const struct wfs_file_hdr *h, off_t plain, uint64_t i)
{
	return wfs__v2(h) && i == (uint64_t)(plain / PB);
}

/* Largest count of full blocks whose cipher size still fits in off_t. */
#define MAX_FULL_BLOCKS ((INT64_MAX - WFS_HDR_SIZE - WFS_CBLOCK_SIZE) / WFS_CBLOCK_SIZE)

off_t wfs__cipher_size(const struct wfs_file_hdr *h, off_t plain)
{
	off_t full, rem;

	if (plain < 0)
		return -EINVAL;
	full = plain / PB;
	rem = plain % PB;
	if (full > (off_t)MAX_FULL_BLOCKS)
		return -EFBIG;
	if (wfs__v2(h))
		return WFS_HDR_SIZE + full * (off_t)CB + rem + WFS_BLOCK_OVERHEAD;
	return WFS_HDR_SIZE + full * (off_t)CB + (rem ? rem + WFS_BLOCK_OVERHEAD : 0);
}

off_t wfs_cipher_size(off_t plain_size)
{
	const struct wfs_file_hdr v2 = {.version = WFS_FORMAT_2};

	return wfs__cipher_size(&v2, plain_size);
}

off_t wfs_plain_size(off_t cipher_size)
{
	off_t n, full, rem;

	/* One formula for both formats: a format-2 end block stores 28 bytes
	 * more than its plaintext, and a format-1 last block as well; a
	 * remainder of 1..27 bytes (or, in format 2, none) is damage. */
	if (cipher_size <= (off_t)WFS_HDR_SIZE)
		return 0;
	n = cipher_size - WFS_HDR_SIZE;
	full = n / (off_t)CB;
	rem = n % (off_t)CB;
	return full * PB + (rem > (off_t)WFS_BLOCK_OVERHEAD ? rem - WFS_BLOCK_OVERHEAD : 0);
}

off_t wfs_block_cipher_off(uint64_t i)
{
	return wfs__cblock_off(i);
}

void wfs_write_cipher_span(off_t off, size_t len, off_t *start, off_t *end)
{
	*start = wfs__cblock_off((uint64_t)(off / PB));
	*end = wfs_cipher_size(off + (off_t)len);
}

void wfs_grow_guard_begin(int fd, off_t cipher_size, off_t new_plain_end, struct wfs_grow_guard *g)
{
	off_t plain = wfs_plain_size(cipher_size);

	g->grows = new_plain_end > plain;
	g->old_size = cipher_size;
	g->tail_len = 0;
	if (!g->grows)
		return;
	g->tail_off = wfs__cblock_off((uint64_t)(plain / PB));
	if (g->tail_off < cipher_size) {
		size_t want = (size_t)(cipher_size - g->tail_off);
		ssize_t got;

		if (want > sizeof(g->tail))
			want = sizeof(g->tail);
		got = pread(fd, g->tail, want, g->tail_off);
		g->tail_len = got > 0 ? got : 0;
	}
}

void wfs_grow_guard_end(int fd, struct wfs_grow_guard *g, bool failed)
{
	if (!g->grows || !failed)
		return;
	if (g->tail_len > 0 && pwrite(fd, g->tail, (size_t)g->tail_len, g->tail_off) < 0) {
		/* the old tail block stays damaged; reads report EIO */
	}
	if (ftruncate(fd, g->old_size) < 0) {
		/* the cut tail reads as EIO, never as garbage */
	}
}

bool wfs_cipher_size_ok(const struct wfs_file_hdr *h, off_t cipher_size)
{
	off_t rem;

	if (cipher_size < (off_t)WFS_HDR_SIZE)
		return false;
	rem = (cipher_size - (off_t)WFS_HDR_SIZE) % (off_t)CB;
	if (wfs__v2(h))
		return rem >= (off_t)WFS_BLOCK_OVERHEAD;
	return rem == 0 || rem > (off_t)WFS_BLOCK_OVERHEAD;
}

bool wfs__all_zero(const uint8_t *p, size_t n)
{
	uint64_t acc = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static size_t block_aad(uint8_t aad[AAD_V2], const struct wfs_file_hdr *h, uint64_t i, bool end)
{
	memcpy(aad, h->file_id, WFS_FILE_ID_LEN);
	wfs__put_le64(aad + WFS_FILE_ID_LEN, i);
	if (!wfs__v2(h))
		return AAD_V1;
	aad[AAD_V1] = end ? 1 : 0;
	return AAD_V2;
}

ssize_t wfs__open_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			bool end, const uint8_t *cb, size_t clen, uint8_t *pt)
{
	uint8_t aad[AAD_V2];
	size_t len, alen;
	int r;

	/* format 1 never stores an empty block; format 2's end block may be */
	if (clen < WFS_BLOCK_OVERHEAD + (wfs__v2(h) ? 0 : 1) || clen > CB)
		return -EIO; /* a block cut short */
	len = clen - WFS_BLOCK_OVERHEAD;
	alen = block_aad(aad, h, i, end);
	r = wfs__gcm_open(k->content, wfs__cache_id(k, WFS_KP_CONTENT), cb, aad, alen,
			  cb + WFS_NONCE_LEN, len, cb + WFS_NONCE_LEN + len, pt);
	if (r == 0)
		return (ssize_t)len;
	/* Checked only once the tag failed: free for every authentic block. */
	if (wfs__v2(h) && !end && clen == CB && wfs__all_zero(cb, CB)) {
		memset(pt, 0, WFS_BLOCK_SIZE);
		return WFS_BLOCK_SIZE;
	}
	return r;
}

int wfs__seal_block_nonce(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			  bool end, const uint8_t *pt, size_t len, uint8_t *cb)
{
	uint8_t aad[AAD_V2];
	size_t alen = block_aad(aad, h, i, end);

	return wfs__gcm_seal(k->content, wfs__cache_id(k, WFS_KP_CONTENT), cb, aad, alen, pt, len,
			     cb + WFS_NONCE_LEN, cb + WFS_NONCE_LEN + len);
}

int wfs__seal_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i, bool end,
		    const uint8_t *pt, size_t len, uint8_t *cb)
{
	wfs__random(cb, WFS_NONCE_LEN);
	return wfs__seal_block_nonce(k, h, i, end, pt, len, cb);
}
