/*
 * cmd_vault.c - the vault subcommands: `wardfs init` (create the keyfile,
 * print the recovery key), `passwd` (rewrap under a new passphrase),
 * `fsck` (verify every block of every encrypted file) and `migrate`
 * (convert files whose form on disk disagrees with the policy, offline):
 * their options, checks and output. The work is in vault/.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "mounted.h"
#include "policy.h"
#include "usage.h"
#include "vault.h"
#include "vault_args.h"

/* init: a missing BACKING is created with its missing parents, each 0700
 * (only its owner, root, may reach the files around the mount). */
static int make_backing(const struct args *a)
{
	char failed[PATH_MAX];
	struct stat st;
	int r;

	if (lstat(a->backing, &st) == 0 || errno != ENOENT)
		return 0; /* check_backing says what is wrong with it, if anything */
	if ((r = wfs_make_dirs(a->backing, 0700, failed, sizeof(failed))) != 0) {
		error("cannot create '%s': %s", failed, strerror(-r));
		return 1;
	}
	return 0;
}

/* ---- init ----------------------------------------------------------- */

/* --encrypt-names: files already there would keep plain names that the
 * policy wants encrypted, and migrate does not encrypt names yet. */
static bool backing_empty(const char *backing)
{
	DIR *d = opendir(backing);
	struct dirent *e;
	bool empty = d != NULL;
	while (d && empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
			!strcmp(e->d_name, WFS_VAULT_DIR);
	if (d)
		closedir(d);
	if (!empty)
		error("'%s' is not empty: --encrypt-names needs an empty directory (the names of "
		      "files already there would stay plain)",
		      backing);
	return empty;
}

struct count {
	const char *backing;
	const struct wfs_policy *pol;
	unsigned files, disagree, errors;
};

static int count_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct count *c = arg;
	struct wfs_decision d;
	enum wfs_form form;
	int r;

	if (wfs_is_migrate_temp(name))
		return 0;
	if ((r = wfs_vault_file_form(dfd, name, st, &form)) != 0) {
		error("cannot read '%s%s': %s", c->backing, rel, strerror(-r));
		c->errors++;
		return 0;
	}
	c->files++;
	wfs_policy_classify(c->pol, rel, strlen(rel), &d);
	if (wfs_vault_form_fix(d.cls, form) != WFS_FIX_NONE)
		c->disagree++;
	return 0;
}

static const char init_usage[] =
	"usage: wardfs init [options] BACKING\n"
	"\n"
	"Creates a vault in BACKING/.wardfs: a random master key wrapped under a\n"
	"key derived from a passphrase (Argon2id) and under a recovery key that is\n"
	"printed once. BACKING may be empty or already hold files; if it does not\n"
	"exist it is created, with its missing parents, mode 0700.\n"
	"\n"
	"  --passfile FILE     read the passphrase from the first line of FILE\n"
	"  --extpass CMD       read it from the first line printed by CMD (/bin/sh -c)\n"
	"  --kdf-memory MIB    Argon2id memory in MiB (default 512)\n"
	"  --kdf-ops N         Argon2id passes (default 3)\n"
	"  --policy FILE       policy for counting files stored in the wrong form\n"
	"                      (default " WFS_DEFAULT_POLICY ")\n"
	"  --encrypt-names     store the names of sensitive paths encrypted, not only\n"
	"                      their contents (BACKING must be empty); fixed for the\n"
	"                      vault's life\n"
	"  --allow-reachable   accept a BACKING that users other than root can reach\n"
	"  -h, --help          show this help\n"
	"\n"
	"Without --passfile or --extpass the passphrase is read from stdin when it\n"
	"is not a terminal, else asked twice on the terminal. BACKING must be closed\n"
	"to users other than root (a directory on its path root's, without search\n"
	"permission for others; none above it changeable by others), or they could\n"
	"read its files around the policy and the audit.\n";

