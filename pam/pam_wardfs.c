/*
 * pam_wardfs.c - pam_wardfs.so, a PAM module for the `password` stack:
 * when a user changes the login password (passwd(1)), it re-wraps the
 * passphrase slot of the user's wardfs vault that the old password
 * unlocked, so that pam_mount's next login still mounts the home.
 *
 * The module holds no crypto of its own: it runs `wardfs passwd BACKING`
 * as root with a clean environment and writes "OLD\nNEW\n" to its stdin
 * straight from PAM's items (no copy is made here; wardfs reads them into
 * locked memory). auth and session stay with pam_mount (docs/pam.md), so
 * every other entry point ignores the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "wardfs_paths.h"

/* Built with -fvisibility=hidden: only the PAM entry points are exported. */
#define WFS_PAM_API __attribute__((visibility("default")))

#define DEFAULT_BACKING "/home/.wardfs/%u"
#define DEFAULT_WARDFS	"/usr/local/bin/wardfs"
#define DEFAULT_TIMEOUT 60 /* seconds: two Argon2id runs take ~1-4 s */
#define MAX_TIMEOUT	3600

struct opts {
	const char *backing; /* the template, %u not yet replaced */
	const char *wardfs;
	long timeout;
};

/* The module's arguments; an unknown or bad one is a configuration error
 * the admin must see, so it stops the module (after one log line). */
static int parse_opts(pam_handle_t *ph, int argc, const char **argv, struct opts *o)
{
	o->backing = DEFAULT_BACKING;
	o->wardfs = DEFAULT_WARDFS;
	o->timeout = DEFAULT_TIMEOUT;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (strncmp(a, "backing=", 8) == 0) {
			o->backing = a + 8;
		} else if (strncmp(a, "wardfs=", 7) == 0) {
			o->wardfs = a + 7;
		} else if (strncmp(a, "timeout=", 8) == 0) {
			errno = 0;
			o->timeout = strtol(a + 8, &end, 10);
			if (errno != 0 || end == a + 8 || *end != '\0' || o->timeout < 1 ||
			    o->timeout > MAX_TIMEOUT) {
				pam_syslog(ph, LOG_ERR, "bad argument '%s': seconds from 1 to %d",
					   a, MAX_TIMEOUT);
				return -1;
			}
		} else {
			pam_syslog(ph, LOG_ERR, "unknown argument '%s'", a);
			return -1;
		}
	}
	if (o->wardfs[0] != '/') {
		pam_syslog(ph, LOG_ERR, "bad argument 'wardfs=%s': not an absolute path",
			   o->wardfs);
		return -1;
	}
	return 0;
}

/* A user name that is safe to put into a path: not empty, no '/', not a
 * dot name. */
static bool user_ok(const char *user)
{
	return user[0] != '\0' && strchr(user, '/') == NULL && strcmp(user, ".") != 0 &&
	       strcmp(user, "..") != 0;
}

/* backing= with %u replaced by the user name and %% by %. */
static int expand_backing(pam_handle_t *ph, const char *tmpl, const char *user, char *out,
			  size_t size)
{
	size_t n = 0, ulen = strlen(user);

	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *add = p;
		size_t len = 1;

		if (*p == '%') {
			p++;
			if (*p == 'u') {
				add = user, len = ulen;
			} else if (*p == '%') {
				add = p;
			} else {
				pam_syslog(ph, LOG_ERR,
					   "bad argument 'backing=%s': only %%u and %%%% may "
					   "follow %%",
					   tmpl);
				return -1;
			}
		}
		if (n + len >= size) {
			pam_syslog(ph, LOG_ERR, "bad argument 'backing=%s': path too long", tmpl);
			return -1;
		}
		memcpy(out + n, add, len);
		n += len;
	}
	out[n] = '\0';
	if (out[0] != '/') {
		pam_syslog(ph, LOG_ERR, "bad argument 'backing=%s': not an absolute path", tmpl);
		return -1;
	}
	return 0;
}

