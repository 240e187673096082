/*
 * vectors.h - for the crypto tests that check stored known-answer vectors
 * (files in tests/data with "name: hex" lines) and open what the library sealed
 * with raw OpenSSL calls written from docs/format.md alone.
 */
#ifndef WFS_TEST_CRYPTO_VECTORS_H
#define WFS_TEST_CRYPTO_VECTORS_H

#include <openssl/evp.h>

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

#endif
