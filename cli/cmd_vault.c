/*
 * cmd_vault.c - the vault subcommands: `wardfs init` (create the keyfile,
 * print the recovery key), `passwd` (rewrap under a new passphrase),
 * `fsck` (verify every block of every encrypted file) and `migrate`
 * (convert files whose form on disk disagrees with the policy, offline).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "commands.h"
#include "mounted.h"
#include "policy.h"
#include "vault.h"

enum {
	OPT_PASSFILE = 256,
	OPT_EXTPASS,
	OPT_NEW_PASSFILE,
	OPT_KDF_MEMORY,
	OPT_KDF_OPS,
	OPT_POLICY,
	OPT_DRY_RUN,
	OPT_RECOVERY_KEY,
	OPT_RECOVERY_KEY_FILE,
	OPT_ALLOW_REACHABLE,
	OPT_REPAIR,
	OPT_HOLE_DAMAGED,
	OPT_AUDIT_DB,
	OPT_YES,
};

static const struct option all_opts[] = {
	{"passfile", required_argument, NULL, OPT_PASSFILE},
	{"extpass", required_argument, NULL, OPT_EXTPASS},
	{"new-passfile", required_argument, NULL, OPT_NEW_PASSFILE},
	{"kdf-memory", required_argument, NULL, OPT_KDF_MEMORY},
	{"kdf-ops", required_argument, NULL, OPT_KDF_OPS},
	{"policy", required_argument, NULL, OPT_POLICY},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"recovery-key", no_argument, NULL, OPT_RECOVERY_KEY},
	{"recovery-key-file", required_argument, NULL, OPT_RECOVERY_KEY_FILE},
	{"allow-reachable", no_argument, NULL, OPT_ALLOW_REACHABLE},
	{"repair", no_argument, NULL, OPT_REPAIR},
	{"hole-damaged", no_argument, NULL, OPT_HOLE_DAMAGED},
	{"audit-db", required_argument, NULL, OPT_AUDIT_DB},
	{"yes", no_argument, NULL, OPT_YES},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Everything any vault command may be given; each command says which it takes. */
struct args {
	const char *cmd;
	struct wfs_pass_opts po;
	const char *new_passfile, *policy, *audit_db;
	uint64_t kdf_mib, kdf_ops; /* 0: not given */
	bool dry_run, help, allow_reachable, repair, hole_damaged, yes;
	char *backing; /* normalized copy of the one operand */
};

static char prog[64];

static int usage_error(const struct args *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'wardfs %s --help'\n", a->cmd);
	return 2;
}

