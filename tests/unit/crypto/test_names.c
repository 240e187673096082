/*
 * test_names.c - encrypted names (docs/format.md, "Encrypted names"):
 * AES-SIV against OpenSSL's own AES-256-SIV, round trips of every length
 * and byte, binding to the directory id, refusal of every flipped bit and
 * every non-canonical encoding, the wfs~ marker and its escape, long names
 * around the threshold, the directory id and sidecar files, threads, the
 * known-answer vector tests/data/names-kat.txt (recomputed with raw
 * OpenSSL calls from the document), and the cost per name (printed, not
 * asserted).
 *
 * Regenerate the vector (only when the format changes on purpose):
 *   WFS_KAT_GENERATE=tests/data/names-kat.txt ./crypto_names
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "helpers.h"
#include "vectors.h"

static const uint8_t dir_a[WFS_DIRID_LEN] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
					     0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f};
static const uint8_t dir_b[WFS_DIRID_LEN] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
					     0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4e};

/* ---- independent implementations, from docs/format.md and OpenSSL ---- */

/* AES-256-SIV with one associated-data component: out = V || ct; 1 if ok */
static int siv_raw(int enc, const uint8_t key[64], const uint8_t *ad, size_t adlen,
		   const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER *siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t tag[16], fin[16];
	int outl, ok;

	if (enc)
		ok = EVP_EncryptInit_ex2(c, siv, key, NULL, NULL) &&
		     EVP_EncryptUpdate(c, NULL, &outl, ad, (int)adlen) &&
		     EVP_EncryptUpdate(c, out + 16, &outl, in, (int)len) &&
		     EVP_EncryptFinal_ex(c, fin, &outl) &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out);
	else {
		memcpy(tag, in, 16);
		ok = EVP_DecryptInit_ex2(c, siv, key, NULL, NULL) &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) &&
		     EVP_DecryptUpdate(c, NULL, &outl, ad, (int)adlen) &&
		     EVP_DecryptUpdate(c, out, &outl, in + 16, (int)len) &&
		     EVP_DecryptFinal_ex(c, fin, &outl) > 0;
	}
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(siv);
	return ok;
}

