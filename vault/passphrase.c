/*
 * passphrase.c - reading secrets (passphrases, recovery keys) from a file,
 * an external command, stdin or the terminal without echo. Secrets are read
 * byte by byte straight into sodium_malloc memory (no stdio copies) and
 * never come from or go to argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "say.h"
#include "vault.h"

static char *secret_alloc(void)
{
	char *s = sodium_malloc(WFS_SECRET_MAX + 1);

	if (s != NULL)
		sodium_memzero(s, WFS_SECRET_MAX + 1);
	return s;
}

void wfs_secret_free(char *s)
{
	if (s != NULL)
		sodium_free(s); /* wipes */
}

/* How long an --extpass command may take to print its line and exit:
 * 60 s, or WARDFS_EXTPASS_TIMEOUT seconds (1 to 3600). */
static int extpass_timeout_s(void)
{
	const char *e = getenv("WARDFS_EXTPASS_TIMEOUT");
	/* strtol: atoi's result out of int's range is undefined */
	long v = e ? strtol(e, NULL, 10) : 0;
	return v >= 1 && v <= 3600 ? (int)v : 60;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is readable or deadline_ms (CLOCK_MONOTONIC) passes:
 * 0, -ETIME, or -errno. A deadline of 0 waits for ever. */
static int wait_readable(int fd, int64_t deadline_ms)
{
	if (deadline_ms == 0)
		return 0;
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		if (left <= 0)
			return -ETIME;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* read_line with a deadline (0: none); -ETIME when it passes. */
static int read_line_by(int fd, char *s, size_t *len, int64_t deadline_ms)
{
	size_t n = 0;
	int any = 0;

	for (;;) {
		char c;
		int w = wait_readable(fd, deadline_ms);
		if (w < 0) {
			sodium_memzero(s, WFS_SECRET_MAX + 1);
			return w;
		}
		ssize_t r = read(fd, &c, 1);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		any = 1;
		if (c == '\n')
			break;
		if (n >= WFS_SECRET_MAX) {
			sodium_memzero(s, WFS_SECRET_MAX + 1);
			return -E2BIG;
		}
		s[n++] = c;
	}
	if (!any)
		return -ENODATA;
	if (n > 0 && s[n - 1] == '\r')
		n--; /* a file written on Windows */
	s[n] = '\0';
	*len = n;
	return 0;
}

/*
 * Reads one line (without its newline) into s. 0, -E2BIG for a line over
 * WFS_SECRET_MAX, -ENODATA for EOF before any byte, -EINTR, or -errno.
 */
static int read_line(int fd, char *s, size_t *len)
{
	return read_line_by(fd, s, len, 0);
}

static int from_file(const char *path, char *s, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0) {
		r = -errno;
		vault_error("cannot open '%s': %s", path, strerror(-r));
		return r;
	}
	/* Like ssh with a private key: a passphrase other users can read
	 * is no secret, and one they can write is not the admin's. */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		vault_error("passphrase file '%s' is accessible by other users (mode %04o); run "
			    "'chmod 600 %s'",
			    path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -EPERM;
	}
	r = read_line(fd, s, len);
	close(fd);
	if (r == -ENODATA)
		r = 0, *len = 0;
	if (r < 0)
		vault_error("cannot read '%s': %s", path,
			    r == -E2BIG ? "line too long" : strerror(-r));
	return r;
}

static int from_command(const char *cmd, char *s, size_t *len)
{
	int p[2], status, r;
	pid_t pid;
	char sink[256];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	if ((pid = fork()) < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* A command that never answers (a prompt on no terminal, a hung
	 * agent) must not hang the mount, the boot or the login. */
	int timeout_s = extpass_timeout_s();
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
	r = read_line_by(p[0], s, len, deadline);
	if (r == -ENODATA)
		r = 0, *len = 0;
	while (r != -ETIME) { /* let it finish writing */
		int w = wait_readable(p[0], deadline);
		if (w < 0) {
			r = w == -ETIME ? -ETIME : r;
			break;
		}
		if (read(p[0], sink, sizeof(sink)) <= 0)
			break;
	}
	sodium_memzero(sink, sizeof(sink));
	close(p[0]);
	if (r == -ETIME) {
		/* Its process group stays ours: a command that asks on the
		 * terminal must stay in the foreground group to read it. */
		kill(pid, SIGKILL);
		sodium_memzero(s, WFS_SECRET_MAX + 1);
		*len = 0;
		vault_error("--extpass command did not print a line and exit within %d s",
			    timeout_s);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (r == -ETIME)
		return r;
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		vault_error("--extpass command failed (%s %d)",
			    WIFSIGNALED(status) ? "signal" : "exit status",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		return -EIO;
	}
	if (r < 0)
		vault_error("cannot read the --extpass output: %s",
			    r == -E2BIG ? "line too long" : strerror(-r));
	return r;
}

/* ---- the terminal --------------------------------------------------- */

static volatile sig_atomic_t tty_signal;

static void on_signal(int sig)
{
	tty_signal = sig;
}

static const int tty_sigs[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU};
#define NSIGS (sizeof(tty_sigs) / sizeof(tty_sigs[0]))

/* Prompts on /dev/tty with echo off (like OpenSSH's readpassphrase). */
static int from_tty(int fd, const char *prompt, char *s, size_t *len)
{
	struct sigaction sa, old[NSIGS];
	struct termios t, quiet;
	int r, restore;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a signal ends the read */
	sigemptyset(&sa.sa_mask);
	tty_signal = 0;
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(tty_sigs[i], &sa, &old[i]);
	restore = tcgetattr(fd, &t) == 0;
	if (restore) {
		quiet = t;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
		quiet.c_lflag |= ICANON;
		(void)tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the read below reports a dead terminal */
	}
	r = read_line(fd, s, len);
	if (restore)
		(void)tcsetattr(fd, TCSAFLUSH, &t);
	if (write(fd, "\n", 1) < 0) {
		/* nothing to do */
	}
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(tty_sigs[i], &old[i], NULL);
	if (tty_signal != 0) {
		sodium_memzero(s, WFS_SECRET_MAX + 1);
		raise(tty_signal); /* now with the caller's disposition */
		return -EINTR;
	}
	if (r == -ENODATA)
		r = 0, *len = 0;
	return r;
}

int wfs_secret_read(const char *file, const char *extpass, const char *prompt, bool confirm,
		    char **out, size_t *len, bool *from_tty_out)
{
	char *s = secret_alloc(), *again = NULL;
	size_t n = 0, n2 = 0;
	const char *what = strncmp(prompt, "Recovery", 8) == 0 ? "recovery key" : "passphrase";
	bool tty = false;
	int r, fd = -1;

	*out = NULL;
	*len = 0;
	if (from_tty_out != NULL)
		*from_tty_out = false;
	if (s == NULL) {
		r = -ENOMEM;
		vault_error("out of secure memory");
		goto out;
	}
	if (file != NULL) {
		r = from_file(file, s, &n);
	} else if (extpass != NULL) {
		r = from_command(extpass, s, &n);
	} else if (!isatty(STDIN_FILENO)) {
		r = read_line(STDIN_FILENO, s, &n);
		if (r < 0)
			vault_error("cannot read the %s from stdin: %s", what,
				    r == -ENODATA ? "end of input"
				    : r == -E2BIG ? "line too long"
						  : strerror(-r));
	} else {
		if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			r = -errno;
			vault_error("no terminal to ask on; use --passfile, --extpass or stdin");
			goto out;
		}
		tty = true;
		r = from_tty(fd, prompt, s, &n);
		if (r == 0 && n > 0 && confirm) {
			char p2[128];

			if ((again = secret_alloc()) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			snprintf(p2, sizeof(p2), "Repeat %c%s", prompt[0] | 0x20, prompt + 1);
			r = from_tty(fd, p2, again, &n2);
			if (r == 0 && (n2 != n || sodium_memcmp(s, again, n) != 0)) {
				vault_error("passphrases do not match");
				r = -EINVAL;
				goto out;
			}
		}
		if (r < 0 && r != -EINTR)
			vault_error("cannot read from the terminal: %s",
				    r == -E2BIG ? "line too long" : strerror(-r));
	}
	if (r < 0)
		goto out;
	if (n == 0) {
		vault_error("empty %s", what);
		r = -EINVAL;
		goto out;
	}
	*out = s;
	*len = n;
	s = NULL;
	if (from_tty_out != NULL)
		*from_tty_out = tty;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	wfs_secret_free(s);
	wfs_secret_free(again);
	return r;
}

int wfs_write_new_file(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), r = 0;
	size_t n = strlen(line);

	if (fd < 0)
		return -errno;
	if (write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
		r = errno ? -errno : -EIO;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r != 0)
		unlink(path);
	return r;
}

int wfs_escrow_public_read(const char *path, uint8_t pk[WFS_ESCROW_KEY_LEN])
{
	char line[WFS_ESCROW_TEXT_LEN + 64] = "";
	FILE *f = fopen(path, "re");
	int e;

	if (f == NULL) {
		e = errno;
		vault_error("cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	if (wfs_escrow_public_parse(line, pk) != 0) {
		vault_error("'%s' is not an escrow public key, or it was mistyped (expected the "
			    "line 'wardfs key escrow-keygen' printed)",
			    path);
		return -EINVAL;
	}
	return 0;
}
