/*
 * test_keyfile.c - the vault keyfile and its key slots: create, unlock,
 * wrong secrets, recovery key, rewrap, adding and removing slots of every
 * type, escrow keys, every byte of a keyfile flipped (an error, never keys),
 * a slot swapped in from another vault, a downgrade; the version-1 vector
 * (tests/data/keyfile-v1-kat.txt) opened as it is and after its upgrade;
 * and the version-2 vectors opened both by the library and by hand from
 * docs/format.md: tests/data/keyfile-v2-kat.txt (recovery, passphrase and
 * escrow slots, as first written) and keyfile-v2-tpm2-kat.txt (the same
 * types and a tpm2 slot: stand-in TPM blobs and the secret the TPM would
 * unseal, so the KEK, the wrap, the AAD and the MAC are known answers).
 * tpm2 slots without a TPM: round trip, parser bounds, every byte flipped,
 * their fields under both the MAC and the slot's AAD. WFS_MEASURE_KDF=1
 * also times the default Argon2id cost.
 *
 * Regenerate a version-2 vector (only when the format changes on purpose;
 * the generator writes the tpm2 one):
 *   WFS_KEYFILE_KAT_GENERATE=tests/data/keyfile-v2-tpm2-kat.txt ./crypto_keyfile
 */
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>
#include <tss2/tss2_mu.h>

#include "helpers.h"
#include "vectors.h"

static const struct wfs_kdf_params cheap = {.opslimit = 1, .memlimit = 8u << 20};

/* Same master key: a file written with a reads with b. */
static void assert_same_keys(const struct wfs_keys *a, const struct wfs_keys *b)
{
	struct wfs_file_hdr h;
	int fd = test_memfd();
	uint8_t got[6];

	assert_memory_equal(a->master, b->master, 32);
	assert_int_equal(wfs_hdr_write(a, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(a, fd, &h, "secret", 6, 0), 6);
	assert_int_equal(wfs_hdr_read(b, fd, &h), WFS_FORM_ENCRYPTED);
	assert_int_equal(wfs_content_pread(b, fd, &h, got, 6, 0), 6);
	assert_memory_equal(got, "secret", 6);
	close(fd);
}

static void make(uint8_t **kf, size_t *len, char rec[WFS_RECOVERY_LEN], struct wfs_keys **k)
{
	assert_int_equal(wfs_keyfile_create("correct horse", 13, &cheap, kf, len, rec, k), 0);
	assert_non_null(*kf);
	assert_non_null(*k);
}

/* Unlocks with a passphrase and checks the keys and the slot. */
static void opens_pass(const uint8_t *kf, size_t len, const char *pass, const struct wfs_keys *k,
		       int slot)
{
	struct wfs_keys *u = NULL;
	uint16_t id = 999;

	assert_int_equal(
		wfs_keyfile_open(kf, len, WFS_SLOT_PASSPHRASE, pass, strlen(pass), &u, &id), 0);
	assert_same_keys(k, u);
	assert_int_equal(id, slot);
	wfs_keys_free(u);
}

static int open_r(const uint8_t *kf, size_t len, enum wfs_slot_type t, const char *secret)
{
	struct wfs_keys *u = (struct wfs_keys *)1;
	int r = wfs_keyfile_open(kf, len, t, secret, strlen(secret), &u, NULL);

	if (r == 0)
		wfs_keys_free(u);
	else
		assert_null(u);
	return r;
}

/* Replaces *kf with out (an edit's result). */
static void take(uint8_t **kf, size_t *len, uint8_t *out, size_t outlen)
{
	free(*kf);
	*kf = out;
	*len = outlen;
}

static void test_create_unlock(void **state)
{
	uint8_t *kf, *kf2;
	size_t len, len2;
	char rec[WFS_RECOVERY_LEN], rec2[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *k2;
	struct wfs_keyfile_info info;
	struct wfs_kdf_params p;

	(void)state;
	make(&kf, &len, rec, &k);
	make(&kf2, &len2, rec2, &k2);
	assert_memory_not_equal(k->master, k2->master, 32);
	assert_string_not_equal(rec, rec2);
	assert_int_equal(wfs_keyfile_parse(kf, len, &info), 0);
	assert_int_equal(info.version, 2);
	assert_int_equal(info.nslots, 2);
	assert_int_equal(info.slot[0].id, 0);
	assert_int_equal(info.slot[0].type, WFS_SLOT_RECOVERY);
	assert_string_equal(info.slot[0].label, "recovery");
	assert_int_equal(info.slot[1].id, 1);
	assert_int_equal(info.slot[1].type, WFS_SLOT_PASSPHRASE);
	assert_false(info.slot[1].legacy);
	assert_true(info.slot[1].created > 1700000000u);
	assert_int_equal(wfs_keyfile_check(kf, len, &p), 0);
	assert_int_equal(p.opslimit, 1);
	assert_int_equal(p.memlimit, 8u << 20);

	opens_pass(kf, len, "correct horse", k, 1);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, "correct hors"), -EACCES);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, "correct horsf"), -EACCES);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, ""), -EACCES);
	/* another vault's keyfile */
	opens_pass(kf2, len2, "correct horse", k2, 1);
	free(kf);
	free(kf2);
	wfs_keys_free(k);
	wfs_keys_free(k2);
}

static void test_bad_params(void **state)
{
	uint8_t *kf = NULL;
	size_t len;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k = NULL;
	struct wfs_kdf_params p = {.opslimit = 0, .memlimit = 8u << 20}, d;

	(void)state;
	assert_int_equal(wfs_keyfile_create("x", 1, &p, &kf, &len, rec, &k), -EINVAL);
	p.opslimit = 1;
	p.memlimit = 1024;
	assert_int_equal(wfs_keyfile_create("x", 1, &p, &kf, &len, rec, &k), -EINVAL);
	assert_null(kf);
	assert_null(k);
	wfs_kdf_params_default(&d);
	assert_true(d.opslimit >= 1 && d.memlimit >= (64u << 20));
}

