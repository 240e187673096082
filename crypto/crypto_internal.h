/*
 * crypto_internal.h - private to crypto/ and its tests: the layout of the
 * unlocked keys, the AES-256-GCM helpers shared by the keyfile, header and
 * content code, and test-only hooks (fixed randomness for known answers).
 */
#ifndef WARDFS_CRYPTO_INTERNAL_H
#define WARDFS_CRYPTO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "crypto.h"

#define WFS_KEY_LEN	    32
#define WFS_NONCE_LEN	    12
#define WFS_TAG_LEN	    16
#define WFS_FILE_ID_LEN	    16
#define WFS_HDR_OFF_FILE_ID 16 /* where the file id sits in the header */

/* HKDF-SHA256 info strings for the subkeys (see docs/format.md). */
#define WFS_INFO_CONTENT "wardfs v1 content key"
#define WFS_INFO_HEADER	 "wardfs v1 header key"
#define WFS_INFO_KEY_ID	 "wardfs v1 key id"   /* wfs_keys_id: not a key, a name for one */
#define WFS_INFO_NAMES	 "wardfs v1 name key" /* 64 bytes: AES-256-SIV's K1 || K2 */
#define WFS_NAME_KEY_LEN 64

/* Key slots (keyslot.c): what turns a slot's secret into its KEK. */
#define WFS_SLOT_SALT_LEN 16
#define WFS_REC_KEY_LEN	  24 /* a recovery key: 192 random bits */
int wfs__kek_passphrase(const char *pass, size_t passlen, const uint8_t salt[WFS_SLOT_SALT_LEN],
			uint64_t ops, size_t mem, uint8_t kek[WFS_KEY_LEN]);
int wfs__kek_recovery(const uint8_t rec[WFS_REC_KEY_LEN], const uint8_t salt[WFS_SLOT_SALT_LEN],
		      const char *info, uint8_t kek[WFS_KEY_LEN]);
int wfs__kek_escrow(const uint8_t secret[WFS_ESCROW_KEY_LEN],
		    const uint8_t peer[WFS_ESCROW_KEY_LEN],
		    const uint8_t eph_public[WFS_ESCROW_KEY_LEN],
		    const uint8_t escrow_public[WFS_ESCROW_KEY_LEN], uint8_t kek[WFS_KEY_LEN]);
/* kek = HKDF(the secret a TPM unsealed, no salt, info) */
int wfs__kek_tpm2(const uint8_t secret[WFS_TPM2_SECRET_LEN], const char *info,
		  uint8_t kek[WFS_KEY_LEN]);
int wfs__rec_parse(const char *text, uint8_t rec[WFS_REC_KEY_LEN]);
void wfs__rec_format(const uint8_t rec[WFS_REC_KEY_LEN], char out[WFS_RECOVERY_LEN]);

/* Unlocked keys, in one sodium_malloc allocation, read-only once built. */
struct wfs_keys {
	uint8_t master[WFS_KEY_LEN];
	uint8_t content[WFS_KEY_LEN];
	uint8_t header[WFS_KEY_LEN];
	uint8_t names[WFS_NAME_KEY_LEN];
	uint64_t gen;	      /* unique per wfs_keys ever built; lets threads cache key schedules */
	unsigned vault_flags; /* the keyfile's WFS_VAULT_* flags, authenticated at unlock */
};

/* Which subkey a cached cipher context holds (combined with keys->gen). */
enum wfs_key_purpose { WFS_KP_NONE = 0, WFS_KP_CONTENT = 1, WFS_KP_HEADER = 2, WFS_KP_NAMES = 3 };

/* Builds keys (subkeys by HKDF) from a master key. 0 or -errno. */
int wfs__keys_from_master(const uint8_t master[WFS_KEY_LEN], struct wfs_keys **out);
/* The same, remembering the vault's flags (keyfile.c, once they are authenticated). */
int wfs__keys_make(const uint8_t master[WFS_KEY_LEN], unsigned vault_flags, struct wfs_keys **out);

/* HKDF-SHA256 (RFC 5869) through OpenSSL EVP_KDF. 0 or -EIO. */
/* Per-thread crypto state registers here (thread_state.c), first member
 * of its struct, so that wfs_crypto_forget wipes every thread's: forget
 * wipes one (called under the list's lock, with no thread using it). */
struct wfs__tstate {
	struct wfs__tstate *prev, *next;
	void (*forget)(struct wfs__tstate *s);
};
void wfs__tstate_add(struct wfs__tstate *s);
void wfs__tstate_remove(struct wfs__tstate *s);

