/*
 * keyfile.c - the vault keyfile, BACKING/.wardfs/keyfile: the one master
 * key wrapped once per key slot (AES-256-GCM under each slot's KEK, made
 * by keyslot.c). Version 2 (key slots, authenticated as a whole by a MAC
 * under the master key) is what is written; version 1, the fixed 188-byte
 * record of the first wardfs, is read, and its two sections live on as
 * "legacy" slots, byte for byte, when it is upgraded. Layout in
 * docs/format.md. The parser takes any bytes (it is fuzzed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto_internal.h"

static const uint8_t kf_magic[8] = {0x89, 'W', 'F', 'S', 'K', 'E', 'Y', 0x00};

#define KF_ALG_ARGON2ID13 2 /* == crypto_pwhash_ALG_ARGON2ID13 */
#define KF_OPS_MAX	  64u
#define KF_MEM_MAX	  (4ull << 30)
#define WRAP_LEN	  (WFS_KEY_LEN + WFS_TAG_LEN)
#define SEAL_LEN	  (WFS_NONCE_LEN + WRAP_LEN) /* a slot ends in nonce, then wrap */

/* Version 1: one 188-byte record, recovery section then passphrase section. */
#define V1_SIZE		 188
#define V1_HDR		 16 /* magic, version, flags, reserved */
#define V1_OFF_REC_SALT	 16
#define V1_OFF_REC_NONCE 32
#define V1_OFF_REC_WRAP	 44
#define V1_REC_END	 92
#define V1_OFF_ALG	 92
#define V1_OFF_OPS	 96
#define V1_OFF_MEM	 104
#define V1_OFF_SALT	 112
#define V1_OFF_NONCE	 128
#define V1_OFF_WRAP	 140
#define V1_INFO_REC	 "wardfs v1 recovery wrap"

/* Version 2: header, slot records, MAC. */
#define V2_AAD_HDR	32 /* magic, version, flags, reserved, vault id: in every slot's AAD */
#define V2_OFF_FLAGS	10 /* ... but the flags as zero: they may change (under the MAC) */
#define V2_OFF_VAULT_ID 16
#define V2_VAULT_ID_LEN 16
#define V2_OFF_NSLOTS	32
#define V2_HDR		36 /* ... then the slot count and 2 reserved bytes */
#define V2_MAC		32 /* HMAC-SHA256 of every byte before it */
#define V2_INFO_REC	"wardfs v2 recovery wrap"
#define V2_INFO_MAC	"wardfs v2 keyfile mac"
#define V2_INFO_TPM2	"wardfs v2 tpm2 wrap"

/* A slot record: length, id, type, flags, label length, reserved, created. */
#define SLOT_HDR	 16
#define SLOT_FLAG_LEGACY 0x01
#define BODY_PASS	 (4 + 8 + 8 + WFS_SLOT_SALT_LEN + SEAL_LEN)
#define BODY_REC	 (WFS_SLOT_SALT_LEN + SEAL_LEN)
#define BODY_ESCROW	 (2 * WFS_ESCROW_KEY_LEN + SEAL_LEN)
#define BODY_V1_PASS	 (V1_SIZE - V1_HDR)    /* legacy: version 1 bytes [16, 188) */
#define BODY_V1_REC	 (V1_REC_END - V1_HDR) /* legacy: version 1 bytes [16, 92) */
/* tpm2: template, reserved, bank, PCR mask, then two blobs with their
 * lengths, then the seal: its length is the record's */
#define TPM2_FIXED    8
#define BODY_TPM2_MIN (TPM2_FIXED + 2 + 2 + SEAL_LEN)
#define BODY_TPM2_MAX (BODY_TPM2_MIN + WFS_TPM2_PUB_MAX + WFS_TPM2_PRIV_MAX)
#define BODY_MAX      (BODY_TPM2_MAX > BODY_V1_PASS ? BODY_TPM2_MAX : BODY_V1_PASS)
#define SLOT_MAX      (SLOT_HDR + WFS_SLOT_LABEL_MAX + BODY_MAX)

_Static_assert(V1_OFF_WRAP + WRAP_LEN == V1_SIZE, "keyfile v1 layout");
_Static_assert(V2_HDR + WFS_SLOTS_MAX * SLOT_MAX + V2_MAC <= WFS_KEYFILE_MAX, "keyfile fits");

/* A keyfile being read or edited: its header and a copy of each record. */
struct kf {
	unsigned version;
	uint8_t hdr[V2_AAD_HDR];
	size_t n;
	uint8_t *rec[WFS_SLOTS_MAX];
	size_t len[WFS_SLOTS_MAX];
};

/* Secrets of one operation, in one secure allocation. */
struct kf_secrets {
	uint8_t kek[WFS_KEY_LEN];
	uint8_t master[WFS_KEY_LEN];
	uint8_t rec[WFS_REC_KEY_LEN];
	uint8_t sk[WFS_ESCROW_KEY_LEN];
	uint8_t pk[WFS_ESCROW_KEY_LEN]; /* sk's public key, when opening escrow slots */
	uint8_t mac_key[WFS_KEY_LEN];
};