/* base64url without padding, from OpenSSL's standard base64 */
static void b64url_raw(const uint8_t *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	for (int i = 0; i < len; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
}

/* The backing name(s) of plain per docs/format.md, with the calls above. */
static void encrypt_by_hand(const uint8_t key[64], const uint8_t dirid[16], const uint8_t *plain,
			    size_t len, char *name, char *sidecar)
{
	uint8_t pad[256] = {0}, c[272];
	size_t plen = (len + 15) / 16 * 16;

	memcpy(pad, plain, len);
	assert_true(siv_raw(1, key, dirid, 16, pad, plen, c));
	if (len <= 160) {
		strcpy(name, "wfs~e");
		b64url_raw(c, 16 + plen, name + 5);
		sidecar[0] = '\0';
		return;
	}
	strcpy(name, "wfs~l");
	b64url_raw(c, 16, name + 5);
	strcpy(sidecar, "wfs~e");
	b64url_raw(c, 16 + plen, sidecar + 5);
}

/* ---- helpers ----------------------------------------------------------- */

/* A name of len bytes from 1..255 without '/', starting at byte seed. */
static void make_name(char *out, size_t len, unsigned seed)
{
	unsigned b = seed;

	for (size_t i = 0; i < len; i++) {
		unsigned v;

		do
			v = b++ % 255 + 1;
		while (v == '/');
		out[i] = (char)v;
	}
	if ((len == 1 && out[0] == '.') || (len == 2 && out[0] == '.' && out[1] == '.'))
		out[0] = 'x';
}

static void check_backing_name(const char *n, size_t len)
{
	assert_int_equal(strlen(n), len);
	assert_true(len >= 1 && len <= WFS_NAME_MAX);
	assert_null(memchr(n, '/', len));
	assert_true(strcmp(n, ".") != 0 && strcmp(n, "..") != 0);
	assert_memory_equal(n, "wfs~", 4);
}

/* Encrypts and decrypts back plain (len), checking the form. */
static void round_trip(const struct wfs_keys *k, const uint8_t *dirid, const char *plain,
		       size_t len)
{
	struct wfs_name_enc e;
	char back[WFS_NAME_MAX + 1];

	assert_int_equal(wfs_name_encrypt(k, dirid, plain, len, &e), 0);
	check_backing_name(e.name, e.len);
	if (len <= WFS_NAME_SHORT_MAX) {
		assert_false(e.is_long);
		assert_int_equal(wfs_name_classify(e.name, e.len), WFS_NAME_ENCRYPTED);
		assert_int_equal(e.len, 5 + ((16 + (len + 15) / 16 * 16) * 4 + 2) / 3);
		assert_int_equal(wfs_name_decrypt(k, dirid, e.name, e.len, back), len);
	} else {
		assert_true(e.is_long);
		assert_int_equal(e.len, WFS_NAME_LONG_LEN);
		assert_int_equal(wfs_name_classify(e.name, e.len), WFS_NAME_LONG);
		assert_int_equal(wfs_name_classify(e.sidecar_name, strlen(e.sidecar_name)),
				 WFS_NAME_SIDECAR);
		assert_int_equal(strlen(e.sidecar), e.sidecar_len);
		assert_true(e.sidecar_len <= WFS_SIDECAR_MAX);
		/* a sidecar's text is no short name: it is too long to be one */
		assert_int_equal(wfs_name_decrypt(k, dirid, e.sidecar, e.sidecar_len, back),
				 -EINVAL);
		assert_int_equal(wfs_name_decrypt_long(k, dirid, e.name, e.len, e.sidecar,
						       e.sidecar_len, back),
				 len);
	}
	assert_memory_equal(back, plain, len);
	assert_int_equal(back[len], '\0');
}

/* ---- the cipher ---------------------------------------------------------- */

static void test_siv_matches_openssl(void **state)
{
	struct wfs_keys *k = test_keys(7);
	uint8_t pt[256], mine[272], theirs[272], back[256], ad[40];

	(void)state;
	for (size_t i = 0; i < sizeof(ad); i++)
		ad[i] = (uint8_t)(i * 13 + 1);
	for (size_t adlen = 1; adlen <= sizeof(ad); adlen += adlen < 18 ? 1 : 11) {
		for (size_t len = 1; len <= 256; len++) {
			test_pattern(pt, len, (unsigned)(len + adlen));
			assert_int_equal(wfs__siv_seal(k, ad, adlen, pt, len, mine), 0);
			assert_true(siv_raw(1, k->names, ad, adlen, pt, len, theirs));
			assert_memory_equal(mine, theirs, 16 + len);
			assert_int_equal(wfs__siv_open(k, ad, adlen, mine, len, back), 0);
			assert_memory_equal(back, pt, len);
			assert_true(siv_raw(0, k->names, ad, adlen, mine, len, back));
			ad[adlen - 1] ^= 1; /* other associated data */
			assert_int_equal(wfs__siv_open(k, ad, adlen, mine, len, back), -EBADMSG);
			ad[adlen - 1] ^= 1;
			for (size_t i = 0; i < len; i++)
				assert_int_equal(back[i], 0); /* wiped */
		}
	}
	assert_int_equal(wfs__siv_seal(k, ad, 16, pt, 0, mine), -EINVAL);
	assert_int_equal(wfs__siv_seal(k, ad, 16, pt, 257, mine), -EINVAL);
	wfs_keys_free(k);
}

static void test_b64url_strict(void **state)
{
	uint8_t in[40] = {0}, out[40];
	char text[64], raw[64];

	(void)state;
	for (size_t n = 0; n <= sizeof(in); n++) {
		test_pattern(in, n, (unsigned)n);
		size_t l = wfs__b64url_encode(in, n, text);
		b64url_raw(in, n, raw);
		assert_string_equal(text, raw);
		assert_int_equal(wfs__b64url_decode(text, l, out, sizeof(out)), n);
		assert_memory_equal(out, in, n);
		if (n == 0)
			continue;
		assert_int_equal(wfs__b64url_decode(text, l, out, n - 1), -EINVAL); /* no room */
		if (n % 3 != 0) { /* unused bits set: not canonical */
			char save = text[l - 1];
			const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789-_";
			text[l - 1] = al[(strchr(al, save) - al) ^ 1];
			assert_int_equal(wfs__b64url_decode(text, l, out, sizeof(out)), -EINVAL);
			text[l - 1] = save;
		}
	}
	assert_int_equal(wfs__b64url_decode("AAAAA", 5, out, sizeof(out)), -EINVAL);
	assert_int_equal(wfs__b64url_decode("AA=A", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(wfs__b64url_decode("AA+A", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(wfs__b64url_decode("AA/A", 4, out, sizeof(out)), -EINVAL);
}

/* ---- names --------------------------------------------------------------- */

static void test_every_length(void **state)
{
	struct wfs_keys *k = test_keys(1);
	char name[WFS_NAME_MAX + 1];

	(void)state;
	for (size_t len = 1; len <= WFS_NAME_MAX; len++) {
		make_name(name, len, (unsigned)len * 37);
		round_trip(k, dir_a, name, len);
	}
	wfs_keys_free(k);
}

static void test_every_byte(void **state)
{
	struct wfs_keys *k = test_keys(2);
	char name[WFS_NAME_MAX + 1];

	(void)state;
	for (unsigned b = 1; b <= 255; b++) {
		if (b == '/')
			continue;
		name[0] = (char)b; /* alone (but "."), in the middle, at the end */
		if (b != '.')
			round_trip(k, dir_a, name, 1);
		for (size_t len = 2; len <= WFS_NAME_MAX; len += len < 20 ? 1 : 53) {
			memset(name, 'q', len);
			name[len / 2] = (char)b;
			name[len - 1] = (char)b;
			round_trip(k, dir_a, name, len);
		}
	}
	/* all 254 valid bytes in one name (and one more byte) */
	make_name(name, 255, 0);
	for (unsigned b = 1; b <= 255; b++)
		assert_true(b == '/' || memchr(name, (int)b, 255) != NULL);
	round_trip(k, dir_a, name, 255);
	wfs_keys_free(k);
}

static void test_bad_plaintext(void **state)
{
	struct wfs_keys *k = test_keys(3);
	struct wfs_name_enc e;
	char big[300];

	(void)state;
	assert_int_equal(wfs_name_encrypt(k, dir_a, "", 0, &e), -EINVAL);
	assert_int_equal(wfs_name_encrypt(k, dir_a, ".", 1, &e), -EINVAL);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "..", 2, &e), -EINVAL);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "a/b", 3, &e), -EINVAL);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "a\0b", 3, &e), -EINVAL);
	memset(big, 'x', sizeof(big));
	assert_int_equal(wfs_name_encrypt(k, dir_a, big, 256, &e), -ENAMETOOLONG);
	assert_int_equal(wfs_name_encrypt(k, dir_a, big, 255, &e), 0);
	round_trip(k, dir_a, "...", 3);
	round_trip(k, dir_a, ".a", 2);
	wfs_keys_free(k);
}

static void test_deterministic_and_bound_to_dir(void **state)
{
	struct wfs_keys *k = test_keys(4), *other = test_keys(5);
	struct wfs_name_enc e1, e2, e3;
	char back[WFS_NAME_MAX + 1], name[200];

	(void)state;
	for (size_t len = 1; len <= 200; len += 7) {
		make_name(name, len, 99);
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, len, &e1), 0);
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, len, &e2), 0);
		assert_string_equal(e1.name, e2.name);
		assert_string_equal(e1.sidecar, e2.sidecar);
		assert_int_equal(wfs_name_encrypt(k, dir_b, name, len, &e3), 0);
		assert_string_not_equal(e1.name, e3.name);
		if (!e1.is_long) {
			assert_int_equal(wfs_name_decrypt(k, dir_b, e1.name, e1.len, back),
					 -EBADMSG);
			assert_int_equal(back[0], '\0');
			assert_int_equal(wfs_name_decrypt(other, dir_a, e1.name, e1.len, back),
					 -EBADMSG);
		} else {
			assert_int_equal(wfs_name_decrypt_long(k, dir_b, e1.name, e1.len,
							       e1.sidecar, e1.sidecar_len, back),
					 -EBADMSG);
			assert_int_equal(wfs_name_decrypt_long(other, dir_a, e1.name, e1.len,
							       e1.sidecar, e1.sidecar_len, back),
					 -EBADMSG);
			/* another directory's long entry with this one's sidecar */
			assert_int_equal(wfs_name_decrypt_long(k, dir_a, e3.name, e3.len,
							       e1.sidecar, e1.sidecar_len, back),
					 -EBADMSG);
		}
		/* a neighbour name gives an unrelated encrypted name */
		name[0] ^= 1;
		if (name[0] == '/' || name[0] == 0)
			name[0] = 'k';
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, len, &e2), 0);
		assert_string_not_equal(e1.name, e2.name);
	}
	wfs_keys_free(k);
	wfs_keys_free(other);
}

