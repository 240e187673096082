/*
 * cmd_mount.c - `wardfs mount`, `wardfs umount` and `wardfs status`.
 *
 * mount checks everything a user can get wrong before touching the kernel,
 * unlocks the vault in the foreground (so a wrong passphrase fails before
 * anything is mounted), then forks a daemon that reports "ok" or its error
 * through a pipe, so the command's exit status tells whether it mounted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "crypto.h"
#include "mounted.h"
#include "usage.h"
#include "wardfs_status.h"
#include "vault.h"
#include "wardfs_daemon.h"

#define FUSE_OPTS_MAX 1024

static const char mount_usage[] =
	"usage: wardfs mount [options] BACKING MOUNTPOINT\n\n"
	"Mounts the vault BACKING over MOUNTPOINT and serves each path as the\n"
	"policy says: public (passthrough), sensitive (encrypted) or deny.\n\n"
	"  -f, --foreground         stay in the foreground, log to stderr\n"
	"  -o OPT[,OPT...]          FUSE mount options (nonempty: allow a non-empty\n"
	"                           mount point)\n"
	"  --policy FILE            policy file (default " WFS_DEFAULT_POLICY ")\n"
	"  --audit-db FILE          audit database (default " WFS_DEFAULT_AUDIT_DB ")\n"
	"  --audit-failure=closed|open\n"
	"                           refuse opens that cannot be audited (closed,\n"
	"                           default) or serve them and count the loss\n"
	"  --audit-journal-size MIB\n"
	"                           crash-safe journal in front of the audit db,\n"
	"                           when it is created (default 64; 1..4096)\n"
	"  --audit-forward=DEST[,DEST]\n"
	"                           also send every audit row to the system journal\n"
	"                           (journal) and/or as RFC 5424 syslog to /dev/log\n"
	"                           or a socket (syslog, syslog:/path/to/socket)\n"
	"  --audit-seal FILE        seal the audit db (docs/audit.md \"Sealing\") if it\n"
	"                           is not sealed yet, writing its verification key\n"
	"                           to FILE (must not exist) to take off this host\n"
	"  --no-passthrough         serve public files through the daemon\n"
	"  --io-uring               serve requests through FUSE over io_uring (also\n"
	"                           -o io_uring; by default it is used when the kernel\n"
	"                           offers it); where the kernel or libfuse cannot,\n"
	"                           warn and serve through /dev/fuse\n"
	"  --no-io-uring            never serve through io_uring\n"
	"  --allow-reachable        mount a BACKING that users other than root can\n"
	"                           reach (they bypass the policy and the audit)\n"
	"  --strict-forms           refuse opens of plaintext files in sensitive\n"
	"                           paths until 'wardfs migrate' encrypts them\n"
	"  --passfile FILE          read the passphrase from FILE\n"
	"  --extpass CMD            read the passphrase from CMD's output\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE (an admin's)\n"
	"  --tpm2-tcti TCTI         the TPM that tpm2 slots (tried first, without asking)\n"
	"                           are unsealed by (default $WARDFS_TPM2_TCTI, else\n"
	"                           device:/dev/tpmrm0)\n"
	"  --log FILE               daemon log (default " WFS_DEFAULT_LOG ")\n"
	"  -d, --debug              print every FUSE request\n"
	"  -h, --help               show this help\n";

/* Removes name from a comma list (it is wardfs's to handle, not
 * libfuse's: libfuse 3 has no "nonempty", and "io_uring" needs checks
 * first); returns whether it was there. */
static bool take_opt(char *opts, const char *name)
{
	bool found = false;
	char *out = opts, *save = NULL;
	char *copy = strdup(opts);
	if (!copy)
		return false;
	*out = '\0';
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, name)) {
			found = true;
			continue;
		}
		if (*opts)
			strcat(opts, ",");
		strcat(opts, tok);
	}
	free(copy);
	return found;
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	int empty = 1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, WFS_BARE_NOTE)) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static bool is_under(const char *path, const char *dir)
{
	size_t l = strlen(dir);
	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, l) && (path[l] == '/' || path[l] == '\0');
}