static int parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *opt_name(int c)
{
	for (const struct option *o = all_opts; o->name != NULL; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

/* Which options a command accepts. */
#define A_PASS	   0x1	 /* --passfile, --extpass */
#define A_RECOVERY 0x2	 /* --recovery-key, --recovery-key-file */
#define A_KDF	   0x4	 /* --kdf-memory, --kdf-ops */
#define A_NEWPASS  0x8	 /* --new-passfile */
#define A_POLICY   0x10	 /* --policy */
#define A_DRYRUN   0x20	 /* --dry-run */
#define A_REACH	   0x40	 /* --allow-reachable */
#define A_REPAIR   0x80	 /* --repair, --audit-db */
#define A_YES	   0x100 /* --yes */

/* 0, or the exit status for bad usage (2) after printing one line. */
static int parse_args(struct args *a, int argc, char **argv, unsigned allowed)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->cmd = argv[0];
	snprintf(prog, sizeof(prog), "wardfs %s", argv[0]);
	wfs_vault_set_prog(prog);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", all_opts, NULL)) != -1) {
		unsigned need = 0;

		switch (c) {
		case 'h':
			a->help = true;
			return 0;
		case OPT_PASSFILE:
			a->po.passfile = optarg, need = A_PASS;
			break;
		case OPT_EXTPASS:
			a->po.extpass = optarg, need = A_PASS;
			break;
		case OPT_RECOVERY_KEY:
			a->po.recovery_from_stdin = true, need = A_RECOVERY;
			break;
		case OPT_RECOVERY_KEY_FILE:
			a->po.recovery_key_file = optarg, need = A_RECOVERY;
			break;
		case OPT_NEW_PASSFILE:
			a->new_passfile = optarg, need = A_NEWPASS;
			break;
		case OPT_POLICY:
			a->policy = optarg, need = A_POLICY;
			break;
		case OPT_DRY_RUN:
			a->dry_run = true, need = A_DRYRUN;
			break;
		case OPT_YES:
			a->yes = true, need = A_YES;
			break;
		case OPT_ALLOW_REACHABLE:
			a->allow_reachable = true, need = A_REACH;
			break;
		case OPT_REPAIR:
			a->repair = true, need = A_REPAIR;
			break;
		case OPT_AUDIT_DB:
			a->audit_db = optarg, need = A_REPAIR;
			break;
		case OPT_HOLE_DAMAGED:
			a->hole_damaged = true, need = A_REPAIR;
			break;
		case OPT_KDF_MEMORY:
			need = A_KDF;
			if (parse_num(optarg, 1, 4096, &a->kdf_mib) != 0)
				return usage_error(
					a, "--kdf-memory takes MiB from 1 to 4096, not '%s'",
					optarg);
			break;
		case OPT_KDF_OPS:
			need = A_KDF;
			if (parse_num(optarg, 1, 64, &a->kdf_ops) != 0)
				return usage_error(a, "--kdf-ops takes 1 to 64 passes, not '%s'",
						   optarg);
			break;
		case ':':
			return usage_error(a, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				return usage_error(a, "unknown option '-%c'", optopt);
			return usage_error(a, "unknown option '%s'", argv[optind - 1]);
		}
		if (!(allowed & need))
			return usage_error(a, "unknown option '--%s'", opt_name(c));
	}
	if (a->po.passfile && a->po.extpass)
		return usage_error(a, "give --passfile or --extpass, not both");
	if (a->po.recovery_key_file && a->po.recovery_from_stdin)
		return usage_error(a, "give --recovery-key or --recovery-key-file, not both");
	if ((a->po.recovery_key_file || a->po.recovery_from_stdin) &&
	    (a->po.passfile || a->po.extpass))
		return usage_error(a, "a recovery key replaces the passphrase options");
	if (optind >= argc)
		return usage_error(a, "missing BACKING directory");
	if (optind + 1 < argc)
		return usage_error(a, "unexpected argument '%s'", argv[optind + 1]);
	if ((a->backing = strdup(argv[optind])) == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 2;
	}
	for (size_t n = strlen(a->backing); n > 1 && a->backing[n - 1] == '/'; n--)
		a->backing[n - 1] = '\0';
	return 0;
}

/* A usable backing directory, or 1 after one line of error. */
static int check_backing(const struct args *a)
{
	struct stat st;

	if (stat(a->backing, &st) != 0) {
		fprintf(stderr, "%s: cannot access '%s': %s\n", prog, a->backing, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: '%s' is not a directory\n", prog, a->backing);
		return 1;
	}
	return 0;
}

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
		fprintf(stderr, "%s: cannot create '%s': %s\n", prog, failed, strerror(-r));
		return 1;
	}
	return 0;
}

static int crypto_start(void)
{
	int r = wfs_crypto_init();

	if (r != 0)
		fprintf(stderr, "%s: cannot start the crypto library: %s\n", prog, strerror(-r));
	return r;
}

/* ---- init ----------------------------------------------------------- */

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
	if ((r = wfs_file_form(dfd, name, st, &form)) != 0) {
		fprintf(stderr, "%s: cannot read '%s%s': %s\n", prog, c->backing, rel,
			strerror(-r));
		c->errors++;
		return 0;
	}
	c->files++;
	wfs_policy_classify(c->pol, rel, strlen(rel), &d);
	if (wfs_form_fix(d.cls, form) != WFS_FIX_NONE)
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
	struct args a;
	struct wfs_kdf_params kp;
	struct wfs_policy *pol = NULL;
	int r, status = 1;

	if ((r = parse_args(&a, argc, argv, A_PASS | A_KDF | A_POLICY | A_REACH)) != 0)
		return r;
	if (a.help) {
		fputs(init_usage, stdout);
		return 0;
	}
	if (make_backing(&a) != 0 || check_backing(&a) != 0)
		goto out;
	if (!a.allow_reachable && wfs_backing_private(a.backing, prog, true) != 0)
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
	if (wfs_vault_create(a.backing, &a.po, &kp, NULL) != 0)
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
	"Changes the passphrase of the vault in BACKING: unlocks it with the\n"
	"current passphrase (or the recovery key), then wraps the master key under\n"
	"the new one. Files are not rewritten; the recovery key stays valid.\n"
	"\n"
	"  --passfile FILE          current passphrase from the first line of FILE\n"
	"  --extpass CMD            current passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --new-passfile FILE      new passphrase from the first line of FILE\n"
	"  --kdf-memory MIB         new Argon2id memory in MiB (default: keep)\n"
	"  --kdf-ops N              new Argon2id passes (default: keep)\n"
	"  -h, --help               show this help\n"
	"\n"
	"Without files, passphrases are read as lines from stdin when it is not a\n"
	"terminal (current, then new), else asked on the terminal (new one twice).\n";