/* Any change of one byte of an encoded name (every bit, every other
 * character of the alphabet) is refused. */
static void test_every_flip_refused(void **state)
{
	struct wfs_keys *k = test_keys(6);
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct wfs_name_enc e;
	char name[WFS_NAME_MAX + 1], back[WFS_NAME_MAX + 1], m[WFS_SIDECAR_MAX + 2];
	static const size_t lens[] = {1, 15, 16, 17, 100, 160, 161, 200, 255};

	(void)state;
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t len = lens[li];

		make_name(name, len, (unsigned)li * 11);
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, len, &e), 0);
		/* short name, or the long entry's name, then the sidecar */
		for (int which = 0; which < (e.is_long ? 2 : 1); which++) {
			const char *src = which ? e.sidecar : e.name;
			size_t n = which ? e.sidecar_len : e.len;

			for (size_t pos = 0; pos < n; pos++) {
				for (int v = 0; v < 8 + 64; v++) {
					ssize_t r;

					memcpy(m, src, n + 1);
					if (v < 8)
						m[pos] = (char)(m[pos] ^ (1 << v));
					else if (al[v - 8] != m[pos])
						m[pos] = al[v - 8];
					else
						continue;
					if (!e.is_long)
						r = wfs_name_decrypt(k, dir_a, m, n, back);
					else if (which == 0)
						r = wfs_name_decrypt_long(k, dir_a, m, n, e.sidecar,
									  e.sidecar_len, back);
					else
						r = wfs_name_decrypt_long(k, dir_a, e.name, e.len,
									  m, n, back);
					assert_true(r == -EBADMSG || r == -EINVAL);
					assert_int_equal(back[0], '\0');
					if (!e.is_long &&
					    wfs_name_classify(m, n) == WFS_NAME_ENCRYPTED)
						assert_int_equal(r, -EBADMSG);
				}
			}
			/* cut short or grown by one character */
			memcpy(m, src, n + 1);
			m[n] = 'A';
			m[n + 1] = '\0';
			if (!e.is_long) {
				assert_true(wfs_name_decrypt(k, dir_a, m, n + 1, back) < 0);
				assert_true(wfs_name_decrypt(k, dir_a, src, n - 1, back) < 0);
			} else if (which == 1) {
				assert_true(wfs_name_decrypt_long(k, dir_a, e.name, e.len, m, n + 1,
								  back) < 0);
				assert_true(wfs_name_decrypt_long(k, dir_a, e.name, e.len, src,
								  n - 1, back) < 0);
			}
		}
	}
	wfs_keys_free(k);
}

/* Authentic, yet not what wardfs writes: refused as malformed. */
static void test_authentic_but_malformed(void **state)
{
	struct wfs_keys *k = test_keys(8);
	uint8_t pt[256], c[272];
	char name[300], side[400], back[WFS_NAME_MAX + 1];
	struct {
		const char *bytes;
		size_t len, padded;
	} bad[] = {
		{"0123456789abcdef", 16, 32},		      /* 16 bytes of padding */
		{"a/b", 3, 16},				      /* a slash */
		{".", 1, 16},				      /* dot */
		{"..", 2, 16},				      /* dot dot */
		{"ab\0cd", 5, 16},			      /* NUL, then bytes */
		{"", 0, 16},				      /* empty */
		{"0123456789abcdef0123456789abcdef", 32, 32}, /* fine: the control */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(pt, 0, sizeof(pt));
		memcpy(pt, bad[i].bytes, bad[i].len);
		assert_int_equal(wfs__siv_seal(k, dir_a, 16, pt, bad[i].padded, c), 0);
		strcpy(name, "wfs~e");
		wfs__b64url_encode(c, 16 + bad[i].padded, name + 5);
		assert_int_equal(wfs_name_decrypt(k, dir_a, name, strlen(name), back),
				 i + 1 == sizeof(bad) / sizeof(bad[0]) ? 32 : -EINVAL);
	}
	/* a short name's ciphertext (k <= 10) as a sidecar: refused, or one
	 * plaintext name would have two backing names */
	memset(pt, 'z', 160);
	assert_int_equal(wfs__siv_seal(k, dir_a, 16, pt, 160, c), 0);
	strcpy(side, "wfs~e");
	wfs__b64url_encode(c, 176, side + 5);
	strcpy(name, "wfs~l");
	wfs__b64url_encode(c, 16, name + 5);
	assert_int_equal(wfs_name_classify(name, strlen(name)), WFS_NAME_LONG);
	assert_int_equal(wfs_name_decrypt(k, dir_a, side, strlen(side), back), 160);
	assert_int_equal(
		wfs_name_decrypt_long(k, dir_a, name, strlen(name), side, strlen(side), back),
		-EINVAL);
	wfs_keys_free(k);
}