/* Is there a vault in backing (its keyfile a regular file)? */
static bool has_vault(const char *backing)
{
	char path[PATH_MAX];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s/" WFS_VAULT_DIR "/" WFS_VAULT_KEYFILE, backing);

	return n > 0 && (size_t)n < sizeof(path) && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: stdin the socket, stderr the pipe, stdout /dev/null, root in
 * full (passwd(1) is set-uid: only the effective ids are root), signals
 * as a fresh process has them, an environment of its own. Never returns. */
static void exec_wardfs(const struct opts *o, const char *backing, int in, int err)
{
	char *const argv[] = {(char *)"wardfs", (char *)"passwd", (char *)backing, NULL};
	char *const envp[] = {(char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
				      "/sbin:/bin",
			      (char *)"LC_ALL=C", NULL};
	sigset_t none;
	int null = open("/dev/null", O_WRONLY);

	/* A caller that runs with 0-2 closed may have given us any of those
	 * numbers: move all three above 2 before the dup2s overwrite them. */
	if (null < 0 || (null = fcntl(null, F_DUPFD, 3)) < 0 || (in = fcntl(in, F_DUPFD, 3)) < 0 ||
	    (err = fcntl(err, F_DUPFD, 3)) < 0)
		_exit(126);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	closefrom(3);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
		_exit(126);
	umask(077);
	if (chdir("/") != 0)
		_exit(126);
	execve(o->wardfs, argv, envp);
	_exit(127);
}

/* Writes "OLD\nNEW\n" to the child's stdin without copying the passwords;
 * MSG_NOSIGNAL: a child that died early must not kill passwd with SIGPIPE. */
static int send_passwords(int fd, const char *old, const char *new)
{
	struct iovec iov[4] = {
		{.iov_base = (void *)old, .iov_len = strlen(old)},
		{.iov_base = (void *)"\n", .iov_len = 1},
		{.iov_base = (void *)new, .iov_len = strlen(new)},
		{.iov_base = (void *)"\n", .iov_len = 1},
	};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 4};
	size_t total = iov[0].iov_len + iov[2].iov_len + 2;
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	/* far below a socket's buffer: all of it or an error */
	return n == (ssize_t)total ? 0 : -1;
}

/* Collects the child's stderr (its first line is its error) until EOF or
 * the deadline. */
static void read_errors(int fd, long deadline, char *err, size_t size)
{
	size_t n = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = deadline - now_ms();
		ssize_t r;
		char buf[256];

		if (left <= 0)
			break;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r && n + 1 < size; i++)
			err[n++] = buf[i];
	}
	err[n] = '\0';
	err[strcspn(err, "\n")] = '\0';
	for (char *c = err; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* Waits for the child until the deadline, then kills it. Its exit status,
 * or -1 when it was killed or did not exit. */
static int reap(pid_t pid, long deadline, bool *timed_out)
{
	int status;
	pid_t r;

	*timed_out = false;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0)
			break;
		if (now_ms() >= deadline) {
			*timed_out = true;
			kill(pid, SIGKILL);
			while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(10000);
	}
	if (r != pid || *timed_out || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Runs `wardfs passwd backing`. 0 when it changed the slot; else -1 with
 * the reason in err. */
static int run_passwd(const struct opts *o, const char *backing, const char *old, const char *new,
		      char *err, size_t errlen)
{
	int in[2] = {-1, -1}, ep[2] = {-1, -1}, ret = -1, status;
	long deadline = now_ms() + o->timeout * 1000;
	bool timed_out;
	pid_t pid;

	err[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
	    pipe2(ep, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_wardfs(o, backing, in[1], ep[1]);
	close(in[1]);
	close(ep[1]);
	in[1] = ep[1] = -1;
	if (send_passwords(in[0], old, new) != 0)
		snprintf(err, errlen, "cannot write to it: %s", strerror(errno));
	close(in[0]); /* EOF after the two lines */
	in[0] = -1;
	read_errors(ep[0], deadline, err + strlen(err), errlen - strlen(err));
	status = reap(pid, deadline, &timed_out);
	if (timed_out)
		snprintf(err, errlen, "no answer within %ld s; killed", o->timeout);
	else if (status == 127 && err[0] == '\0')
		snprintf(err, errlen, "cannot run '%s'", o->wardfs);
	else if (status == 0)
		ret = 0;
	else if (err[0] == '\0')
		snprintf(err, errlen, "exit status %d", status);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	return ret;
}

/*
 * PAM_PRELIM_CHECK: nothing to check (the old password's match with the
 * vault is found out by wardfs itself). PAM_UPDATE_AUTHTOK runs after
 * pam_unix changed the login password, so a failure here cannot undo
 * that: it is logged at LOG_ERR and ignored (docs/pam.md).
 */
WFS_PAM_API int pam_sm_chauthtok(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	const void *user = NULL, *old = NULL, *new = NULL;
	char backing[PATH_MAX], err[256];
	struct opts o;
	int ret = PAM_IGNORE;

	if (flags & PAM_PRELIM_CHECK)
		return PAM_SUCCESS;
	if (!(flags & PAM_UPDATE_AUTHTOK))
		goto out;
	if (parse_opts(ph, argc, argv, &o) != 0)
		goto out;
	if (pam_get_item(ph, PAM_USER, &user) != PAM_SUCCESS || user == NULL || !user_ok(user)) {
		pam_syslog(ph, LOG_ERR, "no usable user name; vault not changed");
		goto out;
	}
	if (expand_backing(ph, o.backing, user, backing, sizeof(backing)) != 0)
		goto out;
	if (!has_vault(backing)) {
		pam_syslog(ph, LOG_INFO, "no vault in '%s' for user '%s'; nothing to re-wrap",
			   backing, (const char *)user);
		goto out;
	}
	if (pam_get_item(ph, PAM_OLDAUTHTOK, &old) != PAM_SUCCESS || old == NULL) {
		pam_syslog(ph, LOG_WARNING,
			   "the password of '%s' was set without the old one (by root?): the "
			   "vault in '%s' still opens with the old passphrase; re-wrap it with "
			   "'wardfs passwd --escrow-key' or '--recovery-key'",
			   (const char *)user, backing);
		goto out;
	}
	if (pam_get_item(ph, PAM_AUTHTOK, &new) != PAM_SUCCESS || new == NULL) {
		pam_syslog(ph, LOG_ERR, "no new password for '%s'; vault in '%s' not changed",
			   (const char *)user, backing);
		goto out;
	}
	if (strchr(old, '\n') != NULL || strchr(new, '\n') != NULL) {
		pam_syslog(ph, LOG_ERR,
			   "a password of '%s' has a newline, which 'wardfs passwd' cannot read "
			   "from a line; vault in '%s' not changed",
			   (const char *)user, backing);
		goto out;
	}
	if (geteuid() != 0) {
		pam_syslog(ph, LOG_ERR, "not running as root; vault in '%s' not changed", backing);
		goto out;
	}
	if (run_passwd(&o, backing, old, new, err, sizeof(err)) != 0) {
		pam_syslog(ph, LOG_ERR,
			   "'%s passwd %s' failed: %s; the vault still opens with the old "
			   "passphrase only (run 'wardfs passwd %s' with it, or the recovery key)",
			   o.wardfs, backing, err, backing);
		goto out;
	}
	pam_syslog(ph, LOG_NOTICE, "re-wrapped the passphrase of the vault in '%s' for '%s'",
		   backing, (const char *)user);
	ret = PAM_SUCCESS;
out:
	return ret;
}

/* auth and session are pam_mount's (docs/pam.md): nothing to do here. */
WFS_PAM_API int pam_sm_authenticate(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	(void)ph, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}

WFS_PAM_API int pam_sm_setcred(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	(void)ph, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}

WFS_PAM_API int pam_sm_acct_mgmt(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	(void)ph, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}

WFS_PAM_API int pam_sm_open_session(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	(void)ph, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}

WFS_PAM_API int pam_sm_close_session(pam_handle_t *ph, int flags, int argc, const char **argv)
{
	(void)ph, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}