static void test_recovery(void **state)
{
	uint8_t *kf;
	size_t len;
	char rec[WFS_RECOVERY_LEN], alt[WFS_RECOVERY_LEN + 16];
	struct wfs_keys *k, *u;

	(void)state;
	make(&kf, &len, rec, &k);
	/* 8 groups of 6 lowercase hex digits */
	assert_int_equal(strlen(rec), 55);
	for (int i = 0; i < 55; i++)
		assert_true(i % 7 == 6 ? rec[i] == '-' : !!strchr("0123456789abcdef", rec[i]));
	assert_true(wfs_recovery_wellformed(rec));

	assert_int_equal(wfs_keyfile_unlock_recovery(kf, len, rec, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	/* upper case, no dashes, trailing newline: the same key */
	size_t j = 0;
	for (int i = 0; rec[i]; i++)
		if (rec[i] != '-')
			alt[j++] = (char)(rec[i] >= 'a' ? rec[i] - 32 : rec[i]);
	alt[j++] = '\n';
	alt[j] = 0;
	assert_true(wfs_recovery_wellformed(alt));
	assert_int_equal(wfs_keyfile_unlock_recovery(kf, len, alt, &u), 0);
	wfs_keys_free(u);
	/* one digit off */
	strcpy(alt, rec);
	alt[0] = alt[0] == '0' ? '1' : '0';
	assert_int_equal(wfs_keyfile_unlock_recovery(kf, len, alt, &u), -EACCES);
	assert_null(u);
	/* malformed */
	assert_false(wfs_recovery_wellformed("abc"));
	assert_false(wfs_recovery_wellformed(""));
	strcpy(alt, rec);
	alt[3] = 'g';
	assert_false(wfs_recovery_wellformed(alt));
	assert_int_equal(wfs_keyfile_unlock_recovery(kf, len, alt, &u), -EACCES);
	strcpy(alt, rec);
	strcat(alt, "00");
	assert_false(wfs_recovery_wellformed(alt));
	/* the passphrase is not a recovery key and vice versa */
	assert_int_equal(wfs_keyfile_unlock(kf, len, rec, strlen(rec), &u), -EACCES);
	free(kf);
	wfs_keys_free(k);
}

static void test_rewrap(void **state)
{
	uint8_t *kf, *nkf;
	size_t len, nlen;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *u;
	struct wfs_kdf_params p2 = {.opslimit = 2, .memlimit = 9u << 20}, p;
	struct wfs_keyfile_info info;

	(void)state;
	make(&kf, &len, rec, &k);
	assert_int_equal(wfs_keyfile_rewrap(kf, len, k, 1, "new pass", 8, &p2, &nkf, &nlen), 0);
	assert_int_equal(wfs_keyfile_check(nkf, nlen, &p), 0);
	assert_int_equal(p.opslimit, 2);
	assert_int_equal(p.memlimit, 9u << 20);
	assert_int_equal(wfs_keyfile_parse(nkf, nlen, &info), 0);
	assert_int_equal(info.nslots, 2);
	assert_int_equal(info.slot[1].id, 1); /* the same slot, replaced */
	assert_int_equal(open_r(nkf, nlen, WFS_SLOT_PASSPHRASE, "correct horse"), -EACCES);
	opens_pass(nkf, nlen, "new pass", k, 1);
	assert_int_equal(wfs_keyfile_unlock_recovery(nkf, nlen, rec, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	/* NULL params keep the stored cost */
	free(kf);
	assert_int_equal(wfs_keyfile_rewrap(nkf, nlen, k, 1, "third", 5, NULL, &kf, &len), 0);
	assert_int_equal(wfs_keyfile_check(kf, len, &p), 0);
	assert_int_equal(p.opslimit, 2);
	opens_pass(kf, len, "third", k, 1);
	free(nkf);
	/* only passphrase slots, only slots that exist */
	assert_int_equal(wfs_keyfile_rewrap(kf, len, k, 0, "x", 1, NULL, &nkf, &nlen), -EINVAL);
	assert_int_equal(wfs_keyfile_rewrap(kf, len, k, 7, "x", 1, NULL, &nkf, &nlen), -ENOENT);
	free(kf);
	wfs_keys_free(k);
}

/* Slots of every type added and removed; each opens, a removed one not. */
static void test_slots(void **state)
{
	uint8_t *kf, *out, pk[WFS_ESCROW_KEY_LEN];
	size_t len, outlen;
	char rec[WFS_RECOVERY_LEN], rec2[WFS_RECOVERY_LEN], label[80];
	char epub[WFS_ESCROW_TEXT_LEN], esec[WFS_ESCROW_TEXT_LEN];
	char epub2[WFS_ESCROW_TEXT_LEN], esec2[WFS_ESCROW_TEXT_LEN];
	struct wfs_keys *k;
	struct wfs_keyfile_info info;
	uint16_t id;

	(void)state;
	make(&kf, &len, rec, &k);
	struct wfs_slot_new ps = {.type = WFS_SLOT_PASSPHRASE,
				  .label = "alice's laptop",
				  .pass = "second one",
				  .passlen = 10,
				  .kdf = &cheap};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &ps, &out, &outlen, &id), 0);
	assert_int_equal(id, 2);
	take(&kf, &len, out, outlen);
	opens_pass(kf, len, "correct horse", k, 1);
	opens_pass(kf, len, "second one", k, 2);

	struct wfs_slot_new rs = {.type = WFS_SLOT_RECOVERY, .recovery_out = rec2};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &rs, &out, &outlen, &id), 0);
	take(&kf, &len, out, outlen);
	assert_int_equal(id, 3);
	assert_string_not_equal(rec, rec2);
	assert_int_equal(open_r(kf, len, WFS_SLOT_RECOVERY, rec), 0);
	assert_int_equal(open_r(kf, len, WFS_SLOT_RECOVERY, rec2), 0);

	assert_int_equal(wfs_escrow_keygen(epub, esec), 0);
	assert_int_equal(wfs_escrow_keygen(epub2, esec2), 0);
	assert_int_equal(wfs_escrow_public_parse(epub, pk), 0);
	assert_int_equal(wfs_escrow_public_parse(esec, pk), -EINVAL); /* not a public key */
	assert_int_equal(wfs_escrow_public_parse(epub, pk), 0);
	struct wfs_slot_new es = {.type = WFS_SLOT_ESCROW, .label = "it dept", .escrow_public = pk};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &es, &out, &outlen, &id), 0);
	take(&kf, &len, out, outlen);
	assert_int_equal(id, 4);
	assert_int_equal(open_r(kf, len, WFS_SLOT_ESCROW, esec), 0);
	assert_int_equal(open_r(kf, len, WFS_SLOT_ESCROW, esec2), -EACCES); /* another pair */
	char typo[WFS_ESCROW_TEXT_LEN];
	strcpy(typo, esec);
	typo[30] = typo[30] == '0' ? '1' : '0';
	uint8_t sk[WFS_ESCROW_KEY_LEN];
	assert_int_equal(wfs_escrow_secret_parse(typo, sk), -EINVAL); /* the checksum */
	assert_int_equal(open_r(kf, len, WFS_SLOT_ESCROW, typo), -EACCES);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, esec), -EACCES);

	assert_int_equal(wfs_keyfile_parse(kf, len, &info), 0);
	assert_int_equal(info.nslots, 5);
	assert_string_equal(info.slot[2].label, "alice's laptop");
	assert_int_equal(info.slot[4].type, WFS_SLOT_ESCROW);
	assert_memory_equal(info.slot[4].escrow_public, pk, WFS_ESCROW_KEY_LEN);

	/* remove the first passphrase: it no longer opens, the rest do */
	assert_int_equal(wfs_keyfile_remove(kf, len, k, 1, &out, &outlen), 0);
	take(&kf, &len, out, outlen);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, "correct horse"), -EACCES);
	opens_pass(kf, len, "second one", k, 2);
	assert_int_equal(open_r(kf, len, WFS_SLOT_ESCROW, esec), 0);
	assert_int_equal(wfs_keyfile_remove(kf, len, k, 1, &out, &outlen), -ENOENT);
	/* a new slot never reuses a removed id... past the highest */
	assert_int_equal(wfs_keyfile_add(kf, len, k, &rs, &out, &outlen, &id), 0);
	take(&kf, &len, out, outlen);
	assert_int_equal(id, 5);
	for (uint16_t r = 0; r <= 4; r++)
		if (r != 1) {
			assert_int_equal(wfs_keyfile_remove(kf, len, k, r, &out, &outlen), 0);
			take(&kf, &len, out, outlen);
		}
	assert_int_equal(wfs_keyfile_remove(kf, len, k, 5, &out, &outlen), -EBUSY); /* the last */
	assert_int_equal(open_r(kf, len, WFS_SLOT_RECOVERY, rec), -EACCES); /* slot 0, removed */
	assert_int_equal(open_r(kf, len, WFS_SLOT_RECOVERY, rec2), 0);	    /* slot 5's */

	/* labels a terminal could be fooled by, or too long */
	ps.label = "bad\x1b[2Jlabel";
	assert_int_equal(wfs_keyfile_add(kf, len, k, &ps, &out, &outlen, &id), -EINVAL);
	memset(label, 'a', 65);
	label[65] = 0;
	ps.label = label;
	assert_int_equal(wfs_keyfile_add(kf, len, k, &ps, &out, &outlen, &id), -EINVAL);
	/* full */
	for (int i = 1; i < WFS_SLOTS_MAX; i++) {
		assert_int_equal(wfs_keyfile_add(kf, len, k, &rs, &out, &outlen, &id), 0);
		take(&kf, &len, out, outlen);
	}
	assert_int_equal(wfs_keyfile_add(kf, len, k, &rs, &out, &outlen, &id), -ENOSPC);
	assert_true(len <= WFS_KEYFILE_MAX);
	free(kf);
	wfs_keys_free(k);
}