static void test_classify_and_escape(void **state)
{
	struct wfs_keys *k = test_keys(9);
	struct wfs_name_enc e;
	char out[WFS_NAME_MAX + 1], big[WFS_NAME_MAX + 2];
	static const struct {
		const char *name;
		enum wfs_name_kind kind;
	} cases[] = {
		{"hello.txt", WFS_NAME_PLAIN},
		{"WFS~eAAAA", WFS_NAME_PLAIN},
		{"wfs", WFS_NAME_PLAIN},
		{"xwfs~e", WFS_NAME_PLAIN},
		{".wardfs", WFS_NAME_PLAIN},
		{"wfs~", WFS_NAME_RESERVED},
		{"wfs~p", WFS_NAME_ESCAPED},
		{"wfs~pe", WFS_NAME_ESCAPED},
		{"wfs~dirid", WFS_NAME_DIRID},
		{"wfs~dirid2", WFS_NAME_RESERVED},
		{"wfs~d", WFS_NAME_RESERVED},
		{"wfs~t0011223344556677", WFS_NAME_RESERVED},
		{"wfs~x", WFS_NAME_RESERVED},
		{"wfs~e", WFS_NAME_RESERVED},
		{"wfs~eAAAA", WFS_NAME_RESERVED},		    /* 3 bytes: no multiple of 16 */
		{"wfs~eAAAAAAAAAAAAAAAAAAAAAA", WFS_NAME_RESERVED}, /* 16 bytes: V alone */
		{"wfs~lAAAAAAAAAAAAAAAAAAAAAA", WFS_NAME_LONG},
		{"wfs~nAAAAAAAAAAAAAAAAAAAAAA", WFS_NAME_SIDECAR},
		{"wfs~lAAAAAAAAAAAAAAAAAAAAAB", WFS_NAME_RESERVED}, /* unused bits set */
		{"wfs~lAAAAAAAAAAAAAAAAAAAAA", WFS_NAME_RESERVED},
		{"wfs~lAAAAAAAAAAAAAAAAAAAAA=", WFS_NAME_RESERVED},
		{".", WFS_NAME_RESERVED},
		{"..", WFS_NAME_RESERVED},
		{"", WFS_NAME_RESERVED},
		{"a/b", WFS_NAME_RESERVED},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].name);

		assert_int_equal(wfs_name_classify(cases[i].name, n), cases[i].kind);
		ssize_t r = wfs_name_unescape(cases[i].name, n, out);
		if (cases[i].kind == WFS_NAME_PLAIN || cases[i].kind == WFS_NAME_ESCAPED) {
			char again[WFS_NAME_MAX + 1];
			assert_true(r > 0);
			/* escaping gives the backing name back: one form per name */
			assert_int_equal(wfs_name_escape(out, (size_t)r, again), n);
			assert_string_equal(again, cases[i].name);
		} else {
			assert_int_equal(r, -EINVAL);
		}
		/* nothing but an encrypted name decrypts */
		assert_int_equal(wfs_name_decrypt(k, dir_a, cases[i].name, n, out), -EINVAL);
	}
	assert_int_equal(wfs_name_escape("wfs~", 4, out), 5);
	assert_string_equal(out, "wfs~p");
	assert_int_equal(wfs_name_escape("wfs~eAAAA", 9, out), 10);
	assert_string_equal(out, "wfs~peAAAA");
	assert_int_equal(wfs_name_unescape("wfs~peAAAA", 10, out), 9);
	assert_string_equal(out, "wfs~eAAAA");
	assert_int_equal(wfs_name_escape("notes", 5, out), 5);
	assert_string_equal(out, "notes");
	assert_int_equal(wfs_name_escape(".", 1, out), -EINVAL);
	assert_int_equal(wfs_name_escape("a/b", 3, out), -EINVAL);
	/* an encrypted name, taken as a plain name, is escaped */
	assert_int_equal(wfs_name_encrypt(k, dir_a, "secret", 6, &e), 0);
	assert_int_equal(wfs_name_escape(e.name, e.len, out), e.len + 1);
	assert_int_equal(wfs_name_classify(out, e.len + 1), WFS_NAME_ESCAPED);
	assert_int_equal(wfs_name_unescape(e.name, e.len, out), -EINVAL);
	/* at the limit */
	memset(big, 'x', sizeof(big));
	big[0] = 'w', big[1] = 'f', big[2] = 's', big[3] = '~';
	assert_int_equal(wfs_name_escape(big, 254, out), 255);
	assert_int_equal(wfs_name_escape(big, 255, out), -ENAMETOOLONG);
	assert_int_equal(wfs_name_escape(big, 256, out), -ENAMETOOLONG);
	assert_int_equal(wfs_name_classify(big, 256), WFS_NAME_RESERVED);
	/* long pairs */
	char pair[WFS_NAME_LONG_LEN + 1];
	assert_int_equal(wfs_name_long_pair("wfs~lAAAAAAAAAAAAAAAAAAAAAA", 27, pair), 0);
	assert_string_equal(pair, "wfs~nAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(wfs_name_long_pair(pair, 27, pair), 0);
	assert_string_equal(pair, "wfs~lAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(wfs_name_long_pair("wfs~eAAAA", 9, pair), -EINVAL);
	wfs_keys_free(k);
}

static void test_long_threshold(void **state)
{
	struct wfs_keys *k = test_keys(10);
	struct wfs_name_enc e;
	char name[WFS_NAME_MAX + 1], pair[WFS_NAME_LONG_LEN + 1];
	size_t longest_short = 0;

	(void)state;
	for (size_t len = 140; len <= WFS_NAME_MAX; len++) {
		memset(name, 'L', len);
		round_trip(k, dir_a, name, len);
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, len, &e), 0);
		assert_int_equal(e.is_long, len > 160);
		if (!e.is_long && e.len > longest_short)
			longest_short = e.len;
		if (e.is_long) {
			assert_int_equal(wfs_name_long_pair(e.name, e.len, pair), 0);
			assert_string_equal(pair, e.sidecar_name);
			assert_memory_equal(e.name + 5, e.sidecar_name + 5, 22);
			/* the sidecar starts with V: the same 16 bytes as the id */
			assert_memory_equal(e.sidecar + 5, e.name + 5, 21);
		}
	}
	assert_int_equal(longest_short, 240);
	wfs_keys_free(k);
}

/* ---- files in a backing directory ---------------------------------------- */