const char *wfs_slot_type_name(enum wfs_slot_type t)
{
	switch (t) {
	case WFS_SLOT_PASSPHRASE:
		return "passphrase";
	case WFS_SLOT_RECOVERY:
		return "recovery";
	case WFS_SLOT_ESCROW:
		return "escrow";
	case WFS_SLOT_TPM2:
		return "tpm2";
	}
	return "unknown";
}

bool wfs_slot_type_unattended(enum wfs_slot_type t)
{
	return t == WFS_SLOT_TPM2;
}

int wfs_slot_type_parse(const char *name)
{
	for (int t = WFS_SLOT_PASSPHRASE; t <= WFS_SLOT_TPM2; t++)
		if (name != NULL && strcmp(name, wfs_slot_type_name((enum wfs_slot_type)t)) == 0)
			return t;
	return -EINVAL;
}

static bool params_valid(uint64_t ops, uint64_t mem)
{
	return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN && ops <= KF_OPS_MAX &&
	       mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN && mem <= KF_MEM_MAX &&
	       mem <= crypto_pwhash_argon2id_MEMLIMIT_MAX;
}

/* ---- records ---------------------------------------------------------- */

/* The fixed length of a body of type (0: no such type, or a tpm2 body,
 * whose length its blobs say). */
static size_t body_len(unsigned type, bool legacy)
{
	switch (type) {
	case WFS_SLOT_PASSPHRASE:
		return legacy ? BODY_V1_PASS : BODY_PASS;
	case WFS_SLOT_RECOVERY:
		return legacy ? BODY_V1_REC : BODY_REC;
	case WFS_SLOT_ESCROW:
		return legacy ? 0 : BODY_ESCROW;
	default:
		return 0;
	}
}

static const uint8_t *rec_body(const uint8_t *rec)
{
	return rec + SLOT_HDR + rec[6];
}

