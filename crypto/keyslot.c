/*
 * keyslot.c - the secrets a key slot is opened with, turned into the key
 * that wraps the vault's master key (a KEK): Argon2id of a passphrase, HKDF
 * of a recovery key, X25519 of an escrow key pair; and the text forms an
 * admin handles (the recovery key, the escrow keys), each checked so that
 * a typo is told apart from a wrong key. The slots themselves are laid out
 * by keyfile.c; docs/format.md has both.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto_internal.h"

#define REC_GROUPS	 8
#define REC_GROUP_CHARS	 6
#define ESCROW_SUM_BYTES 4 /* the text's checksum: BLAKE2b of the key, first bytes */

_Static_assert(REC_GROUPS *(REC_GROUP_CHARS + 1) <= WFS_RECOVERY_LEN, "recovery text fits");
_Static_assert(REC_GROUPS *REC_GROUP_CHARS == 2 * WFS_REC_KEY_LEN, "recovery groups");

static const char escrow_public_tag[] = "wardfs-escrow-public-1:";
static const char escrow_secret_tag[] = "wardfs-escrow-secret-1:";

int wfs__kek_passphrase(const char *pass, size_t passlen, const uint8_t salt[WFS_SLOT_SALT_LEN],
			uint64_t ops, size_t mem, uint8_t kek[WFS_KEY_LEN])
{
#ifdef WFS_FUZZING
	/* Keep the fuzzer fast: refuse to run Argon2id on anything but toy costs. */
	if (ops > 2 || mem > (64u << 10))
		return -EINVAL;
#endif
	if (passlen > crypto_pwhash_argon2id_PASSWD_MAX)
		return -EINVAL;
	if (crypto_pwhash(kek, WFS_KEY_LEN, pass, passlen, salt, ops, mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM; /* libsodium's only failure here: the memory */
	return 0;
}

int wfs__kek_recovery(const uint8_t rec[WFS_REC_KEY_LEN], const uint8_t salt[WFS_SLOT_SALT_LEN],
		      const char *info, uint8_t kek[WFS_KEY_LEN])
{
	return wfs__hkdf_sha256(rec, WFS_REC_KEY_LEN, salt, WFS_SLOT_SALT_LEN, info, kek,
				WFS_KEY_LEN);
}

/*
 * kek = HKDF(X25519(a secret, b public), salt = ephemeral public || escrow
 * public, "wardfs v2 escrow wrap"): the sealer uses its ephemeral secret and
 * the escrow public key, the admin the escrow secret and the ephemeral
 * public key. Both publics in the salt bind the KEK to this pair.
 */
int wfs__kek_escrow(const uint8_t secret[WFS_ESCROW_KEY_LEN],
		    const uint8_t peer[WFS_ESCROW_KEY_LEN],
		    const uint8_t eph_public[WFS_ESCROW_KEY_LEN],
		    const uint8_t escrow_public[WFS_ESCROW_KEY_LEN], uint8_t kek[WFS_KEY_LEN])
{
	uint8_t shared[crypto_scalarmult_BYTES], salt[2 * WFS_ESCROW_KEY_LEN];
	int r;

	/* libsodium refuses a low-order point (an all-zero shared secret). */
	if (crypto_scalarmult(shared, secret, peer) != 0)
		return -EACCES;
	memcpy(salt, eph_public, WFS_ESCROW_KEY_LEN);
	memcpy(salt + WFS_ESCROW_KEY_LEN, escrow_public, WFS_ESCROW_KEY_LEN);
	r = wfs__hkdf_sha256(shared, sizeof(shared), salt, sizeof(salt), "wardfs v2 escrow wrap",
			     kek, WFS_KEY_LEN);
	sodium_memzero(shared, sizeof(shared));
	return r;
}

/* A TPM-sealed secret is 256 random bits: HKDF is all it needs. */
int wfs__kek_tpm2(const uint8_t secret[WFS_TPM2_SECRET_LEN], const char *info,
		  uint8_t kek[WFS_KEY_LEN])
{
	return wfs__hkdf_sha256(secret, WFS_TPM2_SECRET_LEN, NULL, 0, info, kek, WFS_KEY_LEN);
}

/* ---- recovery key text ---------------------------------------------- */

int wfs__rec_parse(const char *text, uint8_t rec[WFS_REC_KEY_LEN])
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
		if (nd >= 2 * WFS_REC_KEY_LEN)
			return -EINVAL;
		if (nd % 2 == 0)
			rec[nd / 2] = (uint8_t)(v << 4);
		else
			rec[nd / 2] |= (uint8_t)v;
		nd++;
	}
	return nd == 2 * WFS_REC_KEY_LEN ? 0 : -EINVAL;
}