static void write_file(int dfd, const char *name, const void *b, size_t n)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_dirid_file(void **state)
{
	uint8_t id[16], id2[16], file[48], bad[49];
	char dir[64], sub[128];
	struct stat st;
	int dfd, sfd;

	(void)state;
	wfs_dirid_format(dir_a, file);
	assert_int_equal(wfs_dirid_parse(file, 48, id), 0);
	assert_memory_equal(id, dir_a, 16);
	for (size_t i = 0; i < 48; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(bad, file, 48);
			bad[i] ^= (uint8_t)(1 << b);
			assert_int_equal(wfs_dirid_parse(bad, 48, id), -EUCLEAN);
		}
	}
	memcpy(bad, file, 48);
	bad[48] = 0;
	assert_int_equal(wfs_dirid_parse(bad, 49, id), -EUCLEAN);
	assert_int_equal(wfs_dirid_parse(file, 47, id), -EUCLEAN);

	test_tmpdir_make(dir, "names");
	dfd = open(dir, O_PATH | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(wfs_dirid_read(dfd, id), -ENOENT);
	assert_int_equal(wfs_dirid_create(dfd, id), 0);
	assert_int_equal(fstatat(dfd, WFS_DIRID_NAME, &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 48);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(count_entries(dir), 1); /* no temporary left */
	assert_int_equal(wfs_dirid_read(dfd, id2), 0);
	assert_memory_equal(id, id2, 16);
	memset(id2, 0, 16);
	assert_int_equal(wfs_dirid_create(dfd, id2), 0); /* never replaced */
	assert_memory_equal(id, id2, 16);
	/* corrupt: refused, and not replaced by create */
	assert_int_equal(unlinkat(dfd, WFS_DIRID_NAME, 0), 0);
	wfs_dirid_format(id, file);
	file[40] ^= 1;
	write_file(dfd, WFS_DIRID_NAME, file, 48);
	assert_int_equal(wfs_dirid_read(dfd, id2), -EUCLEAN);
	assert_int_equal(wfs_dirid_create(dfd, id2), -EUCLEAN);
	write_file(dfd, WFS_DIRID_NAME, file, 20);
	assert_int_equal(wfs_dirid_read(dfd, id2), -EUCLEAN);
	assert_int_equal(unlinkat(dfd, WFS_DIRID_NAME, 0), 0);
	assert_int_equal(mkdirat(dfd, WFS_DIRID_NAME, 0700), 0);
	assert_int_equal(wfs_dirid_read(dfd, id2), -EUCLEAN);
	assert_int_equal(unlinkat(dfd, WFS_DIRID_NAME, AT_REMOVEDIR), 0);
	assert_int_equal(symlinkat("elsewhere", dfd, WFS_DIRID_NAME), 0);
	assert_int_equal(wfs_dirid_read(dfd, id2), -EUCLEAN);
	assert_int_equal(unlinkat(dfd, WFS_DIRID_NAME, 0), 0);
	/* encrypted names but no id: no new id (a restored one would bring
	 * them back) */
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	sfd = open(sub, O_RDONLY | O_DIRECTORY);
	assert_true(sfd >= 0);
	{
		struct wfs_keys *k = test_keys(11);
		struct wfs_name_enc e;

		assert_int_equal(wfs_name_encrypt(k, id, "kept", 4, &e), 0);
		write_file(sfd, "plain-file", "x", 1);
		write_file(sfd, "wfs~pescaped", "x", 1);
		assert_int_equal(wfs_dirid_create(sfd, id2), 0); /* plain names only: fine */
		assert_int_equal(unlinkat(sfd, WFS_DIRID_NAME, 0), 0);
		write_file(sfd, e.name, "x", 1);
		assert_int_equal(wfs_dirid_create(sfd, id2), -EUCLEAN);
		assert_int_equal(wfs_dirid_read(sfd, id2), -ENOENT);
		wfs_keys_free(k);
	}
	close(sfd);
	close(dfd);
	test_tmpdir_remove(dir);
}

static void test_sidecar_files(void **state)
{
	struct wfs_keys *k = test_keys(12);
	struct wfs_name_enc e, e2;
	char dir[64], name[WFS_NAME_MAX + 1], back[WFS_NAME_MAX + 1];
	uint8_t id[16];
	struct stat st;
	int dfd;

	(void)state;
	test_tmpdir_make(dir, "names");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(wfs_dirid_create(dfd, id), 0);
	memset(name, 'S', 200);
	assert_int_equal(wfs_name_encrypt(k, id, name, 200, &e), 0);
	assert_true(e.is_long);
	/* create: sidecar, then the entry */
	assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0);
	assert_int_equal(fstatat(dfd, e.sidecar_name, &st, 0), 0);
	assert_int_equal(st.st_size, (off_t)e.sidecar_len);
	assert_int_equal(st.st_mode & 07777, 0444);
	/* an orphan sidecar: the entry is not there */
	assert_int_equal(fstatat(dfd, e.name, &st, 0), -1);
	write_file(dfd, e.name, "data", 4);
	assert_int_equal(wfs_name_read_long(k, id, dfd, e.name, e.len, back), 200);
	assert_memory_equal(back, name, 200);
	/* again: the same bytes are kept */
	assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0);
	assert_int_equal(count_entries(dir), 3);
	/* damaged sidecar: refused, then repaired by a write */
	assert_int_equal(unlinkat(dfd, e.sidecar_name, 0), 0);
	write_file(dfd, e.sidecar_name, e.sidecar, e.sidecar_len - 1);
	assert_true(wfs_name_read_long(k, id, dfd, e.name, e.len, back) < 0);
	assert_int_equal(back[0], '\0');
	assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0);
	assert_int_equal(wfs_name_read_long(k, id, dfd, e.name, e.len, back), 200);
	/* another long name's sidecar in its place */
	name[0] = 'T';
	assert_int_equal(wfs_name_encrypt(k, id, name, 200, &e2), 0);
	assert_int_equal(unlinkat(dfd, e.sidecar_name, 0), 0);
	write_file(dfd, e.sidecar_name, e2.sidecar, e2.sidecar_len);
	assert_int_equal(wfs_name_read_long(k, id, dfd, e.name, e.len, back), -EBADMSG);
	/* remove: entry first, then sidecar; then no sidecar */
	assert_int_equal(unlinkat(dfd, e.name, 0), 0);
	assert_int_equal(wfs_name_sidecar_remove(dfd, e.name, e.len), 0);
	assert_int_equal(wfs_name_sidecar_remove(dfd, e.name, e.len), 0);
	assert_int_equal(wfs_name_read_long(k, id, dfd, e.name, e.len, back), -ENOENT);
	assert_int_equal(wfs_name_read_long(k, id, dfd, "plain", 5, back), -EINVAL);
	assert_int_equal(wfs_name_sidecar_remove(dfd, "plain", 5), -EINVAL);
	assert_int_equal(count_entries(dir), 1); /* the id */
	close(dfd);
	test_tmpdir_remove(dir);
	wfs_keys_free(k);
}

