/*
 * test_kat.c - known answers for the encrypted file format. With a fixed
 * master key and a fixed nonce/file-id source, the library must produce
 * tests/data/format-kat.txt byte for byte; then the same file is decrypted
 * again with raw OpenSSL calls written from docs/format.md alone (HKDF by
 * hand from HMAC, AES-256-GCM via EVP), which proves the document.
 *
 * Regenerate (only when the format changes on purpose):
 *   WFS_KAT_GENERATE=tests/data/format-kat.txt ./crypto_kat
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "helpers.h"
#include "vectors.h"

#define PLAIN_LEN 5000

static uint8_t counter;

/* byte n of the "random" stream is 0xa0 + n (mod 256) */
static void fixed_random(void *arg, void *out, size_t n)
{
	(void)arg;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)out)[i] = (uint8_t)(0xa0 + counter++);
}

static void kat_plain(uint8_t *p)
{
	for (size_t i = 0; i < PLAIN_LEN; i++)
		p[i] = (uint8_t)(i * 31 + 7);
}

static void hex_put(FILE *f, const char *name, const uint8_t *b, size_t n)
{
	fprintf(f, "%s: ", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	fprintf(f, "\n");
}

static void test_kat(void **state)
{
	uint8_t mk[32], plain[PLAIN_LEN], got[PLAIN_LEN], file[8192], want[8192];
	struct wfs_keys *k;
	struct wfs_file_hdr h;
	int fd = test_memfd();
	size_t flen;

	(void)state;
	for (int i = 0; i < 32; i++)
		mk[i] = (uint8_t)i;
	kat_plain(plain);
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	counter = 0;
	wfs__set_nonce_source(fixed_random, NULL);
	assert_int_equal(wfs_hdr_write(k, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(k, fd, &h, plain, PLAIN_LEN, 0), PLAIN_LEN);
	wfs__set_nonce_source(NULL, NULL);
	flen = (size_t)test_fsize(fd);
	assert_int_equal(flen, wfs_cipher_size(PLAIN_LEN));
	assert_int_equal(flen, 64 + 4124 + (PLAIN_LEN - 4096) + 28);
	test_pread_raw(fd, file, flen, 0);

	const char *gen = getenv("WFS_KAT_GENERATE");
	if (gen != NULL) {
		FILE *f = fopen(gen, "w");
		assert_non_null(f);
		fprintf(f,
			"# wardfs encrypted-file known-answer vector (docs/format.md).\n"
			"# plaintext: %d bytes, byte i = (i * 31 + 7) mod 256.\n"
			"# nonces and file id: byte n drawn = (0xa0 + n) mod 256.\n"
			"# Written once by tests/unit/crypto/test_kat.c; do not edit.\n",
			PLAIN_LEN);
		hex_put(f, "master_key", mk, 32);
		hex_put(f, "content_key", k->content, 32);
		hex_put(f, "header_key", k->header, 32);
		hex_put(f, "file_id", h.file_id, 16);
		hex_put(f, "cipher_file", file, flen);
		fclose(f);
	}

	/* 1. byte for byte against the stored vector */
	char *vec = test_read_vector("format-kat.txt");
	assert_int_equal(test_hex_get(vec, "master_key", want, sizeof(want)), 32);
	assert_memory_equal(want, mk, 32);
	assert_int_equal(test_hex_get(vec, "content_key", want, sizeof(want)), 32);
	assert_memory_equal(want, k->content, 32);
	assert_int_equal(test_hex_get(vec, "header_key", want, sizeof(want)), 32);
	assert_memory_equal(want, k->header, 32);
	assert_int_equal(test_hex_get(vec, "cipher_file", want, sizeof(want)), flen);
	assert_memory_equal(want, file, flen);
	free(vec);

	/* 2. independently, from docs/format.md */
	uint8_t ck[32], hk[32], aad[25];
	test_hkdf_by_hand(mk, "wardfs v1 content key", ck, 32);
	test_hkdf_by_hand(mk, "wardfs v1 header key", hk, 32);
	assert_memory_equal(ck, k->content, 32);
	assert_memory_equal(hk, k->header, 32);
	static const uint8_t magic[8] = {0x89, 0x57, 0x41, 0x52, 0x44, 0x46, 0x53, 0x00};
	assert_memory_equal(file, magic, 8);
	assert_int_equal(file[8] | file[9] << 8, 2); /* version */
	assert_memory_equal(file + 16, h.file_id, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(file[16 + i], 0xa0 + i); /* file id drawn first */
	/* header: GCM over no plaintext, AAD = bytes 0..35, nonce 36..47, tag 48..63 */
	assert_true(test_gcm_open_raw(hk, file + 36, file, 36, NULL, 0, file + 48, NULL));
	file[12] ^= 1; /* reserved bytes are covered */
	assert_false(test_gcm_open_raw(hk, file + 36, file, 36, NULL, 0, file + 48, NULL));
	file[12] ^= 1;
	/* blocks: nonce || ct || tag, AAD = file id || le64(index) || end flag;
	 * the last block stored is the end block (flag 1), all others 0 */
	size_t pos = 64, plen;
	for (uint64_t i = 0; pos < flen; i++, pos += plen + 28) {
		plen = flen - pos - 28 < 4096 ? flen - pos - 28 : 4096;
		memcpy(aad, file + 16, 16);
		for (int b = 0; b < 8; b++)
			aad[16 + b] = (uint8_t)(i >> (8 * b));
		aad[24] = pos + plen + 28 == flen;
		assert_true(test_gcm_open_raw(ck, file + pos, aad, 25, file + pos + 12, (int)plen,
					      file + pos + 12 + plen, got + i * 4096));
		aad[24] ^= 1; /* the other end flag must fail */
		assert_false(test_gcm_open_raw(ck, file + pos, aad, 25, file + pos + 12, (int)plen,
					       file + pos + 12 + plen, got + i * 4096));
		aad[24] ^= 1;
		aad[16] ^= 1; /* another index must fail */
		assert_false(test_gcm_open_raw(ck, file + pos, aad, 25, file + pos + 12, (int)plen,
					       file + pos + 12 + plen, got + i * 4096));
	}
	assert_int_equal(pos, flen);
	assert_memory_equal(got, plain, PLAIN_LEN);

	/* 3. and the library reads it back */
	memset(got, 0, sizeof(got));
	assert_int_equal(wfs_content_pread(k, fd, &h, got, sizeof(got), 0), PLAIN_LEN);
	assert_memory_equal(got, plain, PLAIN_LEN);
	wfs_keys_free(k);
	close(fd);
}

/* Format 1 (no end block, AAD without the end flag) still reads, and a
 * file in it stays in it when written and truncated. */
static void test_kat_v1(void **state)
{
	uint8_t mk[32], plain[PLAIN_LEN + 3000], got[PLAIN_LEN + 4000], file[8192];
	struct wfs_keys *k;
	struct wfs_file_hdr h;
	int fd = test_memfd();
	char *vec = test_read_vector("format-kat-v1.txt");
	size_t flen = test_hex_get(vec, "cipher_file", file, sizeof(file));

	(void)state;
	for (int i = 0; i < 32; i++)
		mk[i] = (uint8_t)i;
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	test_pwrite_raw(fd, file, flen, 0);
	assert_int_equal(wfs_hdr_read(k, fd, &h), WFS_FORM_ENCRYPTED);
	assert_int_equal(h.version, 1);
	kat_plain(plain);
	assert_int_equal(wfs_content_pread(k, fd, &h, got, sizeof(got), 0), PLAIN_LEN);
	assert_memory_equal(got, plain, PLAIN_LEN);
	/* append: format 1's sizes (a full last block, no end block) */
	memset(plain + PLAIN_LEN, 0x3c, 3000);
	assert_int_equal(wfs_content_pwrite(k, fd, &h, plain + PLAIN_LEN, 3000, PLAIN_LEN), 3000);
	assert_int_equal(test_fsize(fd), 64 + 4124 + (8000 - 4096) + 28);
	assert_int_equal(wfs_content_pread(k, fd, &h, got, sizeof(got), 0), 8000);
	assert_memory_equal(got, plain, 8000);
	assert_int_equal(wfs_content_truncate(k, fd, &h, 4096), 0);
	assert_int_equal(test_fsize(fd), 64 + 4124);
	assert_int_equal(wfs_content_pread(k, fd, &h, got, sizeof(got), 0), 4096);
	assert_memory_equal(got, plain, 4096);
	assert_int_equal(wfs_content_verify(k, fd, NULL, NULL), 0);
	assert_int_equal(wfs_content_zero(k, fd, &h, 0, 10), -EOPNOTSUPP);
	free(vec);
	wfs_keys_free(k);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_kat_v1),
	};
	assert_int_equal(wfs_crypto_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