int wfs__hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
		     const char *info, uint8_t *out, size_t outlen);

/*
 * AES-256-GCM with a 12-byte nonce and a 16-byte tag, on the calling
 * thread's cached cipher contexts. `cache_id` identifies the key (0: never
 * cached, the key is loaded every call). Open returns -EIO when
 * authentication fails (and wipes `pt`), seal/open return -ENOMEM when the
 * thread's context can't be made.
 */
int wfs__gcm_seal(const uint8_t key[WFS_KEY_LEN], uint64_t cache_id, const uint8_t *nonce,
		  const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t len, uint8_t *ct,
		  uint8_t *tag);
int wfs__gcm_open(const uint8_t key[WFS_KEY_LEN], uint64_t cache_id, const uint8_t *nonce,
		  const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t len,
		  const uint8_t *tag, uint8_t *pt);
static inline uint64_t wfs__cache_id(const struct wfs_keys *k, enum wfs_key_purpose p)
{
	return (k->gen << 2) | (uint64_t)p;
}

/*
 * AES-SIV (RFC 5297, AES-CMAC-SIV) under the 64-byte name key with one
 * associated-data component (names.c): out = V (16) || ciphertext (len).
 * Built from AES-256-CBC (for CMAC) and AES-256-CTR on the calling
 * thread's cached contexts, since OpenSSL 3.0's AES-256-SIV context does
 * one operation per key setup; the tests check it against that cipher.
 * len 1..WFS_SIV_MAX; open returns -EBADMSG (pt wiped) when V fails.
 */
#define WFS_SIV_MAX 256
int wfs__siv_seal(const struct wfs_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *pt,
		  size_t len, uint8_t *out);
int wfs__siv_open(const struct wfs_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
		  size_t len, uint8_t *pt);

/* base64url without padding (RFC 4648 section 5), strict: the decoder
 * takes only canonical text (no other byte, zero unused bits). Encode
 * writes 4 * n / 3 rounded up characters and a NUL, returns their count;
 * decode returns the bytes (at most cap) or -EINVAL. */
size_t wfs__b64url_encode(const uint8_t *in, size_t n, char *out);
ssize_t wfs__b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Tests: make dirid.c's files as if O_TMPFILE were not supported. */
void wfs__names_no_tmpfile(bool on);

/*
 * Runs fn(arg, lo, hi) over [0, n): for n >= min_split the upper half on a
 * helper thread while the caller does the lower half (parallel.c); else,
 * or if the helper is busy, fn(arg, 0, n) on the caller. fn must only
 * touch its own range. Returns the first nonzero result (lower half
 * first). wfs__par_stop ends the helper (its cipher contexts are wiped).
 */
typedef int (*wfs_range_fn)(void *arg, size_t lo, size_t hi);
int wfs__par_range(size_t n, size_t min_split, wfs_range_fn fn, void *arg);
void wfs__par_stop(void);

/* Per-thread scratch buffer of WFS_SCRATCH_BYTES (NULL on ENOMEM): cipher
 * blocks, and an empty block and a byte more (WFS_PEEK), so that a read
 * sees what follows the last block it asked for: nothing (the file was
 * cut at a block boundary), an end block without data (which it then
 * checks), or more data. */
#define WFS_SCRATCH_BLOCKS 256u
#define WFS_PEEK	   (WFS_BLOCK_OVERHEAD + 1)
#define WFS_SCRATCH_BYTES  ((size_t)WFS_SCRATCH_BLOCKS * WFS_CBLOCK_SIZE + WFS_PEEK)
uint8_t *wfs__scratch(void);

/*
 * The block layer (block.c): where blocks sit, how long each is, and
 * sealing and opening one. Format 1 (the first) has no end block: its last
 * block may be full and an empty file has none. Format 2 always ends in an
 * end block of 0..4095 bytes sealed as the last one, and reads a stored
 * block of zeros (a hole) as 4096 zero bytes. docs/format.md.
 */