/* ---- tpm2 slot helpers (no TPM) --------------------------------------- */

/* What a TPM's seal looks like (a keyed-hash TPM2B_PUBLIC and a
 * TPM2B_PRIVATE, as tpm2-tss marshals them), made up: keyfile.c only
 * stores it, the TPM would check it. */
static void fake_seal(struct wfs_tpm2_seal *t, uint32_t pcrs, uint8_t fill)
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	size_t off = 0;

	memset(t, 0, sizeof(*t));
	pub.publicArea.type = TPM2_ALG_KEYEDHASH;
	pub.publicArea.nameAlg = TPM2_ALG_SHA256;
	pub.publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA;
	pub.publicArea.authPolicy.size = 32;
	memset(pub.publicArea.authPolicy.buffer, fill, 32);
	pub.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
	pub.publicArea.unique.keyedHash.size = 32;
	memset(pub.publicArea.unique.keyedHash.buffer, fill ^ 0x55, 32);
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, t->pub, sizeof(t->pub), &off), 0);
	t->publen = (uint16_t)off;
	priv.size = 110;
	for (int i = 0; i < 110; i++)
		priv.buffer[i] = (uint8_t)(fill + 7 * i);
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, t->priv, sizeof(t->priv), &off), 0);
	t->privlen = (uint16_t)off;
	t->primary = WFS_TPM2_PRIMARY_ECC;
	t->pcr_bank = WFS_TPM2_BANK_SHA256;
	t->pcrs = pcrs;
}

/* Adds a tpm2 slot sealing secret to *kf; its record's offset in *off. */
static uint16_t add_tpm2(uint8_t **kf, size_t *len, const struct wfs_keys *k,
			 const struct wfs_tpm2_seal *t, const uint8_t secret[32], size_t *off)
{
	struct wfs_slot_new ns = {
		.type = WFS_SLOT_TPM2, .label = "this machine", .tpm2 = t, .tpm2_secret = secret};
	uint8_t *out;
	size_t outlen, o = 36;
	uint16_t id;

	assert_int_equal(wfs_keyfile_add(*kf, *len, k, &ns, &out, &outlen, &id), 0);
	take(kf, len, out, outlen);
	for (;;) { /* the last record */
		size_t rl = (size_t)(*kf)[o] | (size_t)(*kf)[o + 1] << 8;
		if (o + rl + 32 == *len)
			break;
		o += rl;
	}
	*off = o;
	return id;
}

static int open_tpm2(const uint8_t *kf, size_t len, const uint8_t *secret, size_t slen,
		     uint16_t *slot)
{
	struct wfs_keys *u = (struct wfs_keys *)1;
	int r = wfs_keyfile_open(kf, len, WFS_SLOT_TPM2, secret, slen, &u, slot);

	if (r == 0)
		wfs_keys_free(u);
	else
		assert_null(u);
	return r;
}

static void add_tpm2_fake(uint8_t **kf, size_t *len, const struct wfs_keys *k,
			  const uint8_t secret[32], size_t *off)
{
	static struct wfs_tpm2_seal t;

	fake_seal(&t, 1u << 7, 0x44);
	add_tpm2(kf, len, k, &t, secret, off);
}

/*
 * Every byte of a keyfile with a recovery, a passphrase, an escrow and a
 * tpm2 slot flipped (xor 1, so the Argon2id cost stays cheap: the bounds
 * turn big jumps into -EINVAL): no secret opens it. Slot ids, types,
 * labels, times, the tpm2 slot's template, bank, PCRs and blobs, and the
 * MAC are all covered. And every truncation.
 */
