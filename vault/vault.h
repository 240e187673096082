/*
 * vault.h - the vault library: a vault in BACKING/.wardfs/ and the work
 * done on a backing tree outside a mount. Finding and unlocking a vault,
 * reading passphrases and recovery keys, atomic file writes, the one walk
 * of a backing tree, the one rule for a file stored in the wrong form,
 * loading a policy with its safety checks, and the engines of init,
 * fsck, migrate and setup-home. No FUSE: the CLI and the daemon both may use it.
 *
 * Functions that say "printing" hand one-line messages to the reporter
 * (below); the CLI's prints them as all its messages ("wardfs migrate: ...").
 */
#ifndef WARDFS_VAULT_H
#define WARDFS_VAULT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "audit.h"
#include "crypto.h"
#include "policy.h"
#include "wardfs_paths.h"

#define WFS_VAULT_FORMAT 1
#define WFS_SECRET_MAX	 1024 /* longest passphrase line accepted, bytes */

/* Passphrase source options shared by init/mount/passwd. */
struct wfs_pass_opts {
	const char *passfile;	       /* first line of FILE */
	const char *extpass;	       /* first line of the output of /bin/sh -c CMD */
	const char *recovery_key_file; /* unlock with the recovery key from FILE */
	bool recovery_from_stdin;      /* unlock with the recovery key from stdin or the tty */
	const char *recovery_key_out;  /* create: write the new recovery key to FILE (escrow) */
	const char *escrow_key_file;   /* unlock with the escrow secret key in FILE (an admin's) */
	const char *tpm2_tcti;	       /* the TPM of tpm2 slots (NULL: wfs_tpm2_tcti's default) */
	/* Don't try tpm2 slots: the secret is asked for. For a command that
	 * reads a second line from stdin after the unlock (passwd, key add):
	 * stdin's first line stays the current secret whatever the TPM does. */
	bool no_tpm2;
	/* The unlock may write the vault: note the slot's use in slots-used and
	 * upgrade a version-1 keyfile (mount, passwd, key). Off, the backing
	 * directory is left as it is (fsck, migrate, a dry run). */
	bool may_write;
};

/*
 * What the library says: one line, without a program name or newline, and
 * its kind. The reporter prints it; the default one writes "wardfs: LINE"
 * (errors), "wardfs: warning: LINE", details as they are, and a progress
 * line redrawn with '\r' until the last. Set it once, before any work.
 */
enum wfs_vault_say {
	WFS_SAY_ERROR,
	WFS_SAY_WARNING,
	WFS_SAY_DETAIL,	  /* a located policy diagnostic, or a line listing what an error named */
	WFS_SAY_PROGRESS, /* a progress bar, redrawn in place */
	WFS_SAY_PROGRESS_LAST, /* its last drawing: the line ends */
};
typedef void (*wfs_vault_reporter)(enum wfs_vault_say kind, const char *line);
void wfs_vault_set_reporter(wfs_vault_reporter fn); /* NULL: the default */

/* ---- the vault directory (vault.c) --------------------------------- */

bool wfs_vault_exists(const char *backing); /* BACKING/.wardfs/keyfile present */

/* A backing directory without a keyfile that still holds a vault's files
 * (BACKING/.wardfs, or an encrypted file: marked, or with a header): its
 * keyfile was lost, and a new vault could not read them. 1 with what was
 * found in what ("'.wardfs/undo'", "encrypted files such as '/x'"), else 0.
 * Call it only where wfs_vault_exists is false. */
int wfs_vault_orphaned(const char *backing, char *what, size_t len);
/* Says on stderr that backing lost its keyfile: restore it. */
void wfs_vault_say_orphaned(const char *backing, const char *what);