static bool label_valid(const uint8_t *p, size_t n)
{
	if (n > WFS_SLOT_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false; /* `key list` prints it */
	return true;
}

/* The slot's cost, where it sits in its body (legacy: version 1 offsets). */
static int body_params(const uint8_t *body, bool legacy, struct wfs_kdf_params *p)
{
	const uint8_t *f = legacy ? body + (V1_OFF_ALG - V1_HDR) : body;
	uint64_t ops = wfs__get_le64(f + 4), mem = wfs__get_le64(f + 12);

	if (wfs__get_le32(f) != KF_ALG_ARGON2ID13 || !params_valid(ops, mem))
		return -EINVAL;
	p->opslimit = ops;
	p->memlimit = (size_t)mem;
	return 0;
}

/* A tpm2 body of bl bytes: its fields into t (may be NULL). Only lengths
 * and ranges are checked here: a garbled blob is the TPM's to refuse, so
 * that one bad slot does not make the keyfile unreadable. */
static int tpm2_body_parse(const uint8_t *b, size_t bl, struct wfs_tpm2_seal *t)
{
	size_t pl, ql;

	if (bl < BODY_TPM2_MIN || bl > BODY_TPM2_MAX || b[0] != WFS_TPM2_PRIMARY_ECC || b[1] != 0 ||
	    wfs__get_le16(b + 2) != WFS_TPM2_BANK_SHA256 ||
	    (wfs__get_le32(b + 4) >> WFS_TPM2_PCRS) != 0)
		return -EINVAL;
	pl = wfs__get_le16(b + TPM2_FIXED);
	if (pl == 0 || pl > WFS_TPM2_PUB_MAX || TPM2_FIXED + 2 + pl + 2 > bl)
		return -EINVAL;
	ql = wfs__get_le16(b + TPM2_FIXED + 2 + pl);
	if (ql == 0 || ql > WFS_TPM2_PRIV_MAX || BODY_TPM2_MIN + pl + ql != bl)
		return -EINVAL;
	if (t != NULL) {
		memset(t, 0, sizeof(*t));
		t->primary = b[0];
		t->pcr_bank = wfs__get_le16(b + 2);
		t->pcrs = wfs__get_le32(b + 4);
		t->publen = (uint16_t)pl;
		memcpy(t->pub, b + TPM2_FIXED + 2, pl);
		t->privlen = (uint16_t)ql;
		memcpy(t->priv, b + TPM2_FIXED + 2 + pl + 2, ql);
	}
	return 0;
}

/* Writes t into the tpm2 body b (tpm2_body_len(t) bytes, seal last). */
static size_t tpm2_body_len(const struct wfs_tpm2_seal *t)
{
	return BODY_TPM2_MIN + t->publen + t->privlen;
}

static void tpm2_body_put(uint8_t *b, const struct wfs_tpm2_seal *t)
{
	b[0] = t->primary;
	b[1] = 0;
	wfs__put_le16(b + 2, t->pcr_bank);
	wfs__put_le32(b + 4, t->pcrs);
	wfs__put_le16(b + TPM2_FIXED, t->publen);
	memcpy(b + TPM2_FIXED + 2, t->pub, t->publen);
	wfs__put_le16(b + TPM2_FIXED + 2 + t->publen, t->privlen);
	memcpy(b + TPM2_FIXED + 4 + t->publen, t->priv, t->privlen);
}

/* Checks one record of avail bytes (its length is its first field) and
 * tells what it holds. */
static int rec_parse(const uint8_t *rec, size_t avail, struct wfs_slot_info *si)
{
	size_t len, ll;
	bool legacy;

	if (avail < SLOT_HDR)
		return -EINVAL;
	len = wfs__get_le16(rec);
	ll = rec[6];
	legacy = rec[5] & SLOT_FLAG_LEGACY;
	if (len > avail || len < SLOT_HDR + ll || (rec[5] & ~SLOT_FLAG_LEGACY) != 0 ||
	    rec[7] != 0 || !label_valid(rec + SLOT_HDR, ll))
		return -EINVAL;
	if (rec[4] == WFS_SLOT_TPM2 && !legacy) {
		if (tpm2_body_parse(rec + SLOT_HDR + ll, len - SLOT_HDR - ll, NULL) != 0)
			return -EINVAL;
	} else if (body_len(rec[4], legacy) == 0 || len != SLOT_HDR + ll + body_len(rec[4], legacy))
		return -EINVAL;
	memset(si, 0, sizeof(*si));
	si->id = wfs__get_le16(rec + 2);
	si->type = (enum wfs_slot_type)rec[4];
	si->legacy = legacy;
	si->created = wfs__get_le64(rec + 8);
	memcpy(si->label, rec + SLOT_HDR, ll);
	if (si->type == WFS_SLOT_PASSPHRASE)
		return body_params(rec_body(rec), legacy, &si->kdf);
	if (si->type == WFS_SLOT_ESCROW)
		memcpy(si->escrow_public, rec_body(rec), WFS_ESCROW_KEY_LEN);
	if (si->type == WFS_SLOT_TPM2)
		return tpm2_body_parse(rec_body(rec), len - SLOT_HDR - ll, &si->tpm2);
	return 0;
}

/* A record of type with the given label, an empty body of bl bytes and a
 * fresh time. */
static uint8_t *rec_new(uint16_t id, enum wfs_slot_type type, bool legacy, const char *label,
			uint64_t created, size_t bl, size_t *lenp)
{
	size_t ll = strlen(label), len = SLOT_HDR + ll + bl;
	uint8_t *rec;

	if (!label_valid((const uint8_t *)label, ll) || (rec = calloc(1, len)) == NULL)
		return NULL;
	wfs__put_le16(rec, (uint16_t)len);
	wfs__put_le16(rec + 2, id);
	rec[4] = (uint8_t)type;
	rec[5] = legacy ? SLOT_FLAG_LEGACY : 0;
	rec[6] = (uint8_t)ll;
	wfs__put_le64(rec + 8, created);
	/* a label is stored as bytes and its length, not as a C string */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(rec + SLOT_HDR, label, ll);
	*lenp = len;
	return rec;
}

/* ---- the whole file ---------------------------------------------------- */

static void kf_free(struct kf *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->rec[i]);
	k->n = 0;
}

static int kf_add_rec(struct kf *k, uint8_t *rec, size_t len)
{
	if (rec == NULL)
		return -ENOMEM;
	if (k->n == WFS_SLOTS_MAX) {
		free(rec);
		return -ENOSPC;
	}
	k->rec[k->n] = rec;
	k->len[k->n++] = len;
	return 0;
}

static int v1_load(const uint8_t *buf, struct kf *k)
{
	struct wfs_kdf_params p;
	uint8_t *rec;
	size_t len = 0;
	int r;

	if (wfs__get_le16(buf + 8) != 1 || wfs__get_le16(buf + 10) != 0 ||
	    wfs__get_le32(buf + 12) != 0 || body_params(buf + V1_HDR, true, &p) != 0)
		return -EINVAL;
	/* The header it will be written with, vault id and all: slots added
	 * in the same edit are bound to it. */
	k->version = 1;
	memcpy(k->hdr, kf_magic, 8);
	wfs__put_le16(k->hdr + 8, 2);
	randombytes_buf(k->hdr + V2_OFF_VAULT_ID, V2_VAULT_ID_LEN);
	if ((rec = rec_new(0, WFS_SLOT_RECOVERY, true, "recovery", 0, BODY_V1_REC, &len)) != NULL)
		memcpy(rec + len - BODY_V1_REC, buf + V1_HDR, BODY_V1_REC);
	if ((r = kf_add_rec(k, rec, len)) != 0)
		return r;
	if ((rec = rec_new(1, WFS_SLOT_PASSPHRASE, true, "passphrase", 0, BODY_V1_PASS, &len)) !=
	    NULL)
		memcpy(rec + len - BODY_V1_PASS, buf + V1_HDR, BODY_V1_PASS);
	return kf_add_rec(k, rec, len);
}