static void test_tamper(void **state)
{
	uint8_t *kf, *out, bad[WFS_KEYFILE_MAX + 1] = {0}, pk[WFS_ESCROW_KEY_LEN], tsec[32];
	size_t len, outlen, toff;
	char rec[WFS_RECOVERY_LEN], epub[WFS_ESCROW_TEXT_LEN], esec[WFS_ESCROW_TEXT_LEN];
	struct wfs_keys *k;
	int einval = 0, eacces = 0;

	(void)state;
	make(&kf, &len, rec, &k);
	assert_int_equal(wfs_escrow_keygen(epub, esec), 0);
	assert_int_equal(wfs_escrow_public_parse(epub, pk), 0);
	struct wfs_slot_new es = {.type = WFS_SLOT_ESCROW, .escrow_public = pk};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &es, &out, &outlen, NULL), 0);
	take(&kf, &len, out, outlen);
	randombytes_buf(tsec, sizeof(tsec));
	add_tpm2_fake(&kf, &len, k, tsec, &toff);
	assert_int_equal(open_tpm2(kf, len, tsec, 32, NULL), 0);
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, kf, len);
		bad[i] ^= 1;
		int r = open_r(bad, len, WFS_SLOT_PASSPHRASE, "correct horse");
		assert_true(r == -EINVAL || r == -EACCES);
		einval += r == -EINVAL;
		eacces += r == -EACCES;
		/* a byte of the tpm2 slot: the passphrase slot opens, the MAC fails */
		if (i >= toff && i < len - 32)
			assert_int_equal(r, -EINVAL);
		r = open_r(bad, len, WFS_SLOT_RECOVERY, rec);
		assert_true(r == -EINVAL || r == -EACCES);
		r = open_r(bad, len, WFS_SLOT_ESCROW, esec);
		assert_true(r == -EINVAL || r == -EACCES);
		r = open_tpm2(bad, len, tsec, 32, NULL);
		assert_true(r == -EINVAL || r == -EACCES);
	}
	assert_true(einval > 0 && eacces > 0);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(open_r(kf, n, WFS_SLOT_RECOVERY, rec), -EINVAL);
	memcpy(bad, kf, len);
	bad[len] = 0;
	assert_int_equal(open_r(bad, len + 1, WFS_SLOT_RECOVERY, rec), -EINVAL);
	assert_int_equal(wfs_keyfile_check(NULL, 0, NULL), -EINVAL);
	/* a downgrade: the same bytes called version 1 */
	memcpy(bad, kf, len);
	bad[8] = 1;
	assert_int_equal(open_r(bad, len, WFS_SLOT_RECOVERY, rec), -EINVAL);
	/* an edit refuses a keyfile these keys did not write */
	memcpy(bad, kf, len);
	bad[len - 1] ^= 1;
	struct wfs_slot_new rs = {.type = WFS_SLOT_RECOVERY, .recovery_out = rec};
	assert_int_equal(wfs_keyfile_add(bad, len, k, &rs, &out, &outlen, NULL), -EINVAL);
	free(kf);
	wfs_keys_free(k);
}

/* A slot taken from another vault's keyfile does not open in this one,
 * even with its header's vault id copied too. */
static void test_slot_swap(void **state)
{
	uint8_t *a, *b, mix[WFS_KEYFILE_MAX];
	size_t alen, blen;
	char rec[WFS_RECOVERY_LEN], rec2[WFS_RECOVERY_LEN];
	struct wfs_keys *ka, *kb;

	(void)state;
	make(&a, &alen, rec, &ka);
	assert_int_equal(wfs_keyfile_create("other", 5, &cheap, &b, &blen, rec2, &kb), 0);
	/* both: header 36, recovery slot 100 (label "recovery"), passphrase
	 * slot 122 (label "passphrase"), MAC 32 */
	assert_int_equal(alen, blen);
	assert_int_equal(alen, 36 + 100 + 122 + 32);
	memcpy(mix, a, alen);
	memcpy(mix + 136, b + 136, 122); /* b's passphrase slot into a */
	assert_int_equal(open_r(mix, alen, WFS_SLOT_PASSPHRASE, "other"), -EACCES);
	memcpy(mix + 16, b + 16, 16); /* and b's vault id */
	assert_int_equal(open_r(mix, alen, WFS_SLOT_PASSPHRASE, "other"), -EINVAL); /* the MAC */
	assert_int_equal(open_r(mix, alen, WFS_SLOT_RECOVERY, rec), -EACCES);
	free(a);
	free(b);
	wfs_keys_free(ka);
	wfs_keys_free(kb);
}

/* The first wardfs's keyfile: opens as it is, every byte still matters,
 * and its upgrade opens with the same secrets. */
static void test_v1(void **state)
{
	char *vec = test_read_vector("keyfile-v1-kat.txt"), rec[WFS_RECOVERY_LEN] = "";
	char rec2[WFS_RECOVERY_LEN];
	uint8_t kf[WFS_KEYFILE_MAX], mk[32], *out, *up, bad[200];
	size_t len = test_hex_get(vec, "keyfile", kf, sizeof(kf)), outlen, uplen;
	struct wfs_keys *k, *u;
	struct wfs_keyfile_info info;
	const char *p = strstr(vec, "\nrecovery: ");

	(void)state;
	assert_int_equal(len, 188);
	assert_int_equal(test_hex_get(vec, "master_key", mk, sizeof(mk)), 32);
	assert_non_null(p);
	memcpy(rec, p + 11, 55);
	assert_int_equal(wfs_keyfile_parse(kf, len, &info), 0);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.nslots, 2);
	assert_true(info.slot[0].legacy && info.slot[0].type == WFS_SLOT_RECOVERY);
	assert_true(info.slot[1].legacy && info.slot[1].type == WFS_SLOT_PASSPHRASE);
	assert_int_equal(info.slot[1].kdf.memlimit, 8u << 20);
	assert_int_equal(wfs_keyfile_unlock(kf, len, "correct horse", 13, &k), 0);
	assert_memory_equal(k->master, mk, 32);
	assert_int_equal(wfs_keyfile_unlock_recovery(kf, len, rec, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	/* recovery covers bytes 0..91 only; everything else is the passphrase's */
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, kf, len);
		bad[i] ^= 1;
		int r = open_r(bad, len, WFS_SLOT_PASSPHRASE, "correct horse");
		assert_true(r == -EINVAL || r == -EACCES);
		r = open_r(bad, len, WFS_SLOT_RECOVERY, rec);
		assert_true(i >= 92 ? r == 0 || r == -EINVAL : r == -EINVAL || r == -EACCES);
	}

	assert_int_equal(wfs_keyfile_upgrade(kf, len, k, &up, &uplen), 0);
	assert_int_equal(wfs_keyfile_parse(up, uplen, &info), 0);
	assert_int_equal(info.version, 2);
	assert_int_equal(info.nslots, 2);
	assert_true(info.slot[0].legacy && info.slot[1].legacy);
	opens_pass(up, uplen, "correct horse", k, 1);
	assert_int_equal(open_r(up, uplen, WFS_SLOT_RECOVERY, rec), 0);
	/* an edit of a version-1 keyfile upgrades it on the way */
	struct wfs_slot_new rs = {.type = WFS_SLOT_RECOVERY, .recovery_out = rec2};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &rs, &out, &outlen, NULL), 0);
	assert_int_equal(open_r(out, outlen, WFS_SLOT_RECOVERY, rec), 0);
	assert_int_equal(open_r(out, outlen, WFS_SLOT_RECOVERY, rec2), 0);
	opens_pass(out, outlen, "correct horse", k, 1);
	/* and the legacy passphrase slot is replaced by a current one */
	free(up);
	assert_int_equal(wfs_keyfile_rewrap(out, outlen, k, 1, "new", 3, &cheap, &up, &uplen), 0);
	assert_int_equal(wfs_keyfile_parse(up, uplen, &info), 0);
	assert_false(info.slot[1].legacy);
	opens_pass(up, uplen, "new", k, 1);
	free(up);
	free(out);
	free(vec);
	wfs_keys_free(k);
}