/* The same files made as on a file system without O_TMPFILE: a reserved
 * temporary name, linked, then removed. */
static void test_files_without_tmpfile(void **state)
{
	wfs__names_no_tmpfile(true);
	test_dirid_file(state);
	test_sidecar_files(state);
	wfs__names_no_tmpfile(false);
}

/* A listing of a directory holding every kind of backing name, good and
 * bad: it shows the names that decode, once each, and skips the rest
 * with the reason, never a guess. */
static void test_listing(void **state)
{
	struct wfs_keys *k = test_keys(13);
	struct wfs_name_enc e1, e2, e3, e4;
	char dir[64], plain[WFS_NAME_MAX + 1], longname[200], listed[2048] = "";
	uint8_t id[16];
	int dfd, skipped[8] = {0};
	DIR *d;
	struct dirent *de;

	(void)state;
	test_tmpdir_make(dir, "names");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	/* before the directory has an id: plain names show, encrypted do not */
	assert_int_equal(wfs_name_show(k, NULL, dfd, "notes", 5, NULL, plain), 5);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "secret", 6, &e1), 0);
	assert_int_equal(wfs_name_show(k, NULL, dfd, e1.name, e1.len, NULL, plain), -ENOKEY);
	assert_int_equal(wfs_dirid_create(dfd, id), 0);
	write_file(dfd, "public.txt", "x", 1);
	write_file(dfd, "wfs~pescaped", "x", 1); /* the plain "wfs~escaped" */
	assert_int_equal(wfs_name_encrypt(k, id, "id_ed25519", 10, &e1), 0);
	write_file(dfd, e1.name, "x", 1);
	memset(longname, 'n', sizeof(longname));
	assert_int_equal(wfs_name_encrypt(k, id, longname, sizeof(longname), &e2), 0);
	assert_int_equal(wfs_name_sidecar_write(dfd, &e2), 0);
	write_file(dfd, e2.name, "x", 1);
	/* an orphan sidecar (a create cut short) */
	longname[0] = 'o';
	assert_int_equal(wfs_name_encrypt(k, id, longname, sizeof(longname), &e3), 0);
	assert_int_equal(wfs_name_sidecar_write(dfd, &e3), 0);
	/* a long entry without its sidecar */
	longname[0] = 'w';
	assert_int_equal(wfs_name_encrypt(k, id, longname, sizeof(longname), &e4), 0);
	write_file(dfd, e4.name, "x", 1);
	/* a flipped name, another directory's name, a reserved name */
	assert_int_equal(wfs_name_encrypt(k, id, "flipped", 7, &e3), 0);
	e3.name[10] = e3.name[10] == 'A' ? 'B' : 'A';
	write_file(dfd, e3.name, "x", 1);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "elsewhere", 9, &e3), 0);
	write_file(dfd, e3.name, "x", 1);
	write_file(dfd, "wfs~zfuture", "x", 1);

	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		enum wfs_name_kind kind;
		ssize_t r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = wfs_name_show(k, id, dfd, de->d_name, strlen(de->d_name), &kind, plain);
		if (r > 0) {
			assert_int_equal(strlen(plain), r);
			assert_true(kind <= WFS_NAME_LONG);
			strcat(listed, "|");
			strcat(listed, plain);
		} else if (r == 0) {
			assert_true(kind >= WFS_NAME_SIDECAR);
			skipped[0]++;
		} else {
			assert_int_equal(plain[0], '\0');
			skipped[r == -EBADMSG ? 1 : r == -ENOENT ? 2 : 3]++;
		}
	}
	closedir(d);
	assert_non_null(strstr(listed, "|public.txt"));
	assert_non_null(strstr(listed, "|wfs~escaped"));
	assert_non_null(strstr(listed, "|id_ed25519"));
	assert_non_null(strstr(listed, "|nnnnnnnnnn"));
	assert_int_equal(strlen(listed), 4 + 10 + 11 + 10 + 200);
	assert_int_equal(skipped[0], 4); /* two sidecars, the id, wfs~zfuture */
	assert_int_equal(skipped[1], 2); /* flipped, another directory's */
	assert_int_equal(skipped[2], 1); /* no sidecar */
	assert_int_equal(skipped[3], 0);
	close(dfd);
	test_tmpdir_remove(dir);
	wfs_keys_free(k);
}

/* rmdir: a directory left with only wardfs's own files is emptied, the id
 * last; one with anything else keeps everything. */
static void test_rmdir_prepare(void **state)
{
	struct wfs_keys *k = test_keys(14);
	struct wfs_name_enc e;
	char dir[64], sub[128], name[200];
	uint8_t id[16];
	static const char *keeps[] = {"plain", "wfs~pescaped", "wfs~zfuture", "wfs~t0123", NULL};
	int dfd;

	(void)state;
	test_tmpdir_make(dir, "names");
	snprintf(sub, sizeof(sub), "%s/d", dir);
	for (int i = 0; i <= 4; i++) { /* keeps[4]: an encrypted name */
		assert_int_equal(mkdir(sub, 0700), 0);
		dfd = open(sub, O_PATH | O_DIRECTORY);
		assert_true(dfd >= 0);
		assert_int_equal(wfs_dirid_create(dfd, id), 0);
		memset(name, 'r', sizeof(name));
		assert_int_equal(wfs_name_encrypt(k, id, name, sizeof(name), &e), 0);
		assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0); /* an orphan */
		write_file(dfd, "wfs~t0123456789abcdef", "", 0);      /* a temporary */
		if (i == 4) {
			assert_int_equal(wfs_name_encrypt(k, id, "x", 1, &e), 0);
			write_file(dfd, e.name, "", 0);
		} else {
			write_file(dfd, keeps[i], "", 0);
		}
		assert_int_equal(wfs_names_rmdir_prepare(dfd), -ENOTEMPTY);
		assert_int_equal(count_entries(sub), 4);
		assert_int_equal(wfs_dirid_read(dfd, id), 0);
		assert_int_equal(unlinkat(dfd, i == 4 ? e.name : keeps[i], 0), 0);
		assert_int_equal(wfs_names_rmdir_prepare(dfd), 0);
		assert_int_equal(count_entries(sub), 0);
		assert_int_equal(rmdir(sub), 0);
		close(dfd);
	}
	/* a directory that never had an id */
	assert_int_equal(mkdir(sub, 0700), 0);
	dfd = open(sub, O_RDONLY | O_DIRECTORY);
	assert_int_equal(wfs_names_rmdir_prepare(dfd), 0);
	assert_int_equal(rmdir(sub), 0);
	close(dfd);
	test_tmpdir_remove(dir);
	wfs_keys_free(k);
}

