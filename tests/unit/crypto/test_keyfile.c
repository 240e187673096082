/*
 * test_keyfile.c - the vault keyfile: create, unlock, wrong passphrase,
 * recovery key, rewrap, every corruption and truncation (an error, never a
 * crash or a wrong key), and an independent unwrap following
 * docs/format.md. WFS_MEASURE_KDF=1 also times the default Argon2id cost.
 */
#include <time.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "helpers.h"

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

static void test_create_unlock(void **state)
{
	uint8_t *kf, *kf2;
	size_t len, len2;
	char rec[WFS_RECOVERY_LEN], rec2[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *k2, *u;
	struct wfs_kdf_params p;

	(void)state;
	make(&kf, &len, rec, &k);
	make(&kf2, &len2, rec2, &k2);
	assert_int_equal(len, 188);
	assert_memory_not_equal(k->master, k2->master, 32);
	assert_string_not_equal(rec, rec2);
	assert_int_equal(wfs_keyfile_check(kf, len, &p), 0);
	assert_int_equal(p.opslimit, 1);
	assert_int_equal(p.memlimit, 8u << 20);

	assert_int_equal(wfs_keyfile_unlock(kf, len, "correct horse", 13, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	/* wrong passphrases */
	u = (struct wfs_keys *)1;
	assert_int_equal(wfs_keyfile_unlock(kf, len, "correct hors", 12, &u), -EACCES);
	assert_null(u);
	assert_int_equal(wfs_keyfile_unlock(kf, len, "correct horsf", 13, &u), -EACCES);
	assert_int_equal(wfs_keyfile_unlock(kf, len, "", 0, &u), -EACCES);
	/* another vault's keyfile */
	assert_int_equal(wfs_keyfile_unlock(kf2, len2, "correct horse", 13, &u), 0);
	assert_same_keys(k2, u);
	wfs_keys_free(u);
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

	(void)state;
	make(&kf, &len, rec, &k);
	assert_int_equal(wfs_keyfile_rewrap(kf, len, k, "new pass", 8, &p2, &nkf, &nlen), 0);
	assert_int_equal(nlen, 188);
	assert_int_equal(wfs_keyfile_check(nkf, nlen, &p), 0);
	assert_int_equal(p.opslimit, 2);
	assert_int_equal(p.memlimit, 9u << 20);
	assert_memory_equal(kf, nkf, 92); /* magic .. recovery wrap kept */
	assert_int_equal(wfs_keyfile_unlock(nkf, nlen, "correct horse", 13, &u), -EACCES);
	assert_int_equal(wfs_keyfile_unlock(nkf, nlen, "new pass", 8, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	assert_int_equal(wfs_keyfile_unlock_recovery(nkf, nlen, rec, &u), 0);
	assert_same_keys(k, u);
	wfs_keys_free(u);
	/* NULL params keep the stored cost */
	free(kf);
	assert_int_equal(wfs_keyfile_rewrap(nkf, nlen, k, "third", 5, NULL, &kf, &len), 0);
	assert_int_equal(wfs_keyfile_check(kf, len, &p), 0);
	assert_int_equal(p.opslimit, 2);
	assert_int_equal(wfs_keyfile_unlock(kf, len, "third", 5, &u), 0);
	wfs_keys_free(u);
	free(kf);
	free(nkf);
	wfs_keys_free(k);
}

/*
 * Every byte changed (xor 1, so the Argon2id cost stays cheap: the bounds
 * turn big jumps into -EINVAL) and every truncation: an error, never keys.
 */
static void test_corruption(void **state)
{
	uint8_t *kf, bad[200];
	size_t len;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k, *u;
	int einval = 0, eacces = 0;

	(void)state;
	make(&kf, &len, rec, &k);
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, kf, len);
		bad[i] ^= 1;
		u = NULL;
		int r = wfs_keyfile_unlock(bad, len, "correct horse", 13, &u);
		assert_true(r == -EINVAL || r == -EACCES);
		assert_null(u);
		einval += r == -EINVAL;
		eacces += r == -EACCES;
		/* recovery covers bytes 0..91 only; everything else is the passphrase's */
		r = wfs_keyfile_unlock_recovery(bad, len, rec, &u);
		if (r == 0) {
			assert_true(i >= 92);
			assert_same_keys(k, u);
			wfs_keys_free(u);
		} else {
			assert_true(r == -EINVAL || r == -EACCES);
		}
	}
	assert_true(einval > 0 && eacces > 0);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(wfs_keyfile_unlock(kf, n, "correct horse", 13, &u), -EINVAL);
	memcpy(bad, kf, len);
	bad[len] = 0;
	assert_int_equal(wfs_keyfile_unlock(bad, len + 1, "correct horse", 13, &u), -EINVAL);
	assert_int_equal(wfs_keyfile_check(NULL, 0, NULL), -EINVAL);
	/* huge Argon2id cost is malformed, not a 1 TiB allocation */
	memcpy(bad, kf, len);
	bad[104 + 5] = 1;
	assert_int_equal(wfs_keyfile_check(bad, len, NULL), -EINVAL);
	memcpy(bad, kf, len);
	bad[96] = 200;
	assert_int_equal(wfs_keyfile_check(bad, len, NULL), -EINVAL);
	free(kf);
	wfs_keys_free(k);
}

/* The passphrase wrap opened by hand, following docs/format.md. */
static void test_independent_unwrap(void **state)
{
	uint8_t *kf, kek[32], mk[32], t[16], fin[16];
	size_t len;
	char rec[WFS_RECOVERY_LEN];
	struct wfs_keys *k;
	int outl;

	(void)state;
	make(&kf, &len, rec, &k);
	static const uint8_t magic[8] = {0x89, 'W', 'F', 'S', 'K', 'E', 'Y', 0};
	assert_memory_equal(kf, magic, 8);
	assert_int_equal(crypto_pwhash(kek, 32, "correct horse", 13, kf + 112, 1, 8u << 20,
				       crypto_pwhash_ALG_ARGON2ID13),
			 0);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	memcpy(t, kf + 140 + 32, 16);
	assert_true(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, kf + 128));
	assert_true(EVP_DecryptUpdate(c, NULL, &outl, kf, 128));
	assert_true(EVP_DecryptUpdate(c, mk, &outl, kf + 140, 32));
	assert_true(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, t));
	assert_true(EVP_DecryptFinal_ex(c, fin, &outl) > 0);
	EVP_CIPHER_CTX_free(c);
	assert_memory_equal(mk, k->master, 32);

	/* recovery: HKDF-SHA256(key bytes, salt = bytes 16..31, info) then GCM */
	uint8_t rb[24], rk[32];
	for (int i = 0, j = 0; rec[i]; i++) {
		if (rec[i] == '-')
			continue;
		unsigned v;
		char two[3] = {rec[i], rec[i + 1], 0};
		/* two hex digits: no conversion can overflow */
		/* NOLINTNEXTLINE(cert-err34-c) */
		sscanf(two, "%2x", &v);
		rb[j++] = (uint8_t)v;
		i++;
	}
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t rkl = 32;
	assert_true(EVP_PKEY_derive_init(pc) > 0);
	assert_true(EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set1_hkdf_key(pc, rb, 24) > 0);
	assert_true(EVP_PKEY_CTX_set1_hkdf_salt(pc, kf + 16, 16) > 0);
	assert_true(EVP_PKEY_CTX_add1_hkdf_info(
			    pc, (const unsigned char *)"wardfs v1 recovery wrap", 23) > 0);
	assert_true(EVP_PKEY_derive(pc, rk, &rkl) > 0);
	EVP_PKEY_CTX_free(pc);
	c = EVP_CIPHER_CTX_new();
	memcpy(t, kf + 44 + 32, 16);
	memset(mk, 0, 32);
	assert_true(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, rk, kf + 32));
	assert_true(EVP_DecryptUpdate(c, NULL, &outl, kf, 32));
	assert_true(EVP_DecryptUpdate(c, mk, &outl, kf + 44, 32));
	assert_true(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, t));
	assert_true(EVP_DecryptFinal_ex(c, fin, &outl) > 0);
	EVP_CIPHER_CTX_free(c);
	assert_memory_equal(mk, k->master, 32);
	free(kf);
	wfs_keys_free(k);
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
		cmocka_unit_test(test_corruption),    cmocka_unit_test(test_independent_unwrap),
		cmocka_unit_test(test_secmem),	      cmocka_unit_test(test_measure_default),
	};
	assert_int_equal(wfs_crypto_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