/* ---- tpm2 slots, without a TPM ------------------------------------------ */

static void hkdf_salted(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
			const char *info, uint8_t out[32]);

/* Puts a fresh MAC under the master key on kf, as someone who had it
 * would: what is left to refuse a change is the slot's own AAD. */
static void remac(uint8_t *kf, size_t len, const uint8_t master[32])
{
	uint8_t mkey[32];
	unsigned maclen = 32;

	hkdf_salted(master, 32, kf + 16, 16, "wardfs v2 keyfile mac", mkey);
	assert_non_null(HMAC(EVP_sha256(), mkey, 32, kf, len - 32, kf + len - 32, &maclen));
}

/* Every field of a tpm2 slot is in its wrap's AAD too: changed with the
 * MAC made anew, the slot's secret no longer opens it. */
static void test_tpm2_aad(void **state)
{
	uint8_t *kf, bad[WFS_KEYFILE_MAX], secret[32];
	size_t len, off;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k;

	(void)state;
	make(&kf, &len, rec, &k);
	randombytes_buf(secret, sizeof(secret));
	add_tpm2_fake(&kf, &len, k, secret, &off);
	memcpy(bad, kf, len);
	remac(bad, len, k->master);
	assert_memory_equal(bad, kf, len);	       /* remac is the library's MAC */
	for (size_t i = off; i < len - 32 - 60; i++) { /* the record up to its nonce */
		memcpy(bad, kf, len);
		bad[i] ^= 1;
		remac(bad, len, k->master);
		int r = open_tpm2(bad, len, secret, 32, NULL);
		/* a field the parser bounds is -EINVAL; any other, the AAD */
		assert_true(r == -EINVAL || r == -EACCES);
		if (i >= off + 16 + 12 + 10 && i < off + 16 + 12 + 10 + 20)
			assert_int_equal(r, -EACCES); /* bytes of the public blob */
	}
	/* the vault id in the header (the AAD's first 32 bytes) too */
	memcpy(bad, kf, len);
	bad[20] ^= 1;
	remac(bad, len, k->master);
	assert_int_equal(open_tpm2(bad, len, secret, 32, NULL), -EACCES);
	free(kf);
	wfs_keys_free(k);
}

static void test_tpm2_slot(void **state)
{
	uint8_t *kf, *out, secret[32], other[32];
	size_t len, outlen, off;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *u;
	struct wfs_keyfile_info info;
	struct wfs_tpm2_seal t, t2, bad;
	uint16_t id, slot = 999;

	(void)state;
	make(&kf, &len, rec, &k);
	fake_seal(&t, (1u << 7) | (1u << 23), 0x11);
	randombytes_buf(secret, 32);
	id = add_tpm2(&kf, &len, k, &t, secret, &off);
	assert_int_equal(id, 2);
	/* the record: header, label, then 8 + 2 + P + 2 + Q + 60 bytes */
	assert_int_equal((size_t)kf[off] | (size_t)kf[off + 1] << 8,
			 16 + 12 + 8 + 2 + t.publen + 2 + t.privlen + 60);
	assert_int_equal(kf[off + 4], WFS_SLOT_TPM2);
	/* parse: what was sealed comes back as it went in */
	assert_int_equal(wfs_keyfile_parse(kf, len, &info), 0);
	assert_int_equal(info.nslots, 3);
	assert_int_equal(info.slot[2].type, WFS_SLOT_TPM2);
	assert_string_equal(info.slot[2].label, "this machine");
	assert_memory_equal(&info.slot[2].tpm2, &t, sizeof(t));
	assert_true(wfs_slot_type_unattended(WFS_SLOT_TPM2));
	assert_false(wfs_slot_type_unattended(WFS_SLOT_PASSPHRASE));
	assert_int_equal(wfs_slot_type_parse("tpm2"), WFS_SLOT_TPM2);
	assert_string_equal(wfs_slot_type_name(WFS_SLOT_TPM2), "tpm2");
	assert_int_equal(wfs_tpm2_check(&info.slot[2].tpm2), 0);
	/* the unsealed secret opens it, and only it */
	assert_int_equal(wfs_keyfile_open(kf, len, WFS_SLOT_TPM2, secret, 32, &u, &slot), 0);
	assert_same_keys(k, u);
	assert_int_equal(slot, 2);
	wfs_keys_free(u);
	memcpy(other, secret, 32);
	other[31] ^= 0x80;
	assert_int_equal(open_tpm2(kf, len, other, 32, NULL), -EACCES);
	assert_int_equal(open_tpm2(kf, len, secret, 31, NULL), -EACCES);
	assert_int_equal(open_r(kf, len, WFS_SLOT_TPM2, "correct horse"), -EACCES);
	opens_pass(kf, len, "correct horse", k, 1);
	/* a second tpm2 slot (another TPM): each secret opens its own */
	fake_seal(&t2, 0, 0x22);
	randombytes_buf(other, 32);
	assert_int_equal(add_tpm2(&kf, &len, k, &t2, other, &off), 3);
	assert_int_equal(open_tpm2(kf, len, other, 32, &slot), 0);
	assert_int_equal(slot, 3);
	assert_int_equal(open_tpm2(kf, len, secret, 32, &slot), 0);
	assert_int_equal(slot, 2);
	/* removed, it no longer opens */
	assert_int_equal(wfs_keyfile_remove(kf, len, k, 2, &out, &outlen), 0);
	take(&kf, &len, out, outlen);
	assert_int_equal(open_tpm2(kf, len, secret, 32, NULL), -EACCES);
	assert_int_equal(open_tpm2(kf, len, other, 32, NULL), 0);
	/* what a slot cannot hold is refused before anything is written */
	struct wfs_slot_new ns = {.type = WFS_SLOT_TPM2, .tpm2 = &bad, .tpm2_secret = secret};
	const struct {
		int field, value;
	} wrong[] = {{0, 0}, {0, WFS_TPM2_PUB_MAX + 1},
		     {1, 0}, {1, WFS_TPM2_PRIV_MAX + 1},
		     {2, 2}, {3, 0x0004},
		     {4, 24}};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		bad = t;
		if (wrong[i].field == 0)
			bad.publen = (uint16_t)wrong[i].value;
		else if (wrong[i].field == 1)
			bad.privlen = (uint16_t)wrong[i].value;
		else if (wrong[i].field == 2)
			bad.primary = (uint8_t)wrong[i].value;
		else if (wrong[i].field == 3)
			bad.pcr_bank = (uint16_t)wrong[i].value;
		else
			bad.pcrs = 1u << wrong[i].value;
		out = NULL;
		assert_int_equal(wfs_keyfile_add(kf, len, k, &ns, &out, &outlen, &id), -EINVAL);
		assert_null(out);
	}
	ns.tpm2_secret = NULL;
	ns.tpm2 = &t;
	assert_int_equal(wfs_keyfile_add(kf, len, k, &ns, &out, &outlen, &id), -EINVAL);
	free(kf);
	wfs_keys_free(k);
}