int wfs_cmd_init(int argc, char **argv)
{
	struct args a = {0};
	struct wfs_kdf_params kp;
	struct wfs_policy *pol = NULL;
	const struct opt opts[] = {
		OPT_PASSPHRASE(&a.po),
		OPT_KDF(&a.kdf_mib, &a.kdf_ops),
		OPT_STRING("policy", 0, &a.policy),
		OPT_BOOL("encrypt-names", 0, &a.encrypt_names),
		OPT_BOOL("allow-reachable", 0, &a.allow_reachable),
		OPT_END(),
	};
	int status;

	if (parse_args(&a, argc, argv, opts, init_usage, &status) != 0)
		return status;
	status = 1;
	if (make_backing(&a) != 0 || check_backing(&a) != 0)
		goto out;
	if (a.encrypt_names && !backing_empty(a.backing))
		goto out;
	if (!a.allow_reachable && wfs_backing_private(a.backing, true) != 0)
		goto out;
	char what[PATH_MAX + 64];
	if (!wfs_vault_exists(a.backing) && wfs_vault_orphaned(a.backing, what, sizeof what)) {
		wfs_vault_say_orphaned(a.backing, what);
		goto out;
	}
	wfs_kdf_params_default(&kp);
	if (a.kdf_mib)
		kp.memlimit = (size_t)a.kdf_mib << 20;
	if (a.kdf_ops)
		kp.opslimit = a.kdf_ops;
	if (wfs_vault_create(a.backing, &a.po, &kp, a.encrypt_names ? WFS_VAULT_ENCRYPT_NAMES : 0,
			     NULL) != 0)
		goto out;
	status = 0;

	if (wfs_vault_load_policy(a.policy, 0, &pol) == 0) {
		struct count c = {.backing = a.backing, .pol = pol};

		(void)wfs_vault_walk(a.backing, count_one, &c, &c.errors);
		if (c.disagree > 0)
			printf("%u file%s with the policy; run 'wardfs migrate %s' to convert "
			       "%s.\n",
			       c.disagree, c.disagree == 1 ? " disagrees" : "s disagree", a.backing,
			       c.disagree == 1 ? "it" : "them");
		wfs_policy_free(pol);
	}
out:
	free(a.backing);
	return status;
}

/* ---- passwd --------------------------------------------------------- */

static const char passwd_usage[] =
	"usage: wardfs passwd [options] BACKING\n"
	"\n"
	"Replaces a passphrase slot of the vault in BACKING: unlocks it with the\n"
	"current passphrase (or the recovery key, or an escrow key), then wraps\n"
	"the master key under the new passphrase in that slot. Files are not\n"
	"rewritten; the other slots (recovery key, escrow) stay valid.\n"
	"\n"
	"  --slot ID                the passphrase slot to replace (default: the one\n"
	"                           that unlocked, or the only one; see 'wardfs key list')\n"
	"  --passfile FILE          current passphrase from the first line of FILE\n"
	"  --extpass CMD            current passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE (an admin's)\n"
	"  --new-passfile FILE      new passphrase from the first line of FILE\n"
	"  --kdf-memory MIB         new Argon2id memory in MiB (default: keep)\n"
	"  --kdf-ops N              new Argon2id passes (default: keep)\n"
	"  -h, --help               show this help\n"
	"\n"
	"Without files, passphrases are read as lines from stdin when it is not a\n"
	"terminal (current, then new), else asked on the terminal (new one twice).\n";

/*
 * The passphrase slot passwd replaces: --slot, else the one that unlocked,
 * else the only one. Its cost in *kp, changed by --kdf-*. 0, or 1 after
 * one line of error.
 */
static int passwd_slot(const struct args *a, const uint8_t *kf, size_t kflen, uint16_t used,
		       uint16_t *id, struct wfs_kdf_params *kp)
{
	struct wfs_keyfile_info info;
	const struct wfs_slot_info *pick = NULL;
	unsigned long long want = 0;
	size_t npass = 0;

	if (wfs_keyfile_parse(kf, kflen, &info) != 0)
		return error("the keyfile of '%s' is corrupt", a->backing);
	if (a->slot != NULL && parse_uint(a->slot, 0, UINT16_MAX, &want) != 0)
		return error("'%s' is not a slot id (see 'wardfs key list %s')", a->slot,
			     a->backing);
	for (size_t i = 0; i < info.nslots; i++) {
		const struct wfs_slot_info *s = &info.slot[i];
		if (s->type != WFS_SLOT_PASSPHRASE)
			continue;
		npass++;
		if (a->slot != NULL ? s->id == want : s->id == used || pick == NULL)
			if (pick == NULL || s->id == used)
				pick = s;
	}
	if (a->slot != NULL && (pick == NULL || pick->id != want))
		return error("'%s' has no passphrase slot %llu (see 'wardfs key list %s')",
			     a->backing, want, a->backing);
	if (pick == NULL)
		return error("'%s' has no passphrase slot; add one with 'wardfs key add %s --type "
			     "passphrase'",
			     a->backing, a->backing);
	if (a->slot == NULL && pick->id != used && npass > 1)
		return error("'%s' has %zu passphrase slots; say which to replace with --slot",
			     a->backing, npass);
	*id = pick->id;
	*kp = pick->kdf;
	return 0;
}

