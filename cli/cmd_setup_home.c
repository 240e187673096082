/*
 * cmd_setup_home.c - `wardfs setup-home USER`: turns a user's existing home
 * into a vault in one run. It creates the backing directory and the vault,
 * moves the home's entries into the backing directory (rename(2), so the
 * same file system is required), encrypts what the policy calls sensitive
 * (wardfs migrate's code), and prints the fstab and pam_mount lines.
 *
 * Resumable: BACKING/.wardfs/setup-home records the user, the home and the
 * state ("started" until the end, then "done"). Every step is idempotent
 * (each rename is atomic, migrate converts file by file through a temp file
 * and removes leftovers), so a run killed at any point is finished by
 * running the same command again; nothing is copied, so nothing is lost.
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
#define MARKER	       "setup-home"

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
	"on where it stopped (state in BACKING/.wardfs/" MARKER ").\n"
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

struct setup {
	const char *user, *policy_path;
	char home[PATH_MAX], backing[PATH_MAX];
	struct wfs_pass_opts po;
	struct wfs_kdf_params kp;
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

/* mkdir -p for the parents of path (mode 0700: users must not reach the
 * backing directory around the mount). */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static bool is_under(const char *path, const char *dir)
{
	size_t l = strlen(dir);

	return !strcmp(dir, "/") || (!strncmp(path, dir, l) && (path[l] == '/' || path[l] == '\0'));
}

static void setstr(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Reads the marker: 1 if present (state copied into state), 0 if absent. */
static int read_marker(const struct setup *s, char *state, size_t len)
{
	char path[PATH_MAX + 32], line[PATH_MAX + 16], user[256] = "", home[PATH_MAX] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/" WFS_VAULT_DIR "/" MARKER, s->backing);
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -errno;
	state[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "user ", 5))
			setstr(user, sizeof(user), line + 5);
		else if (!strncmp(line, "home ", 5))
			setstr(home, sizeof(home), line + 5);
		else if (!strncmp(line, "state ", 6))
			setstr(state, len, line + 6);
	}
	fclose(f);
	if (strcmp(user, s->user) || strcmp(home, s->home)) {
		fprintf(stderr,
			PROG ": '%s' is being set up for user '%s' (home '%s'), not '%s'; "
			     "choose another --backing\n",
			s->backing, user, home, s->user);
		return -EINVAL;
	}
	return 1;
}

static int write_marker(const struct setup *s, const char *state)
{
	char text[PATH_MAX + 512];
	int n = snprintf(text, sizeof(text),
			 "# wardfs setup-home progress; re-run 'wardfs setup-home %s' if the\n"
			 "# state is not done.\nuser %s\nhome %s\nstate %s\n",
			 s->user, s->user, s->home, state);
	int r = wfs_vault_write(s->backing, MARKER, text, (size_t)n, 0600);

	if (r != 0)
		fprintf(stderr, PROG ": cannot write '%s/" WFS_VAULT_DIR "/" MARKER "': %s\n",
			s->backing, strerror(-r));
	return r;
}

/* The backing may hold nothing but .wardfs before the vault is created. */
static int only_vault_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int r = 1;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, WFS_VAULT_DIR))
			r = 0;
	closedir(d);
	return r;
}