#define WFS_FORMAT_1 1
#define WFS_FORMAT_2 2
static inline bool wfs__v2(const struct wfs_file_hdr *h)
{
	return h->version >= WFS_FORMAT_2;
}
static inline off_t wfs__cblock_off(uint64_t i)
{
	return (off_t)WFS_HDR_SIZE + (off_t)i * (off_t)WFS_CBLOCK_SIZE;
}
/* Number of blocks of a file of plain bytes (format 2: the end block too). */
uint64_t wfs__nblocks(const struct wfs_file_hdr *h, off_t plain);
/* Plaintext bytes of block i (< wfs__nblocks) of a file of plain bytes. */
size_t wfs__blen(const struct wfs_file_hdr *h, off_t plain, uint64_t i);
/* Is block i the end block (format 2 only)? */
bool wfs__is_end(const struct wfs_file_hdr *h, off_t plain, uint64_t i);
/* Cipher size of a file of plain bytes in h's format; -EFBIG past off_t. */
off_t wfs__cipher_size(const struct wfs_file_hdr *h, off_t plain);
/*
 * Opens stored block i (clen bytes at cb) into pt, sealed as the end block
 * or not: plaintext length, or -EIO. A format-2 block of 4124 zero bytes
 * that is not the end block is a hole: 4096 zeros.
 */
ssize_t wfs__open_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			bool end, const uint8_t *cb, size_t clen, uint8_t *pt);
/* Seals len (0..4096) bytes as block i into cb (len + 28 bytes) under the
 * nonce already in cb's first 12 bytes. */
int wfs__seal_block_nonce(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i,
			  bool end, const uint8_t *pt, size_t len, uint8_t *cb);
/* The same with a fresh nonce. */
int wfs__seal_block(const struct wfs_keys *k, const struct wfs_file_hdr *h, uint64_t i, bool end,
		    const uint8_t *pt, size_t len, uint8_t *cb);
bool wfs__all_zero(const uint8_t *p, size_t n);

/* An undo entry in flight (undo.c): saves [at, at + len) of fd as it is
 * (the part below old_size) before the caller overwrites it, and is
 * cleared by wfs__undo_end once the write is done. f NULL: no journal. */
struct wfs__undo_ticket {
	off_t off; /* -1: none */
	bool pinned;
};
/* An entry's layout (docs/format.md): shared by undo.c and undo_replay.c. */
#define WFS_UNDO_MAGIC	    "WFSUNDO1"
#define WFS_UNDO_HDR	    224 /* then the saved bytes, padded to 8 */
#define WFS_UNDO_SUM	    192 /* BLAKE2b-256 of [8, 192) and the saved bytes */
#define WFS_UNDO_HANDLE_MAX 128
static inline off_t wfs__undo_entry_len(size_t saved)
{
	return (off_t)((WFS_UNDO_HDR + saved + 7) & ~(size_t)7);
}
void wfs__undo_sum(const uint8_t *hdr, const uint8_t *saved, size_t n, uint8_t out[32]);
int wfs__undo_begin(struct wfs_undo_file *f, int fd, const struct wfs_file_hdr *h, off_t at,
		    size_t len, off_t old_size, struct wfs__undo_ticket *t);
void wfs__undo_end(struct wfs_undo_file *f, const struct wfs__undo_ticket *t);
/* A redo entry (undo.c) holds a write's new whole blocks instead of the old
 * bytes; at most this many cipher bytes (32 blocks) go in one. */
#define WFS_REDO_MAGIC "WFSREDO1"
/* Follows a batch of a file's redo entries once they are written in place
 * (no bytes): replay applies them only over blocks that fail then. */
#define WFS_APPLIED_MAGIC "WFSAPLD1"
#define WFS_REDO_MAX	  ((size_t)32 * WFS_CBLOCK_SIZE)
/* Keeps a write of n cipher bytes of whole blocks at at (all below the
 * file's cipher size, which stays size) in a redo entry of f, to be written
 * in place by the next flush: 0, -errno, or 1 when the write is better made
 * in place under an undo entry (none of its bytes are durable yet). */
int wfs__undo_redo(struct wfs_undo_file *f, int fd, const struct wfs_file_hdr *h,
		   const uint8_t *cipher, size_t n, off_t at, off_t size);

/*
 * Randomness for file ids and nonces. Tests may replace it with a
 * deterministic source to produce known-answer vectors; NULL restores
 * randombytes_buf. Never used for key material.
 */
typedef void (*wfs_random_fn)(void *arg, void *out, size_t n);
void wfs__set_nonce_source(wfs_random_fn fn, void *arg);
void wfs__random(void *out, size_t n);

/* pread/pwrite until done: bytes moved (short only at EOF for reads) or -errno. */
ssize_t wfs__pread_full(int fd, void *buf, size_t n, off_t off);
ssize_t wfs__pwrite_full(int fd, const void *buf, size_t n, off_t off);
/* The same for n iovecs: 0 once all are written, or -errno. */
struct iovec;
int wfs__pwritev_full(int fd, struct iovec *iov, int n, off_t off);

/* Little-endian helpers. */
static inline void wfs__put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void wfs__put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void wfs__put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t wfs__get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t wfs__get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t wfs__get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