static int v2_load(const uint8_t *buf, size_t len, struct kf *k)
{
	size_t n, off = V2_HDR;
	struct wfs_slot_info si;
	int r;

	if (len < V2_HDR + V2_MAC)
		return -EINVAL;
	n = wfs__get_le16(buf + V2_OFF_NSLOTS);
	if ((wfs__get_le16(buf + 10) & ~WFS_VAULT_FLAGS_KNOWN) != 0 ||
	    wfs__get_le32(buf + 12) != 0 || wfs__get_le16(buf + V2_OFF_NSLOTS + 2) != 0 || n == 0 ||
	    n > WFS_SLOTS_MAX)
		return -EINVAL;
	k->version = 2;
	memcpy(k->hdr, buf, V2_AAD_HDR);
	for (size_t i = 0; i < n; i++) {
		if ((r = rec_parse(buf + off, len - V2_MAC - off, &si)) != 0)
			return r;
		for (size_t j = 0; j < k->n; j++)
			if (wfs__get_le16(k->rec[j] + 2) == si.id)
				return -EINVAL; /* two slots, one id */
		size_t rl = wfs__get_le16(buf + off);
		uint8_t *rec = malloc(rl);
		if (rec != NULL)
			memcpy(rec, buf + off, rl);
		if ((r = kf_add_rec(k, rec, rl)) != 0)
			return r;
		off += rl;
	}
	return off + V2_MAC == len ? 0 : -EINVAL;
}

/* Reads either version into k (free with kf_free, also after an error). */
static int kf_load(const uint8_t *buf, size_t len, struct kf *k)
{
	memset(k, 0, sizeof(*k));
	if (buf == NULL || len < V1_HDR || len > WFS_KEYFILE_MAX || memcmp(buf, kf_magic, 8) != 0)
		return -EINVAL;
	switch (wfs__get_le16(buf + 8)) {
	case 1:
		return len == V1_SIZE ? v1_load(buf, k) : -EINVAL;
	case 2:
		return v2_load(buf, len, k);
	default:
		return -EINVAL;
	}
}

/* HMAC key of a version-2 keyfile: HKDF(master, vault id). */
static int mac_key(const uint8_t hdr[V2_AAD_HDR], const uint8_t master[WFS_KEY_LEN],
		   uint8_t key[WFS_KEY_LEN])
{
	return wfs__hkdf_sha256(master, WFS_KEY_LEN, hdr + V2_OFF_VAULT_ID, V2_VAULT_ID_LEN,
				V2_INFO_MAC, key, WFS_KEY_LEN);
}

/* 0 when a version-2 buf's MAC is the master key's; -EINVAL otherwise. */
static int mac_check(const uint8_t *buf, size_t len, struct kf_secrets *s)
{
	if (wfs__get_le16(buf + 8) != 2)
		return 0; /* version 1: every byte is in a wrap's AAD */
	if (mac_key(buf, s->master, s->mac_key) != 0)
		return -EINVAL;
	return crypto_auth_hmacsha256_verify(buf + len - V2_MAC, buf, len - V2_MAC, s->mac_key) == 0
		       ? 0
		       : -EINVAL;
}

/* Writes k as version 2, authenticated under the master key in s. */
static int kf_store(struct kf *k, struct kf_secrets *s, uint8_t **out, size_t *outlen)
{
	size_t len = V2_HDR + V2_MAC, off = V2_HDR;
	uint8_t *buf;

	k->version = 2;
	for (size_t i = 0; i < k->n; i++)
		len += k->len[i];
	if ((buf = calloc(1, len)) == NULL)
		return -ENOMEM;
	memcpy(buf, k->hdr, V2_AAD_HDR);
	wfs__put_le16(buf + V2_OFF_NSLOTS, (uint16_t)k->n);
	for (size_t i = 0; i < k->n; i++) {
		memcpy(buf + off, k->rec[i], k->len[i]);
		off += k->len[i];
	}
	if (mac_key(buf, s->master, s->mac_key) != 0) {
		free(buf);
		return -EIO;
	}
	crypto_auth_hmacsha256(buf + off, buf, off, s->mac_key);
	*out = buf;
	*outlen = len;
	return 0;
}

/* ---- opening and sealing a slot ---------------------------------------- */

/* The AAD of a version-2 slot: the file header's first 32 bytes and the
 * record up to its nonce (id, type, label, time, the body's parameters). */
static size_t slot_aad(const struct kf *k, const uint8_t *rec, size_t len,
		       uint8_t aad[V2_AAD_HDR + SLOT_MAX])
{
	memcpy(aad, k->hdr, V2_AAD_HDR);
	/* The vault's flags are authenticated by the MAC alone, so that
	 * `migrate --encrypt-names` can set one without every slot's secret. */
	wfs__put_le16(aad + V2_OFF_FLAGS, 0);
	memcpy(aad + V2_AAD_HDR, rec, len - SEAL_LEN);
	return V2_AAD_HDR + len - SEAL_LEN;
}