/*
 * Reads the keyfile and unlocks: first with every tpm2 slot (the TPM
 * unseals its secret, nobody is asked; each that does not open is one
 * warning line saying why), then with the passphrase from the given
 * sources (or the recovery key, or an escrow secret key), trying every
 * slot of that type. Printing (e.g. "wrong passphrase for /path"); -errno on
 * failure. A passphrase typed on the tty gets three tries. On success,
 * with po->may_write, a version-1 keyfile is upgraded to key slots (when
 * writable) and the slot's use noted in BACKING/.wardfs/slots-used; *slot
 * (may be NULL) is the slot that opened.
 */
int wfs_vault_unlock_slot(const char *backing, const struct wfs_pass_opts *po,
			  struct wfs_keys **keys, uint16_t *slot);
int wfs_vault_unlock(const char *backing, const struct wfs_pass_opts *po, struct wfs_keys **keys);
/* When each slot last unlocked (0: not recorded), from slots-used. */
uint64_t wfs_vault_slot_last_used(const char *backing, uint16_t id);
/* "slot ID (TYPE, LABEL)" for audit rows and messages: which slot opened
 * the vault ("slot ID" when the keyfile cannot say more). */
void wfs_vault_slot_name(const char *backing, uint16_t id, char *buf, size_t len);

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

/*
 * mkdir -p: creates dir and each missing parent with mode (each one is the
 * caller's, so root's when run as root). An existing dir is left as it is.
 * -errno, with the directory that could not be created in failed.
 */
int wfs_make_dirs(const char *dir, mode_t mode, char *failed, size_t len);

/* ---- secrets (passphrase.c) ---------------------------------------- */

/*
 * Reads one secret line from, in order of preference, `file`, `extpass`,
 * stdin when it is not a tty, or the tty (prompt, no echo; with confirm,
 * asked twice and compared). The result is NUL-terminated in sodium_malloc
 * memory: free it with wfs_secret_free. Printing; -errno on failure; an
 * empty secret is an error. *from_tty (may be NULL) says whether it was
 * typed.
 */
/* Reads an escrow public key from the first line of path (printing why
 * not: missing, not such a key, mistyped). 0 or -errno. */
int wfs_escrow_public_read(const char *path, uint8_t pk[WFS_ESCROW_KEY_LEN]);

/* Writes line and a newline to a new file path (never an existing one:
 * -EEXIST), mode 0600, fsynced; removes it when it cannot be written whole.
 * For keys handed to an admin (recovery keys, escrow keys). 0 or -errno. */
int wfs_write_new_file(const char *path, const char *line);

int wfs_secret_read(const char *file, const char *extpass, const char *prompt, bool confirm,
		    char **out, size_t *len, bool *from_tty);
void wfs_secret_free(char *s);

/* ---- walking a backing tree (walk.c) ------------------------------- */

/*
 * The one walk of a backing tree (init's count, migrate, fsck, policy
 * scan, mark adoption, the orphan check). Depth-first, without following
 * symlinks and, unless WFS_WALK_XDEV, without crossing into other file
 * systems; BACKING/.wardfs is skipped. No limit on depth or path length
 * but the number of open files (one per level).
 */
#define WFS_WALK_XDEV 0x1 /* also walk directories of other file systems */
/* Callbacks need no stat (the file callback gets st NULL): an entry's type
 * comes from readdir where the file system gives it, and a stat is made
 * only where it does not. Implies WFS_WALK_XDEV. For the daemon's rename
 * check, which looks only at paths. */
#define WFS_WALK_NO_STAT 0x2

/*
 * Called for each regular file: dirfd/name opens it, relpath is its path
 * relative to the walk's root beginning with "/", st its stat (NULL with
 * WFS_WALK_NO_STAT). A nonzero return stops the walk and is returned.
 */
typedef int (*wfs_walk_fn)(void *arg, int dirfd, const char *name, const char *relpath,
			   const struct stat *st);

/* What is wrong with a backing name in a vault with encrypted names
 * (docs/format.md, "Encrypted names"): each is skipped by listings. */