/* ---- threads: per-thread contexts, two keys in turn ------------------------- */

struct thr_arg {
	struct wfs_keys *k[2];
	int fails;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	struct wfs_name_enc e;
	char name[64], back[WFS_NAME_MAX + 1];

	for (int i = 0; i < 3000; i++) {
		struct wfs_keys *k = a->k[i & 1];
		const uint8_t *d = (i & 2) ? dir_a : dir_b;
		int n = snprintf(name, sizeof(name), "file-%d", i);

		if (wfs_name_encrypt(k, d, name, (size_t)n, &e) != 0 ||
		    wfs_name_decrypt(k, d, e.name, e.len, back) != n || strcmp(back, name) != 0 ||
		    wfs_name_decrypt(a->k[!(i & 1)], d, e.name, e.len, back) != -EBADMSG)
			a->fails++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	struct thr_arg a[4];
	struct wfs_keys *k0 = test_keys(20), *k1 = test_keys(21);

	(void)state;
	for (int i = 0; i < 4; i++) {
		a[i] = (struct thr_arg){{k0, k1}, 0};
		assert_int_equal(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].fails, 0);
	}
	wfs_keys_free(k0);
	wfs_keys_free(k1);
}

/* ---- known answers --------------------------------------------------------- */

#define KAT_N 9
static size_t kat_name(int i, char *out)
{
	static const char *fixed[] = {"a",
				      "id_ed25519",
				      "0123456789abcdef",
				      "0123456789abcdefg",
				      "r\xc3\xa9sum\xc3\xa9 2026.pdf",
				      "wfs~eAAAA"};
	static const size_t lens[] = {160, 161, 255};

	if (i < 6) {
		strcpy(out, fixed[i]);
		return strlen(out);
	}
	if (i < 8) {
		for (size_t j = 0; j < lens[i - 6]; j++)
			out[j] = (char)('A' + j % 26);
		return lens[i - 6];
	}
	make_name(out, 255, 0); /* every byte 1..255 but '/', then 1 again */
	return 255;
}

/* "name: text" from the vector, copied into out (NUL-terminated). */
static void text_get(const char *vec, const char *name, char *out, size_t cap)
{
	char key[64];
	const char *p, *end;

	snprintf(key, sizeof(key), "\n%s: ", name);
	p = strstr(vec, key);
	assert_non_null(p);
	p += strlen(key);
	end = strchr(p, '\n');
	assert_non_null(end);
	assert_true((size_t)(end - p) < cap);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
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
	uint8_t mk[32], nk[64], want[512], dfile[48], sum[32];
	char plain[WFS_NAME_MAX + 1], back[WFS_NAME_MAX + 1], key[32];
	char vname[512], vside[512], hname[512], hside[512];
	struct wfs_keys *k;
	struct wfs_name_enc e;
	const char *gen = getenv("WFS_KAT_GENERATE");
	FILE *f = NULL;

	(void)state;
	for (int i = 0; i < 32; i++)
		mk[i] = (uint8_t)i;
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	wfs_dirid_format(dir_a, dfile);
	if (gen != NULL) {
		f = fopen(gen, "w");
		assert_non_null(f);
		fprintf(f, "# wardfs encrypted-names known-answer vector (docs/format.md,\n"
			   "# \"Encrypted names\"). plain_N is the name in hex; ondisk_N its\n"
			   "# backing name; a long one has sidecar_name_N and sidecar_N too.\n"
			   "# Written once by tests/unit/crypto/test_names.c; do not edit.\n");
		hex_put(f, "master_key", mk, 32);
		hex_put(f, "name_key", k->names, 64);
		hex_put(f, "dir_id", dir_a, 16);
		hex_put(f, "dirid_file", dfile, 48);
	}
	for (int i = 0; i < KAT_N && f != NULL; i++) {
		size_t len = kat_name(i, plain);

		assert_int_equal(wfs_name_encrypt(k, dir_a, plain, len, &e), 0);
		snprintf(key, sizeof(key), "plain_%d", i);
		hex_put(f, key, (const uint8_t *)plain, len);
		fprintf(f, "ondisk_%d: %s\n", i, e.name);
		if (e.is_long) {
			fprintf(f, "sidecar_name_%d: %s\n", i, e.sidecar_name);
			fprintf(f, "sidecar_%d: %s\n", i, e.sidecar);
		}
	}
	if (f != NULL)
		fclose(f);

	char *vec = test_read_vector("names-kat.txt");
	/* the keys and the id file: by hand from the document */
	assert_int_equal(test_hex_get(vec, "master_key", want, sizeof(want)), 32);
	assert_memory_equal(want, mk, 32);
	test_hkdf_by_hand(mk, "wardfs v1 name key", nk, 64);
	assert_int_equal(test_hex_get(vec, "name_key", want, sizeof(want)), 64);
	assert_memory_equal(want, nk, 64);
	assert_memory_equal(k->names, nk, 64);
	assert_int_equal(test_hex_get(vec, "dir_id", want, sizeof(want)), 16);
	assert_memory_equal(want, dir_a, 16);
	assert_int_equal(test_hex_get(vec, "dirid_file", want, sizeof(want)), 48);
	assert_memory_equal(want, dfile, 48);
	static const uint8_t magic[8] = {0x89, 'W', 'F', 'S', 'D', 'I', 'R', 0};
	assert_memory_equal(want, magic, 8);
	assert_int_equal(want[8] | want[9] << 8, 1);
	for (int i = 10; i < 16; i++)
		assert_int_equal(want[i], 0);
	assert_memory_equal(want + 16, dir_a, 16);
	SHA256(want, 32, sum);
	assert_memory_equal(want + 32, sum, 16);

	for (int i = 0; i < KAT_N; i++) {
		size_t len = kat_name(i, plain);
		uint8_t hex[WFS_NAME_MAX];

		snprintf(key, sizeof(key), "plain_%d", i);
		assert_int_equal(test_hex_get(vec, key, hex, sizeof(hex)), len);
		assert_memory_equal(hex, plain, len);
		snprintf(key, sizeof(key), "ondisk_%d", i);
		text_get(vec, key, vname, sizeof(vname));
		/* 1. the library, byte for byte */
		assert_int_equal(wfs_name_encrypt(k, dir_a, plain, len, &e), 0);
		assert_string_equal(e.name, vname);
		/* 2. raw OpenSSL AES-256-SIV and base64, from the document */
		encrypt_by_hand(nk, dir_a, (const uint8_t *)plain, len, hname, hside);
		assert_string_equal(hname, vname);
		if (len > 160) {
			snprintf(key, sizeof(key), "sidecar_%d", i);
			text_get(vec, key, vside, sizeof(vside));
			assert_string_equal(e.sidecar, vside);
			assert_string_equal(hside, vside);
			snprintf(key, sizeof(key), "sidecar_name_%d", i);
			text_get(vec, key, vname, sizeof(vname));
			assert_string_equal(e.sidecar_name, vname);
			assert_memory_equal(vname, "wfs~n", 5);
			assert_memory_equal(vname + 5, hname + 5, 23);
			/* 3. and it decrypts back */
			assert_int_equal(wfs_name_decrypt_long(k, dir_a, e.name, e.len, vside,
							       strlen(vside), back),
					 len);
		} else {
			assert_int_equal(wfs_name_decrypt(k, dir_a, vname, strlen(vname), back),
					 len);
		}
		assert_memory_equal(back, plain, len);
	}
	free(vec);
	wfs_keys_free(k);
}

