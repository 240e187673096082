/*
 * fuzz_keyfile.c - libFuzzer target for the keyfile parser: wfs_keyfile_check
 * and unlocking with a wrong passphrase and a wrong recovery key. The
 * library, built with -DWFS_FUZZING, refuses Argon2id costs above a toy
 * bound so each input stays fast; the seeds use that toy cost.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "crypto.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
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
	return 0;
}