/* The type name of slot id in kf ("?" if none). */
static const char *slot_type_of(const uint8_t *kf, size_t kflen, uint16_t id)
{
	static struct wfs_keyfile_info info;

	if (wfs_keyfile_parse(kf, kflen, &info) == 0)
		for (size_t i = 0; i < info.nslots; i++)
			if (info.slot[i].id == id)
				return wfs_slot_type_name(info.slot[i].type);
	return "?";
}

int wfs_cmd_passwd(int argc, char **argv)
{
	struct args a = {0};
	struct wfs_kdf_params kp;
	struct wfs_keys *keys = NULL;
	uint8_t *kf = NULL, *nkf = NULL;
	size_t kflen, nkflen, passlen;
	char *pass = NULL;
	const struct opt opts[] = {
		OPT_PASS_SOURCES(&a.po),
		OPT_STRING("new-passfile", 0, &a.new_passfile),
		OPT_STRING("slot", 0, &a.slot),
		OPT_KDF(&a.kdf_mib, &a.kdf_ops),
		OPT_END(),
	};
	char said[160];
	uint16_t used = 0, id = 0;
	int r, status;

	if (parse_args(&a, argc, argv, opts, passwd_usage, &status) != 0)
		return status;
	status = 1;
	if (check_backing(&a) != 0 || crypto_start() != 0)
		goto out;
	a.po.may_write = true;
	/* "OLD\nNEW\n" on stdin (pam_wardfs): the first line is the current
	 * secret, so the TPM must not stand in for it */
	a.po.no_tpm2 = a.new_passfile == NULL && !isatty(STDIN_FILENO);
	if ((r = wfs_vault_unlock_slot(a.backing, &a.po, &keys, &used)) != 0) {
		if (r == -EACCES)
			wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, EACCES,
					"passwd: the passphrase (or recovery key) was wrong");
		goto out;
	}
	if ((r = wfs_vault_read_keyfile(a.backing, &kf, &kflen)) != 0) {
		error("cannot read the keyfile of '%s': %s", a.backing, strerror(-r));
		goto out;
	}
	if (passwd_slot(&a, kf, kflen, used, &id, &kp) != 0)
		goto out;
	if (a.kdf_mib)
		kp.memlimit = (size_t)a.kdf_mib << 20;
	if (a.kdf_ops)
		kp.opslimit = a.kdf_ops;
	if (wfs_secret_read(a.new_passfile, NULL, "New passphrase: ", true, &pass, &passlen,
			    NULL) != 0)
		goto out;
	r = wfs_keyfile_rewrap(kf, kflen, keys, id, pass, passlen, &kp, &nkf, &nkflen);
	wfs_secret_free(pass);
	if (r != 0) {
		error("cannot wrap the key: %s", strerror(-r));
		goto out;
	}
	if ((r = wfs_vault_write(a.backing, WFS_VAULT_KEYFILE, nkf, nkflen, 0600)) != 0) {
		error("cannot write '%s/" WFS_VAULT_DIR "/" WFS_VAULT_KEYFILE "': %s", a.backing,
		      strerror(-r));
		goto out;
	}
	if ((r = wfs_vault_write_config(a.backing, &kp)) != 0)
		warning("cannot update '%s/" WFS_VAULT_DIR "/" WFS_VAULT_CONFIG "': %s", a.backing,
			strerror(-r));
	printf("Passphrase changed for %s (slot %u).\n", a.backing, (unsigned)id);
	snprintf(said, sizeof(said),
		 "passwd: the passphrase of slot %u was changed (unlocked with %s slot %u)",
		 (unsigned)id, slot_type_of(kf, kflen, used), (unsigned)used);
	wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, 0, said);
	status = 0;
out:
	wfs_keys_free(keys);
	free(kf);
	free(nkf);
	free(a.backing);
	return status;
}

/* ---- fsck ----------------------------------------------------------- */