/* ---- cost per name: printed, never asserted -------------------------------- */

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void test_cost_per_name(void **state)
{
	struct wfs_keys *k = test_keys(30);
	struct wfs_name_enc e;
	char name[WFS_NAME_MAX + 1], back[WFS_NAME_MAX + 1];
	uint8_t pt[32], c[48];
	const int n = 100000;
	const double quarter = n / 4.0;
	double t0, t1, t2, t3, t4;
	int outl;

	(void)state;
	strcpy(name, "report-2026-12-05.odt"); /* 21 bytes: 32 padded */
	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		name[0] = (char)('a' + i % 26);
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, 21, &e), 0);
	}
	t1 = now_ns();
	for (int i = 0; i < n; i++)
		assert_int_equal(wfs_name_decrypt(k, dir_a, e.name, e.len, back), 21);
	t2 = now_ns();
	for (int i = 0; i < n; i++) /* a new directory each time: no cached S2V state */
		assert_int_equal(wfs_name_decrypt(k, (i & 1) ? dir_a : dir_b, e.name, e.len, back),
				 (i & 1) ? 21 : -EBADMSG);
	t3 = now_ns();
	memset(name, 'y', 200);
	for (int i = 0; i < n / 4; i++)
		assert_int_equal(wfs_name_encrypt(k, dir_a, name, 200, &e), 0);
	t4 = now_ns();
	/* for scale: OpenSSL's AES-256-SIV, set up per name (it does one
	 * operation per key setup) */
	EVP_CIPHER *siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	memset(pt, 'p', sizeof(pt));
	double t5 = now_ns();
	for (int i = 0; i < n / 4; i++) {
		assert_true(EVP_EncryptInit_ex2(ctx, siv, k->names, NULL, NULL));
		assert_true(EVP_EncryptUpdate(ctx, NULL, &outl, dir_a, 16));
		assert_true(EVP_EncryptUpdate(ctx, c + 16, &outl, pt, 32));
		assert_true(EVP_EncryptFinal_ex(ctx, c, &outl));
	}
	double t6 = now_ns();
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(siv);
	printf("names: encrypt %.0f ns, decrypt %.0f ns, decrypt switching directory %.0f ns, "
	       "encrypt 200-byte (long) %.0f ns per name; OpenSSL AES-256-SIV set up per name "
	       "%.0f ns\n",
	       (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / quarter,
	       (t6 - t5) / quarter);
	wfs_keys_free(k);
}

/* wfs_crypto_forget (the daemon's `wardfs lock`) wipes every thread's
 * name state; the next use keys it again and gives the same names. */
static void *encrypt_in_thread(void *arg)
{
	struct wfs_name_enc *e = arg;
	uint8_t mk[32] = {7};
	struct wfs_keys *k;
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "secret.pdf", 10, e), 0);
	wfs_keys_free(k);
	return NULL;
}

static void test_forget_wipes_and_rekeys(void **state)
{
	uint8_t mk[32] = {7};
	struct wfs_keys *k;
	struct wfs_name_enc before, after, other;
	char back[WFS_NAME_MAX + 1];
	pthread_t th;

	(void)state;
	assert_int_equal(wfs__keys_from_master(mk, &k), 0);
	assert_int_equal(wfs_name_encrypt(k, dir_a, "secret.pdf", 10, &before), 0);
	wfs_crypto_forget();
	assert_int_equal(wfs_name_encrypt(k, dir_a, "secret.pdf", 10, &after), 0);
	assert_string_equal(before.name, after.name);
	wfs_crypto_forget();
	assert_int_equal(wfs_name_decrypt(k, dir_a, after.name, after.len, back), 10);
	assert_string_equal(back, "secret.pdf");
	/* another thread's state, registered and forgotten with it */
	assert_int_equal(pthread_create(&th, NULL, encrypt_in_thread, &other), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	wfs_crypto_forget();
	assert_string_equal(other.name, before.name);
	wfs_keys_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siv_matches_openssl),
		cmocka_unit_test(test_forget_wipes_and_rekeys),
		cmocka_unit_test(test_b64url_strict),
		cmocka_unit_test(test_every_length),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_bad_plaintext),
		cmocka_unit_test(test_deterministic_and_bound_to_dir),
		cmocka_unit_test(test_every_flip_refused),
		cmocka_unit_test(test_authentic_but_malformed),
		cmocka_unit_test(test_classify_and_escape),
		cmocka_unit_test(test_long_threshold),
		cmocka_unit_test(test_dirid_file),
		cmocka_unit_test(test_sidecar_files),
		cmocka_unit_test(test_files_without_tmpfile),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_rmdir_prepare),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_cost_per_name),
	};
	assert_int_equal(wfs_crypto_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
