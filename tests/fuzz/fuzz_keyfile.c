/*
 * fuzz_keyfile.c - libFuzzer target for the keyfile parser (both versions,
 * every slot type): wfs_keyfile_parse/check, unlocking with a wrong
 * passphrase, recovery key and escrow key, and the escrow key text parsers
 * on the same bytes. The
 * library, built with -DWFS_FUZZING, refuses Argon2id costs above a toy
 * bound so each input stays fast; the seeds use that toy cost.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static struct wfs_keyfile_info info[1];
	/* a well-formed escrow secret that opens no slot of any seed */
	static const char escrow_secret[] =
		"wardfs-escrow-secret-1:"
		"0000000000000000000000000000000000000000000000000000000000000000"
		"ff0f2249";
	uint8_t key[WFS_ESCROW_KEY_LEN];
	char *text;
	struct wfs_kdf_params p;
	struct wfs_keys *k = NULL;
	int r, c;

	if (!ready) {
		if (wfs_crypto_init() != 0)
			abort();
		ready = 1;
	}
	c = wfs_keyfile_check(data, size, &p);
	if (c != 0 && c != -EINVAL)
		abort();
	r = wfs_keyfile_unlock(data, size, "not the passphrase", 18, &k);
	if (r == 0 || k != NULL)
		abort(); /* nobody can forge the wrap without the passphrase */
	if (c != 0 && r != -EINVAL)
		abort();
	r = wfs_keyfile_unlock_recovery(
		data, size, "000000-000000-000000-000000-000000-000000-000000-000000", &k);
	if (r == 0 || k != NULL)
		abort();
	if (c != 0 && r != -EINVAL)
		abort();
	r = wfs_keyfile_open(data, size, WFS_SLOT_ESCROW, escrow_secret, 0, &k, NULL);
	if (r == 0 || k != NULL)
		abort();
	if (c != 0 && r != -EINVAL && r != -EACCES)
		abort();
	if ((wfs_keyfile_parse(data, size, info) == 0) != (c == 0))
		abort();
	/* the same bytes as an escrow key's text */
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	(void)wfs_escrow_public_parse(text, key);
	(void)wfs_escrow_secret_parse(text, key);
	free(text);
	return 0;
}