/* The parser's bounds on a tpm2 record, one field at a time: each makes
 * the keyfile malformed. */
static void test_tpm2_parse(void **state)
{
	uint8_t *kf, bad[WFS_KEYFILE_MAX], secret[32] = {1};
	size_t len, off, b;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k;
	struct wfs_tpm2_seal t;

	(void)state;
	make(&kf, &len, rec, &k);
	fake_seal(&t, 0, 0x33);
	add_tpm2(&kf, &len, k, &t, secret, &off);
	b = off + 16 + kf[off + 6]; /* the body */
	assert_int_equal(wfs_keyfile_parse(kf, len, NULL), 0);
	const struct {
		size_t at;
		uint8_t value;
	} wrong[] = {
		{0, 2},			/* another parent template */
		{1, 1},			/* reserved */
		{2, 0x04},		/* bank: sha1 */
		{7, 0x01},		/* PCR 24 */
		{8, 0},			/* public length 0 (its low byte) */
		{9, 1},			/* ... 256 + P: past the body */
		{10 + t.publen, 0},	/* private length 0 */
		{10 + t.publen, 0xff},	/* too long for the record */
		{10 + t.publen + 1, 1}, /* ... */
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		memcpy(bad, kf, len);
		if (wrong[i].at == 8)
			bad[b + 8] = 0, bad[b + 9] = 0;
		else
			bad[b + wrong[i].at] = wrong[i].value;
		assert_int_equal(wfs_keyfile_parse(bad, len, NULL), -EINVAL);
		assert_int_equal(open_tpm2(bad, len, secret, 32, NULL), -EINVAL);
	}
	/* lengths that add up to the record but not to a body: P one more,
	 * Q one less */
	memcpy(bad, kf, len);
	bad[b + 8]++;
	bad[b + 10 + t.publen + 1]--;
	assert_int_equal(wfs_keyfile_parse(bad, len, NULL), -EINVAL);
	/* the blobs are not checked by the parser (the TPM refuses a garbled
	 * one, and the other slots still open), but wfs_tpm2_check sees it */
	struct wfs_tpm2_seal g = t;
	g.pub[5] ^= 0xff; /* the type: no longer keyed-hash */
	assert_int_equal(wfs_tpm2_check(&g), -EINVAL);
	g = t;
	g.priv[0] ^= 1; /* the TPM2B's size disagrees with the stored length */
	assert_int_equal(wfs_tpm2_check(&g), -EINVAL);
	g = t;
	g.publen--;
	assert_int_equal(wfs_tpm2_check(&g), -EINVAL);
	free(kf);
	wfs_keys_free(k);
}