/* A legacy slot opens as its version-1 section did: v1 is rebuilt. */
static int legacy_open(const uint8_t *rec, size_t len, const void *secret, size_t secretlen,
		       struct kf_secrets *s)
{
	uint8_t v1[V1_SIZE] = {0};
	const uint8_t *body = rec_body(rec);
	struct wfs_kdf_params p;
	int r;

	memcpy(v1, kf_magic, 8);
	wfs__put_le16(v1 + 8, 1);
	memcpy(v1 + V1_HDR, body, len - (size_t)(body - rec));
	if (rec[4] == WFS_SLOT_RECOVERY) {
		if ((r = wfs__kek_recovery(s->rec, v1 + V1_OFF_REC_SALT, V1_INFO_REC, s->kek)) != 0)
			return r;
		return wfs__gcm_open(s->kek, 0, v1 + V1_OFF_REC_NONCE, v1, V1_OFF_REC_NONCE,
				     v1 + V1_OFF_REC_WRAP, WFS_KEY_LEN,
				     v1 + V1_OFF_REC_WRAP + WFS_KEY_LEN, s->master);
	}
	if ((r = body_params(body, true, &p)) != 0 ||
	    (r = wfs__kek_passphrase(secret, secretlen, v1 + V1_OFF_SALT, p.opslimit, p.memlimit,
				     s->kek)) != 0)
		return r;
	return wfs__gcm_open(s->kek, 0, v1 + V1_OFF_NONCE, v1, V1_OFF_NONCE, v1 + V1_OFF_WRAP,
			     WFS_KEY_LEN, v1 + V1_OFF_WRAP + WFS_KEY_LEN, s->master);
}

/*
 * Opens one slot into s->master with the secret (a passphrase; for the
 * other types s->rec, or s->sk and its public key s->pk, already hold it).
 * 0, -EIO when the secret is not this slot's, or -errno.
 */
static int slot_open(const struct kf *k, const uint8_t *rec, size_t len, const void *secret,
		     size_t secretlen, struct kf_secrets *s)
{
	uint8_t aad[V2_AAD_HDR + SLOT_MAX];
	const uint8_t *body = rec_body(rec), *seal = rec + len - SEAL_LEN;
	struct wfs_kdf_params p;
	int r;

	if (rec[5] & SLOT_FLAG_LEGACY)
		return legacy_open(rec, len, secret, secretlen, s);
	switch (rec[4]) {
	case WFS_SLOT_PASSPHRASE:
		if ((r = body_params(body, false, &p)) != 0)
			return r;
		r = wfs__kek_passphrase(secret, secretlen, body + 20, p.opslimit, p.memlimit,
					s->kek);
		break;
	case WFS_SLOT_RECOVERY:
		r = wfs__kek_recovery(s->rec, body, V2_INFO_REC, s->kek);
		break;
	case WFS_SLOT_ESCROW:
		/* Another organisation's slot: not even worth the X25519. */
		if (sodium_memcmp(s->pk, body, WFS_ESCROW_KEY_LEN) != 0)
			return -EIO;
		r = wfs__kek_escrow(s->sk, body + WFS_ESCROW_KEY_LEN, body + WFS_ESCROW_KEY_LEN,
				    body, s->kek);
		break;
	case WFS_SLOT_TPM2:
		if (secretlen != WFS_TPM2_SECRET_LEN)
			return -EIO;
		r = wfs__kek_tpm2(secret, V2_INFO_TPM2, s->kek);
		break;
	default:
		return -EINVAL;
	}
	if (r != 0)
		return r == -EACCES ? -EIO : r;
	return wfs__gcm_open(s->kek, 0, seal, aad, slot_aad(k, rec, len, aad), seal + WFS_NONCE_LEN,
			     WFS_KEY_LEN, seal + WFS_NONCE_LEN + WFS_KEY_LEN, s->master);
}

/* Makes a new version-2 slot id for s->master from ns. */
static int slot_make(const struct kf *k, const struct wfs_slot_new *ns, uint16_t id,
		     struct kf_secrets *s, uint8_t **recp, size_t *lenp)
{
	uint8_t aad[V2_AAD_HDR + SLOT_MAX], *rec, *body, *seal;
	struct wfs_kdf_params p;
	size_t len, bl;
	int r = -EINVAL;

