/*
 * fuzz_names.c - libFuzzer target for encrypted names (docs/format.md,
 * "Encrypted names"): the input is a backing name, then optionally a NUL
 * and a long name's sidecar, then optionally a NUL and a directory id
 * file. Under the key and directory id of tests/data/names-kat.txt (so
 * seeds can hold names that decrypt), it classifies, unescapes, decrypts
 * and parses them. Nothing may crash; what decodes must encode back to
 * the very same bytes (one backing form per name); what does not decode
 * is an error, never a guess; the input, taken as a plaintext name, must
 * round-trip.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "crypto_internal.h"

static struct wfs_keys *keys;
static const uint8_t dirid[WFS_DIRID_LEN] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
					     0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f};

static void check_failed(ssize_t r, const char *plain)
{
	if ((r != -EINVAL && r != -EBADMSG) || plain[0] != '\0')
		abort();
}

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char plain[WFS_NAME_MAX + 1], again[WFS_NAME_MAX + 1];
	struct wfs_name_enc e;
	uint8_t id[WFS_DIRID_LEN];
	const char *name = (const char *)data, *side = NULL;
	const uint8_t *dfile = NULL;
	size_t len = size, slen = 0, dlen = 0;
	const uint8_t *nul;
	ssize_t r;

	if (keys == NULL) {
		uint8_t mk[WFS_KEY_LEN];

		if (wfs_crypto_init() != 0)
			abort();
		for (int i = 0; i < WFS_KEY_LEN; i++)
			mk[i] = (uint8_t)i; /* the key of tests/data/names-kat.txt */
		if (wfs__keys_from_master(mk, &keys) != 0)
			abort();
	}
	if ((nul = memchr(data, 0, size)) != NULL) {
		len = (size_t)(nul - data);
		side = (const char *)nul + 1;
		slen = size - len - 1;
		if ((nul = memchr(side, 0, slen)) != NULL) {
			dfile = nul + 1;
			dlen = slen - (size_t)(nul - (const uint8_t *)side) - 1;
			slen = (size_t)(nul - (const uint8_t *)side);
		}
	}

	enum wfs_name_kind kind = wfs_name_classify(name, len);
	if ((unsigned)kind > WFS_NAME_RESERVED)
		abort();

	/* plain and escaped names: one backing form each */
	r = wfs_name_unescape(name, len, plain);
	if ((kind == WFS_NAME_PLAIN || kind == WFS_NAME_ESCAPED) != (r >= 0))
		abort();
	if (r >= 0 && (wfs_name_escape(plain, (size_t)r, again) != (ssize_t)len ||
		       memcmp(again, name, len) != 0))
		abort();

	/* short encrypted names */
	r = wfs_name_decrypt(keys, dirid, name, len, plain);
	if (r >= 0) {
		if (kind != WFS_NAME_ENCRYPTED || r > WFS_NAME_SHORT_MAX ||
		    wfs_name_encrypt(keys, dirid, plain, (size_t)r, &e) != 0 || e.is_long ||
		    e.len != len || memcmp(e.name, name, len) != 0)
			abort();
	} else {
		check_failed(r, plain);
	}

	/* long names: the entry and its sidecar */
	if (side != NULL) {
		r = wfs_name_decrypt_long(keys, dirid, name, len, side, slen, plain);
		if (r >= 0) {
			if (kind != WFS_NAME_LONG || r <= WFS_NAME_SHORT_MAX ||
			    wfs_name_encrypt(keys, dirid, plain, (size_t)r, &e) != 0 ||
			    !e.is_long || e.len != len || memcmp(e.name, name, len) != 0 ||
			    e.sidecar_len != slen || memcmp(e.sidecar, side, slen) != 0)
				abort();
		} else {
			check_failed(r, plain);
		}
		char pair[WFS_NAME_LONG_LEN + 1];
		if ((wfs_name_long_pair(name, len, pair) == 0) !=
		    (kind == WFS_NAME_LONG || kind == WFS_NAME_SIDECAR))
			abort();
	}

	/* the directory id file */
	if (dfile != NULL && wfs_dirid_parse(dfile, dlen, id) == 0) {
		uint8_t back[WFS_DIRID_FILE_LEN];

		wfs_dirid_format(id, back);
		if (dlen != WFS_DIRID_FILE_LEN || memcmp(back, dfile, dlen) != 0)
			abort();
	}

	/* the name itself, as a plaintext name */
	r = wfs_name_encrypt(keys, dirid, name, len, &e);
	if (r == 0) {
		if (e.len > WFS_NAME_MAX || memchr(e.name, '/', e.len) != NULL)
			abort();
		r = e.is_long ? wfs_name_decrypt_long(keys, dirid, e.name, e.len, e.sidecar,
						      e.sidecar_len, plain)
			      : wfs_name_decrypt(keys, dirid, e.name, e.len, plain);
		if (r != (ssize_t)len || memcmp(plain, name, len) != 0)
			abort();
		if (wfs_name_classify(e.name, e.len) !=
		    (e.is_long ? WFS_NAME_LONG : WFS_NAME_ENCRYPTED))
			abort();
	} else if (r != -EINVAL && r != -ENAMETOOLONG) {
		abort();
	}
	return 0;
}
