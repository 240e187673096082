/*
 * fuzz_keyfile.c - libFuzzer target for the keyfile parser (both versions,
 * every slot type): wfs_keyfile_parse/check, unlocking with a wrong
 * passphrase, recovery key, escrow key and TPM-unsealed secret, a parsed
 * tpm2 slot's blobs through tpm2-tss's unmarshalling (wfs_tpm2_check, no
 * TPM), and the escrow key text parsers on the same bytes. The
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
	/* a secret no seed's tpm2 slot was sealed with */
	static const uint8_t tpm2_secret[WFS_TPM2_SECRET_LEN] = {0x42};
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
	r = wfs_keyfile_open(data, size, WFS_SLOT_TPM2, tpm2_secret, sizeof(tpm2_secret), &k, NULL);
	if (r == 0 || k != NULL)
		abort();
	if (c != 0 && r != -EINVAL)
		abort();
	if ((wfs_keyfile_parse(data, size, info) == 0) != (c == 0))
		abort();
	for (size_t i = 0; c == 0 && i < info->nslots; i++) {
		const struct wfs_tpm2_seal *t = &info->slot[i].tpm2;
		if (info->slot[i].type != WFS_SLOT_TPM2)
			continue;
		/* what the parser let through fits what the TPM code reads */
		if (t->publen == 0 || t->publen > WFS_TPM2_PUB_MAX || t->privlen == 0 ||
		    t->privlen > WFS_TPM2_PRIV_MAX || (t->pcrs >> WFS_TPM2_PCRS) != 0)
			abort();
		(void)wfs_tpm2_check(t);
	}
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
