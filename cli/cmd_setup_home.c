/*
 * cmd_setup_home.c - `wardfs setup-home USER`: options, the checks on the
 * user (a person, logged out), and the fstab and pam_mount lines printed
 * at the end. The work itself, resumable, is vault/setup_home.c.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "policy.h"
#include "usage.h"
#include "vault.h"

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
	"  --policy FILE       the policy (default " WFS_DEFAULT_POLICY ")\n"
	"  --passfile FILE     the vault passphrase from the first line of FILE\n"
	"  --extpass CMD       the passphrase from CMD's first output line\n"
	"  --kdf-memory MIB    Argon2id memory in MiB (default 512)\n"
	"  --kdf-ops N         Argon2id passes (default 3)\n"
	"  --recovery-key-out FILE  write the recovery key to FILE (new, 0600) for\n"
	"                      escrow instead of printing it\n"
	"  --escrow-public FILE  also give the vault a slot for the organisation's\n"
	"                      escrow public key (see 'wardfs key escrow-keygen')\n"
	"  -h, --help          show this help\n"
	"\n"
	"Without --passfile or --extpass the passphrase is read from stdin when it\n"
	"is not a terminal, else asked (twice when the vault is new). To unlock at\n"
	"login with pam_mount, use USER's login password (see wardfs-setup-home(8)).\n";

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
	struct wfs_setup_home s = {0};
	const char *backing = NULL, *escrow_public = NULL;
	unsigned long long mib = 0, ops = 0;
	struct passwd *pw;
	const struct opt opts[] = {
		OPT_STRING("backing", 0, &backing),
		OPT_STRING("policy", 0, &s.policy_path),
		OPT_PASSPHRASE(&s.po),
		OPT_TPM2(&s.po),
		OPT_KDF(&mib, &ops),
		OPT_STRING("recovery-key-out", 0, &s.po.recovery_key_out),
		OPT_STRING("escrow-public", 0, &escrow_public),
		OPT_END(),
	};
	uint8_t pk[WFS_ESCROW_KEY_LEN];
	int first, status;

	if ((first = parse_options(argc, argv, opts, usage, 0, &status)) < 0)
		return status;
	wfs_kdf_params_default(&s.kp);
	if (mib)
		s.kp.memlimit = (size_t)mib << 20;
	if (ops)
		s.kp.opslimit = ops;
	if (argc - first != 1)
		return usage_error("expected one USER");
	if ((status = check_pass_opts(&s.po)) != 0)
		return status;
	s.user = argv[first];
	if (escrow_public != NULL) {
		if (wfs_crypto_init() != 0 || wfs_escrow_public_read(escrow_public, pk) != 0)
			return 1;
		s.escrow_public = pk;
	}
	if (geteuid() != 0)
		return error("must run as root (it moves %s's home); try 'sudo wardfs "
			     "setup-home ...'",
			     s.user);
	if ((pw = getpwnam(s.user)) == NULL)
		return error("no user '%s'", s.user);
	/* as ecryptfs-migrate-home: a person's home, with nobody using it */
	char uid[32];
	snprintf(uid, sizeof uid, "%u", (unsigned)pw->pw_uid);
	if (pw->pw_uid == 0 || pw->pw_uid < wfs_uid_min())
		return error("'%s' is root or a system user (uid %s, below UID_MIN in "
			     "/etc/login.defs); setup-home moves people's homes",
			     s.user, uid);
	if (wfs_user_processes(pw->pw_uid) > 0)
		return error("%s has running processes (above); log them out and stop "
			     "them first",
			     s.user);
	if (realpath(pw->pw_dir, s.home) == NULL)
		return error_errno("cannot find the home '%s' of '%s'", pw->pw_dir, s.user);
	if (backing == NULL)
		snprintf(s.backing, sizeof(s.backing), DEFAULT_PARENT "/%s", s.user);
	else if (backing[0] != '/') {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return error_errno("cannot find the current directory");
		if ((size_t)snprintf(s.backing, sizeof(s.backing), "%s/%s", cwd, backing) >=
		    sizeof(s.backing))
			return error("'%s': path too long", backing);
	} else {
		snprintf(s.backing, sizeof(s.backing), "%s", backing);
	}
	for (size_t n = strlen(s.backing); n > 1 && s.backing[n - 1] == '/'; n--)
		s.backing[n - 1] = '\0';
	return run(&s);
}
