/*
 * names.c - encrypted names (docs/format.md, "Encrypted names"): AES-SIV
 * under the name key with the directory id as associated data, names
 * zero-padded to 16 bytes, base64url, the "wfs~" marker, the escape of
 * plain names that start with it, long names, and the classification of
 * a backing name.
 *
 * AES-SIV is RFC 5297's S2V (CMAC) and CTR, assembled here from OpenSSL's
 * AES-256-CBC (a CBC-MAC with CMAC's last-block tweak) and AES-256-CTR on
 * per-thread contexts keyed once per thread and key: OpenSSL 3.0's own
 * AES-256-SIV context does one operation per key setup (6.5 us a name
 * against well under 1 us here). tests/unit/crypto/test_names.c checks
 * every length against OpenSSL's AES-256-SIV.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "crypto_internal.h"

#define BLK	    16
#define PFX	    WFS_NAME_PREFIX
#define PFX_LEN	    4
#define SHORT_C_MAX (BLK + 160) /* V and the padded ciphertext of a short name */
#define LONG_C_MIN  (BLK + 176)
#define LONG_C_MAX  (BLK + 256)
#define ID_CHARS    22 /* base64url of 16 bytes */

/* ---- per-thread AES-SIV state ---------------------------------------- */

/* One per thread, made on first use and wiped and freed by the pthread key
 * destructor, as aead.c's: the key schedules live in OpenSSL's contexts,
 * the CMAC subkeys and S2V state here. */

struct name_tls {
	struct wfs__tstate ts;	      /* first: wfs_crypto_forget reaches it */
	EVP_CIPHER_CTX *cbc;	      /* AES-256-CBC under K1, no padding: CMAC */
	EVP_CIPHER_CTX *ctr;	      /* AES-256-CTR under K2 */
	uint64_t key_id;	      /* cache id of the key they hold; 0: none */
	uint8_t sub1[BLK], sub2[BLK]; /* CMAC subkeys */
	uint8_t d0[BLK];	      /* CMAC(K1, 0^128): S2V's start */
	/* S2V's state after the last associated data seen, and that data */
	uint8_t ad[BLK], ad_d[BLK];
	size_t adlen; /* 0: none cached */
	uint8_t buf[2][LONG_C_MAX];
};

static __thread struct name_tls *ntls;

static pthread_key_t ntls_key;
static pthread_once_t ntls_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *cbc_cipher, *ctr_cipher;

static void ntls_destroy(void *arg)
{
	struct name_tls *t = arg;

	if (t == NULL)
		return;
	wfs__tstate_remove(&t->ts);
	EVP_CIPHER_CTX_free(t->cbc); /* cleanses the key schedules */
	EVP_CIPHER_CTX_free(t->ctr);
	wfs_freezero(t, sizeof(*t));
	ntls = NULL;
}

/* wfs_crypto_forget, for this state: keys, subkeys and buffers wiped;
 * name_tls sets the contexts up again on the next use. */
static void ntls_forget(struct wfs__tstate *s)
{
	struct name_tls *t = (struct name_tls *)s;
	EVP_CIPHER_CTX_reset(t->cbc); /* cleanses */
	EVP_CIPHER_CTX_reset(t->ctr);
	t->key_id = 0;
	t->adlen = 0;
	sodium_memzero(t->sub1, sizeof t->sub1);
	sodium_memzero(t->sub2, sizeof t->sub2);
	sodium_memzero(t->d0, sizeof t->d0);
	sodium_memzero(t->ad, sizeof t->ad);
	sodium_memzero(t->ad_d, sizeof t->ad_d);
	sodium_memzero(t->buf, sizeof t->buf);
}

static void ntls_init_once(void)
{
	cbc_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	ctr_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
	(void)pthread_key_create(&ntls_key, ntls_destroy);
}

static void dbl(uint8_t b[BLK])
{
	uint8_t carry = b[0] >> 7;

	for (int i = 0; i < BLK - 1; i++)
		b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
	b[BLK - 1] = (uint8_t)(b[BLK - 1] << 1);
	b[BLK - 1] ^= (uint8_t)(0x87 & -carry);
}