static void test_tpm2_pcrs(void **state)
{
	uint32_t m = 0;
	char text[64];

	(void)state;
	assert_int_equal(wfs_tpm2_pcrs_parse("7", &m), 0);
	assert_int_equal(m, 1u << 7);
	assert_int_equal(wfs_tpm2_pcrs_parse("0,7,23", &m), 0);
	assert_int_equal(m, 1u | 1u << 7 | 1u << 23);
	wfs_tpm2_pcrs_format(m, text, sizeof(text));
	assert_string_equal(text, "0,7,23");
	wfs_tpm2_pcrs_format(0, text, sizeof(text));
	assert_string_equal(text, "none");
	wfs_tpm2_pcrs_format(0xffffff, text, sizeof(text));
	assert_string_equal(text, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23");
	const char *bad[] = {"", "24", "7,", ",7", "7,7", "a", "-1", "7 ", "0007", "1,,2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(wfs_tpm2_pcrs_parse(bad[i], &m), -EINVAL);
	assert_string_equal(wfs_tpm2_tcti("swtpm:port=1"), "swtpm:port=1");
	setenv("WARDFS_TPM2_TCTI", "swtpm:port=2", 1);
	assert_string_equal(wfs_tpm2_tcti(NULL), "swtpm:port=2");
	unsetenv("WARDFS_TPM2_TCTI");
	assert_string_equal(wfs_tpm2_tcti(NULL), "device:/dev/tpmrm0");
}

/* ---- the version-2 vector, opened by hand ------------------------------ */

static void hkdf_salted(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
			const char *info, uint8_t out[32])
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t outlen = 32;

	assert_true(EVP_PKEY_derive_init(pc) > 0);
	assert_true(EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set1_hkdf_key(pc, ikm, (int)ikmlen) > 0);
	assert_true(EVP_PKEY_CTX_set1_hkdf_salt(pc, salt, (int)saltlen) > 0);
	assert_true(EVP_PKEY_CTX_add1_hkdf_info(pc, (const unsigned char *)info,
						(int)strlen(info)) > 0);
	assert_true(EVP_PKEY_derive(pc, out, &outlen) > 0);
	EVP_PKEY_CTX_free(pc);
}

/* Opens the slot record at off of kf (len bytes) by hand: its AAD is the
 * file's first 32 bytes and the record up to its nonce. */
static void open_by_hand(const uint8_t *kf, size_t off, const uint8_t kek[32], uint8_t mk[32])
{
	size_t rl = (size_t)kf[off] | (size_t)kf[off + 1] << 8;
	uint8_t aad[512];

	memcpy(aad, kf, 32);
	memcpy(aad + 32, kf + off, rl - 60);
	assert_true(test_gcm_open_raw(kek, kf + off + rl - 60, aad, (int)(32 + rl - 60),
				      kf + off + rl - 48, 32, kf + off + rl - 16, mk));
}

/* Opens every slot of the version-2 vector in tests/data/name, by the
 * library and by hand, and checks its MAC by hand: nslots of them. */
static void check_v2_vector(const char *name, size_t nslots)
{
	char *vec = test_read_vector(name), pass[64] = "";
	char rec[WFS_RECOVERY_LEN] = "", esec[WFS_ESCROW_TEXT_LEN] = "";
	uint8_t kf[WFS_KEYFILE_MAX], mk[32], got[32], kek[32], rb[24], sk[32], shared[32];
	uint8_t salt[64], mkey[32], mac[32], tsec[32], zeros[32] = {0};
	size_t len = test_hex_get(vec, "keyfile", kf, sizeof(kf)), off = 36, rl;
	bool has_tpm2 = strstr(vec, "\ntpm2_secret: ") != NULL;
	struct wfs_keyfile_info info;
	struct wfs_keys *u;
	unsigned maclen = 32;
	size_t seen[5] = {0};

	assert_int_equal(test_hex_get(vec, "master_key", mk, sizeof(mk)), 32);
	assert_int_equal(sscanf(strstr(vec, "\npassphrase: ") + 13, "%63[^\n]", pass), 1);
	assert_int_equal(sscanf(strstr(vec, "\nrecovery: ") + 11, "%63[^\n]", rec), 1);
	assert_int_equal(sscanf(strstr(vec, "\nescrow_secret: ") + 16, "%95[^\n]", esec), 1);
	if (has_tpm2)
		assert_int_equal(test_hex_get(vec, "tpm2_secret", tsec, sizeof(tsec)), 32);
	/* the library */
	assert_int_equal(wfs_keyfile_parse(kf, len, &info), 0);
	assert_int_equal(info.nslots, nslots);
	assert_int_equal(
		wfs_keyfile_open(kf, len, WFS_SLOT_PASSPHRASE, pass, strlen(pass), &u, NULL), 0);
	assert_memory_equal(u->master, mk, 32);
	wfs_keys_free(u);
	assert_int_equal(wfs_keyfile_open(kf, len, WFS_SLOT_RECOVERY, rec, 0, &u, NULL), 0);
	assert_memory_equal(u->master, mk, 32);
	wfs_keys_free(u);
	assert_int_equal(wfs_keyfile_open(kf, len, WFS_SLOT_ESCROW, esec, 0, &u, NULL), 0);
	assert_memory_equal(u->master, mk, 32);
	wfs_keys_free(u);
	if (has_tpm2) {
		assert_int_equal(wfs_keyfile_open(kf, len, WFS_SLOT_TPM2, tsec, 32, &u, NULL), 0);
		assert_memory_equal(u->master, mk, 32);
		wfs_keys_free(u);
	}

	/* by hand, from docs/format.md */
	for (size_t n = 0; n < nslots; n++) {
		rl = (size_t)kf[off] | (size_t)kf[off + 1] << 8;
		const uint8_t *body = kf + off + 16 + kf[off + 6];
		assert_true(kf[off + 4] >= 1 && kf[off + 4] <= 4);
		seen[kf[off + 4]]++;
		switch (kf[off + 4]) {
		case 2: /* recovery: HKDF(key, salt = body[0,16), "wardfs v2 recovery wrap") */
			for (int i = 0, j = 0; rec[i]; i++) {
				unsigned v;
				if (rec[i] == '-')
					continue;
				char two[3] = {rec[i], rec[i + 1], 0};
				/* two hex digits: no conversion can overflow */
				/* NOLINTNEXTLINE(cert-err34-c) */
				sscanf(two, "%2x", &v);
				rb[j++] = (uint8_t)v;
				i++;
			}
			hkdf_salted(rb, 24, body, 16, "wardfs v2 recovery wrap", kek);
			break;
		case 1: { /* passphrase: Argon2id(pass, salt = body[20,36), ops, mem) */
			uint64_t ops = 0, mem = 0;
			for (int i = 7; i >= 0; i--) {
				ops = ops << 8 | body[4 + i];
				mem = mem << 8 | body[12 + i];
			}
			assert_int_equal(crypto_pwhash(kek, 32, pass, strlen(pass), body + 20, ops,
						       (size_t)mem, crypto_pwhash_ALG_ARGON2ID13),
					 0);
			break;
		}
		case 3: /* escrow: HKDF(X25519(sk, ephemeral), salt = ephemeral || escrow public) */
			assert_int_equal(
				sodium_hex2bin(sk, 32, strchr(esec, ':') + 1, 64, NULL, NULL, NULL),
				0);
			assert_int_equal(crypto_scalarmult(shared, sk, body + 32), 0);
			memcpy(salt, body + 32, 32);
			memcpy(salt + 32, body, 32);
			hkdf_salted(shared, 32, salt, 64, "wardfs v2 escrow wrap", kek);
			break;
		case 4: { /* tpm2: HKDF(the unsealed secret, no salt = 32 zeros, "wardfs v2 tpm2
			     wrap") */
			size_t pl = (size_t)body[8] | (size_t)body[9] << 8;
			size_t ql = (size_t)body[10 + pl] | (size_t)body[11 + pl] << 8;
			assert_int_equal(body[0], 1);			  /* ECC P-256 parent */
			assert_int_equal(body[2] | body[3] << 8, 0x000b); /* sha256 */
			assert_int_equal(16 + kf[off + 6] + 12 + pl + ql + 60, rl); /* the record */
			hkdf_salted(tsec, 32, zeros, 32, "wardfs v2 tpm2 wrap", kek);
			break;
		}
		}
		open_by_hand(kf, off, kek, got);
		assert_memory_equal(got, mk, 32);
		off += rl;
	}
	assert_true(seen[1] == 1 && seen[2] == 1 && seen[3] == 1 && seen[4] == (has_tpm2 ? 1 : 0));
	/* the MAC: HMAC-SHA256(HKDF(master, salt = vault id, "wardfs v2 keyfile mac"), all before)
	 */
	assert_int_equal(off + 32, len);
	hkdf_salted(mk, 32, kf + 16, 16, "wardfs v2 keyfile mac", mkey);
	assert_non_null(HMAC(EVP_sha256(), mkey, 32, kf, off, mac, &maclen));
	assert_memory_equal(mac, kf + off, 32);
	free(vec);
}

static void test_v2_vector(void **state)
{
	(void)state;
	check_v2_vector("keyfile-v2-kat.txt", 3);
	check_v2_vector("keyfile-v2-tpm2-kat.txt", 4);
}

/* WFS_KEYFILE_KAT_GENERATE=FILE: writes a new version-2 vector. */
static void generate_v2_vector(const char *path)
{
	uint8_t *kf, *out, pk[WFS_ESCROW_KEY_LEN];
	size_t len, outlen;
	char rec[WFS_RECOVERY_LEN], epub[WFS_ESCROW_TEXT_LEN], esec[WFS_ESCROW_TEXT_LEN];
	struct wfs_keys *k;
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(wfs_keyfile_create("correct horse", 13, &cheap, &kf, &len, rec, &k), 0);
	assert_int_equal(wfs_escrow_keygen(epub, esec), 0);
	assert_int_equal(wfs_escrow_public_parse(epub, pk), 0);
	struct wfs_slot_new es = {.type = WFS_SLOT_ESCROW, .label = "org", .escrow_public = pk};
	assert_int_equal(wfs_keyfile_add(kf, len, k, &es, &out, &outlen, NULL), 0);
	take(&kf, &len, out, outlen);
	/* a tpm2 slot: the blobs stand in for a TPM's (the seal is the TPM's
	 * and random); the secret is what the TPM would unseal */
	struct wfs_tpm2_seal t;
	uint8_t tsec[32];
	size_t toff;
	fake_seal(&t, 1u << 7, 0x5a);
	randombytes_buf(tsec, sizeof(tsec));
	add_tpm2(&kf, &len, k, &t, tsec, &toff);
	out = kf;
	outlen = len;
	kf = NULL;
	fprintf(f, "# A version-2 keyfile (docs/format.md): slot 0 recovery, slot 1 passphrase\n"
		   "# (Argon2id opslimit 1, memlimit 8 MiB), slot 2 escrow, slot 3 tpm2 (PCR 7;\n"
		   "# its blobs stand in for a TPM's, tpm2_secret is what the TPM would unseal).\n"
		   "# Written by WFS_KEYFILE_KAT_GENERATE in tests/unit/crypto/test_keyfile.c;\n"
		   "# do not edit.\n");
	fprintf(f,
		"passphrase: correct horse\nrecovery: %s\nescrow_public: %s\nescrow_secret: %s\n",
		rec, epub, esec);
	fprintf(f, "tpm2_secret: ");
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02x", tsec[i]);
	fprintf(f, "\n");
	fprintf(f, "master_key: ");
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02x", k->master[i]);
	fprintf(f, "\nkeyfile: ");
	for (size_t i = 0; i < outlen; i++)
		fprintf(f, "%02x", out[i]);
	fprintf(f, "\n");
	fclose(f);
	free(kf);
	free(out);
	wfs_keys_free(k);
}

/* The vault's flags: made at create, set later by an edit that keeps
 * every slot, authentic only with the MAC, unknown ones refused. */
static void test_flags(void **state)
{
	(void)state;
	uint8_t *kf = NULL, *kf2 = NULL;
	size_t len, len2;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k = NULL, *u = NULL;
	struct wfs_keyfile_info *info = malloc(sizeof(*info));

	assert_non_null(info);
	assert_int_equal(wfs_keyfile_create_flags("pw", 2, &cheap, 0x8000, &kf, &len, rec, &k),
			 -EINVAL);
	assert_int_equal(wfs_keyfile_create_flags("pw", 2, &cheap, WFS_VAULT_ENCRYPT_NAMES, &kf,
						  &len, rec, &k),
			 0);
	assert_int_equal(wfs_keys_vault_flags(k), WFS_VAULT_ENCRYPT_NAMES);
	assert_int_equal(wfs_keyfile_parse(kf, len, info), 0);
	assert_int_equal(info->flags, WFS_VAULT_ENCRYPT_NAMES);
	assert_int_equal(wfs_keyfile_open(kf, len, WFS_SLOT_PASSPHRASE, "pw", 2, &u, NULL), 0);
	assert_int_equal(wfs_keys_vault_flags(u), WFS_VAULT_ENCRYPT_NAMES);
	wfs_keys_free(u);
	/* cleared by hand: every slot opens (flags are not in their AAD) but
	 * the MAC refuses the file */
	kf[10] = 0;
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, "pw"), -EINVAL);
	assert_int_equal(open_r(kf, len, WFS_SLOT_RECOVERY, rec), -EINVAL);
	/* an unknown flag: malformed, before any slot is tried */
	kf[10] = 0x02;
	assert_int_equal(wfs_keyfile_parse(kf, len, info), -EINVAL);
	assert_int_equal(open_r(kf, len, WFS_SLOT_PASSPHRASE, "pw"), -EINVAL);
	free(kf);
	wfs_keys_free(k);

	/* set on an existing vault: both slots keep opening */
	make(&kf, &len, rec, &k);
	assert_int_equal(wfs_keys_vault_flags(k), 0);
	assert_int_equal(wfs_keyfile_set_flags(kf, len, k, 0x4, &kf2, &len2), -EINVAL);
	assert_int_equal(wfs_keyfile_set_flags(kf, len, k, WFS_VAULT_ENCRYPT_NAMES, &kf2, &len2),
			 0);
	assert_int_equal(wfs_keyfile_open(kf2, len2, WFS_SLOT_RECOVERY, rec, 0, &u, NULL), 0);
	assert_int_equal(wfs_keys_vault_flags(u), WFS_VAULT_ENCRYPT_NAMES);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	opens_pass(kf2, len2, "correct horse", k, 1);
	free(kf2);
	free(kf);
	wfs_keys_free(k);
	free(info);
}