enum wfs_name_issue {
	WFS_NAME_UNREADABLE,	 /* an encrypted name that does not decrypt here */
	WFS_NAME_NO_SIDECAR,	 /* a long name's entry without (a good) sidecar */
	WFS_NAME_ORPHAN_SIDECAR, /* a sidecar without its entry: fsck --repair removes it */
	WFS_NAME_NO_DIRID,	 /* encrypted names in a directory without an id */
	WFS_NAME_BAD_DIRID,	 /* a damaged directory id (bname is the id's file) */
	WFS_NAME_TEMP,		 /* a temporary of wardfs's own a crash left (wfs_name_is_temp) */
	WFS_NAME_UNKNOWN,	 /* another name in wardfs's form ("wfs~"...) it does not know */
};

struct wfs_walk {
	wfs_walk_fn file;
	/* A vault with encrypted names: with its keys here, relpaths are
	 * the plaintext paths (the callbacks' dirfd/name stay the names on
	 * disk), wardfs's own files are not walked, and each name that
	 * cannot be shown goes to name_issue (may be NULL) with the relpath
	 * of its directory. */
	const struct wfs_keys *names_keys;
	void (*name_issue)(void *arg, int dirfd, const char *dir_relpath, const char *bname,
			   enum wfs_name_issue what);
	/* Every entry walked, of any type, once it was (a directory: after
	 * its subtree): dirfd/bname is it on disk, relpath its path. May
	 * rename it. NULL: none. A nonzero return stops the walk. */
	int (*entry_done)(void *arg, int dirfd, const char *bname, const char *relpath,
			  mode_t type);
	/* Each directory before it is entered (NULL: every one); false skips
	 * its subtree. The daemon's rename check skips subtrees no rule
	 * tells apart this way. */
	bool (*enter)(void *arg, const char *relpath);
	void *arg;
	unsigned flags;	 /* WFS_WALK_* */
	unsigned errors; /* out: entries that could not be read (each said on stderr) */
};

/*
 * Walks root: 0, the callback's nonzero value, or -errno when root cannot
 * be opened (printing nothing then). Unreadable entries are said, with
 * their path under root, and counted in w->errors.
 */
int wfs_walk(const char *root, struct wfs_walk *w);
/* The same below the directory dirfd (borrowed), whose path relative to
 * the walk's root is base ("" for the root itself); root is only for
 * messages. */
int wfs_walk_at(int dirfd, const char *root, const char *base, struct wfs_walk *w);
/* wfs_walk of fn over backing, adding its errors to *errors. */
int wfs_vault_walk(const char *backing, wfs_walk_fn fn, void *arg, unsigned *errors);

/* ---- form and class (form.c) ---------------------------------------- */

/* What a file's form on disk needs to agree with its class. */
enum wfs_form_fix {
	WFS_FIX_NONE = 0,
	WFS_FIX_ENCRYPT, /* sensitive but stored plain */
	WFS_FIX_DECRYPT, /* public or deny but stored encrypted */
};
/*
 * The one rule for "the form disagrees with the class" (migrate, init's
 * count, policy scan, and the daemon's form_disagrees count): a sensitive
 * file must be encrypted, any other must not be; an empty file is fine
 * in either class.
 */
enum wfs_form_fix wfs_vault_form_fix(enum wfs_class cls, enum wfs_form form);

/* The same rule for a name in a vault with encrypted names: the backing
 * name bname of the path rel is encrypted exactly when rel is sensitive.
 * Whether it disagrees (migrate renames what policy scan reports), and
 * rel's class in *cls. */
bool wfs_vault_name_disagrees(const struct wfs_policy *pol, const char *bname, const char *rel,
			      enum wfs_class *cls);

/* The form of the regular file dirfd/name by the daemon's mark (crypto/
 * mark.c): 0 or -errno. */
int wfs_vault_file_form(int dirfd, const char *name, const struct stat *st, enum wfs_form *form);

/* .NAME.wardfs-migrate: migrate's temp file beside NAME, left over by an
 * interrupted run (fsck counts them, migrate removes them). */
