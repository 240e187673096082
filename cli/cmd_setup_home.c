/*
 * cmd_setup_home.c - `wardfs setup-home USER`: options, the checks on the
 * user (a person, logged out), and the fstab and pam_mount lines printed
 * at the end. The work itself, resumable, is vault/setup_home.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "policy.h"
#include "vault.h"

#define PROG	       "wardfs setup-home"
#define DEFAULT_PARENT "/home/.wardfs"

static const char usage[] =
	"usage: wardfs setup-home [options] USER\n"
	"\n"
	"Moves USER's existing home into a new wardfs vault and leaves the home a\n"
	"bare mount point (root's, read-only, with a note): creates BACKING "
	"(default " DEFAULT_PARENT "/USER, on the\n"
	"same file system as the home), creates the vault (prints the recovery key\n"
	"once), moves every entry of the home into BACKING, encrypts the files the\n"
	"policy calls sensitive (with a progress bar on a terminal), and prints the\n"
	"/etc/fstab and pam_mount lines that mount it. Run it as root while USER is\n"
	"logged out. If it is interrupted, run the same command again: it carries\n"
	"on where it stopped (state in BACKING/.wardfs/" WFS_SETUP_HOME_MARKER ").\n"
	"\n"
	"  --backing DIR       the backing directory (default " DEFAULT_PARENT "/USER)\n"
	"  --policy FILE       the policy (default /etc/wardfs/policy)\n"
	"  --passfile FILE     the vault passphrase from the first line of FILE\n"
	"  --extpass CMD       the passphrase from CMD's first output line\n"
	"  --kdf-memory MIB    Argon2id memory in MiB (default 512)\n"
	"  --kdf-ops N         Argon2id passes (default 3)\n"
	"  --recovery-key-out FILE  write the recovery key to FILE (new, 0600) for\n"
	"                      escrow instead of printing it\n"
	"  -h, --help          show this help\n"
	"\n"
	"Without --passfile or --extpass the passphrase is read from stdin when it\n"
	"is not a terminal, else asked (twice when the vault is new). To unlock at\n"
	"login with pam_mount, use USER's login password (see wardfs-setup-home(8)).\n";

enum {
	OPT_BACKING = 256,
	OPT_POLICY,
	OPT_PASSFILE,
	OPT_EXTPASS,
	OPT_KDF_MEMORY,
	OPT_KDF_OPS,
	OPT_RECOVERY_OUT
};

static __attribute__((format(printf, 2, 3))) int fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
	return 1;
}

static int parse_mib(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *end || s[0] < '0' || s[0] > '9' || *out < 1 || *out > max ? -1 : 0;
}

static void print_lines(const struct wfs_setup_home *s)
{
	char opts[PATH_MAX * 2 + 64] = "", passfile[PATH_MAX];

	if (s->policy_path)
		snprintf(opts, sizeof(opts), "policy=%s,", s->policy_path);
	if (s->po.passfile)
		snprintf(passfile, sizeof(passfile), "%s", s->po.passfile);
	else
		snprintf(passfile, sizeof(passfile), "/root/wardfs-%s.pass", s->user);
	printf("\nMount it at boot: add to /etc/fstab (the passfile holds the passphrase,\n"
	       "readable by root only):\n\n"
	       "    %s %s fuse.wardfs passfile=%s,%snofail 0 0\n\n",
	       s->backing, s->home, passfile, opts);
	printf("Or, not both, unlock it at login with %s's password (the vault passphrase\n"
	       "must be that password; see wardfs-setup-home(8) and docs/pam.md): add to\n"
	       "/etc/security/pam_mount.conf.xml\n\n"
	       "    <volume user=\"%s\" fstype=\"fuse.wardfs\" path=\"%s\" mountpoint=\"%s\" "
	       "options=\"%snosuid,nodev\" />\n\n"
	       "Until it is mounted, %s is an empty directory.\n",
	       s->user, s->user, s->backing, s->home, opts, s->home);
}

static int run(struct wfs_setup_home *s)
{
	if (wfs_setup_home(s) != 0)
		return 1;
	if (s->was_done)
		printf("%s's home is already set up in %s.\n", s->user, s->backing);
	else
		printf("%s's home is now the vault %s (%u file%s encrypted).\n", s->user,
		       s->backing, s->encrypted, s->encrypted == 1 ? "" : "s");
	print_lines(s);
	return 0;
}

int wfs_cmd_setup_home(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"backing", required_argument, NULL, OPT_BACKING},
		{"policy", required_argument, NULL, OPT_POLICY},
		{"passfile", required_argument, NULL, OPT_PASSFILE},
		{"extpass", required_argument, NULL, OPT_EXTPASS},
		{"kdf-memory", required_argument, NULL, OPT_KDF_MEMORY},
		{"kdf-ops", required_argument, NULL, OPT_KDF_OPS},
		{"recovery-key-out", required_argument, NULL, OPT_RECOVERY_OUT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct wfs_setup_home s = {0};
	const char *backing = NULL;
	unsigned long v;
	struct passwd *pw;
	int c;

	wfs_vault_set_prog(PROG);
	wfs_kdf_params_default(&s.kp);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case OPT_BACKING:
			backing = optarg;
			break;
		case OPT_POLICY:
			s.policy_path = optarg;
			break;
		case OPT_PASSFILE:
			s.po.passfile = optarg;
			break;
		case OPT_EXTPASS:
			s.po.extpass = optarg;
			break;
		case OPT_KDF_MEMORY:
			if (parse_mib(optarg, 4096, &v) != 0)
				return fail(0, "--kdf-memory takes MiB from 1 to 4096, not '%s'",
					    optarg) +
				       1;
			s.kp.memlimit = (size_t)v << 20;
			break;
		case OPT_RECOVERY_OUT:
			s.po.recovery_key_out = optarg;
			break;
		case OPT_KDF_OPS:
			if (parse_mib(optarg, 64, &v) != 0)
				return fail(0, "--kdf-ops takes 1 to 64 passes, not '%s'", optarg) +
				       1;
			s.kp.opslimit = v;
			break;
		case ':':
			return fail(0, "option '%s' needs a value; see 'wardfs setup-home --help'",
				    argv[optind - 1]) +
			       1;
		default:
			return fail(0, "unknown option '%s'; see 'wardfs setup-home --help'",
				    argv[optind - 1]) +
			       1;
		}
	}
	if (argc - optind != 1)
		return fail(0, "expected one USER; see 'wardfs setup-home --help'") + 1;
	if (s.po.passfile && s.po.extpass)
		return fail(0, "give --passfile or --extpass, not both") + 1;
	s.user = argv[optind];
	if (geteuid() != 0)
		return fail(0,
			    "must run as root (it moves %s's home); try 'sudo wardfs "
			    "setup-home ...'",
			    s.user);
	if ((pw = getpwnam(s.user)) == NULL)
		return fail(0, "no user '%s'", s.user);
	/* as ecryptfs-migrate-home: a person's home, with nobody using it */
	char uid[32];
	snprintf(uid, sizeof uid, "%u", (unsigned)pw->pw_uid);
	if (pw->pw_uid == 0 || pw->pw_uid < wfs_uid_min())
		return fail(0,
			    "'%s' is root or a system user (uid %s, below UID_MIN in "
			    "/etc/login.defs); setup-home moves people's homes",
			    s.user, uid);
	if (wfs_user_processes(pw->pw_uid) > 0)
		return fail(0,
			    "%s has running processes (above); log them out and stop "
			    "them first",
			    s.user);
	if (realpath(pw->pw_dir, s.home) == NULL)
		return fail(errno, "cannot find the home '%s' of '%s'", pw->pw_dir, s.user);
	if (backing == NULL)
		snprintf(s.backing, sizeof(s.backing), DEFAULT_PARENT "/%s", s.user);
	else if (backing[0] != '/') {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return fail(errno, "cannot find the current directory");
		if ((size_t)snprintf(s.backing, sizeof(s.backing), "%s/%s", cwd, backing) >=
		    sizeof(s.backing))
			return fail(0, "'%s': path too long", backing);
	} else {
		snprintf(s.backing, sizeof(s.backing), "%s", backing);
	}
	for (size_t n = strlen(s.backing); n > 1 && s.backing[n - 1] == '/'; n--)
		s.backing[n - 1] = '\0';
	return run(&s);
}