bool wfs_recovery_wellformed(const char *text)
{
	uint8_t rec[WFS_REC_KEY_LEN];
	int r = wfs__rec_parse(text, rec);

	sodium_memzero(rec, sizeof(rec));
	return r == 0;
}

void wfs__rec_format(const uint8_t rec[WFS_REC_KEY_LEN], char out[WFS_RECOVERY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 2 * WFS_REC_KEY_LEN; i++) {
		if (i > 0 && i % REC_GROUP_CHARS == 0)
			out[o++] = '-';
		out[o++] = hex[(rec[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	}
	out[o] = '\0';
}

/* ---- escrow keys ------------------------------------------------------ */

static void escrow_sum(const uint8_t key[WFS_ESCROW_KEY_LEN], uint8_t sum[ESCROW_SUM_BYTES])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof(h), key, WFS_ESCROW_KEY_LEN, NULL, 0);
	memcpy(sum, h, ESCROW_SUM_BYTES);
}

/* TAG then the key and its checksum in hex, one line. */
static void escrow_format(const char *tag, const uint8_t key[WFS_ESCROW_KEY_LEN],
			  char out[WFS_ESCROW_TEXT_LEN])
{
	uint8_t sum[ESCROW_SUM_BYTES];
	size_t n = strlen(tag);

	/* the hex after the tag ends the string */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(out, tag, n);
	sodium_bin2hex(out + n, 2 * WFS_ESCROW_KEY_LEN + 1, key, WFS_ESCROW_KEY_LEN);
	n += 2 * WFS_ESCROW_KEY_LEN;
	escrow_sum(key, sum);
	sodium_bin2hex(out + n, 2 * ESCROW_SUM_BYTES + 1, sum, ESCROW_SUM_BYTES);
}

/* 0, -EINVAL (not this kind of key, or a typo: the checksum fails). White
 * space around the text is ignored. */
static int escrow_parse(const char *tag, const char *text, uint8_t key[WFS_ESCROW_KEY_LEN])
{
	uint8_t raw[WFS_ESCROW_KEY_LEN + ESCROW_SUM_BYTES], sum[ESCROW_SUM_BYTES];
	size_t n = strlen(tag), got = 0;
	const char *end = NULL;
	int r = -EINVAL;

	if (text == NULL)
		return -EINVAL;
	while (isspace((unsigned char)*text))
		text++;
	if (strncmp(text, tag, n) != 0)
		return -EINVAL;
	if (sodium_hex2bin(raw, sizeof(raw), text + n, strlen(text + n), NULL, &got, &end) != 0 ||
	    got != sizeof(raw))
		goto out;
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0')
		goto out;
	escrow_sum(raw, sum);
	if (sodium_memcmp(sum, raw + WFS_ESCROW_KEY_LEN, ESCROW_SUM_BYTES) != 0)
		goto out;
	memcpy(key, raw, WFS_ESCROW_KEY_LEN);
	r = 0;
out:
	sodium_memzero(raw, sizeof(raw));
	return r;
}

int wfs_escrow_keygen(char public_text[WFS_ESCROW_TEXT_LEN], char secret_text[WFS_ESCROW_TEXT_LEN])
{
	uint8_t *sk = wfs_secure_alloc(WFS_ESCROW_KEY_LEN);
	uint8_t pk[WFS_ESCROW_KEY_LEN];

	if (sk == NULL)
		return -ENOMEM;
	randombytes_buf(sk, WFS_ESCROW_KEY_LEN);
	crypto_scalarmult_base(pk, sk);
	escrow_format(escrow_public_tag, pk, public_text);
	escrow_format(escrow_secret_tag, sk, secret_text);
	wfs_secure_free(sk);
	return 0;
}

int wfs_escrow_public_parse(const char *text, uint8_t pk[WFS_ESCROW_KEY_LEN])
{
	return escrow_parse(escrow_public_tag, text, pk);
}

int wfs_escrow_secret_parse(const char *text, uint8_t sk[WFS_ESCROW_KEY_LEN])
{
	return escrow_parse(escrow_secret_tag, text, sk);
}

void wfs_escrow_public_of(const uint8_t sk[WFS_ESCROW_KEY_LEN], uint8_t pk[WFS_ESCROW_KEY_LEN])
{
	crypto_scalarmult_base(pk, sk);
}

void wfs_escrow_fingerprint(const uint8_t pk[WFS_ESCROW_KEY_LEN], char out[WFS_FINGERPRINT_LEN])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof(h), pk, WFS_ESCROW_KEY_LEN, NULL, 0);
	sodium_bin2hex(out, WFS_FINGERPRINT_LEN, h, (WFS_FINGERPRINT_LEN - 1) / 2);
}