/* --repair changes files under a daemon that would not know: refused
 * while mounted. Every repair is an audit row, so the db must open. */
static int fsck_open_audit(const struct args *a, struct wfs_fsck *f)
{
	char real[PATH_MAX], mnt[PATH_MAX], err[256];
	const char *db = a->audit_db ? a->audit_db : WFS_DEFAULT_AUDIT_DB;

	if (realpath(a->backing, real) != NULL && wfs_backing_mounted(real, mnt, sizeof(mnt)) > 0) {
		error("'%s' is mounted on '%s': unmount it before --repair", a->backing, mnt);
		return -1;
	}
	struct wfs_audit_opts o = {.db_path = db, .mount_id = a->backing};
	if (wfs_audit_open(&o, &f->audit, err, sizeof(err)) != 0) {
		error("cannot open the audit db '%s' to record repairs: %s", db, err);
		return -1;
	}
	return 0;
}

static const char fsck_usage[] =
	"usage: wardfs fsck [options] BACKING\n"
	"\n"
	"Verifies the header and every block of every encrypted file under BACKING\n"
	"(symlinks are not followed, BACKING/.wardfs is skipped) and prints each\n"
	"damaged one as 'PATH: block N at offset O: WHY'. In a vault with encrypted\n"
	"names it also checks every name (paths are printed as the mount shows\n"
	"them) and prints each one the mount cannot show as 'DIR: 'NAME': WHY',\n"
	"NAME as it is on disk.\n"
	"\n"
	"  --repair                 cut files whose damage is all at their end (a\n"
	"                           write cut short by a crash, a file cut short) back\n"
	"                           to the intact blocks before it, remove long names'\n"
	"                           sidecars a crash left without their entry, and\n"
	"                           record each repair in the audit db; BACKING must\n"
	"                           not be mounted\n"
	"  --hole-damaged           with --repair, also damage that intact blocks follow\n"
	"                           (what a power cut leaves of writes nobody fsync'ed):\n"
	"                           each damaged block becomes a hole that reads as\n"
	"                           zeros; the bytes it held are lost\n"
	"  --audit-db FILE          the audit db for --repair (default " WFS_DEFAULT_AUDIT_DB ")\n"
	"  --passfile FILE          passphrase from the first line of FILE\n"
	"  --extpass CMD            passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE (an admin's)\n"
	"  -h, --help               show this help\n"
	"\n"
	"Exit status: 0 no damage (or, with --repair, all of it repaired), 1 damage\n"
	"found, 2 a file or the vault could not be checked (and no damage found).\n";

int wfs_cmd_fsck(int argc, char **argv)
{
	struct args a = {0};
	struct wfs_keys *keys = NULL;
	struct wfs_fsck f = {0};
	const struct opt opts[] = {
		OPT_BOOL("repair", 0, &a.repair),
		OPT_BOOL("hole-damaged", 0, &a.hole_damaged),
		OPT_STRING("audit-db", 0, &a.audit_db),
		OPT_PASS_SOURCES(&a.po),
		OPT_END(),
	};
	int r, status;

	if (parse_args(&a, argc, argv, opts, fsck_usage, &status) != 0)
		return status;
	status = 2;
	if (a.audit_db && !a.repair) {
		free(a.backing);
		return usage_error("--audit-db is for --repair");
	}
	if (a.hole_damaged && !a.repair) {
		free(a.backing);
		return usage_error("--hole-damaged is for --repair");
	}
	f.hole_damaged = a.hole_damaged;
	if (check_backing(&a) != 0 || crypto_start() != 0)
		goto out;
	if (a.repair && fsck_open_audit(&a, &f) != 0)
		goto out;
	if (wfs_vault_unlock(a.backing, &a.po, &keys) != 0)
		goto out;
	f.backing = a.backing;
	f.keys = keys;
	if ((r = wfs_fsck(&f)) != 0) {
		error("cannot walk '%s': %s", a.backing, strerror(-r));
		goto out;
	}
	fprintf(stderr, "%s: %u encrypted file%s checked, %u damaged", prog_name(), f.files,
		f.files == 1 ? "" : "s", f.damaged);
	if (f.errors)
		fprintf(stderr, ", %u could not be read", f.errors);
	if (f.temps)
		fprintf(stderr, ", %u leftover migrate file%s (run 'wardfs migrate')", f.temps,
			f.temps == 1 ? "" : "s");
	if (f.unmarked)
		fprintf(stderr, ", %u unmarked file%s that look%s encrypted", f.unmarked,
			f.unmarked == 1 ? "" : "s", f.unmarked == 1 ? "s" : "");
	if (f.bad_names)
		fprintf(stderr, ", %u name%s the mount cannot show", f.bad_names,
			f.bad_names == 1 ? "" : "s");
	fprintf(stderr, "\n");
	if (f.repaired)
		error("%u file%s repaired", f.repaired, f.repaired == 1 ? "" : "s");
	status = f.damaged + f.bad_names > f.repaired ? 1 : f.errors ? 2 : 0;
out:
	wfs_audit_close(f.audit);
	wfs_keys_free(keys);
	free(a.backing);
	return status;
}