	*recp = NULL;
	if (ns->type < WFS_SLOT_PASSPHRASE || ns->type > WFS_SLOT_TPM2)
		return -EINVAL;
	if (ns->type == WFS_SLOT_TPM2) {
		/* what the TPM sealed must read back as it is written */
		if (ns->tpm2 == NULL || ns->tpm2_secret == NULL || ns->tpm2->publen == 0 ||
		    ns->tpm2->publen > WFS_TPM2_PUB_MAX || ns->tpm2->privlen == 0 ||
		    ns->tpm2->privlen > WFS_TPM2_PRIV_MAX ||
		    ns->tpm2->primary != WFS_TPM2_PRIMARY_ECC ||
		    ns->tpm2->pcr_bank != WFS_TPM2_BANK_SHA256 ||
		    (ns->tpm2->pcrs >> WFS_TPM2_PCRS) != 0)
			return -EINVAL;
		bl = tpm2_body_len(ns->tpm2);
	} else
		bl = body_len(ns->type, false);
	rec = rec_new(id, ns->type, false, ns->label ? ns->label : wfs_slot_type_name(ns->type),
		      (uint64_t)time(NULL), bl, &len);
	if (rec == NULL)
		return ns->label && !label_valid((const uint8_t *)ns->label, strlen(ns->label))
			       ? -EINVAL
			       : -ENOMEM;
	body = (uint8_t *)rec_body(rec);
	seal = rec + len - SEAL_LEN;
	switch (ns->type) {
	case WFS_SLOT_PASSPHRASE:
		if (ns->kdf != NULL)
			p = *ns->kdf;
		else
			wfs_kdf_params_default(&p);
		if (!params_valid(p.opslimit, p.memlimit)) {
			r = -EINVAL;
			goto out;
		}
		wfs__put_le32(body, KF_ALG_ARGON2ID13);
		wfs__put_le64(body + 4, p.opslimit);
		wfs__put_le64(body + 12, p.memlimit);
		randombytes_buf(body + 20, WFS_SLOT_SALT_LEN);
		r = wfs__kek_passphrase(ns->pass, ns->passlen, body + 20, p.opslimit, p.memlimit,
					s->kek);
		break;
	case WFS_SLOT_RECOVERY:
		if (ns->recovery_out == NULL) {
			r = -EINVAL;
			goto out;
		}
		randombytes_buf(s->rec, WFS_REC_KEY_LEN);
		randombytes_buf(body, WFS_SLOT_SALT_LEN);
		r = wfs__kek_recovery(s->rec, body, V2_INFO_REC, s->kek);
		break;
	case WFS_SLOT_ESCROW:
		if (ns->escrow_public == NULL) {
			r = -EINVAL;
			goto out;
		}
		/* An ephemeral key pair: its public half is stored, its secret
		 * half (in s->sk) is wiped with s. */
		memcpy(body, ns->escrow_public, WFS_ESCROW_KEY_LEN);
		randombytes_buf(s->sk, WFS_ESCROW_KEY_LEN);
		wfs_escrow_public_of(s->sk, body + WFS_ESCROW_KEY_LEN);
		r = wfs__kek_escrow(s->sk, body, body + WFS_ESCROW_KEY_LEN, body, s->kek);
		break;
	case WFS_SLOT_TPM2:
		tpm2_body_put(body, ns->tpm2);
		r = wfs__kek_tpm2(ns->tpm2_secret, V2_INFO_TPM2, s->kek);
		break;
	}
	if (r != 0)
		goto out;
	randombytes_buf(seal, WFS_NONCE_LEN);
	if ((r = wfs__gcm_seal(s->kek, 0, seal, aad, slot_aad(k, rec, len, aad), s->master,
			       WFS_KEY_LEN, seal + WFS_NONCE_LEN,
			       seal + WFS_NONCE_LEN + WFS_KEY_LEN)) != 0)
		goto out;
	if (ns->type == WFS_SLOT_RECOVERY)
		wfs__rec_format(s->rec, ns->recovery_out);
	*recp = rec;
	*lenp = len;
	rec = NULL;
out:
	free(rec);
	return r;
}

/* ---- public ------------------------------------------------------------ */

int wfs_keyfile_parse(const uint8_t *buf, size_t len, struct wfs_keyfile_info *info)
{
	struct kf k;
	int r = kf_load(buf, len, &k);

	if (r == 0 && info != NULL) {
		memset(info, 0, sizeof(*info));
		info->version = k.version;
		info->flags = wfs__get_le16(k.hdr + 10);
		info->nslots = k.n;
		for (size_t i = 0; i < k.n && r == 0; i++)
			r = rec_parse(k.rec[i], k.len[i], &info->slot[i]);
	}
	kf_free(&k);
	return r == 0 ? 0 : -EINVAL;
}

int wfs_keyfile_check(const uint8_t *buf, size_t len, struct wfs_kdf_params *params)
{
	struct wfs_keyfile_info *info = malloc(sizeof(*info));
	int r = info ? wfs_keyfile_parse(buf, len, info) : -ENOMEM;

	if (r == 0 && params != NULL) {
		memset(params, 0, sizeof(*params));
		for (size_t i = 0; i < info->nslots; i++)
			if (info->slot[i].type == WFS_SLOT_PASSPHRASE) {
				*params = info->slot[i].kdf;
				break;
			}
	}
	free(info);
	return r;
}