static void test_secmem(void **state)
{
	uint8_t *p = wfs_secure_alloc(100), *q;

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], 0);
	memset(p, 7, 100);
	wfs_secure_free(p);
	wfs_secure_free(NULL);
	q = malloc(10);
	memset(q, 1, 10);
	wfs_freezero(q, 10);
	wfs_freezero(NULL, 5);
	assert_int_equal(wfs_ct_compare("abc", "abc", 3), 0);
	assert_int_not_equal(wfs_ct_compare("abc", "abd", 3), 0);
	wfs_keys_free(NULL);
}

static void test_measure_default(void **state)
{
	struct wfs_kdf_params d;
	uint8_t *kf;
	size_t len;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *u;
	struct timespec a, b;

	(void)state;
	if (getenv("WFS_MEASURE_KDF") == NULL)
		skip();
	wfs_kdf_params_default(&d);
	assert_int_equal(wfs_keyfile_create("pw", 2, &d, &kf, &len, rec, &k), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(wfs_keyfile_unlock(kf, len, "pw", 2, &u), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("argon2id unlock, default cost (ops %llu, %zu MiB): %.3f s\n",
	       (unsigned long long)d.opslimit, d.memlimit >> 20,
	       (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	wfs_keys_free(u);
	wfs_keys_free(k);
	free(kf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_unlock), cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_recovery),      cmocka_unit_test(test_rewrap),
		cmocka_unit_test(test_slots),	      cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_slot_swap),     cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2_vector),     cmocka_unit_test(test_secmem),
		cmocka_unit_test(test_tpm2_slot),     cmocka_unit_test(test_tpm2_parse),
		cmocka_unit_test(test_flags),	      cmocka_unit_test(test_tpm2_aad),
		cmocka_unit_test(test_tpm2_pcrs),     cmocka_unit_test(test_measure_default),
	};
	const char *gen = getenv("WFS_KEYFILE_KAT_GENERATE");

	assert_int_equal(wfs_crypto_init(), 0);
	if (gen != NULL) {
		generate_v2_vector(gen);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