/* ---- migrate -------------------------------------------------------- */

static const char migrate_usage[] =
	"usage: wardfs migrate [options] BACKING\n"
	"\n"
	"Converts each file whose form on disk disagrees with the policy: sensitive\n"
	"files stored plain are encrypted, public and deny files stored encrypted\n"
	"are decrypted. It refuses a mounted BACKING. Each file is written\n"
	"to .NAME" WFS_MIGRATE_SUFFIX " beside it, with the original's mode, owner,\n"
	"times and extended attributes (its POSIX ACL exactly), then renamed over\n"
	"it; running migrate again after an interruption removes leftovers and\n"
	"carries on. Files with more than one hard link are skipped. In a vault\n"
	"with encrypted names, names are moved into the form the policy asks for\n"
	"too (sensitive paths encrypted, others plain); such a vault's dry run\n"
	"also needs its key, to show the names.\n"
	"\n"
	"  --encrypt-names          make the vault one with encrypted names (for good),\n"
	"                           then encrypt the names of its sensitive paths\n"
	"  --dry-run                list what would be converted, change nothing\n"
	"  --yes                    decrypt without asking (files the policy no longer\n"
	"                           calls sensitive are otherwise listed, and asked for)\n"
	"  --policy FILE            the policy (default " WFS_DEFAULT_POLICY ")\n"
	"  --passfile FILE          passphrase from the first line of FILE\n"
	"  --extpass CMD            passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE (an admin's)\n"
	"  -h, --help               show this help\n"
	"\n"
	"Exit status: 0 all converted, 1 some file was not converted or read.\n";