static void xor16(uint8_t *a, const uint8_t *b)
{
	for (int i = 0; i < BLK; i++)
		a[i] ^= b[i];
}

/* The last block of AES-256-CBC(K1, IV 0) over n (a multiple of 16) bytes. */
static int cbc_mac(struct name_tls *t, const uint8_t *m, size_t n, uint8_t out[BLK])
{
	static const uint8_t zero[BLK];
	int outl;

	if (!EVP_EncryptInit_ex2(t->cbc, NULL, NULL, zero, NULL) ||
	    !EVP_EncryptUpdate(t->cbc, t->buf[1], &outl, m, (int)n) || outl != (int)n)
		return -EIO;
	memcpy(out, t->buf[1] + n - BLK, BLK);
	return 0;
}

/* AES-CMAC(K1, m) (RFC 4493) of len <= LONG_C_MAX bytes; m may be buf[0]. */
static int cmac(struct name_tls *t, const uint8_t *m, size_t len, uint8_t out[BLK])
{
	size_t n = len == 0 ? BLK : (len + BLK - 1) / BLK * BLK;
	uint8_t *w = t->buf[0];

	if (m != w)
		memmove(w, m, len);
	if (len == n) {
		xor16(w + n - BLK, t->sub1);
	} else {
		memset(w + len, 0, n - len);
		w[len] = 0x80;
		xor16(w + n - BLK, t->sub2);
	}
	return cbc_mac(t, w, n, out);
}

static struct name_tls *name_tls(const struct wfs_keys *k)
{
	struct name_tls *t = ntls;
	uint64_t id = wfs__cache_id(k, WFS_KP_NAMES);
	static const uint8_t zero[BLK];
	uint8_t l[BLK];