int wfs_cmd_passwd(int argc, char **argv)
{
	struct args a;
	struct wfs_kdf_params kp;
	struct wfs_keys *keys = NULL;
	uint8_t *kf = NULL, *nkf = NULL;
	size_t kflen, nkflen, passlen;
	char *pass = NULL;
	int r, status = 1;

	if ((r = parse_args(&a, argc, argv, A_PASS | A_RECOVERY | A_KDF | A_NEWPASS)) != 0)
		return r;
	if (a.help) {
		fputs(passwd_usage, stdout);
		return 0;
	}
	if (check_backing(&a) != 0 || crypto_start() != 0)
		goto out;
	if ((r = wfs_vault_unlock(a.backing, &a.po, &keys)) != 0) {
		if (r == -EACCES)
			wfs_vault_audit(a.backing, NULL, WFS_AUDIT_VAULT, EACCES,
					"passwd: the passphrase (or recovery key) was wrong");
		goto out;
	}
	if ((r = wfs_vault_read_keyfile(a.backing, &kf, &kflen)) != 0 ||
	    (r = wfs_keyfile_check(kf, kflen, &kp)) != 0) {
		fprintf(stderr, "%s: cannot read the keyfile of '%s': %s\n", prog, a.backing,
			strerror(-r));
		goto out;
	}
	if (a.kdf_mib)
		kp.memlimit = (size_t)a.kdf_mib << 20;
	if (a.kdf_ops)
		kp.opslimit = a.kdf_ops;
	if (wfs_secret_read(a.new_passfile, NULL, "New passphrase: ", true, &pass, &passlen,
			    NULL) != 0)
		goto out;
	r = wfs_keyfile_rewrap(kf, kflen, keys, pass, passlen, &kp, &nkf, &nkflen);
	wfs_secret_free(pass);
	if (r != 0) {
		fprintf(stderr, "%s: cannot wrap the key: %s\n", prog, strerror(-r));
		goto out;
	}
	if ((r = wfs_vault_write(a.backing, WFS_VAULT_KEYFILE, nkf, nkflen, 0600)) != 0) {
		fprintf(stderr,
			"%s: cannot write '%s/" WFS_VAULT_DIR "/" WFS_VAULT_KEYFILE "': %s\n", prog,
			a.backing, strerror(-r));
		goto out;
	}
	if ((r = wfs_vault_write_config(a.backing, &kp)) != 0)
		fprintf(stderr,
			"%s: warning: cannot update '%s/" WFS_VAULT_DIR "/" WFS_VAULT_CONFIG
			"': %s\n",
			prog, a.backing, strerror(-r));
	printf("Passphrase changed for %s.\n", a.backing);
	wfs_vault_audit(
		a.backing, NULL, WFS_AUDIT_VAULT, 0,
		a.po.recovery_key_file || a.po.recovery_from_stdin
			? "passwd: the passphrase was changed (unlocked with the recovery key)"
			: "passwd: the passphrase was changed");
	status = 0;
out:
	wfs_keys_free(keys);
	free(kf);
	free(nkf);
	free(a.backing);
	return status;
}

/* ---- fsck ----------------------------------------------------------- */

struct fsck {
	const char *backing;
	const struct wfs_keys *keys;
	const char *rel;
	struct wfs_audit *audit; /* --repair: where each repair is recorded */
	bool hole_damaged;	 /* --hole-damaged */
	unsigned files, damaged, errors, temps, unmarked, repaired;
	long bad_here;
};

/* An audit row for a repair; a repair the db does not hold is an error. */
static void fsck_record(struct fsck *f, const char *detail)
{
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_INTEGRITY,
		.path = f->rel,
		.form = "encrypted",
		.allowed = true,
		.pid = getpid(),
		.comm = "wardfs fsck",
		.exe = "wardfs fsck --repair",
		.detail = detail,
	};
	if (wfs_audit_record(f->audit, &ev) != 0) {
		fprintf(stderr, "%s: the repair of '%s%s' is not in the audit db\n", prog,
			f->backing, f->rel);
		f->errors++;
	}
}