/*
 * The daemon runs in "/", and reloads the policy long after the command
 * line is gone: file names given relative to the caller's directory are
 * made absolute first. The file need not exist yet (audit db, log).
 */
static const char *absolute(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];
	if (!path || path[0] == '/')
		return path;
	if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(buf, len, "%s/%s", cwd, path) >= len)
		return path;
	return buf;
}

/*
 * Opens (appends to) the daemon's log, creating its directory 0700 if it is
 * missing, so that a log that cannot be written is an error now rather than
 * a daemon that logs nowhere. The fd, or -1 after one line of error.
 */
static int open_log(const char *log)
{
	char dir[PATH_MAX], failed[PATH_MAX];
	const char *slash = strrchr(log, '/');
	int fd, r;

	if (slash && slash != log) {
		if ((size_t)(slash - log) >= sizeof(dir)) {
			error("log '%s': %s", log, strerror(ENAMETOOLONG));
			return -1;
		}
		memcpy(dir, log, (size_t)(slash - log));
		dir[slash - log] = '\0';
		if ((r = wfs_make_dirs(dir, 0700, failed, sizeof(failed))) != 0) {
			error("cannot create the log's directory '%s': %s", failed, strerror(-r));
			return -1;
		}
	}
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		error("cannot open the log '%s': %s", log, strerror(errno));
	return fd;
}

/* The device of path, or of its nearest existing ancestor. */
static int device_of(const char *path, dev_t *dev)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof p, "%s", path);
	for (;;) {
		if (stat(p, &st) == 0) {
			*dev = st.st_dev;
			return 0;
		}
		char *slash = strrchr(p, '/');
		if (!slash)
			return -1;
		if (slash == p) {
			p[1] = '\0';
			if (stat(p, &st) < 0)
				return -1;
			*dev = st.st_dev;
			return 0;
		}
		*slash = '\0';
	}
}

/* Users who fill the backing file system would fill the audit db's too:
 * its rows then live on ext4's root reserve (the daemon writes users' data
 * as the users, so they cannot take it; issue 15.11), and once that is
 * gone, audit-failure=closed refuses every open. Said at every mount,
 * because it is a choice of layout that only the admin can change. */
static void warn_shared_fs(const char *db, const char *backing)
{
	dev_t a, b;
	if (device_of(db, &a) == 0 && device_of(backing, &b) == 0 && a == b)
		warning("the audit database '%s' is on the same file system "
			"as '%s': users who fill it leave the audit only the root reserve; see "
			"'Where the database lives' in docs/audit.md",
			db, backing);
}