	if (t == NULL) {
		pthread_once(&ntls_once, ntls_init_once);
		if (cbc_cipher == NULL || ctr_cipher == NULL || (t = calloc(1, sizeof(*t))) == NULL)
			return NULL;
		t->cbc = EVP_CIPHER_CTX_new();
		t->ctr = EVP_CIPHER_CTX_new();
		if (t->cbc == NULL || t->ctr == NULL || pthread_setspecific(ntls_key, t) != 0) {
			ntls_destroy(t);
			return NULL;
		}
		t->ts.forget = ntls_forget;
		wfs__tstate_add(&t->ts);
		ntls = t;
	}
	if (t->key_id == id)
		return t;
	t->key_id = 0;
	t->adlen = 0;
	if (!EVP_EncryptInit_ex2(t->cbc, cbc_cipher, k->names, zero, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(t->cbc, 0) ||
	    !EVP_EncryptInit_ex2(t->ctr, ctr_cipher, k->names + WFS_KEY_LEN, zero, NULL) ||
	    cbc_mac(t, zero, BLK, l) != 0)
		return NULL;
	/* RFC 4493: K1 = dbl(L), K2 = dbl(K1) */
	memcpy(t->sub1, l, BLK);
	dbl(t->sub1);
	memcpy(t->sub2, t->sub1, BLK);
	dbl(t->sub2);
	sodium_memzero(l, sizeof(l));
	if (cmac(t, zero, BLK, t->d0) != 0)
		return NULL;
	t->key_id = id;
	return t;
}

/* S2V(K1, ad, pt) (RFC 5297 2.4) with one associated-data component. */
static int s2v(struct name_tls *t, const uint8_t *ad, size_t adlen, const uint8_t *pt, size_t len,
	       uint8_t v[BLK])
{
	uint8_t d[BLK], mac[BLK];
	uint8_t *w = t->buf[0];

	if (adlen == 0 || adlen > BLK || t->adlen != adlen || memcmp(t->ad, ad, adlen) != 0) {
		memcpy(d, t->d0, BLK);
		dbl(d);
		if (cmac(t, ad, adlen, mac) != 0)
			return -EIO;
		xor16(d, mac);
		t->adlen = 0;
		if (adlen > 0 && adlen <= BLK) { /* a directory id: cache it */
			memcpy(t->ad, ad, adlen);
			memcpy(t->ad_d, d, BLK);
			t->adlen = adlen;
		}
	} else {
		memcpy(d, t->ad_d, BLK);
	}
	if (len >= BLK) { /* T = pt xorend D */
		memcpy(w, pt, len);
		xor16(w + len - BLK, d);
		return cmac(t, w, len, v);
	}
	dbl(d); /* T = dbl(D) xor pad(pt) */
	memset(w, 0, BLK);
	memcpy(w, pt, len);
	w[len] = 0x80;
	xor16(w, d);
	return cmac(t, w, BLK, v);
}

static int ctr(struct name_tls *t, const uint8_t v[BLK], const uint8_t *in, size_t len,
	       uint8_t *out)
{
	uint8_t q[BLK];
	int outl;

	memcpy(q, v, BLK); /* Q = V with bits 63 and 31 cleared */
	q[8] &= 0x7f;
	q[12] &= 0x7f;
	if (!EVP_EncryptInit_ex2(t->ctr, NULL, NULL, q, NULL) ||
	    !EVP_EncryptUpdate(t->ctr, out, &outl, in, (int)len) || outl != (int)len)
		return -EIO;
	return 0;
}

int wfs__siv_seal(const struct wfs_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *pt,
		  size_t len, uint8_t *out)
{
	struct name_tls *t;
	int r;

	if (len == 0 || len > WFS_SIV_MAX || adlen > LONG_C_MAX)
		return -EINVAL;
	if ((t = name_tls(k)) == NULL)
		return -ENOMEM;
	r = s2v(t, ad, adlen, pt, len, out);
	sodium_memzero(t->buf[0], sizeof(t->buf[0])); /* held pt xor D */
	if (r == 0)
		r = ctr(t, out, pt, len, out + BLK);
	return r;
}

int wfs__siv_open(const struct wfs_keys *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
		  size_t len, uint8_t *pt)
{
	struct name_tls *t;
	uint8_t v[BLK];
	int r;

	if (len == 0 || len > WFS_SIV_MAX || adlen > LONG_C_MAX)
		return -EINVAL;
	if ((t = name_tls(k)) == NULL)
		return -ENOMEM;
	if ((r = ctr(t, in, in + BLK, len, pt)) == 0 && (r = s2v(t, ad, adlen, pt, len, v)) == 0 &&
	    sodium_memcmp(v, in, BLK) != 0)
		r = -EBADMSG;
	sodium_memzero(t->buf[0], sizeof(t->buf[0])); /* held pt xor D */
	if (r != 0)
		sodium_memzero(pt, len); /* never hand out unauthenticated plaintext */
	return r;
}

/* ---- base64url --------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t wfs__b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

ssize_t wfs__b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = b64_val((unsigned char)in[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -EINVAL; /* not canonical: unused bits set */
	return (ssize_t)o;
}

/* ---- names --------------------------------------------------------------- */

static bool has_prefix(const char *name, size_t len)
{
	return len >= PFX_LEN && memcmp(name, PFX, PFX_LEN) == 0;
}

