/*
 * chain.c - the audit chain key (32 random bytes in a root-only file, apart
 * from the vault key) and the HMAC-SHA256 computations of the row chain,
 * the chain head and prune anchors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "audit_internal.h"

static int read_key(const char *path, unsigned char key[AUD_KEY_LEN], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot stat audit key '%s': %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode) || st.st_size != AUD_KEY_LEN) {
		r = -EINVAL;
		snprintf(err, errlen, "audit key '%s' is not a %d-byte file", path, AUD_KEY_LEN);
	} else if (st.st_mode & 077) {
		r = -EPERM;
		snprintf(err, errlen, "audit key '%s' is accessible by group or others (mode %o)",
			 path, (unsigned)(st.st_mode & 07777));
	} else if (geteuid() == 0 && st.st_uid != 0) {
		r = -EPERM;
		snprintf(err, errlen, "audit key '%s' is not owned by root", path);
	} else if (pread(fd, key, AUD_KEY_LEN, 0) != AUD_KEY_LEN) {
		r = -EIO;
		snprintf(err, errlen, "cannot read audit key '%s'", path);
	}
	close(fd);
	return r;
}

static int create_key(const char *path, char *err, size_t errlen)
{
	unsigned char key[AUD_KEY_LEN];
	if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
		snprintf(err, errlen, "cannot get random bytes for the audit key");
		return -EIO;
	}
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create audit key '%s': %s", path, strerror(e));
		return -e;
	}
	int r = 0;
	if (fchmod(fd, 0600) < 0 || write(fd, key, sizeof key) != (ssize_t)sizeof key ||
	    fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	explicit_bzero(key, sizeof key);
	if (!r && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
	unlink(tmp);
	if (r)
		snprintf(err, errlen, "cannot create audit key '%s': %s", path, strerror(-r));
	return r;
}

int aud_key_load(const char *path, bool create, unsigned char key[AUD_KEY_LEN], char *err,
		 size_t errlen)
{
	err[0] = 0;
	int r = read_key(path, key, err, errlen);
	if (r == -ENOENT && create) {
		r = create_key(path, err, errlen);
		if (!r)
			r = read_key(path, key, err, errlen);
	}
	if (r && !err[0])
		snprintf(err, errlen, "cannot open audit key '%s': %s", path, strerror(-r));
	return r;
}

static EVP_MAC *hmac_mac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_init(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static EVP_MAC *hmac_alg(void)
{
	pthread_once(&hmac_once, hmac_init);
	return hmac_mac;
}

struct iov {
	const void *p;
	size_t n;
};

/* A per-thread context keyed once, duplicated per MAC: EVP_MAC_init with a
 * digest parameter costs more than the MAC of a row. */
static pthread_key_t tmpl_key;
static pthread_once_t tmpl_once = PTHREAD_ONCE_INIT;

struct tmpl {
	EVP_MAC_CTX *ctx;
	unsigned char key[AUD_KEY_LEN];
};

static void tmpl_free(void *p)
{
	struct tmpl *t = p;
	EVP_MAC_CTX_free(t->ctx);
	explicit_bzero(t, sizeof *t);
	free(t);
}

static void tmpl_init(void)
{
	pthread_key_create(&tmpl_key, tmpl_free);
}

static EVP_MAC_CTX *keyed_ctx(const unsigned char *key)
{
	pthread_once(&tmpl_once, tmpl_init);
	struct tmpl *t = pthread_getspecific(tmpl_key);
	if (t && t->ctx && !memcmp(t->key, key, AUD_KEY_LEN))
		return EVP_MAC_CTX_dup(t->ctx);
	EVP_MAC *alg = hmac_alg();
	if (!alg)
		return NULL;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(alg);
	if (!ctx)
		return NULL;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};
	if (!EVP_MAC_init(ctx, key, AUD_KEY_LEN, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	if (!t && (t = calloc(1, sizeof *t)))
		pthread_setspecific(tmpl_key, t);
	if (t) {
		EVP_MAC_CTX_free(t->ctx);
		t->ctx = ctx;
		memcpy(t->key, key, AUD_KEY_LEN);
		return EVP_MAC_CTX_dup(ctx);
	}
	return ctx;
}

static int hmac_v(const unsigned char *key, const struct iov *v, int nv, unsigned char *out)
{
	EVP_MAC_CTX *ctx = keyed_ctx(key);
	if (!ctx)
		return -ENOMEM;
	int ok = 1;
	for (int i = 0; ok && i < nv; i++)
		ok = EVP_MAC_update(ctx, v[i].p, v[i].n);
	size_t outl = 0;
	if (ok)
		ok = EVP_MAC_final(ctx, out, &outl, AUD_MAC_LEN);
	EVP_MAC_CTX_free(ctx);
	return ok && outl == AUD_MAC_LEN ? 0 : -EIO;
}

int aud_mac_row(const unsigned char *key, const unsigned char *prev, int64_t id,
		const void *payload, size_t plen, unsigned char out[AUD_MAC_LEN])
{
	unsigned char idenc[9];
	struct aud_buf b = {idenc, 0, sizeof idenc};
	aud_enc_int(&b, id);
	struct iov v[] = {{prev, AUD_MAC_LEN}, {idenc, sizeof idenc}, {payload, plen}};
	return hmac_v(key, v, 3, out);
}

int aud_mac_label(const unsigned char *key, const char *label, const void *data, size_t len,
		  unsigned char out[AUD_MAC_LEN])
{
	struct iov v[] = {{label, strlen(label) + 1}, {data, len}};
	return hmac_v(key, v, 2, out);
}

int aud_head_auth(const unsigned char *key, int64_t id, const unsigned char *mac,
		  unsigned char out[AUD_MAC_LEN])
{
	unsigned char tmp[9 + 5 + AUD_MAC_LEN];
	struct aud_buf b = {tmp, 0, sizeof tmp};
	aud_enc_int(&b, id);
	aud_enc_text(&b, (const char *)mac, AUD_MAC_LEN);
	return aud_mac_label(key, "wardfs-audit-head", tmp, b.len, out);
}