static int run_daemon(struct wfs_daemon_opts *o, const char *log, int lfd)
{
	int pfd[2];
	if (pipe(pfd) < 0) {
		error_errno("pipe");
		close(lfd);
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		error_errno("fork");
		close(lfd);
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		dup2(lfd, 2);
		close(lfd);
		if (null > 2)
			close(null);
		if (chdir("/") < 0) {
			/* stays where it was; nothing depends on it */
		}
		o->ready_fd = pfd[1];
		_exit(wfs_daemon_run(o));
	}
	close(pfd[1]);
	close(lfd);
	wfs_keys_free(o->keys); /* the child has its own copy */
	o->keys = NULL;
	char buf[1024];
	size_t used = 0;
	ssize_t n;
	while (used < sizeof(buf) - 1 && (n = read(pfd[0], buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(pfd[0]);
	if (!strcmp(buf, "ok\n"))
		return 0;
	if (!used) {
		int st;
		waitpid(pid, &st, 0);
		error("the daemon died before mounting; see %s", log);
		return 1;
	}
	fputs(buf, stderr);
	return 1;
}

/*
 * The daemon serves as ciphertext only what carries its mark. A vault
 * from before the mark, or a tree restored without xattrs, gets its
 * ciphertext marked here, once (vault/marks.c). 0, or 1 after a message.
 */
static int adopt_marks(const char *backing, const struct wfs_keys *keys)
{
	unsigned n = 0;
	int r = wfs_vault_marks_done(backing);
	if (r == 0)
		r = wfs_vault_adopt_marks(backing, keys, &n);
	else if (r > 0)
		return 0;
	if (r < 0) {
		error("cannot mark the encrypted files of '%s': %s", backing,
		      r == -ENOTSUP ? "its file system cannot keep trusted extended attributes, "
				      "which wardfs needs"
				    : strerror(-r));
		return 1;
	}
	if (n)
		error("marked %u encrypted file%s of this vault as wardfs's own "
		      "(first mount with marks, or a tree restored without extended "
		      "attributes)",
		      n, n == 1 ? "" : "s");
	return 0;
}

/* -o OPT[,OPT...]: repeated options add to the list. */
static int add_fuse_opts(void *value, const char *arg)
{
	char *opts = value;

	if (strlen(opts) + strlen(arg) + 2 > FUSE_OPTS_MAX)
		return usage_error("-o options too long");
	if (opts[0])
		strcat(opts, ",");
	strcat(opts, arg);
	return 0;
}

static int set_debug(void *value, const char *arg)
{
	struct wfs_daemon_opts *o = value;

	(void)arg;
	o->debug = o->foreground = true;
	return 0;
}

static int set_audit_failure(void *value, const char *arg)
{
	if (!strcmp(arg, "open"))
		*(bool *)value = true;
	else if (strcmp(arg, "closed"))
		return usage_error("--audit-failure takes 'closed' or 'open', not '%s'", arg);
	return 0;
}

static int set_journal_size(void *value, const char *arg)
{
	unsigned long long mib;

	if (parse_uint(arg, 1, 4096, &mib) != 0)
		return usage_error("--audit-journal-size takes MiB from 1 to 4096, not '%s'", arg);
	*(unsigned *)value = (unsigned)mib;
	return 0;
}

static int set_audit_forward(void *value, const char *arg)
{
	struct wfs_audit_forward fo;
	char err[256];

	if (wfs_audit_forward_parse(arg, &fo, err, sizeof err) != 0)
		return usage_error("--audit-forward: %s", err);
	*(const char **)value = arg;
	return 0;
}

static int set_no_passthrough(void *value, const char *arg)
{
	(void)arg;
	*(bool *)value = false;
	return 0;
}

static int set_uring_on(void *value, const char *arg)
{
	(void)arg;
	*(enum wfs_uring_mode *)value = WFS_URING_ON;
	return 0;
}

static int set_uring_off(void *value, const char *arg)
{
	(void)arg;
	*(enum wfs_uring_mode *)value = WFS_URING_OFF;
	return 0;
}

int wfs_cmd_mount(int argc, char **argv)
{
	struct wfs_daemon_opts o = {.passthrough = true, .ready_fd = -1};
	struct wfs_pass_opts po = {0};
	const char *policy = NULL, *audit_db = WFS_DEFAULT_AUDIT_DB, *log = WFS_DEFAULT_LOG;
	const char *audit_seal = NULL;
	char fuse_opts[FUSE_OPTS_MAX] = "";
	bool no_audit = false, allow_reachable = false;
	const struct opt opts[] = {
		OPT_BOOL("foreground", 'f', &o.foreground),
		OPT_FN_NOARG("debug", 'd', &o, set_debug),
		OPT_FN(NULL, 'o', fuse_opts, add_fuse_opts),
		OPT_STRING("policy", 0, &policy),
		OPT_STRING("audit-db", 0, &audit_db),
		OPT_BOOL("no-audit", 0, &no_audit), /* hidden: benchmarks only */
		OPT_FN("audit-failure", 0, &o.audit_fail_open, set_audit_failure),
		OPT_FN("audit-journal-size", 0, &o.audit_journal_mib, set_journal_size),
		OPT_FN("audit-forward", 0, &o.audit_forward, set_audit_forward),
		OPT_STRING("audit-seal", 0, &audit_seal),
		OPT_FN_NOARG("no-passthrough", 0, &o.passthrough, set_no_passthrough),
		OPT_FN_NOARG("io-uring", 0, &o.io_uring, set_uring_on),
		OPT_FN_NOARG("no-io-uring", 0, &o.io_uring, set_uring_off),
		OPT_PASS_SOURCES(&po),
		OPT_STRING("log", 0, &log),
		OPT_BOOL("allow-reachable", 0, &allow_reachable),
		OPT_BOOL("strict-forms", 0, &o.strict_forms),
		OPT_END(),
	};
	int first, status;

	if ((first = parse_options(argc, argv, opts, mount_usage, PARSE_STOP_AT_OPERAND, &status)) <
	    0)
		return status;
	if ((status = check_pass_opts(&po)) != 0)
		return status;
	if (argc - first != 2)
		return usage_error("expected BACKING and MOUNTPOINT");
	if (geteuid() != 0) {
		error("must run as root (passthrough and allow_other need "
		      "it); try 'sudo wardfs mount ...'");
		return 1;
	}
	char backing[PATH_MAX], mnt[PATH_MAX];
	if (!realpath(argv[first], backing)) {
		error("backing directory '%s': %s; create it and run 'wardfs init "
		      "%s'",
		      argv[first], strerror(errno), argv[first]);
		return 1;
	}
	if (!realpath(argv[first + 1], mnt)) {
		error("mount point '%s': %s; create it with 'mkdir -p %s'", argv[first + 1],
		      strerror(errno), argv[first + 1]);
		return 1;
	}
	struct stat st;
	if (stat(backing, &st) < 0 || !S_ISDIR(st.st_mode)) {
		error("backing '%s' is not a directory", backing);
		return 1;
	}
	if (stat(mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		error("mount point '%s' is not a directory", mnt);
		return 1;
	}
	if (is_under(mnt, backing)) {
		error("mount point '%s' is inside the backing directory '%s'; "
		      "choose a mount point outside it",
		      mnt, backing);
		return 1;
	}
	bool nonempty = take_opt(fuse_opts, "nonempty");
	if (take_opt(fuse_opts, "io_uring"))
		o.io_uring = WFS_URING_ON;
	if (!nonempty && dir_is_empty(mnt) == 0) {
		error("mount point '%s' is not empty; empty it or pass '-o "
		      "nonempty'",
		      mnt);
		return 1;
	}
	if (!wfs_vault_exists(backing)) {
		char what[PATH_MAX + 64];
		if (wfs_vault_orphaned(backing, what, sizeof what)) {
			wfs_vault_say_orphaned(backing, what);
		} else {
			error("'%s' is not a wardfs vault; run 'wardfs init %s' "
			      "first",
			      backing, backing);
		}
		return 1;
	}
	if (!allow_reachable && wfs_backing_private(backing, true) != 0)
		return 1;
	if (audit_seal && no_audit)
		return usage_error("--audit-seal needs the audit");
	char policy_abs[PATH_MAX], db_abs[PATH_MAX], log_abs[PATH_MAX], seal_abs[PATH_MAX];
	policy = absolute(policy, policy_abs, sizeof(policy_abs));
	audit_db = absolute(audit_db, db_abs, sizeof(db_abs));
	log = absolute(log, log_abs, sizeof(log_abs));
	audit_seal = absolute(audit_seal, seal_abs, sizeof(seal_abs));
	/* whether this mount made the key, to say so once it is up */
	bool seal_new = audit_seal && access(audit_seal, F_OK) != 0;
	/* The log first: a log that cannot be written fails before the passphrase. */
	int lfd = -1;
	if (!o.foreground && (lfd = open_log(log)) < 0)
		return 1;
	if (wfs_crypto_init() < 0) {
		error("cannot initialize crypto");
		goto fail;
	}
	struct wfs_keys *keys = NULL;
	uint16_t slot = 0;
	char slot_name[160];
	po.may_write = true; /* note the slot used; upgrade a version-1 keyfile */
	int ur = wfs_vault_unlock_slot(backing, &po, &keys, &slot);
	if (ur == -EACCES && !no_audit) /* a failed unlock is an auditor's question */
		wfs_vault_audit(backing, audit_db, prog_name(), WFS_AUDIT_MOUNT, EACCES,
				unlock_failed_detail(&po));
	if (ur < 0)
		goto fail; /* wfs_vault_unlock said why */
	if (adopt_marks(backing, keys) != 0) {
		wfs_keys_free(keys);
		goto fail;
	}

	o.backing = backing;
	o.mountpoint = mnt;
	o.keys = keys;
	wfs_vault_slot_name(backing, slot, slot_name, sizeof slot_name);
	o.unlocked_with = slot_name; /* the mount row says which slot */
	o.policy_path = policy ? policy : WFS_DEFAULT_POLICY;
	o.policy_required = policy != NULL;
	o.audit_db = no_audit ? NULL : audit_db;
	o.audit_seal_out = audit_seal;
	o.fuse_opts = fuse_opts[0] ? fuse_opts : NULL;
	const char *no_uring = o.io_uring == WFS_URING_ON ? wfs_uring_unavailable() : NULL;
	if (no_uring)
		warning("io_uring asked for, but %s; serving through /dev/fuse", no_uring);
	if (o.foreground)
		return wfs_daemon_run(&o);
	int r = run_daemon(&o, log, lfd);
	if (r == 0 && o.audit_db)
		warn_shared_fs(o.audit_db, backing);
	if (r == 0 && seal_new && access(audit_seal, F_OK) == 0)
		fprintf(stderr,
			"%s: sealed audit database '%s'; its verification key is in '%s': take "
			"it off this host and delete it here\n",
			prog_name(), audit_db, audit_seal);
	return r;
fail:
	if (lfd >= 0)
		close(lfd);
	return 1;
}

static const char umount_usage[] =
	"usage: wardfs umount [-l] MOUNTPOINT\n\n"
	"Unmounts a wardfs mount and waits for its daemon to finish (audit\n"
	"rows drained, keys wiped).\n\n"
	"  -l, --lazy   detach now even if busy\n"
	"  -h, --help   show this help\n";

static int read_status(const char *mnt, char *buf, size_t len)
{
	return wfs_read_status(mnt, buf, len, WFS_STATUS_TIMEOUT_MS);
}

static pid_t status_pid(const char *status)
{
	char v[32];
	return wfs_status_get(status, WFS_STATUS_PID, v, sizeof(v)) ? (pid_t)strtol(v, NULL, 10)
								    : 0;
}

int wfs_cmd_umount(int argc, char **argv)
{
	bool lazy = false;
	const struct opt opts[] = {OPT_BOOL("lazy", 'l', &lazy), OPT_END()};
	int first, ret;

	if ((first = parse_options(argc, argv, opts, umount_usage, PARSE_STOP_AT_OPERAND, &ret)) <
	    0)
		return ret;
	if (argc - first != 1)
		return usage_error("expected MOUNTPOINT");
	const char *mnt = argv[first];
	if (wfs_require_wardfs(mnt))
		return 1;
	char status[WFS_STATUS_MAX];
	int sr = read_status(mnt, status, sizeof(status));
	pid_t pid = sr == 0 ? status_pid(status) : 0;
	/* Taken while the daemon surely lives (it just answered): its pid
	 * cannot have been reused by another process. */
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	ret = 1;
	if (sr == -ETIMEDOUT) {
		/* A stopped or stuck daemon: an ordinary unmount would wait for
		 * it too. Detach now; the daemon exits once it runs again. */
		error("the daemon of '%s' did not answer within %d s; detaching "
		      "the mount (umount -l): it is gone for new opens, and its daemon ends "
		      "when it runs again",
		      mnt, WFS_STATUS_TIMEOUT_MS / 1000);
		lazy = true;
	}
	if (umount2(mnt, lazy ? MNT_DETACH : 0) < 0) {
		int err = errno;
		if (err == ENOTCONN || err == EIO) /* daemon died: detach the corpse */
			err = umount2(mnt, MNT_DETACH) < 0 ? errno : 0;
		if (err == EINVAL)
			error("'%s' is not a mount point", mnt);
		else if (err)
			error("cannot unmount '%s': %s%s", mnt, strerror(err),
			      err == EBUSY ? "; close the files using it or pass -l" : "");
		if (err)
			goto out;
	}
	/* Wait for the daemon to drain its audit rows and wipe its keys. A
	 * pidfd turns readable when the process ends, not when its parent
	 * (init, for a daemon) gets round to reaping it: a slow init kept
	 * kill(pid, 0) true for seconds after the daemon was done. */
	bool alive = pid > 0;
	if (pidfd >= 0) {
		struct pollfd pf = {.fd = pidfd, .events = POLLIN};
		int pr;
		do
			pr = poll(&pf, 1, 30 * 1000);
		while (pr < 0 && errno == EINTR);
		alive = pr == 0;
	} else {
		for (int i = 0; alive && i < 600; i++) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
			alive = kill(pid, 0) == 0;
		}
	}
	if (alive)
		error("'%s' is unmounted, but its daemon (pid %d) is still "
		      "writing audit rows after 30 s; see its log",
		      mnt, (int)pid);
	else
		ret = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

static const char status_usage[] =
	"usage: wardfs status [--format text|json] [MOUNTPOINT...]\n\n"
	"Shows each running mount's backing directory, policy in force (path,\n"
	"hash, load time, rules, last reload error), passthrough and audit\n"
	"state: the mounts named, or every wardfs mount. Needs root.\n";

/* One "key: value" line as a JSON member (after the first); values stay
 * strings. Keys are the daemon's own words. */
static void json_line(const char *line, size_t n)
{
	const char *key, *v;
	size_t klen, vlen;
	if (!wfs_status_line(line, n, &key, &klen, &v, &vlen))
		return;
	char *value = strndup(v, vlen);
	printf(",\n    \"%.*s\": ", (int)klen, key);
	wfs_audit_print_json_str(stdout, value ? value : "");
	free(value);
}

struct status_run {
	bool json, many;
	int shown, failed;
};

static int show_status(struct status_run *s, const char *mnt)
{
	char status[WFS_STATUS_MAX];
	int r = wfs_require_wardfs(mnt) ? -EINVAL : read_status(mnt, status, sizeof(status));
	if (r == -ETIMEDOUT)
		error("the daemon of '%s' did not answer within %d s (stopped or "
		      "stuck?); 'wardfs umount %s' detaches it",
		      mnt, WFS_STATUS_TIMEOUT_MS / 1000, mnt);
	else if (r && r != -EINVAL)
		error("cannot read the status of '%s': %s%s", mnt, strerror(-r),
		      r == -ENODATA || r == -EPERM ? " (it needs root)" : "");
	if (r) {
		s->failed = 1;
		return 0;
	}
	if (s->json) {
		printf("%s\n  {\"mount\": ", s->shown ? "," : "");
		wfs_audit_print_json_str(stdout, mnt);
		for (const char *l = status; *l;) {
			size_t n = strcspn(l, "\n");
			json_line(l, n);
			l += n + (l[n] == '\n');
		}
		printf("\n  }");
	} else {
		if (s->many)
			printf("%smount: %s\n", s->shown ? "\n" : "", mnt);
		fputs(status, stdout);
	}
	s->shown++;
	return 0;
}

static int status_each(void *arg, const char *mnt, const char *backing)
{
	(void)backing;
	return show_status(arg, mnt);
}

static int set_format(void *value, const char *arg)
{
	if (!strcmp(arg, "json"))
		*(bool *)value = true;
	else if (strcmp(arg, "text"))
		return usage_error("--format is text or json");
	return 0;
}

int wfs_cmd_status(int argc, char **argv)
{
	struct status_run s = {0};
	const struct opt opts[] = {OPT_FN("format", 0, &s.json, set_format), OPT_END()};
	int first, status;

	if ((first = parse_options(argc, argv, opts, status_usage, PARSE_STOP_AT_OPERAND,
				   &status)) < 0)
		return status;
	if (geteuid() != 0)
		return error("needs root (the daemon answers root only)");
	s.many = argc - first != 1;
	if (s.json)
		printf("[");
	if (first == argc) {
		int r = wfs_each_mount(status_each, &s);
		if (r < 0)
			return error("cannot read the mount table: %s", strerror(-r));
		if (!s.shown && !s.failed && !s.json)
			printf("no wardfs mount is running\n");
	}
	for (int i = first; i < argc; i++)
		show_status(&s, argv[i]);
	if (s.json)
		printf("%s]\n", s.shown ? "\n" : "");
	return s.failed;
}
