/*
 * secmem.c - library start-up (sodium_init and an AES-256-GCM self-test)
 * and secure memory: locked, guarded, wiped allocations, wiping free and
 * constant-time compare.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "crypto_internal.h"

/* NIST GCM test case 14: zero key, zero IV, one zero block. */
static int gcm_self_test(void)
{
	static const uint8_t want_ct[16] = {0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e,
					    0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18};
	static const uint8_t want_tag[16] = {0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0,
					     0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
	uint8_t key[32] = {0}, iv[12] = {0}, pt[16] = {0}, ct[16], tag[16], back[16];
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	int r = -ENOSYS;

	if (c == NULL)
		goto out;
	/* cache id 0: nothing cached from this zero key */
	if (wfs__gcm_seal(key, 0, iv, NULL, 0, pt, sizeof(pt), ct, tag) != 0 ||
	    memcmp(ct, want_ct, 16) != 0 || memcmp(tag, want_tag, 16) != 0)
		goto out;
	if (wfs__gcm_open(key, 0, iv, NULL, 0, ct, sizeof(ct), tag, back) != 0 ||
	    memcmp(back, pt, 16) != 0)
		goto out;
	tag[0] ^= 1;
	if (wfs__gcm_open(key, 0, iv, NULL, 0, ct, sizeof(ct), tag, back) != -EIO)
		goto out;
	r = 0;
out:
	EVP_CIPHER_free(c);
	return r;
}

int wfs_crypto_init(void)
{
	if (sodium_init() < 0)
		return -EIO;
	return gcm_self_test();
}

void *wfs_secure_alloc(size_t n)
{
	void *p = sodium_malloc(n);

	if (p != NULL)
		sodium_memzero(p, n);
	return p;
}

void wfs_secure_free(void *p)
{
	if (p != NULL)
		sodium_free(p);
}

void wfs_freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	sodium_memzero(p, n);
	free(p);
}

void wfs_memzero(void *p, size_t n)
{
	sodium_memzero(p, n);
}

int wfs_ct_compare(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0 ? 0 : 1;
}