#define WFS_MIGRATE_SUFFIX ".wardfs-migrate"
bool wfs_is_migrate_temp(const char *name);

/* ---- loading a policy (policy_load.c) ------------------------------ */

/* How wfs_vault_load_policy reads and reports. */
#define WFS_LOAD_CHECK                                                                             \
	0x1		    /* `policy check`: look at allow-exe programs too, print every         \
			     * warning and note, never fall back to the built-in default */
#define WFS_LOAD_QUIET	0x2 /* print only errors (not warnings and notes) */
#define WFS_LOAD_DAEMON 0x4 /* look at allow-exe programs (as the daemon does) */

/*
 * Loads the policy at path with the safety checks every command shares
 * (as root: files owned by root, not writable by group or others; as the
 * daemon refuses them), printing its diagnostics. path NULL means
 * WFS_DEFAULT_POLICY, and only then does a missing file give the built-in
 * default (everything public), said on stderr. Printing; -errno (a policy
 * with errors: -EINVAL) with "cannot use the policy" said.
 */
int wfs_vault_load_policy(const char *path, unsigned how, struct wfs_policy **out);

/*
 * The same without printing: the diagnostics are left in d (the caller
 * prints and frees them) and *builtin says that the built-in default was
 * used. For the daemon, which keeps the first error for its status.
 */
int wfs_vault_open_policy(const char *path, unsigned how, struct wfs_policy **out,
			  struct wfs_policy_diags *d, bool *builtin);

/* ---- is the backing directory closed (backing_private.c) ----------- */

/* 0 when no user but root can reach backing or change a directory above
 * it; otherwise says why, with the fix, and returns -EPERM (or -errno).
 * count_self false: backing itself does not count as closed (it is about
 * to be given to a user). */
int wfs_backing_private(const char *backing, bool count_self);

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

/* ---- audit rows for admins' commands (audit_row.c) ----------------- */

/* An audit row for an admin's action on the vault, refused (err) or done,
 * in db_path or (NULL) the database the vault's daemon last wrote to;
 * nothing when there is none. by names the command ("wardfs passwd"), the
 * row's comm. */
void wfs_vault_audit(const char *backing, const char *db_path, const char *by,
		     enum wfs_audit_kind kind, int err, const char *detail);

/* ---- creating a vault (create.c) ----------------------------------- */

/*
 * Creates the vault in BACKING (which must exist and not be a vault yet):
 * reads the new passphrase from po's sources (asked twice on a tty), writes
 * BACKING/.wardfs/{config,keyfile} and prints the recovery key once (or
 * writes it to po->recovery_key_out). On success *keys (if not NULL) holds
 * the unlocked keys. Printing; -errno.
 */
int wfs_vault_create(const char *backing, const struct wfs_pass_opts *po,
		     const struct wfs_kdf_params *kp, unsigned vault_flags, struct wfs_keys **keys);
/* The WFS_VAULT_* flags BACKING's keyfile says it has (unauthenticated:
 * the unlock checks them), 0 when it has none or cannot be read. */
unsigned wfs_vault_flags(const char *backing);
/* Sets the vault's flags in its keyfile (rewritten atomically, every slot
 * kept); keys unlock it. Printing; -errno. */
int wfs_vault_set_flags(const char *backing, const struct wfs_keys *keys, unsigned flags);

/* ---- migrate (migrate.c) ------------------------------------------- */

/* One migrate run: set the inputs, then scan, then (unless dry_run) convert. */
struct wfs_migrate {
	/* in */
	const char *backing;
	const struct wfs_policy *pol;
	const struct wfs_keys *keys; /* for convert */
	bool dry_run;		     /* scan prints the plan on stdout and removes nothing */
	bool progress;		     /* convert draws a progress bar on stderr */
	FILE *decrypts;		     /* scan lists files to decrypt here, one a line (or NULL) */
	bool names; /* the vault encrypts names: keys set (also for the scan), names fixed too */
	/* out */
	unsigned todo, done, encrypted, decrypted, skipped, failed, temps, errors;
	unsigned names_encrypted, names_decrypted, names_conflict; /* names (names vaults) */
	unsigned to_decrypt; /* of todo: files that would be stored in plaintext */
	/* private */
	uint8_t *buf;
	bool converting; /* pass 2 */
};

