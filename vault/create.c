/*
 * create.c - a new vault: the passphrase read (twice on a terminal), a
 * random master key wrapped under it and under a recovery key, and
 * BACKING/.wardfs/{config,keyfile} written, the keyfile last because its
 * presence is what makes a vault. Shared by init and setup-home.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "say.h"
#include "vault.h"

int wfs_vault_create(const char *backing, const struct wfs_pass_opts *po,
		     const struct wfs_kdf_params *kp, unsigned vault_flags,
		     struct wfs_keys **keys_out)
{
	struct wfs_keys *keys = NULL;
	char *pass = NULL, dir[PATH_MAX], rec[WFS_RECOVERY_LEN];
	uint8_t *kf = NULL;
	size_t passlen, kflen;
	int r;

	if (wfs_vault_exists(backing)) {
		vault_error("'%s' is already a wardfs vault", backing);
		r = -EEXIST;
		goto out;
	}
	if ((r = wfs_crypto_init()) != 0) {
		vault_error("cannot start the crypto library: %s", strerror(-r));
		goto out;
	}
	if ((r = wfs_secret_read(po->passfile, po->extpass, "Passphrase for the new vault: ", true,
				 &pass, &passlen, NULL)) != 0)
		goto out;
	r = wfs_keyfile_create_flags(pass, passlen, kp, vault_flags, &kf, &kflen, rec, &keys);
	wfs_secret_free(pass);
	if (r != 0) {
		vault_error("cannot create the key: %s", strerror(-r));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/" WFS_VAULT_DIR, backing);
	if (mkdir(dir, 0700) != 0) {
		struct stat st;

		if (errno != EEXIST || lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
			r = -(errno == EEXIST ? ENOTDIR : errno);
			vault_error("cannot create '%s': %s", dir, strerror(-r));
			goto out;
		}
	}
	if (chmod(dir, 0700) != 0) {
		r = -errno;
		vault_error("cannot set the mode of '%s': %s", dir, strerror(errno));
		goto out;
	}
	/* A new vault holds no ciphertext yet: nothing to adopt (marks.c).
	 * This also proves that the file system keeps trusted xattrs. */
	if ((r = wfs_vault_stamp_marks(backing)) != 0) {
		vault_error("cannot mark '%s': %s", dir,
			    r == -ENOTSUP ? "the file system cannot keep trusted extended "
					    "attributes, which wardfs needs"
					  : strerror(-r));
		goto out;
	}
	/* Escrow before the keyfile: no vault exists whose recovery key was
	 * not kept where the admin asked. */
	if (po->recovery_key_out && (r = wfs_write_new_file(po->recovery_key_out, rec)) != 0) {
		vault_error("cannot write the recovery key to '%s': %s%s", po->recovery_key_out,
			    strerror(-r),
			    r == -EEXIST ? " (it exists; wardfs never overwrites one)" : "");
		goto out;
	}
	/* the keyfile last: its presence is what makes a vault */
	if ((r = wfs_vault_write_config(backing, kp)) != 0) {
		vault_error("cannot write '%s/" WFS_VAULT_CONFIG "': %s", dir, strerror(-r));
		goto out;
	}
	if ((r = wfs_vault_write(backing, WFS_VAULT_KEYFILE, kf, kflen, 0600)) != 0) {
		vault_error("cannot write '%s/" WFS_VAULT_KEYFILE "': %s", dir, strerror(-r));
		goto out;
	}
	if (po->recovery_key_out)
		printf("Created a wardfs vault in %s.\n\n"
		       "Recovery key written to %s (mode 0600): it unlocks the vault without\n"
		       "the passphrase; keep it offline, away from this machine.\n\n",
		       backing, po->recovery_key_out);
	else
		printf("Created a wardfs vault in %s.\n\n"
		       "Recovery key (it unlocks the vault without the passphrase; it is shown\n"
		       "only now, so write it down and keep it offline, away from this "
		       "machine):\n\n"
		       "    %s\n\n",
		       backing, rec);
	fflush(stdout);
	if (keys_out != NULL) {
		*keys_out = keys;
		keys = NULL;
	}
	r = 0;
out:
	sodium_memzero(rec, sizeof(rec));
	wfs_keys_free(keys);
	free(kf);
	return r;
}
