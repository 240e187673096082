/*
 * aead.c - the crypto core under everything else: AES-256-GCM seal/open on
 * per-thread cached OpenSSL contexts, per-thread scratch buffers,
 * HKDF-SHA256, and the (test-replaceable) nonce/file-id randomness.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include "crypto_internal.h"

/* One per thread, made on first use and freed by the pthread key destructor. */
struct wfs_tls {
	struct wfs__tstate ts; /* first: wfs_crypto_forget reaches it */
	EVP_CIPHER_CTX *enc, *dec;
	uint64_t enc_id, dec_id; /* cache id of the key loaded in each context; 0: none */
	uint8_t *scratch;	 /* WFS_SCRATCH_BLOCKS cipher blocks */
};

static __thread struct wfs_tls *tls;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm;

static void tls_destroy(void *arg)
{
	struct wfs_tls *t = arg;

	if (t == NULL)
		return;
	wfs__tstate_remove(&t->ts);
	EVP_CIPHER_CTX_free(t->enc); /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(t->dec);
	wfs_freezero(t->scratch, t->scratch ? WFS_SCRATCH_BYTES : 0);
	free(t);
	tls = NULL;
}

static void tls_init_once(void)
{
	gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	(void)pthread_key_create(&tls_key, tls_destroy);
}

static int ctx_forget(EVP_CIPHER_CTX *c, int enc);

/* wfs_crypto_forget, for this state: no cached key, no scratch bytes. */
static void tls_forget(struct wfs__tstate *s)
{
	struct wfs_tls *t = (struct wfs_tls *)s;
	t->enc_id = t->dec_id = 0;
	(void)ctx_forget(t->enc, 1);
	(void)ctx_forget(t->dec, 0);
	if (t->scratch)
		sodium_memzero(t->scratch, WFS_SCRATCH_BYTES);
}

static struct wfs_tls *get_tls(void)
{
	struct wfs_tls *t;

	if (tls != NULL)
		return tls;
	pthread_once(&tls_once, tls_init_once);
	if (gcm == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->enc = EVP_CIPHER_CTX_new();
	t->dec = EVP_CIPHER_CTX_new();
	if (t->enc == NULL || t->dec == NULL ||
	    !EVP_EncryptInit_ex2(t->enc, gcm, NULL, NULL, NULL) ||
	    !EVP_DecryptInit_ex2(t->dec, gcm, NULL, NULL, NULL) ||
	    pthread_setspecific(tls_key, t) != 0) {
		tls_destroy(t);
		return NULL;
	}
	t->ts.forget = tls_forget;
	wfs__tstate_add(&t->ts);
	tls = t;
	return t;
}

uint8_t *wfs__scratch(void)
{
	struct wfs_tls *t = get_tls();

	if (t == NULL)
		return NULL;
	if (t->scratch == NULL)
		t->scratch = malloc(WFS_SCRATCH_BYTES);
	return t->scratch;
}

/* Forgets an uncached key: wipe the schedule and make the context fresh. */
static int ctx_forget(EVP_CIPHER_CTX *c, int enc)
{
	EVP_CIPHER_CTX_reset(c);
	return enc ? EVP_EncryptInit_ex2(c, gcm, NULL, NULL, NULL)
		   : EVP_DecryptInit_ex2(c, gcm, NULL, NULL, NULL);
}

int wfs__gcm_seal(const uint8_t key[WFS_KEY_LEN], uint64_t cache_id, const uint8_t *nonce,
		  const uint8_t *aad, size_t aadlen, const uint8_t *pt, size_t len, uint8_t *ct,
		  uint8_t *tag)
{
	struct wfs_tls *t = get_tls();
	uint8_t fin[16]; /* GCM's final step outputs nothing */
	int outl, r = -EIO;

	if (t == NULL)
		return -ENOMEM;
	if (len > INT_MAX || aadlen > INT_MAX)
		return -EINVAL;
	if (cache_id == 0 || t->enc_id != cache_id) {
		t->enc_id = 0;
		if (!EVP_EncryptInit_ex2(t->enc, NULL, key, nonce, NULL))
			goto out;
		t->enc_id = cache_id;
	} else if (!EVP_EncryptInit_ex2(t->enc, NULL, NULL, nonce, NULL))
		goto out;
	if (aadlen > 0 && !EVP_EncryptUpdate(t->enc, NULL, &outl, aad, (int)aadlen))
		goto out;
	if (len > 0 && !EVP_EncryptUpdate(t->enc, ct, &outl, pt, (int)len))
		goto out;
	if (!EVP_EncryptFinal_ex(t->enc, fin, &outl) ||
	    !EVP_CIPHER_CTX_ctrl(t->enc, EVP_CTRL_AEAD_GET_TAG, WFS_TAG_LEN, tag))
		goto out;
	r = 0;
out:
	if (r != 0 || cache_id == 0) {
		t->enc_id = 0;
		if (!ctx_forget(t->enc, 1))
			r = -EIO;
	}
	return r;
}

int wfs__gcm_open(const uint8_t key[WFS_KEY_LEN], uint64_t cache_id, const uint8_t *nonce,
		  const uint8_t *aad, size_t aadlen, const uint8_t *ct, size_t len,
		  const uint8_t *tag, uint8_t *pt)
{
	struct wfs_tls *t = get_tls();
	uint8_t tagcopy[WFS_TAG_LEN], fin[16];
	int outl, r = -EIO;

	if (t == NULL)
		return -ENOMEM;
	if (len > INT_MAX || aadlen > INT_MAX)
		return -EINVAL;
	memcpy(tagcopy, tag, WFS_TAG_LEN);
	if (cache_id == 0 || t->dec_id != cache_id) {
		t->dec_id = 0;
		if (!EVP_DecryptInit_ex2(t->dec, NULL, key, nonce, NULL))
			goto out;
		t->dec_id = cache_id;
	} else if (!EVP_DecryptInit_ex2(t->dec, NULL, NULL, nonce, NULL))
		goto out;
	if (aadlen > 0 && !EVP_DecryptUpdate(t->dec, NULL, &outl, aad, (int)aadlen))
		goto out;
	if (len > 0 && !EVP_DecryptUpdate(t->dec, pt, &outl, ct, (int)len))
		goto out;
	if (!EVP_CIPHER_CTX_ctrl(t->dec, EVP_CTRL_AEAD_SET_TAG, WFS_TAG_LEN, tagcopy))
		goto out;
	if (EVP_DecryptFinal_ex(t->dec, fin, &outl) <= 0)
		goto out; /* authentication failed */
	r = 0;
out:
	if (r != 0 && len > 0)
		sodium_memzero(pt, len); /* never hand out unauthenticated plaintext */
	if (cache_id == 0) {
		t->dec_id = 0;
		if (!ctx_forget(t->dec, 0))
			r = -EIO;
	}
	return r;
}

int wfs__hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
		     const char *info, uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int r = -EIO;

	if (kdf == NULL || (kctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
	if (saltlen > 0)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							 saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, outlen, params) <= 0)
		goto out;
	r = 0;
out:
	EVP_KDF_CTX_free(kctx); /* cleanses */
	EVP_KDF_free(kdf);
	return r;
}

static wfs_random_fn random_fn;
static void *random_arg;

void wfs__set_nonce_source(wfs_random_fn fn, void *arg)
{
	random_fn = fn;
	random_arg = arg;
}

void wfs__random(void *out, size_t n)
{
	if (random_fn != NULL)
		random_fn(random_arg, out, n);
	else
		randombytes_buf(out, n);
}