/* 1..255 bytes, no '/' or NUL, not "." or "..": 0, -EINVAL, -ENAMETOOLONG */
static int valid_name(const char *p, size_t len)
{
	if (len == 0 || memchr(p, '/', len) != NULL || memchr(p, '\0', len) != NULL ||
	    (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
		return -EINVAL;
	return len > WFS_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* The bytes C of an encrypted name's text ("wfs~e" + base64url), with
 * 16 + 16 * k bytes, k in [kmin, kmax]: their count or -EINVAL. */
static ssize_t decode_c(const char *text, size_t len, uint8_t *c, size_t kmin, size_t kmax)
{
	ssize_t n;

	if (len <= PFX_LEN + 1 || !has_prefix(text, len) || text[PFX_LEN] != 'e')
		return -EINVAL;
	n = wfs__b64url_decode(text + PFX_LEN + 1, len - PFX_LEN - 1, c, BLK + 16 * kmax);
	if (n < 0 || n % BLK != 0 || (size_t)n < BLK + 16 * kmin)
		return -EINVAL;
	return n;
}

static bool is_id(const char *p, size_t len)
{
	uint8_t id[BLK];

	return len == ID_CHARS && wfs__b64url_decode(p, len, id, sizeof(id)) == BLK;
}

bool wfs_name_is_encrypted(const char *name, size_t len)
{
	enum wfs_name_kind kind = wfs_name_classify(name, len);
	return kind == WFS_NAME_ENCRYPTED || kind == WFS_NAME_LONG;
}

enum wfs_name_kind wfs_name_classify(const char *name, size_t len)
{
	uint8_t c[SHORT_C_MAX];

	if (valid_name(name, len) != 0)
		return WFS_NAME_RESERVED;
	if (!has_prefix(name, len))
		return WFS_NAME_PLAIN;
	if (len == PFX_LEN)
		return WFS_NAME_RESERVED; /* the plain "wfs~" is stored escaped */
	switch (name[PFX_LEN]) {
	case 'p':
		return WFS_NAME_ESCAPED;
	case 'e':
		return decode_c(name, len, c, 1, 10) > 0 ? WFS_NAME_ENCRYPTED : WFS_NAME_RESERVED;
	case 'l':
		return is_id(name + PFX_LEN + 1, len - PFX_LEN - 1) ? WFS_NAME_LONG
								    : WFS_NAME_RESERVED;
	case 'n':
		return is_id(name + PFX_LEN + 1, len - PFX_LEN - 1) ? WFS_NAME_SIDECAR
								    : WFS_NAME_RESERVED;
	default:
		break;
	}
	if (len == sizeof(WFS_DIRID_NAME) - 1 && memcmp(name, WFS_DIRID_NAME, len) == 0)
		return WFS_NAME_DIRID;
	return WFS_NAME_RESERVED;
}

static size_t put_text(char *out, char kind, const uint8_t *b, size_t n)
{
	/* the prefix, then the encoding, which ends in a NUL */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(out, PFX, PFX_LEN);
	out[PFX_LEN] = kind;
	return PFX_LEN + 1 + wfs__b64url_encode(b, n, out + PFX_LEN + 1);
}

int wfs_name_encrypt(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
		     const char *plain, size_t len, struct wfs_name_enc *out)
{
	uint8_t pad[WFS_SIV_MAX], c[LONG_C_MAX];
	size_t plen;
	int r;

	out->len = out->sidecar_len = 0;
	out->is_long = false;
	out->name[0] = out->sidecar_name[0] = out->sidecar[0] = '\0';
	if ((r = valid_name(plain, len)) != 0)
		return r;
	plen = (len + BLK - 1) / BLK * BLK;
	memcpy(pad, plain, len);
	memset(pad + len, 0, plen - len);
	r = wfs__siv_seal(k, dirid, WFS_DIRID_LEN, pad, plen, c);
	sodium_memzero(pad, sizeof(pad));
	if (r != 0)
		return r;
	if (len <= WFS_NAME_SHORT_MAX) {
		out->len = put_text(out->name, 'e', c, BLK + plen);
		return 0;
	}
	out->is_long = true;
	out->len = put_text(out->name, 'l', c, BLK);
	(void)put_text(out->sidecar_name, 'n', c, BLK);
	out->sidecar_len = put_text(out->sidecar, 'e', c, BLK + plen);
	return 0;
}

/* Opens C (n bytes) under dirid into plain: the name's length or -errno. */
static ssize_t open_c(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
		      const uint8_t *c, size_t n, char plain[WFS_NAME_MAX + 1])
{
	uint8_t pt[WFS_SIV_MAX];
	size_t plen = n - BLK, len;
	int r;

	if ((r = wfs__siv_open(k, dirid, WFS_DIRID_LEN, c, plen, pt)) != 0)
		return r;
	len = plen;
	{
		const uint8_t *nul = memchr(pt, '\0', plen);

		if (nul != NULL)
			len = (size_t)(nul - pt);
	}
	r = 0;
	if (plen - len >= BLK || !sodium_is_zero(pt + len, plen - len) ||
	    valid_name((const char *)pt, len) != 0)
		r = -EINVAL; /* authentic, yet not what wardfs writes */
	if (r == 0) {
		memcpy(plain, pt, len);
		plain[len] = '\0';
	}
	sodium_memzero(pt, sizeof(pt));
	return r != 0 ? r : (ssize_t)len;
}

ssize_t wfs_name_decrypt(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
			 const char *name, size_t len, char plain[WFS_NAME_MAX + 1])
{
	uint8_t c[SHORT_C_MAX];
	ssize_t n, r;

	plain[0] = '\0';
	if (len > WFS_NAME_MAX || (n = decode_c(name, len, c, 1, 10)) < 0)
		return -EINVAL;
	if ((r = open_c(k, dirid, c, (size_t)n, plain)) < 0)
		sodium_memzero(plain, WFS_NAME_MAX + 1);
	return r;
}

ssize_t wfs_name_decrypt_long(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN],
			      const char *entry, size_t len, const char *sidecar, size_t slen,
			      char plain[WFS_NAME_MAX + 1])
{
	uint8_t c[LONG_C_MAX], id[BLK];
	ssize_t n, r;

	plain[0] = '\0';
	if (len != WFS_NAME_LONG_LEN || !has_prefix(entry, len) || entry[PFX_LEN] != 'l' ||
	    wfs__b64url_decode(entry + PFX_LEN + 1, ID_CHARS, id, sizeof(id)) != BLK ||
	    slen > WFS_SIDECAR_MAX || (n = decode_c(sidecar, slen, c, 11, 16)) < 0)
		return -EINVAL;
	if (memcmp(id, c, BLK) != 0)
		return -EBADMSG; /* another entry's sidecar */
	if ((r = open_c(k, dirid, c, (size_t)n, plain)) < 0)
		sodium_memzero(plain, WFS_NAME_MAX + 1);
	return r;
}

int wfs_name_long_pair(const char *name, size_t len, char out[WFS_NAME_LONG_LEN + 1])
{
	enum wfs_name_kind kind = wfs_name_classify(name, len);

	if (kind != WFS_NAME_LONG && kind != WFS_NAME_SIDECAR)
		return -EINVAL;
	memcpy(out, name, len);
	out[PFX_LEN] = kind == WFS_NAME_LONG ? 'n' : 'l';
	out[len] = '\0';
	return 0;
}

ssize_t wfs_name_escape(const char *plain, size_t len, char out[WFS_NAME_MAX + 1])
{
	int r = valid_name(plain, len);

	if (r != 0)
		return r;
	if (!has_prefix(plain, len)) {
		memcpy(out, plain, len);
		out[len] = '\0';
		return (ssize_t)len;
	}
	if (len + 1 > WFS_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, PFX, PFX_LEN);
	out[PFX_LEN] = 'p';
	memcpy(out + PFX_LEN + 1, plain + PFX_LEN, len - PFX_LEN);
	out[len + 1] = '\0';
	return (ssize_t)len + 1;
}

ssize_t wfs_name_unescape(const char *name, size_t len, char out[WFS_NAME_MAX + 1])
{
	switch (wfs_name_classify(name, len)) {
	case WFS_NAME_PLAIN:
		memcpy(out, name, len);
		out[len] = '\0';
		return (ssize_t)len;
	case WFS_NAME_ESCAPED:
		memcpy(out, PFX, PFX_LEN);
		memcpy(out + PFX_LEN, name + PFX_LEN + 1, len - PFX_LEN - 1);
		out[len - 1] = '\0';
		return (ssize_t)len - 1;
	default:
		return -EINVAL;
	}
}
