/*
 * mounted.c - finding a running wardfs mount and reading its daemon's
 * status without hanging.
 *
 * Every request to a FUSE mount waits for its daemon. A daemon that is
 * stopped (SIGSTOP, a debugger) or stuck never answers, and a stat of the
 * mount point, a getxattr, even realpath(3) of the path would wait with
 * it. So the path is made absolute by text, the mount is found in
 * /proc/self/mountinfo, and the status is read by a child process that
 * can be killed (a fatal signal ends a waiting FUSE request).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mounted.h"
#include "usage.h"
#include "wardfs_status.h"

/* path made absolute and normalized by text alone ("." and ".." and
 * repeated slashes), as the kernel shows mount points. */
static int absolute_text(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX * 2];
	if (path[0] == '/') {
		if (strlen(path) >= sizeof(buf))
			return -ENAMETOOLONG;
		strcpy(buf, path);
	} else {
		if (!getcwd(buf, PATH_MAX))
			return -errno;
		if (strlen(buf) + 1 + strlen(path) >= sizeof(buf))
			return -ENAMETOOLONG;
		strcat(buf, "/");
		strcat(buf, path);
	}
	size_t o = 0;
	for (char *save, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (o > 0 && out[--o] != '/')
				;
			continue;
		}
		size_t l = strlen(c);
		if (o + 1 + l + 1 > len)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, c, l);
		o += l;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/*
 * Splits one mountinfo line in place, "id parent maj:min root MOUNTPOINT
 * opts [tags...] - TYPE SOURCE ...", into its mount point, type and source
 * (escapes undone). False for a line without them.
 */
static bool mountinfo_fields(char *line, char **mp, char **fstype, char **src)
{
	char *save;
	int field = 0;
	bool after_dash = false;

	*mp = *fstype = *src = NULL;
	for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		if (++field == 5)
			*mp = t;
		else if (after_dash && !*fstype)
			*fstype = t;
		else if (after_dash) {
			*src = t;
			break;
		} else if (field > 6 && !strcmp(t, "-"))
			after_dash = true;
	}
	if (!*mp || !*fstype || !*src)
		return false;
	unescape(*mp);
	unescape(*src);
	return true;
}

int wfs_each_mount(int (*fn)(void *arg, const char *mnt, const char *backing), void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL, *mp, *fstype, *src;
	size_t cap = 0;
	int r = 0;
	while (r == 0 && getline(&line, &cap, f) > 0)
		if (mountinfo_fields(line, &mp, &fstype, &src) && !strcmp(fstype, WFS_FSTYPE))
			r = fn(arg, mp, src);
	free(line);
	fclose(f);
	return r;
}

struct find_backing {
	const char *backing;
	char *mnt;
	size_t len;
};

static int is_backing(void *arg, const char *mnt, const char *backing)
{
	struct find_backing *f = arg;
	if (strcmp(backing, f->backing))
		return 0;
	snprintf(f->mnt, f->len, "%s", mnt);
	return 1;
}

int wfs_backing_mounted(const char *backing, char *mnt, size_t len)
{
	struct find_backing f = {backing, mnt, len};
	return wfs_each_mount(is_backing, &f);
}

int wfs_mount_type(const char *path, char *type, size_t len)
{
	char want[PATH_MAX];
	int r = absolute_text(path, want, sizeof(want));
	if (r)
		return r;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL, *mp, *fstype, *src;
	size_t cap = 0;
	r = -EINVAL;
	while (getline(&line, &cap, f) > 0) {
		/* the last match is the topmost mount */
		if (mountinfo_fields(line, &mp, &fstype, &src) && !strcmp(mp, want)) {
			snprintf(type, len, "%s", fstype);
			r = 0;
		}
	}
	free(line);
	fclose(f);
	return r;
}

int wfs_read_status(const char *mnt, char *buf, size_t len, int timeout_ms)
{
	int p[2];
	if (pipe(p) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		ssize_t n = getxattr(mnt, WFS_STATUS_XATTR, buf, len - 1);
		int err = n < 0 ? errno : 0;
		if (write(p[1], &err, sizeof(err)) != sizeof(err))
			_exit(1);
		if (n > 0 && write(p[1], buf, (size_t)n) != n)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	int r = 0, err = 0;
	size_t got = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (bool head = true;;) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 +
					  (now.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int pr = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			r = pr == 0 ? -ETIMEDOUT : -errno;
			break;
		}
		ssize_t n =
			head ? read(p[0], &err, sizeof(err)) : read(p[0], buf + got, len - 1 - got);
		if (n <= 0) {
			r = head ? -EIO : 0;
			break;
		}
		if (head) {
			head = false;
			if (err) {
				r = -err;
				break;
			}
		} else {
			got += (size_t)n;
			if (got >= len - 1)
				break;
		}
	}
	close(p[0]);
	if (r == -ETIMEDOUT)
		kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	buf[r == 0 ? got : 0] = '\0';
	return r;
}

int wfs_require_wardfs(const char *mnt)
{
	char type[64];
	int r = wfs_mount_type(mnt, type, sizeof(type));
	if (r == -EINVAL)
		return error("'%s' is not a mount point", mnt);
	if (r)
		return error("cannot read the mount table: %s", strerror(-r));
	if (strcmp(type, WFS_FSTYPE))
		return error("'%s' is a %s mount, not wardfs; leaving it alone", mnt, type);
	return 0;
}
