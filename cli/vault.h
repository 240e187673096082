/*
 * vault.h - the vault in BACKING/.wardfs/ as the CLI sees it: finding and
 * unlocking it, reading passphrases and recovery keys from their sources,
 * atomic file writes, and walking a backing tree. Shared by init, passwd,
 * fsck, migrate and mount.
 */
#ifndef WARDFS_VAULT_H
#define WARDFS_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "crypto.h"

#define WFS_VAULT_DIR ".wardfs"
/* The note setup-home leaves in a bare (unmounted) home; mount ignores it
 * when it checks that the mount point is empty. */
#define WFS_BARE_NOTE	  "README.wardfs-not-mounted"
#define WFS_VAULT_KEYFILE "keyfile"
#define WFS_VAULT_CONFIG  "config"
#define WFS_VAULT_FORMAT  1
#define WFS_SECRET_MAX	  1024 /* longest passphrase line accepted, bytes */

/* Passphrase source options shared by init/mount/passwd. */
struct wfs_pass_opts {
	const char *passfile;	       /* first line of FILE */
	const char *extpass;	       /* first line of the output of /bin/sh -c CMD */
	const char *recovery_key_file; /* unlock with the recovery key from FILE */
	bool recovery_from_stdin;      /* unlock with the recovery key from stdin or the tty */
	const char *recovery_key_out;  /* create: write the new recovery key to FILE (escrow) */
};

/* Prefix of the one-line errors printed here ("wardfs" unless set, e.g. "wardfs init"). */
void wfs_vault_set_prog(const char *prog);
const char *wfs_vault_prog(void);

bool wfs_vault_exists(const char *backing); /* BACKING/.wardfs/keyfile present */

/* A backing directory without a keyfile that still holds a vault's files
 * (BACKING/.wardfs, or an encrypted file: marked, or with a header): its
 * keyfile was lost, and a new vault could not read them. 1 with what was
 * found in what ("'.wardfs/undo'", "encrypted files such as '/x'"), else 0.
 * Call it only where wfs_vault_exists is false. */
int wfs_vault_orphaned(const char *backing, char *what, size_t len);
/* Says on stderr, for prog, that backing lost its keyfile: restore it. */
void wfs_vault_say_orphaned(const char *backing, const char *what);

/*
 * Reads the keyfile and unlocks with the passphrase from the given sources
 * (or recovery key). Prints a one-line error (e.g. "wardfs: wrong
 * passphrase for /path") and returns -errno on failure. A passphrase typed
 * on the tty gets three tries.
 */
int wfs_vault_unlock(const char *backing, const struct wfs_pass_opts *po, struct wfs_keys **keys);

/* Reads BACKING/.wardfs/keyfile (malloc'd). -errno, printing nothing. */
int wfs_vault_read_keyfile(const char *backing, uint8_t **buf, size_t *len);

/*
 * Writes BACKING/.wardfs/NAME atomically: temp file, fsync, rename, fsync
 * of the directory. mode is the new file's mode. -errno, printing nothing.
 */
int wfs_vault_write(const char *backing, const char *name, const void *buf, size_t len,
		    mode_t mode);

/* Writes the text config (format, created time, kdf cost); keeps an existing
 * "created" line. -errno, printing nothing. */
int wfs_vault_write_config(const char *backing, const struct wfs_kdf_params *p);

/* ---- secrets ------------------------------------------------------- */

/*
 * Reads one secret line from, in order of preference, `file`, `extpass`,
 * stdin when it is not a tty, or the tty (prompt, no echo; with confirm,
 * asked twice and compared). The result is NUL-terminated in sodium_malloc
 * memory: free it with wfs_secret_free. Prints a one-line error and returns
 * -errno on failure; an empty secret is an error. *from_tty (may be NULL)
 * says whether it was typed.
 */
int wfs_secret_read(const char *file, const char *extpass, const char *prompt, bool confirm,
		    char **out, size_t *len, bool *from_tty);
void wfs_secret_free(char *s);

/* ---- directories -------------------------------------------------- */

/*
 * mkdir -p: creates dir and each missing parent with mode (each one is the
 * caller's, so root's when run as root). An existing dir is left as it is.
 * -errno, with the directory that could not be created in failed.
 */
int wfs_make_dirs(const char *dir, mode_t mode, char *failed, size_t len);

/* ---- walking a backing tree --------------------------------------- */

/*
 * Called for each regular file: dirfd/name opens it, relpath is its path
 * relative to BACKING beginning with "/". A nonzero return stops the walk
 * and is returned.
 */
typedef int (*wfs_walk_fn)(void *arg, int dirfd, const char *name, const char *relpath,
			   const struct stat *st);
int wfs_vault_walk(const char *backing, wfs_walk_fn fn, void *arg, unsigned *errors);

/*
 * Visits every regular file under backing, without following symlinks,
 * without crossing into other file systems, and skipping /.wardfs.
 * Directories that can't be read are reported and counted in *errors.
 * Returns 0, fn's nonzero value, or -errno if backing can't be opened.
 */

/* 0 when no user but root can reach backing or change a directory above
 * it (backing_private.c); otherwise prints why, with the fix, prefixed by
 * prog, and returns -EPERM (or -errno). count_self false: backing itself
 * does not count as closed (it is about to be given to a user). */
int wfs_backing_private(const char *backing, const char *prog, bool count_self);

/* ---- marks (marks.c) ------------------------------------------------ */

/* 1 when every ciphertext file under backing carries the daemon's mark
 * (adoption done and the tree not since restored without xattrs), 0 when
 * not, -errno. */
int wfs_vault_marks_done(const char *backing);
/*
 * Marks every unmarked file under backing whose header authenticates
 * under keys, then records that it is done. *adopted counts the files
 * marked. -ENOTSUP: the backing file system cannot keep trusted xattrs.
 */
int wfs_vault_adopt_marks(const char *backing, const struct wfs_keys *keys, unsigned *adopted);
/* Records that adoption is done, for a new vault with nothing to adopt. */
int wfs_vault_stamp_marks(const char *backing);

/* ---- shared by init, migrate and setup-home (cmd_vault.c) ----------- */

struct wfs_policy;

/* Sets the "wardfs CMD" prefix of the errors printed below. */
void wfs_vault_cmd_prog(const char *prog);

/*
 * Creates the vault in BACKING (which must exist and not be a vault yet):
 * reads the new passphrase from po's sources (asked twice on a tty), writes
 * BACKING/.wardfs/{config,keyfile} and prints the recovery key once. On
 * success *keys (if not NULL) holds the unlocked keys. -errno after one
 * line of error.
 */
int wfs_vault_create(const char *backing, const struct wfs_pass_opts *po,
		     const struct wfs_kdf_params *kp, struct wfs_keys **keys);

/* Loads the policy at path (NULL: /etc/wardfs/policy, or the built-in
 * default if that is missing), printing diagnostics. -errno on failure. */
int wfs_vault_load_policy(const char *path, struct wfs_policy **out);

struct wfs_migrate_stats {
	unsigned encrypted, decrypted, skipped, failed, errors;
};

/*
 * wardfs migrate's work with the keys at hand: removes leftovers of an
 * interrupted run, then converts each file whose form disagrees with the
 * policy (atomically, one file at a time), with a progress bar on a
 * terminal. 0 when the walk completed (see st for per-file failures).
 */
int wfs_vault_migrate(const char *backing, const struct wfs_policy *pol,
		      const struct wfs_keys *keys, struct wfs_migrate_stats *st);

#endif
