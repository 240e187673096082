/*
 * exe.c - `allow-exe=` programs as they are on this machine, for `wardfs
 * policy check` and the daemon's log (WFS_POLICY_CHECK_EXES).
 *
 * The daemon matches a caller by the inode its /proc/PID/exe resolves to,
 * against the inode an allowed path resolves to (following symbolic
 * links). Some rules can therefore never match, silently: a script (the
 * kernel runs its interpreter, which is what /proc/PID/exe then names),
 * a file that is not executable, one that does not exist. Others match
 * but protect nothing: a program, or a directory on its way, that someone
 * other than root can rewrite. This file says so, as warnings and notes,
 * never as errors: a policy may be checked on another machine than the one
 * it is meant for.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Why st (of path) lets someone other than root change it, or NULL. A
 * sticky directory only lets others add names, not replace root's. */
static const char *who_can_write(const struct stat *st, char *buf, size_t len)
{
	char nb[1024];
	if (st->st_uid != 0) {
		struct passwd pw, *res = NULL;
		getpwuid_r(st->st_uid, &pw, nb, sizeof(nb), &res);
		snprintf(buf, len, "its owner, uid %u%s%s%s", (unsigned)st->st_uid, res ? " (" : "",
			 res ? res->pw_name : "", res ? ")" : "");
		return buf;
	}
	bool sticky = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);
	if (sticky)
		return NULL;
	if (st->st_mode & S_IWOTH)
		return "everyone";
	if (st->st_mode & S_IWGRP) {
		/* e.g. Debian's /usr/local/bin, root:staff 2775 on older installs */
		struct group gr, *res = NULL;
		getgrgid_r(st->st_gid, &gr, nb, sizeof(nb), &res);
		snprintf(buf, len, "group %u%s%s%s", (unsigned)st->st_gid, res ? " (" : "",
			 res ? res->gr_name : "", res ? ")" : "");
		return buf;
	}
	return NULL;
}

/*
 * The first directory above `real` (a canonical path) that someone other
 * than root can write, into dir; false when there is none (or it cannot
 * be told).
 */
static bool writable_dir(const char *real, char *dir, size_t len, char *who, size_t wlen)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", real);
	for (;;) {
		char *slash = strrchr(p, '/');
		if (!slash)
			return false;
		if (slash == p)
			slash[1] = '\0'; /* "/" itself */
		else
			*slash = '\0';
		struct stat st;
		if (stat(p, &st) < 0)
			return false;
		char b[128];
		const char *w = who_can_write(&st, b, sizeof(b));
		if (w) {
			snprintf(who, wlen, "%s", w);
			snprintf(dir, len, "%s", p);
			return true;
		}
		if (slash == p)
			return false;
	}
}

/* The interpreter named by a "#!" line in head (n bytes), into out. */
static void interpreter(const char *head, size_t n, char *out, size_t len)
{
	size_t i = 2, s;
	while (i < n && (head[i] == ' ' || head[i] == '\t'))
		i++;
	s = i;
	while (i < n && head[i] != '\n' && head[i] != ' ' && head[i] != '\t')
		i++;
	snprintf(out, len, "%.*s", (int)(i - s), head + s);
}

void pol_check_exe(struct pol_loader *L, const char *file, unsigned line, unsigned col,
		   const char *path)
{
	struct pol_diagsink *D = &L->diag;
	struct stat st;
	char real[PATH_MAX], who[128], dir[PATH_MAX];
	int fd = -1;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			pol_note(D, file, line, col,
				 "allow-exe program '%.200s' does not exist here; the rule admits "
				 "no program until it does",
				 path);
		else
			pol_diag(D, false, file, line, col,
				 "cannot look at allow-exe program '%.200s': %s", path,
				 strerror(errno));
		return;
	}
	if (!realpath(path, real)) {
		pol_note(D, file, line, col,
			 "allow-exe program '%.200s' is a symbolic link that resolves to nothing "
			 "here (%s); the rule admits no program until it does",
			 path, strerror(errno));
		return;
	}
	/* /bin/cat on a merged-/usr system, AWS CLI v2's /usr/local/bin/aws */
	if (strcmp(real, path))
		pol_note(D, file, line, col,
			 "allow-exe program '%.200s' resolves through a symbolic link to "
			 "'%.200s'; that file is the one matched (resolved again at every open)",
			 path, real);
	if (stat(real, &st) < 0) {
		pol_diag(D, false, file, line, col, "cannot look at allow-exe program '%.200s': %s",
			 real, strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' is not a regular file; it can never be a "
			 "running program; expected the path of an executable file",
			 real);
		return;
	}
	if (!(st.st_mode & 0111)) {
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' is not executable (mode %04o); it can never "
			 "be a running program; expected an executable file",
			 real, (unsigned)(st.st_mode & 07777));
		return;
	}
	const char *w = who_can_write(&st, who, sizeof(who));
	if (w)
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' is writable by %s, who can then make it "
			 "do anything; expected a file owned by root and not writable by group "
			 "or others",
			 real, w);
	else if (writable_dir(real, dir, sizeof(dir), who, sizeof(who)))
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' can be replaced by another: '%.200s' is "
			 "writable by %s; expected directories owned by root and not writable "
			 "by group or others",
			 real, dir, who);

	/* What the kernel does with it: only a binary it loads itself is
	 * what /proc/PID/exe of the caller names. */
	char head[256];
	fd = open(real, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		goto out; /* e.g. not readable by a non-root checker: cannot tell */
	ssize_t n = read(fd, head, sizeof(head));
	if (n < 0)
		goto out;
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		char interp[128];
		interpreter(head, (size_t)n, interp, sizeof(interp));
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' is a script run by '%s'; the kernel runs "
			 "the interpreter, so the caller's executable is the interpreter and "
			 "this never matches; expected a compiled program (allowing the "
			 "interpreter would allow every script it runs)",
			 real, interp);
	} else if (n < 4 || memcmp(head, "\177ELF", 4)) {
		pol_diag(D, false, file, line, col,
			 "allow-exe program '%.200s' is not an ELF binary; whatever runs it (a "
			 "shell, a binfmt_misc interpreter) is the caller's executable, so this "
			 "never matches; expected a compiled program",
			 real);
	}
out:
	if (fd >= 0)
		close(fd);
}