int wfs_keyfile_create(const char *pass, size_t passlen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen, char recovery[WFS_RECOVERY_LEN],
		       struct wfs_keys **keys)
{
	return wfs_keyfile_create_flags(pass, passlen, params, 0, out, outlen, recovery, keys);
}

int wfs_keyfile_create_flags(const char *pass, size_t passlen, const struct wfs_kdf_params *params,
			     unsigned flags, uint8_t **out, size_t *outlen,
			     char recovery[WFS_RECOVERY_LEN], struct wfs_keys **keys)
{
	struct wfs_slot_new rs = {.type = WFS_SLOT_RECOVERY, .recovery_out = recovery};
	struct wfs_slot_new ps = {
		.type = WFS_SLOT_PASSPHRASE, .pass = pass, .passlen = passlen, .kdf = params};
	struct kf k = {.version = 2};
	struct kf_secrets *s = NULL;
	struct wfs_keys *nk = NULL;
	uint8_t *rec;
	size_t len;
	int r;

	*out = NULL;
	*outlen = 0;
	*keys = NULL;
	if (flags & ~WFS_VAULT_FLAGS_KNOWN)
		return -EINVAL;
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(k.hdr, kf_magic, 8);
	wfs__put_le16(k.hdr + 8, 2);
	wfs__put_le16(k.hdr + 10, (uint16_t)flags);
	randombytes_buf(k.hdr + V2_OFF_VAULT_ID, V2_VAULT_ID_LEN);
	randombytes_buf(s->master, WFS_KEY_LEN);
	if ((r = slot_make(&k, &rs, 0, s, &rec, &len)) != 0 ||
	    (r = kf_add_rec(&k, rec, len)) != 0 ||
	    (r = slot_make(&k, &ps, 1, s, &rec, &len)) != 0 || (r = kf_add_rec(&k, rec, len)) != 0)
		goto out;
	if ((r = wfs__keys_make(s->master, flags, &nk)) != 0 ||
	    (r = kf_store(&k, s, out, outlen)) != 0)
		goto out;
	*keys = nk;
	nk = NULL;
out:
	if (r != 0 && recovery != NULL)
		sodium_memzero(recovery, WFS_RECOVERY_LEN);
	wfs_keys_free(nk);
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

/* Puts a recovery or escrow secret's bytes into s: 0, or -EACCES when the
 * text is not even shaped like one (no slot could open with it). */
static int secret_load(enum wfs_slot_type type, const void *secret, struct kf_secrets *s)
{
	if (type == WFS_SLOT_RECOVERY)
		return wfs__rec_parse(secret, s->rec) == 0 ? 0 : -EACCES;
	if (type == WFS_SLOT_ESCROW) {
		if (wfs_escrow_secret_parse(secret, s->sk) != 0)
			return -EACCES;
		wfs_escrow_public_of(s->sk, s->pk);
	}
	return 0;
}

int wfs_keyfile_open(const uint8_t *buf, size_t len, enum wfs_slot_type type, const void *secret,
		     size_t secretlen, struct wfs_keys **keys, uint16_t *slot)
{
	struct kf_secrets *s = NULL;
	struct kf k;
	int r = -EACCES;

	*keys = NULL;
	if (kf_load(buf, len, &k) != 0) {
		r = -EINVAL;
		goto out;
	}
	if ((s = wfs_secure_alloc(sizeof(*s))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = secret_load(type, secret, s)) != 0)
		goto out;
	r = -EACCES;
	for (size_t i = 0; i < k.n && r == -EACCES; i++) {
		if (k.rec[i][4] != type)
			continue;
		r = slot_open(&k, k.rec[i], k.len[i], secret, secretlen, s);
		if (r == -EIO)
			r = -EACCES; /* not this slot's secret: try the next */
		else if (r == 0 && slot != NULL)
			*slot = wfs__get_le16(k.rec[i] + 2);
	}
	if (r != 0)
		goto out;
	if ((r = mac_check(buf, len, s)) != 0)
		goto out;
	/* The flags are under the MAC: authentic now. */
	r = wfs__keys_make(s->master, wfs__get_le16(k.hdr + 10), keys);
out:
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_unlock(const uint8_t *buf, size_t len, const char *pass, size_t passlen,
		       struct wfs_keys **keys)
{
	return wfs_keyfile_open(buf, len, WFS_SLOT_PASSPHRASE, pass, passlen, keys, NULL);
}

int wfs_keyfile_unlock_recovery(const uint8_t *buf, size_t len, const char *recovery,
				struct wfs_keys **keys)
{
	return wfs_keyfile_open(buf, len, WFS_SLOT_RECOVERY, recovery, 0, keys, NULL);
}

/* Loads buf for an edit under keys: the MAC must be theirs (a keyfile
 * changed since it was unlocked is not edited blindly). */
static int edit_begin(const uint8_t *buf, size_t len, const struct wfs_keys *keys, struct kf *k,
		      struct kf_secrets **sp)
{
	*sp = NULL;
	if (keys == NULL || kf_load(buf, len, k) != 0)
		return -EINVAL;
	if ((*sp = wfs_secure_alloc(sizeof(**sp))) == NULL)
		return -ENOMEM;
	memcpy((*sp)->master, keys->master, WFS_KEY_LEN);
	return mac_check(buf, len, *sp);
}

static ssize_t slot_index(const struct kf *k, uint16_t id)
{
	for (size_t i = 0; i < k->n; i++)
		if (wfs__get_le16(k->rec[i] + 2) == id)
			return (ssize_t)i;
	return -1;
}

int wfs_keyfile_add(const uint8_t *buf, size_t len, const struct wfs_keys *keys,
		    const struct wfs_slot_new *ns, uint8_t **out, size_t *outlen, uint16_t *id)
{
	struct kf_secrets *s = NULL;
	uint32_t next = 0;
	uint8_t *rec;
	size_t rl;
	struct kf k;
	int r;

	*out = NULL;
	if ((r = edit_begin(buf, len, keys, &k, &s)) != 0)
		goto out;
	for (size_t i = 0; i < k.n; i++)
		if (wfs__get_le16(k.rec[i] + 2) >= next)
			next = wfs__get_le16(k.rec[i] + 2) + 1u;
	if (k.n == WFS_SLOTS_MAX || next > UINT16_MAX) {
		r = -ENOSPC;
		goto out;
	}
	if ((r = slot_make(&k, ns, (uint16_t)next, s, &rec, &rl)) != 0 ||
	    (r = kf_add_rec(&k, rec, rl)) != 0 || (r = kf_store(&k, s, out, outlen)) != 0)
		goto out;
	if (id != NULL)
		*id = (uint16_t)next;
out:
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_remove(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint16_t id,
		       uint8_t **out, size_t *outlen)
{
	struct kf_secrets *s = NULL;
	struct kf k;
	ssize_t i;
	int r;

	*out = NULL;
	if ((r = edit_begin(buf, len, keys, &k, &s)) != 0)
		goto out;
	if ((i = slot_index(&k, id)) < 0) {
		r = -ENOENT;
		goto out;
	}
	if (k.n == 1) {
		r = -EBUSY; /* every slot unlocks: the last one is the vault's last key */
		goto out;
	}
	free(k.rec[i]);
	memmove(&k.rec[i], &k.rec[i + 1], (k.n - (size_t)i - 1) * sizeof(k.rec[0]));
	memmove(&k.len[i], &k.len[i + 1], (k.n - (size_t)i - 1) * sizeof(k.len[0]));
	k.n--;
	r = kf_store(&k, s, out, outlen);
out:
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_set_flags(const uint8_t *buf, size_t len, const struct wfs_keys *keys,
			  unsigned flags, uint8_t **out, size_t *outlen)
{
	struct kf_secrets *s = NULL;
	struct kf k;
	int r;

	*out = NULL;
	if (flags & ~WFS_VAULT_FLAGS_KNOWN)
		return -EINVAL;
	if ((r = edit_begin(buf, len, keys, &k, &s)) != 0)
		goto out;
	wfs__put_le16(k.hdr + V2_OFF_FLAGS, (uint16_t)flags);
	r = kf_store(&k, s, out, outlen);
out:
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_rewrap(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint16_t id,
		       const char *newpass, size_t newpasslen, const struct wfs_kdf_params *params,
		       uint8_t **out, size_t *outlen)
{
	struct wfs_slot_new ns = {
		.type = WFS_SLOT_PASSPHRASE, .pass = newpass, .passlen = newpasslen, .kdf = params};
	struct kf_secrets *s = NULL;
	struct wfs_slot_info si;
	uint8_t *rec;
	size_t rl;
	struct kf k;
	ssize_t i;
	int r;

	*out = NULL;
	if ((r = edit_begin(buf, len, keys, &k, &s)) != 0)
		goto out;
	if ((i = slot_index(&k, id)) < 0 || k.rec[i][4] != WFS_SLOT_PASSPHRASE) {
		r = i < 0 ? -ENOENT : -EINVAL;
		goto out;
	}
	if ((r = rec_parse(k.rec[i], k.len[i], &si)) != 0)
		goto out;
	ns.label = si.label;
	if (params == NULL)
		ns.kdf = &si.kdf; /* keeps the stored cost */
	if ((r = slot_make(&k, &ns, id, s, &rec, &rl)) != 0)
		goto out;
	free(k.rec[i]);
	k.rec[i] = rec;
	k.len[i] = rl;
	r = kf_store(&k, s, out, outlen);
out:
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}

int wfs_keyfile_upgrade(const uint8_t *buf, size_t len, const struct wfs_keys *keys, uint8_t **out,
			size_t *outlen)
{
	struct kf_secrets *s = NULL;
	struct kf k;
	int r;

	*out = NULL;
	if ((r = edit_begin(buf, len, keys, &k, &s)) == 0)
		r = kf_store(&k, s, out, outlen);
	kf_free(&k);
	wfs_secure_free(s);
	return r;
}