/*
 * --repair: a file whose damage is all at its end (a crash cut a write that
 * grew it, or the file was cut) is trimmed back to the intact blocks before
 * it, and the repair is an audit row; damage followed by intact blocks is
 * left for a backup to fix, or, with --hole-damaged, each such block
 * becomes a hole first (its bytes lost, the rest of the file readable).
 */
static void fsck_repair(struct fsck *f, int fd)
{
	char detail[160];
	long holed = 0;

	if (f->hole_damaged) {
		holed = wfs_content_hole_damaged(f->keys, fd);
		if (holed < 0 && holed != -EOPNOTSUPP) {
			fprintf(stderr, "%s: cannot repair '%s%s': %s\n", prog, f->backing, f->rel,
				strerror((int)-holed));
			f->errors++;
			return;
		}
		if (holed > 0) {
			snprintf(detail, sizeof(detail),
				 "fsck --repair --hole-damaged: %ld damaged block%s made holes "
				 "(their bytes lost)",
				 holed, holed == 1 ? "" : "s");
			printf("%s%s: %ld damaged block%s made holes (they read as zeros)\n",
			       f->backing, f->rel, holed, holed == 1 ? "" : "s");
			fsck_record(f, detail);
			if (wfs_content_verify(f->keys, fd, NULL, NULL) == 0) {
				f->repaired++; /* the holes were all of it */
				return;
			}
		}
	}
	off_t was, kept = wfs_content_trim_tail(f->keys, fd, &was);
	if (kept == -EIO) {
		printf("%s%s: not repaired: intact blocks follow the damage (restore the file "
		       "from a backup, or make the damaged blocks holes: --hole-damaged)\n",
		       f->backing, f->rel);
		return;
	}
	if (kept < 0) {
		fprintf(stderr, "%s: cannot repair '%s%s': %s\n", prog, f->backing, f->rel,
			strerror((int)-kept));
		f->errors++;
		return;
	}
	f->repaired++;
	snprintf(detail, sizeof(detail),
		 "fsck --repair: damaged end cut off: %lld bytes kept of %lld", (long long)kept,
		 (long long)was);
	printf("%s%s: repaired: %lld bytes kept of %lld (the damaged end was cut off)\n",
	       f->backing, f->rel, (long long)kept, (long long)was);
	fsck_record(f, detail);
}

static void fsck_damage(void *arg, uint64_t block, off_t off, const char *why)
{
	struct fsck *f = arg;

	if (block == WFS_BLOCK_HEADER)
		printf("%s%s: header: %s\n", f->backing, f->rel, why);
	else
		printf("%s%s: block %llu at offset %lld: %s\n", f->backing, f->rel,
		       (unsigned long long)block, (long long)off, why);
	f->bad_here++;
}

