/*
 * keyfile.c - the vault keyfile: a fixed 188-byte binary record holding the
 * master key wrapped twice with AES-256-GCM, once under Argon2id(passphrase)
 * and once under a key derived (HKDF) from a random 192-bit recovery key.
 * Layout in docs/format.md. The parser takes any bytes (it is fuzzed).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto_internal.h"

static const uint8_t kf_magic[8] = {0x89, 'W', 'F', 'S', 'K', 'E', 'Y', 0x00};

#define KF_VERSION	  1
#define KF_ALG_ARGON2ID13 2 /* == crypto_pwhash_ALG_ARGON2ID13 */
#define KF_SIZE		  188

/* Field offsets. */
#define KF_OFF_MAGIC	 0
#define KF_OFF_VERSION	 8
#define KF_OFF_FLAGS	 10
#define KF_OFF_RESERVED	 12
#define KF_OFF_REC_SALT	 16
#define KF_OFF_REC_NONCE 32
#define KF_OFF_REC_WRAP	 44 /* 32-byte ciphertext + 16-byte tag */
#define KF_OFF_ALG	 92
#define KF_OFF_OPS	 96
#define KF_OFF_MEM	 104
#define KF_OFF_SALT	 112
#define KF_OFF_NONCE	 128
#define KF_OFF_WRAP	 140
#define KF_REC_AAD_LEN	 KF_OFF_REC_NONCE /* bytes [0,32) */
#define KF_PASS_AAD_LEN	 KF_OFF_NONCE	  /* bytes [0,128) */
#define KF_SALT_LEN	 16

#define REC_KEY_LEN	  24 /* 192 bits */
#define REC_GROUPS	  8
#define REC_GROUP_CHARS	  6
#define WFS_INFO_RECOVERY "wardfs v1 recovery wrap"

/* Bounds on stored Argon2id cost; outside them the keyfile is malformed. */
#define KF_OPS_MAX 64u
#define KF_MEM_MAX (4ull << 30)
#ifdef WFS_FUZZING
/* Keep the fuzzer fast: refuse to run Argon2id on anything but toy costs. */
#define KF_FUZZ_OPS_MAX 2u
#define KF_FUZZ_MEM_MAX (64u << 10)
#endif

_Static_assert(KF_OFF_WRAP + WFS_KEY_LEN + WFS_TAG_LEN == KF_SIZE, "keyfile layout");
_Static_assert(REC_GROUPS *(REC_GROUP_CHARS + 1) <= WFS_RECOVERY_LEN, "recovery text fits");
_Static_assert(REC_GROUPS *REC_GROUP_CHARS == 2 * REC_KEY_LEN, "recovery groups");

/* Secrets of one operation, in one secure allocation. */
struct kf_secrets {
	uint8_t kek[WFS_KEY_LEN];
	uint8_t master[WFS_KEY_LEN];
	uint8_t rec[REC_KEY_LEN];
};

