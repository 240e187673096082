/*
 * vectors.h - for the crypto tests that check stored known-answer vectors
 * (files in tests/data with "name: hex" lines) and open what the library sealed
 * with raw OpenSSL calls written from docs/format.md alone.
 */
#ifndef WFS_TEST_CRYPTO_VECTORS_H
#define WFS_TEST_CRYPTO_VECTORS_H

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "helpers.h"

/* Finds "name: hex" in the vector text and decodes it; returns the length. */
static inline size_t test_hex_get(const char *text, const char *name, uint8_t *out, size_t cap)
{
	char key[64];
	const char *p;
	size_t n = 0;

	snprintf(key, sizeof(key), "\n%s: ", name);
	p = strstr(text, key);
	assert_non_null(p);
	p += strlen(key);
	while (p[0] && p[1] && p[0] != '\n') {
		unsigned v;
		/* two hex digits: no conversion can overflow */
		/* NOLINTNEXTLINE(cert-err34-c) */
		assert_int_equal(sscanf(p, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		p += 2;
	}
	return n;
}

static inline char *test_read_vector(const char *name)
{
	const char *dir = getenv("WFS_TEST_DATA");
	char path[4096];
	FILE *f;
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	buf[0] = '\n';
	n = fread(buf + 1, 1, (1 << 16) - 2, f);
	assert_true(n > 0);
	fclose(f);
	return buf;
}

/* AES-256-GCM open with raw EVP calls: 1 when authentic. */
static inline int test_gcm_open_raw(const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
				    int aadlen, const uint8_t *ct, int len, const uint8_t *tag,
				    uint8_t *pt)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t t[16], fin[16];
	int outl, ok;

	memcpy(t, tag, 16);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) &&
	     EVP_DecryptUpdate(c, NULL, &outl, aad, aadlen) &&
	     (len == 0 || EVP_DecryptUpdate(c, pt, &outl, ct, len)) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, t) &&
	     EVP_DecryptFinal_ex(c, fin, &outl) > 0;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* HKDF-SHA256 (RFC 5869) with an empty salt, by hand from HMAC as
 * docs/format.md says: outlen (at most 64) bytes of ikm (32) and info. */
static inline void test_hkdf_by_hand(const uint8_t ikm[32], const char *info, uint8_t *out,
				     size_t outlen)
{
	uint8_t zeros[32] = {0}, prk[32], msg[128], t[64];
	unsigned len = 32;
	size_t il = strlen(info), have = 0;

	assert_true(outlen <= sizeof(t) && 32 + il + 1 <= sizeof(msg));
	assert_non_null(HMAC(EVP_sha256(), zeros, 32, ikm, 32, prk, &len));
	/* T(i) = HMAC(PRK, T(i-1) || info || i): bytes, not strings */
	for (uint8_t i = 1; have < outlen; i++) {
		size_t ml = 0;
		if (i > 1) {
			memcpy(msg, t + have - 32, 32);
			ml = 32;
		}
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
		memcpy(msg + ml, info, il);
		msg[ml + il] = i;
		assert_non_null(HMAC(EVP_sha256(), prk, 32, msg, ml + il + 1, t + have, &len));
		have += 32;
	}
	memcpy(out, t, outlen);
}

#endif