/* Pass 1: removes leftovers of an interrupted run and counts (or lists)
 * what disagrees with the policy. Printing; 0, or -errno when backing
 * cannot be walked. */
int wfs_migrate_scan(struct wfs_migrate *m);
/* Pass 2: converts each file whose form disagrees (atomically, one file at
 * a time, through .NAME.wardfs-migrate). Per-file failures are said and
 * counted; 0 when the walk completed, else -errno. */
int wfs_migrate_convert(struct wfs_migrate *m);
/* Before a vault gets encrypted names: none of its names may start with
 * "wfs~" (such names are wardfs's own in that vault). Printing each (up
 * to ten); 0, -EEXIST when some do, or -errno. */
int wfs_migrate_check_reserved(const char *backing);
/* Frees what the passes allocated (not the inputs). */
void wfs_migrate_done(struct wfs_migrate *m);

struct wfs_migrate_stats {
	unsigned encrypted, decrypted, skipped, failed, errors;
};

/*
 * Both passes with the keys at hand, saying on stdout how many files are
 * converted: setup-home's migrate. 0 when the walks completed (see st for
 * per-file failures).
 */
int wfs_vault_migrate(const char *backing, const struct wfs_policy *pol,
		      const struct wfs_keys *keys, struct wfs_migrate_stats *st);

/* ---- fsck (fsck.c) ------------------------------------------------- */

struct wfs_fsck {
	/* in */
	const char *backing;
	const struct wfs_keys *keys;
	struct wfs_audit *audit; /* repair, recording each repair here; NULL: check only */
	bool hole_damaged;	 /* repair: damaged blocks intact ones follow become holes */
	/* out */
	unsigned files, damaged, errors, temps, unmarked, repaired;
	unsigned bad_names; /* names the mount cannot show (encrypted names) */
	/* private */
	const char *rel;
	long bad_here;
};

/*
 * Verifies every encrypted file under f->backing, printing each damage
 * (and each repair) on stdout and what cannot be read on stderr, counted
 * in f. 0 when the walk completed, else -errno (not said).
 */
int wfs_fsck(struct wfs_fsck *f);

/* ---- setup-home (setup_home.c) ------------------------------------- */

/* BACKING/.wardfs/setup-home: the user, the home and the state of a run. */
#define WFS_SETUP_HOME_MARKER "setup-home"

struct wfs_setup_home {
	/* in */
	const char *user;
	const char *policy_path; /* NULL: WFS_DEFAULT_POLICY */
	char home[PATH_MAX];	 /* real path */
	char backing[PATH_MAX];	 /* absolute, without a trailing slash */
	struct wfs_pass_opts po;
	struct wfs_kdf_params kp;
	const uint8_t *escrow_public; /* a slot for the organisation's escrow key, or NULL */
	/* out */
	bool was_done;	    /* an earlier run finished: nothing was done */
	unsigned encrypted; /* files encrypted by this run */
};

/*
 * Moves user's home into a new vault in backing (creating both, printing
 * the recovery key once), encrypts what the policy calls sensitive and
 * makes the home a bare mount point: root's, read-only, with a note. Run
 * again after an interruption, it carries on. Printing; 0, or -1 after
 * saying why.
 */
int wfs_setup_home(struct wfs_setup_home *s);

/* The smallest uid of a person (login.defs UID_MIN; 1000 without it). */
uid_t wfs_uid_min(void);
/* Lists (on stderr) up to 10 processes of uid; how many it found. */
int wfs_user_processes(uid_t uid);

#endif
