/*
 * header.c - the 64-byte authenticated header of an encrypted file, form
 * detection (empty / plain / encrypted) and the plain <-> cipher size map.
 * Layout in docs/format.md.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto_internal.h"

static const uint8_t hdr_magic[8] = {0x89, 'W', 'A', 'R', 'D', 'F', 'S', 0x00};

#define HDR_VERSION	  WFS_FORMAT_2 /* written; format 1 is still read */
#define HDR_OFF_VERSION	  8
#define HDR_OFF_FLAGS	  10
#define HDR_OFF_RESERVED  12
#define HDR_OFF_FILE_ID	  WFS_HDR_OFF_FILE_ID
#define HDR_OFF_RESERVED2 32
#define HDR_OFF_NONCE	  36
#define HDR_OFF_TAG	  48
#define HDR_AAD_LEN	  HDR_OFF_NONCE /* bytes [0,36) */

_Static_assert(HDR_OFF_TAG + WFS_TAG_LEN == WFS_HDR_SIZE, "header layout");

const char *wfs_form_name(enum wfs_form f)
{
	switch (f) {
	case WFS_FORM_EMPTY:
		return "empty";
	case WFS_FORM_PLAIN:
		return "plain";
	case WFS_FORM_ENCRYPTED:
		return "encrypted";
	}
	return "unknown";
}

enum wfs_form wfs_form_sniff(const void *buf, size_t len, off_t file_size)
{
	if (file_size == 0)
		return WFS_FORM_EMPTY;
	if (buf != NULL && len >= sizeof(hdr_magic) && file_size >= (off_t)WFS_HDR_SIZE &&
	    memcmp(buf, hdr_magic, sizeof(hdr_magic)) == 0)
		return WFS_FORM_ENCRYPTED;
	return WFS_FORM_PLAIN;
}

int wfs_hdr_read(const struct wfs_keys *k, int fd, struct wfs_file_hdr *h)
{
	uint8_t b[WFS_HDR_SIZE];
	ssize_t n = wfs__pread_full(fd, b, sizeof(b), 0);
	int r;

	if (n < 0)
		return (int)n;
	if (n == 0)
		return WFS_FORM_EMPTY;
	if ((size_t)n < sizeof(hdr_magic) || memcmp(b, hdr_magic, sizeof(hdr_magic)) != 0)
		return WFS_FORM_PLAIN;
	if ((size_t)n < WFS_HDR_SIZE)
		return -EIO; /* the magic, cut short */
	r = wfs__gcm_open(k->header, wfs__cache_id(k, WFS_KP_HEADER), b + HDR_OFF_NONCE, b,
			  HDR_AAD_LEN, NULL, 0, b + HDR_OFF_TAG, NULL);
	if (r != 0)
		return r; /* -EIO: tampered, or another vault's key */
	uint16_t v = wfs__get_le16(b + HDR_OFF_VERSION);
	if ((v != WFS_FORMAT_1 && v != WFS_FORMAT_2) || wfs__get_le16(b + HDR_OFF_FLAGS) != 0)
		return -EIO; /* authentic but not a layout this build reads */
	memcpy(h->file_id, b + HDR_OFF_FILE_ID, WFS_FILE_ID_LEN);
	h->version = v;
	h->undo = NULL;
	return WFS_FORM_ENCRYPTED;
}

int wfs_hdr_write(const struct wfs_keys *k, int fd, struct wfs_file_hdr *h)
{
	/* the header and the empty end block, in one write */
	uint8_t b[WFS_HDR_SIZE + WFS_BLOCK_OVERHEAD] = {0};
	ssize_t n;
	int r;

	if ((r = wfs_mark_set(fd)) != 0)
		return r;
	memcpy(b, hdr_magic, sizeof(hdr_magic));
	wfs__put_le16(b + HDR_OFF_VERSION, HDR_VERSION);
	wfs__random(b + HDR_OFF_FILE_ID, WFS_FILE_ID_LEN);
	wfs__random(b + HDR_OFF_NONCE, WFS_NONCE_LEN);
	if ((r = wfs__gcm_seal(k->header, wfs__cache_id(k, WFS_KP_HEADER), b + HDR_OFF_NONCE, b,
			       HDR_AAD_LEN, NULL, 0, NULL, b + HDR_OFF_TAG)) != 0)
		return r;
	memcpy(h->file_id, b + HDR_OFF_FILE_ID, WFS_FILE_ID_LEN);
	h->version = HDR_VERSION;
	h->undo = NULL;
	if ((r = wfs__seal_block(k, h, 0, true, NULL, 0, b + WFS_HDR_SIZE)) != 0)
		return r;
	if ((n = wfs__pwrite_full(fd, b, sizeof(b), 0)) < 0)
		return (int)n;
	return 0;
}