static int fsck_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct fsck *f = arg;
	uint8_t b[WFS_HDR_SIZE];
	enum wfs_form form = WFS_FORM_PLAIN;
	ssize_t n = 0;
	long v;
	int fd, m = 0;

	if (wfs_is_migrate_temp(name)) {
		f->temps++;
		return 0;
	}
	if ((fd = openat(dfd, name,
			 (f->audit ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				 O_CLOEXEC)) < 0 ||
	    (m = wfs_form_of(fd, st->st_size, &form)) < 0 ||
	    (form == WFS_FORM_PLAIN && (n = pread(fd, b, sizeof(b), 0)) < 0)) {
		fprintf(stderr, "%s: cannot read '%s%s': %s\n", prog, f->backing, rel,
			strerror(m < 0 ? -m : errno));
		f->errors++;
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (form == WFS_FORM_ENCRYPTED) {
		f->files++;
		f->rel = rel;
		f->bad_here = 0;
		v = wfs_content_verify(f->keys, fd, fsck_damage, f);
		if (v < 0) {
			fprintf(stderr, "%s: cannot verify '%s%s': %s\n", prog, f->backing, rel,
				strerror((int)-v));
			f->errors++;
		} else if (v > 0) {
			f->damaged++;
			if (f->audit)
				fsck_repair(f, fd);
		}
		fflush(stdout);
	} else if (form == WFS_FORM_PLAIN &&
		   wfs_form_sniff(b, (size_t)n, st->st_size) == WFS_FORM_ENCRYPTED) {
		/* Served as the plain bytes it is. Ours and restored without
		 * xattrs? The next mount adopts what this key authenticates. */
		printf("%s%s: starts like an encrypted file but has no wardfs mark: "
		       "served as plain bytes\n",
		       f->backing, rel);
		f->unmarked++;
	}
	close(fd);
	return 0;
}

/* --repair changes files under a daemon that would not know: refused
 * while mounted. Every repair is an audit row, so the db must open. */
static int fsck_open_audit(const struct args *a, struct fsck *f)
{
	char real[PATH_MAX], mnt[PATH_MAX], err[256];
	const char *db = a->audit_db ? a->audit_db : WFS_DEFAULT_AUDIT_DB;
	int r;

	if (realpath(a->backing, real) != NULL && wfs_backing_mounted(real, mnt, sizeof(mnt)) > 0) {
		fprintf(stderr, "%s: '%s' is mounted on '%s': unmount it before --repair\n", prog,
			a->backing, mnt);
		return -1;
	}
	struct wfs_audit_opts o = {.db_path = db, .mount_id = a->backing};
	if ((r = wfs_audit_open(&o, &f->audit, err, sizeof(err))) != 0) {
		fprintf(stderr, "%s: cannot open the audit db '%s' to record repairs: %s\n", prog,
			db, err);
		return -1;
	}
	return 0;
}

static const char fsck_usage[] =
	"usage: wardfs fsck [options] BACKING\n"
	"\n"
	"Verifies the header and every block of every encrypted file under BACKING\n"
	"(symlinks are not followed, BACKING/.wardfs is skipped) and prints each\n"
	"damaged one as 'PATH: block N at offset O: WHY'.\n"
	"\n"
	"  --repair                 cut files whose damage is all at their end (a\n"
	"                           write cut short by a crash, a file cut short) back\n"
	"                           to the intact blocks before it, and record each\n"
	"                           repair in the audit db; BACKING must not be mounted\n"
	"  --hole-damaged           with --repair, also damage that intact blocks follow\n"
	"                           (what a power cut leaves of writes nobody fsync'ed):\n"
	"                           each damaged block becomes a hole that reads as\n"
	"                           zeros; the bytes it held are lost\n"
	"  --audit-db FILE          the audit db for --repair (default " WFS_DEFAULT_AUDIT_DB ")\n"
	"  --passfile FILE          passphrase from the first line of FILE\n"
	"  --extpass CMD            passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  -h, --help               show this help\n"
	"\n"
	"Exit status: 0 no damage (or, with --repair, all of it repaired), 1 damage\n"
	"found, 2 a file or the vault could not be checked (and no damage found).\n";

int wfs_cmd_fsck(int argc, char **argv)
{
	struct args a;
	struct wfs_keys *keys = NULL;
	struct fsck f = {0};
	int r, status = 2;

	if ((r = parse_args(&a, argc, argv, A_PASS | A_RECOVERY | A_REPAIR)) != 0)
		return r;
	if (a.help) {
		fputs(fsck_usage, stdout);
		return 0;
	}
	if (a.audit_db && !a.repair)
		return usage_error(&a, "--audit-db is for --repair");
	if (a.hole_damaged && !a.repair)
		return usage_error(&a, "--hole-damaged is for --repair");
	f.hole_damaged = a.hole_damaged;
	if (check_backing(&a) != 0 || crypto_start() != 0)
		goto out;
	if (a.repair && fsck_open_audit(&a, &f) != 0)
		goto out;
	if (wfs_vault_unlock(a.backing, &a.po, &keys) != 0)
		goto out;
	f.backing = a.backing;
	f.keys = keys;
	if ((r = wfs_vault_walk(a.backing, fsck_one, &f, &f.errors)) != 0) {
		fprintf(stderr, "%s: cannot walk '%s': %s\n", prog, a.backing, strerror(-r));
		goto out;
	}
	fprintf(stderr, "%s: %u encrypted file%s checked, %u damaged", prog, f.files,
		f.files == 1 ? "" : "s", f.damaged);
	if (f.errors)
		fprintf(stderr, ", %u could not be read", f.errors);
	if (f.temps)
		fprintf(stderr, ", %u leftover migrate file%s (run 'wardfs migrate')", f.temps,
			f.temps == 1 ? "" : "s");
	if (f.unmarked)
		fprintf(stderr, ", %u unmarked file%s that look%s encrypted", f.unmarked,
			f.unmarked == 1 ? "" : "s", f.unmarked == 1 ? "s" : "");
	fprintf(stderr, "\n");
	if (f.repaired)
		fprintf(stderr, "%s: %u file%s repaired\n", prog, f.repaired,
			f.repaired == 1 ? "" : "s");
	status = f.damaged > f.repaired ? 1 : f.errors ? 2 : 0;
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
	"carries on. Files with more than one hard link are skipped.\n"
	"\n"
	"  --dry-run                list what would be converted, change nothing\n"
	"  --yes                    decrypt without asking (files the policy no longer\n"
	"                           calls sensitive are otherwise listed, and asked for)\n"
	"  --policy FILE            the policy (default " WFS_DEFAULT_POLICY ")\n"
	"  --passfile FILE          passphrase from the first line of FILE\n"
	"  --extpass CMD            passphrase from CMD's first output line\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  -h, --help               show this help\n"
	"\n"
	"Exit status: 0 all converted, 1 some file was not converted or read.\n";

int wfs_cmd_migrate(int argc, char **argv)
{
	struct args a;
	struct wfs_keys *keys = NULL;
	struct wfs_policy *pol = NULL;
	struct wfs_migrate m = {0};
	int r, status = 1;

	if ((r = parse_args(&a, argc, argv, A_PASS | A_RECOVERY | A_POLICY | A_DRYRUN | A_YES)) !=
	    0)
		return r;
	if (a.help) {
		fputs(migrate_usage, stdout);
		return 0;
	}
	if (check_backing(&a) != 0 || wfs_vault_load_policy(a.policy, 0, &pol) != 0)
		goto out;
	if (!wfs_vault_exists(a.backing)) {
		fprintf(stderr, "%s: '%s' is not a wardfs vault; see 'wardfs init'\n", prog,
			a.backing);
		goto out;
	}
	/* A daemon serving the vault would not know its files changed form. */
	char real[PATH_MAX], mnt[PATH_MAX];
	if (!a.dry_run && realpath(a.backing, real) != NULL &&
	    wfs_backing_mounted(real, mnt, sizeof(mnt)) > 0) {
		fprintf(stderr, "%s: '%s' is mounted on '%s': unmount it first\n", prog, a.backing,
			mnt);
		goto out;
	}
	/* The key first, also when nothing turns out to need it: a wrong
	 * passphrase must say so, not "nothing to convert". */
	if (!a.dry_run &&
	    (crypto_start() != 0 || (r = wfs_vault_unlock(a.backing, &a.po, &keys)))) {
		if (r == -EACCES)
			wfs_vault_audit(a.backing, NULL, WFS_AUDIT_VAULT, EACCES,
					"migrate: the passphrase (or recovery key) was wrong");
		goto out;
	}
	m.backing = a.backing;
	m.pol = pol;
	m.dry_run = a.dry_run;
	char *names = NULL;
	size_t names_len = 0;
	if (!a.dry_run && !a.yes && (m.decrypts = open_memstream(&names, &names_len)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
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
			prog, m.to_decrypt, m.to_decrypt == 1 ? "" : "s", names ? names : "");
		bool yes = false;
		if (isatty(STDIN_FILENO)) {
			char line[16] = "";
			fprintf(stderr, "Decrypt %s? [y/N] ", m.to_decrypt == 1 ? "it" : "them");
			yes = fgets(line, sizeof line, stdin) && (line[0] == 'y' || line[0] == 'Y');
		}
		free(names);
		if (!yes) {
			fprintf(stderr,
				"%s: nothing changed; run it again with --yes to decrypt them, or "
				"change the policy\n",
				prog);
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
	m.keys = keys;
	m.progress = isatty(STDERR_FILENO);
	if (wfs_migrate_convert(&m) != 0)
		goto out;
	printf("Encrypted %u, decrypted %u, skipped %u, failed %u", m.encrypted, m.decrypted,
	       m.skipped, m.failed);
	char said[160];
	snprintf(said, sizeof said, "migrate: encrypted %u, decrypted %u, skipped %u, failed %u",
		 m.encrypted, m.decrypted, m.skipped, m.failed);
	wfs_vault_audit(a.backing, NULL, WFS_AUDIT_VAULT, m.failed ? EIO : 0, said);
	if (m.temps)
		printf("; removed %u leftover file%s", m.temps, m.temps == 1 ? "" : "s");
	printf(".\n");
	status = m.failed || m.skipped || m.errors ? 1 : 0;
out:
	wfs_migrate_done(&m);
	wfs_keys_free(keys);
	wfs_policy_free(pol);
	free(a.backing);
	return status;
}