static int params_valid(uint64_t ops, uint64_t mem)
{
	return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN && ops <= KF_OPS_MAX &&
	       mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN && mem <= KF_MEM_MAX &&
	       mem <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

int wfs_keyfile_check(const uint8_t *buf, size_t len, struct wfs_kdf_params *params)
{
	uint64_t ops, mem;

	if (buf == NULL || len != KF_SIZE || memcmp(buf + KF_OFF_MAGIC, kf_magic, 8) != 0 ||
	    wfs__get_le16(buf + KF_OFF_VERSION) != KF_VERSION ||
	    wfs__get_le16(buf + KF_OFF_FLAGS) != 0 || wfs__get_le32(buf + KF_OFF_RESERVED) != 0 ||
	    wfs__get_le32(buf + KF_OFF_ALG) != KF_ALG_ARGON2ID13)
		return -EINVAL;
	ops = wfs__get_le64(buf + KF_OFF_OPS);
	mem = wfs__get_le64(buf + KF_OFF_MEM);
	if (!params_valid(ops, mem))
		return -EINVAL;
	if (params != NULL) {
		params->opslimit = ops;
		params->memlimit = (size_t)mem;
	}
	return 0;
}

/* Argon2id(pass) -> kek. 0, -ENOMEM, or -EINVAL for a passphrase too long. */
static int pass_kek(const char *pass, size_t passlen, const uint8_t salt[KF_SALT_LEN], uint64_t ops,
		    size_t mem, uint8_t kek[WFS_KEY_LEN])
{
#ifdef WFS_FUZZING
	if (ops > KF_FUZZ_OPS_MAX || mem > KF_FUZZ_MEM_MAX)
		return -EINVAL;
#endif
	if (passlen > crypto_pwhash_argon2id_PASSWD_MAX)
		return -EINVAL;
	if (crypto_pwhash(kek, WFS_KEY_LEN, pass, passlen, salt, ops, mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM; /* libsodium's only failure here: the memory */
	return 0;
}

static int rec_kek(const uint8_t rec[REC_KEY_LEN], const uint8_t salt[KF_SALT_LEN],
		   uint8_t kek[WFS_KEY_LEN])
{
	return wfs__hkdf_sha256(rec, REC_KEY_LEN, salt, KF_SALT_LEN, WFS_INFO_RECOVERY, kek,
				WFS_KEY_LEN);
}

/* Parses "xxxxxx-xxxxxx-..." (case, '-' and white space ignored). */
static int rec_parse(const char *text, uint8_t rec[REC_KEY_LEN])
{
	size_t nd = 0;

	if (text == NULL)
		return -EINVAL;
	for (const char *p = text; *p != '\0'; p++) {
		int c = (unsigned char)*p, v;

		if (c == '-' || isspace(c))
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -EINVAL;
		if (nd >= 2 * REC_KEY_LEN)
			return -EINVAL;
		if (nd % 2 == 0)
			rec[nd / 2] = (uint8_t)(v << 4);
		else
			rec[nd / 2] |= (uint8_t)v;
		nd++;
	}
	return nd == 2 * REC_KEY_LEN ? 0 : -EINVAL;
}

bool wfs_recovery_wellformed(const char *text)
{
	uint8_t rec[REC_KEY_LEN];
	int r = rec_parse(text, rec);

	sodium_memzero(rec, sizeof(rec));
	return r == 0;
}

static void rec_format(const uint8_t rec[REC_KEY_LEN], char out[WFS_RECOVERY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 2 * REC_KEY_LEN; i++) {
		if (i > 0 && i % REC_GROUP_CHARS == 0)
			out[o++] = '-';
		out[o++] = hex[(rec[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	}
	out[o] = '\0';
}

/* Writes the passphrase section (alg, params, salt, nonce, wrap) of buf. */
static int seal_pass(uint8_t *buf, struct kf_secrets *s, const char *pass, size_t passlen,
		     uint64_t ops, size_t mem)
{
	int r;

	wfs__put_le32(buf + KF_OFF_ALG, KF_ALG_ARGON2ID13);
	wfs__put_le64(buf + KF_OFF_OPS, ops);
	wfs__put_le64(buf + KF_OFF_MEM, mem);
	randombytes_buf(buf + KF_OFF_SALT, KF_SALT_LEN);
	randombytes_buf(buf + KF_OFF_NONCE, WFS_NONCE_LEN);
	if ((r = pass_kek(pass, passlen, buf + KF_OFF_SALT, ops, mem, s->kek)) != 0)
		return r;
	return wfs__gcm_seal(s->kek, 0, buf + KF_OFF_NONCE, buf, KF_PASS_AAD_LEN, s->master,
			     WFS_KEY_LEN, buf + KF_OFF_WRAP, buf + KF_OFF_WRAP + WFS_KEY_LEN);
}

int wfs_keyfile_create(const char *pass, size_t passlen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen, char recovery[WFS_RECOVERY_LEN],
		       struct wfs_keys **keys)
{
	struct wfs_kdf_params p;
	struct kf_secrets *s = NULL;
	struct wfs_keys *k = NULL;
	uint8_t *buf = NULL;
	int r;

	*out = NULL;
	*outlen = 0;
	*keys = NULL;
	if (params != NULL)
		p = *params;
	else
		wfs_kdf_params_default(&p);
	if (!params_valid(p.opslimit, p.memlimit))
		return -EINVAL;
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL || (buf = calloc(1, KF_SIZE)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	randombytes_buf(s->master, WFS_KEY_LEN);
	randombytes_buf(s->rec, REC_KEY_LEN);

	memcpy(buf + KF_OFF_MAGIC, kf_magic, 8);
	wfs__put_le16(buf + KF_OFF_VERSION, KF_VERSION);
	randombytes_buf(buf + KF_OFF_REC_SALT, KF_SALT_LEN);
	randombytes_buf(buf + KF_OFF_REC_NONCE, WFS_NONCE_LEN);
	if ((r = rec_kek(s->rec, buf + KF_OFF_REC_SALT, s->kek)) != 0 ||
	    (r = wfs__gcm_seal(s->kek, 0, buf + KF_OFF_REC_NONCE, buf, KF_REC_AAD_LEN, s->master,
			       WFS_KEY_LEN, buf + KF_OFF_REC_WRAP,
			       buf + KF_OFF_REC_WRAP + WFS_KEY_LEN)) != 0)
		goto out;
	if ((r = seal_pass(buf, s, pass, passlen, p.opslimit, p.memlimit)) != 0)
		goto out;
	if ((r = wfs__keys_from_master(s->master, &k)) != 0)
		goto out;
	rec_format(s->rec, recovery);
	*out = buf;
	*outlen = KF_SIZE;
	*keys = k;
	buf = NULL;
	k = NULL;
	r = 0;
out:
	free(buf);
	wfs_keys_free(k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_unlock(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
		       struct wfs_keys **keys)
{
	struct wfs_kdf_params p;
	struct kf_secrets *s = NULL;
	int r;

	*keys = NULL;
	if ((r = wfs_keyfile_check(buf, len, &p)) != 0)
		return r;
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((r = pass_kek(pass, passlen, buf + KF_OFF_SALT, p.opslimit, p.memlimit, s->kek)) != 0)
		goto out;
	r = wfs__gcm_open(s->kek, 0, buf + KF_OFF_NONCE, buf, KF_PASS_AAD_LEN, buf + KF_OFF_WRAP,
			  WFS_KEY_LEN, buf + KF_OFF_WRAP + WFS_KEY_LEN, s->master);
	if (r == -EIO) {
		r = -EACCES;
		goto out;
	} else if (r != 0)
		goto out;
	r = wfs__keys_from_master(s->master, keys);
out:
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_unlock_recovery(const uint8_t *buf, size_t len, const char *recovery,
				struct wfs_keys **keys)
{
	struct kf_secrets *s = NULL;
	int r;

	*keys = NULL;
	if ((r = wfs_keyfile_check(buf, len, NULL)) != 0)
		return r;
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL)
		return -ENOMEM;
	if (rec_parse(recovery, s->rec) != 0) {
		r = -EACCES; /* not even shaped like a recovery key */
		goto out;
	}
	if ((r = rec_kek(s->rec, buf + KF_OFF_REC_SALT, s->kek)) != 0)
		goto out;
	r = wfs__gcm_open(s->kek, 0, buf + KF_OFF_REC_NONCE, buf, KF_REC_AAD_LEN,
			  buf + KF_OFF_REC_WRAP, WFS_KEY_LEN, buf + KF_OFF_REC_WRAP + WFS_KEY_LEN,
			  s->master);
	if (r == -EIO) {
		r = -EACCES;
		goto out;
	} else if (r != 0)
		goto out;
	r = wfs__keys_from_master(s->master, keys);
out:
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_rewrap(const uint8_t *buf, size_t len, const struct wfs_keys *keys,
		       const char *newpass, size_t newpasslen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen)
{
	struct wfs_kdf_params p;
	struct kf_secrets *s = NULL;
	uint8_t *nbuf = NULL;
	int r;

	*out = NULL;
	*outlen = 0;
	if (keys == NULL)
		return -EINVAL;
	if ((r = wfs_keyfile_check(buf, len, &p)) != 0)
		return r;
	if (params != NULL)
		p = *params; /* NULL keeps the stored cost */
	if (!params_valid(p.opslimit, p.memlimit))
		return -EINVAL;
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL || (nbuf = malloc(KF_SIZE)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(nbuf, buf, KF_SIZE); /* magic .. recovery wrap kept as is */
	memcpy(s->master, keys->master, WFS_KEY_LEN);
	if ((r = seal_pass(nbuf, s, newpass, newpasslen, p.opslimit, p.memlimit)) != 0)
		goto out;
	*out = nbuf;
	*outlen = KF_SIZE;
	nbuf = NULL;
	r = 0;
out:
	free(nbuf);
	wfs_secure_free(s);
	return r;
}