int wfs_cmd_migrate(int argc, char **argv)
{
	struct args a = {0};
	struct wfs_keys *keys = NULL;
	struct wfs_policy *pol = NULL;
	struct wfs_migrate m = {0};
	const struct opt opts[] = {
		OPT_BOOL("dry-run", 0, &a.dry_run),
		OPT_BOOL("yes", 0, &a.yes),
		OPT_BOOL("encrypt-names", 0, &a.encrypt_names),
		OPT_STRING("policy", 0, &a.policy),
		OPT_PASS_SOURCES(&a.po),
		OPT_END(),
	};
	int r = 0, status;

	if (parse_args(&a, argc, argv, opts, migrate_usage, &status) != 0)
		return status;
	status = 1;
	if (check_backing(&a) != 0 || wfs_vault_load_policy(a.policy, 0, &pol) != 0)
		goto out;
	if (!wfs_vault_exists(a.backing)) {
		error("'%s' is not a wardfs vault; see 'wardfs init'", a.backing);
		goto out;
	}
	/* A daemon serving the vault would not know its files changed form. */
	char real[PATH_MAX], mnt[PATH_MAX];
	if (!a.dry_run && realpath(a.backing, real) != NULL &&
	    wfs_backing_mounted(real, mnt, sizeof(mnt)) > 0) {
		error("'%s' is mounted on '%s': unmount it first", a.backing, mnt);
		goto out;
	}
	/* The key first, also when nothing turns out to need it: a wrong
	 * passphrase must say so, not "nothing to convert". A dry run of a
	 * vault with encrypted names needs it to show them. */
	bool names_vault =
		a.encrypt_names || (wfs_vault_flags(a.backing) & WFS_VAULT_ENCRYPT_NAMES);
	if ((!a.dry_run || names_vault) &&
	    (crypto_start() != 0 || (r = wfs_vault_unlock(a.backing, &a.po, &keys)))) {
		if (r == -EACCES)
			wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, EACCES,
					"migrate: the passphrase (or recovery key) was wrong");
		goto out;
	}
	/* From here on the vault's names are encrypted (lookups find a name
	 * in either form, so a run cut short is carried on by the next). */
	if (a.encrypt_names && !a.dry_run &&
	    !(wfs_keys_vault_flags(keys) & WFS_VAULT_ENCRYPT_NAMES)) {
		if (wfs_migrate_check_reserved(a.backing) != 0 ||
		    wfs_vault_set_flags(a.backing, keys,
					wfs_keys_vault_flags(keys) | WFS_VAULT_ENCRYPT_NAMES) != 0)
			goto out;
		wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, 0,
				"migrate: the vault now encrypts the names of sensitive paths");
	}
	m.backing = a.backing;
	m.pol = pol;
	m.dry_run = a.dry_run;
	m.names = names_vault && keys &&
		  (a.encrypt_names || (wfs_keys_vault_flags(keys) & WFS_VAULT_ENCRYPT_NAMES));
	m.keys = keys;
	char *names = NULL;
	size_t names_len = 0;
	if (!a.dry_run && !a.yes && (m.decrypts = open_memstream(&names, &names_len)) == NULL) {
		error("out of memory");
		goto out;
	}
	r = wfs_migrate_scan(&m);
	if (m.decrypts)
		fclose(m.decrypts);
	if (r != 0) {
		free(names);
		goto out;
	}
	/* Nothing becomes plaintext unasked: list it, then ask on a terminal
	 * or want --yes. */
	if (m.to_decrypt && !a.dry_run && !a.yes) {
		fprintf(stderr, "%s: %u file%s would be decrypted and stored in plaintext:\n%s",
			prog_name(), m.to_decrypt, m.to_decrypt == 1 ? "" : "s",
			names ? names : "");
		bool yes = false;
		if (isatty(STDIN_FILENO)) {
			char line[16] = "";
			fprintf(stderr, "Decrypt %s? [y/N] ", m.to_decrypt == 1 ? "it" : "them");
			yes = fgets(line, sizeof line, stdin) && (line[0] == 'y' || line[0] == 'Y');
		}
		free(names);
		if (!yes) {
			error("nothing changed; run it again with --yes to decrypt them, or "
			      "change the policy");
			goto out;
		}
	} else {
		free(names);
	}
	if (a.dry_run) {
		printf("%u file%s would be converted", m.todo, m.todo == 1 ? "" : "s");
		if (m.temps)
			printf(", %u leftover file%s would be removed", m.temps,
			       m.temps == 1 ? "" : "s");
		printf("\n");
		status = m.errors ? 1 : 0;
		goto out;
	}
	if (m.todo == 0) {
		printf("Nothing to convert: every file agrees with the policy");
		if (m.temps)
			printf(" (%u leftover file%s removed)", m.temps, m.temps == 1 ? "" : "s");
		printf(".\n");
		status = m.errors ? 1 : 0;
		goto out;
	}
	m.progress = isatty(STDERR_FILENO);
	if (wfs_migrate_convert(&m) != 0)
		goto out;
	printf("Encrypted %u, decrypted %u, skipped %u, failed %u", m.encrypted, m.decrypted,
	       m.skipped, m.failed);
	if (m.names)
		printf("; names encrypted %u, decrypted %u", m.names_encrypted, m.names_decrypted);
	if (m.names_conflict)
		printf(", %u stored in both forms (left as they are)", m.names_conflict);
	char said[200];
	int n = snprintf(said, sizeof said,
			 "migrate: encrypted %u, decrypted %u, skipped %u, failed %u", m.encrypted,
			 m.decrypted, m.skipped, m.failed);
	if (m.names && n > 0 && (size_t)n < sizeof said)
		snprintf(said + n, sizeof said - (size_t)n, "; names encrypted %u, decrypted %u",
			 m.names_encrypted, m.names_decrypted);
	wfs_vault_audit(a.backing, NULL, prog_name(), WFS_AUDIT_VAULT, m.failed ? EIO : 0, said);
	if (m.temps)
		printf("; removed %u leftover file%s", m.temps, m.temps == 1 ? "" : "s");
	printf(".\n");
	status = m.failed || m.skipped || m.errors || m.names_conflict ? 1 : 0;
out:
	wfs_migrate_done(&m);
	wfs_keys_free(keys);
	wfs_policy_free(pol);
	free(a.backing);
	return status;
}
