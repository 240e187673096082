/*
 * keys.c - unlocked key material: the master key and its HKDF-SHA256
 * subkeys (content, header, names) in one read-only sodium_malloc allocation,
 * and the default Argon2id cost.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <sodium.h>

#include "crypto_internal.h"

/*
 * Measured on the 2-core development machine: Argon2id with 512 MiB and
 * 3 passes takes about 0.75 s (256 MiB/3: 0.33 s, 512 MiB/4: 1.0 s).
 */
#define WFS_KDF_DEFAULT_OPS 3u
#define WFS_KDF_DEFAULT_MEM (512u << 20)

void wfs_kdf_params_default(struct wfs_kdf_params *p)
{
	p->opslimit = WFS_KDF_DEFAULT_OPS;
	p->memlimit = WFS_KDF_DEFAULT_MEM;
}

static _Atomic uint64_t keys_gen;

int wfs__keys_from_master(const uint8_t master[WFS_KEY_LEN], struct wfs_keys **out)
{
	return wfs__keys_make(master, 0, out);
}

unsigned wfs_keys_vault_flags(const struct wfs_keys *k)
{
	return k->vault_flags;
}

int wfs__keys_make(const uint8_t master[WFS_KEY_LEN], unsigned vault_flags, struct wfs_keys **out)
{
	struct wfs_keys *k = NULL;
	int r;

	*out = NULL;
	if ((k = wfs_secure_alloc(sizeof(*k))) == NULL)
		return -ENOMEM;
	memcpy(k->master, master, WFS_KEY_LEN);
	if ((r = wfs__hkdf_sha256(k->master, WFS_KEY_LEN, NULL, 0, WFS_INFO_CONTENT, k->content,
				  WFS_KEY_LEN)) != 0 ||
	    (r = wfs__hkdf_sha256(k->master, WFS_KEY_LEN, NULL, 0, WFS_INFO_HEADER, k->header,
				  WFS_KEY_LEN)) != 0 ||
	    (r = wfs__hkdf_sha256(k->master, WFS_KEY_LEN, NULL, 0, WFS_INFO_NAMES, k->names,
				  WFS_NAME_KEY_LEN)) != 0)
		goto out;
	k->gen = atomic_fetch_add(&keys_gen, 1) + 1;
	k->vault_flags = vault_flags;
	(void)sodium_mprotect_readonly(k);
	*out = k;
	k = NULL;
	r = 0;
out:
	wfs_keys_free(k);
	return r;
}

_Static_assert(WFS_MASTER_KEY_LEN == WFS_KEY_LEN, "the public length is the key length");

int wfs_keys_id(const struct wfs_keys *k, uint8_t id[WFS_KEY_LEN])
{
	return wfs__hkdf_sha256(k->master, WFS_KEY_LEN, NULL, 0, WFS_INFO_KEY_ID, id, WFS_KEY_LEN);
}

void wfs_keys_export(const struct wfs_keys *k, uint8_t master[WFS_KEY_LEN])
{
	memcpy(master, k->master, WFS_KEY_LEN);
}

int wfs_keys_import(const uint8_t master[WFS_KEY_LEN], struct wfs_keys **out)
{
	return wfs__keys_from_master(master, out);
}

int wfs_keys_lock(const struct wfs_keys *k)
{
	return sodium_mlock((void *)k, sizeof(*k)) == 0 ? 0 : -errno;
}

void wfs_keys_free(struct wfs_keys *k)
{
	if (k == NULL)
		return;
	wfs__par_stop(); /* its cached key schedules go with it */
	(void)sodium_mprotect_readwrite(k);
	sodium_memzero(k, sizeof(*k));
	sodium_free(k);
}