/* Renames every entry of the home into the backing directory. */
static int move_entries(const struct setup *s)
{
	int hfd = -1, bfd = -1, r = 0;
	unsigned moved = 0;
	DIR *d = NULL;
	struct dirent *e;

	if ((hfd = open(s->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (bfd = open(s->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = fail(errno, "cannot open '%s'", hfd < 0 ? s->home : s->backing);
		goto out;
	}
	if ((d = fdopendir(hfd)) == NULL) {
		r = fail(errno, "cannot read '%s'", s->home);
		goto out;
	}
	hfd = -1;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(e->d_name, WFS_VAULT_DIR)) {
			r = fail(0, "'%s/%s' is in the way of the vault directory; move it away",
				 s->home, WFS_VAULT_DIR);
			goto out;
		}
		if (renameat2(dirfd(d), e->d_name, bfd, e->d_name, RENAME_NOREPLACE) != 0) {
			int err = errno;

			fprintf(stderr, PROG ": cannot move '%s/%s' into '%s': %s%s\n", s->home,
				e->d_name, s->backing, strerror(err),
				err == EEXIST ? "; both exist: keep one and run again" : "");
			r = 1;
			goto out;
		}
		moved++;
	}
	if (fsync(bfd) != 0 || fsync(dirfd(d)) != 0) {
		r = fail(errno, "cannot sync '%s'", s->backing);
		goto out;
	}
	if (moved)
		printf("Moved %u entr%s of %s into %s.\n", moved, moved == 1 ? "y" : "ies", s->home,
		       s->backing);
out:
	if (d != NULL)
		closedir(d);
	if (hfd >= 0)
		close(hfd);
	if (bfd >= 0)
		close(bfd);
	return r;
}

/* The home's access and default ACLs onto the backing root. */
static int copy_root_acls(const struct setup *s)
{
	int hfd = open(s->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int bfd = open(s->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = hfd < 0 || bfd < 0 ? -errno : wfs_copy_acls(hfd, bfd);

	if (hfd >= 0)
		close(hfd);
	if (bfd >= 0)
		close(bfd);
	return r;
}

/*
 * The home, now a bare mount point, is root's and read-only, with a note:
 * a user whose login mount failed must not go on working, unencrypted and
 * unaudited, in an empty home that every later mount then refuses as not
 * empty (as ecryptfs-migrate-home does). Idempotent.
 */
static int lock_bare_home(const struct setup *s)
{
	static const char note[] =
		"This home is not mounted.\n\n"
		"Its files are kept in a wardfs vault and appear here once it is mounted\n"
		"(at login, or by 'wardfs mount'). If you see this, the mount failed: log\n"
		"out and in again, or ask an administrator to look at the wardfs log.\n";
	int dfd = open(s->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;
	if (dfd < 0)
		return -errno;
	int fd = openat(dfd, WFS_BARE_NOTE, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0444);
	if (fd < 0 || write(fd, note, sizeof note - 1) != (ssize_t)(sizeof note - 1) ||
	    fchown(fd, 0, 0) != 0 || fchmod(fd, 0444) != 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (!r && (fchown(dfd, 0, 0) != 0 || fchmod(dfd, 0555) != 0))
		r = -errno;
	close(dfd);
	return r;
}

/* The smallest uid of a person (login.defs UID_MIN; 1000 without it). */
static uid_t uid_min(void)
{
	FILE *f = fopen("/etc/login.defs", "re");
	unsigned long v = 1000;
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, " UID_MIN %lu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return (uid_t)v;
}

/* Lists (on stderr) up to 10 processes of uid; how many it found. */
static int list_processes(uid_t uid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d))) {
		char path[300], comm[64] = "?";
		struct stat st;
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s", e->d_name);
		if (stat(path, &st) != 0 || st.st_uid != uid)
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof comm, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		if (n++ < 10)
			fprintf(stderr, "  pid %s (%s)\n", e->d_name, comm);
	}
	if (d)
		closedir(d);
	return n;
}

static void print_lines(const struct setup *s)
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

static int run(struct setup *s)
{
	struct wfs_policy *pol = NULL;
	struct wfs_keys *keys = NULL;
	struct wfs_migrate_stats ms = {0};
	struct stat hst, bst, pst;
	char state[64] = "", vdir[PATH_MAX + 16], parent[PATH_MAX + 4];
	int r, status = 1;

	if (stat(s->home, &hst) != 0 || !S_ISDIR(hst.st_mode))
		return fail(errno == 0 ? 0 : errno, "home '%s' of '%s' is not a directory", s->home,
			    s->user);
	snprintf(parent, sizeof(parent), "%s/..", s->home);
	if (stat(parent, &pst) == 0 && pst.st_dev != hst.st_dev)
		return fail(0, "'%s' is a mount point; unmount it (and log %s out) first", s->home,
			    s->user);
	if (is_under(s->backing, s->home) || is_under(s->home, s->backing))
		return fail(0,
			    "the backing directory '%s' and the home '%s' must not contain "
			    "each other",
			    s->backing, s->home);
	if (wfs_vault_load_policy(s->policy_path, 0, &pol) != 0)
		goto out;
	if ((r = make_parents(s->backing)) != 0) {
		fail(-r, "cannot create the parents of '%s'", s->backing);
		goto out;
	}
	if (mkdir(s->backing, 0700) != 0 && errno != EEXIST) {
		fail(errno, "cannot create '%s'", s->backing);
		goto out;
	}
	if (stat(s->backing, &bst) != 0 || !S_ISDIR(bst.st_mode)) {
		fail(0, "'%s' is not a directory", s->backing);
		goto out;
	}
	/* The backing root is about to become the user's: a directory above it
	 * must keep other users (the user too) out. */
	if (wfs_backing_private(s->backing, "wardfs setup-home", false) != 0) {
		(void)rmdir(s->backing); /* only if we just made it, empty */
		goto out;
	}
	if (bst.st_dev != hst.st_dev) {
		fail(0,
		     "'%s' is not on the file system of '%s' (entries are moved, not copied); "
		     "choose a --backing beside the home",
		     s->backing, s->home);
		goto out;
	}
	if ((r = read_marker(s, state, sizeof(state))) < 0) {
		if (r != -EINVAL)
			fail(-r, "cannot read the state of '%s'", s->backing);
		goto out;
	}
	if (r == 0 && wfs_vault_exists(s->backing)) {
		fail(0, "'%s' is already a wardfs vault (not made by setup-home)", s->backing);
		goto out;
	}
	if (!strcmp(state, "done")) {
		if ((r = lock_bare_home(s)) != 0) {
			fail(-r, "cannot make the bare home '%s' root's and read-only", s->home);
			goto out;
		}
		printf("%s's home is already set up in %s.\n", s->user, s->backing);
		print_lines(s);
		status = 0;
		goto out;
	}
	if (r == 0) { /* a fresh start */
		if ((r = only_vault_dir(s->backing)) <= 0) {
			fail(r < 0 ? -r : 0, "'%s' is not empty; choose an empty or new --backing",
			     s->backing);
			goto out;
		}
		snprintf(vdir, sizeof(vdir), "%s/" WFS_VAULT_DIR, s->backing);
		if (mkdir(vdir, 0700) != 0 && errno != EEXIST) {
			fail(errno, "cannot create '%s'", vdir);
			goto out;
		}
		if (write_marker(s, "started") != 0)
			goto out;
	} else {
		printf("Resuming the set-up of %s's home in %s.\n", s->user, s->backing);
	}
	/* The mount root shows the backing root: give it the home's owner and
	 * mode, and its ACLs (the entries moved keep their own). */
	if (chown(s->backing, hst.st_uid, hst.st_gid) != 0 ||
	    chmod(s->backing, hst.st_mode & 07777) != 0) {
		fail(errno, "cannot set the owner and mode of '%s'", s->backing);
		goto out;
	}
	if ((r = copy_root_acls(s)) != 0) {
		fail(-r, "cannot give '%s' the ACLs of '%s'", s->backing, s->home);
		goto out;
	}
	if (!wfs_vault_exists(s->backing)) {
		if (wfs_vault_create(s->backing, &s->po, &s->kp, &keys) != 0)
			goto out;
	} else if (wfs_crypto_init() != 0 || wfs_vault_unlock(s->backing, &s->po, &keys) != 0) {
		goto out;
	}
	if (move_entries(s) != 0)
		goto out;
	if ((r = wfs_vault_migrate(s->backing, pol, keys, &ms)) != 0)
		goto out;
	if (ms.failed || ms.skipped || ms.errors) {
		fprintf(stderr,
			PROG ": %u file%s could not be encrypted, %u skipped (hard links), %u "
			     "unreadable; fix them and run 'wardfs setup-home %s' again\n",
			ms.failed, ms.failed == 1 ? "" : "s", ms.skipped, ms.errors, s->user);
		goto out;
	}
	if (write_marker(s, "done") != 0)
		goto out;
	if ((r = lock_bare_home(s)) != 0) {
		fail(-r, "cannot make the bare home '%s' root's and read-only", s->home);
		goto out;
	}
	printf("%s's home is now the vault %s (%u file%s encrypted).\n", s->user, s->backing,
	       ms.encrypted, ms.encrypted == 1 ? "" : "s");
	print_lines(s);
	status = 0;
out:
	wfs_keys_free(keys);
	wfs_policy_free(pol);
	return status;
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
	struct setup s = {0};
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
	if (pw->pw_uid == 0 || pw->pw_uid < uid_min())
		return fail(0,
			    "'%s' is root or a system user (uid %s, below UID_MIN in "
			    "/etc/login.defs); setup-home moves people's homes",
			    s.user, uid);
	if (list_processes(pw->pw_uid) > 0)
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
