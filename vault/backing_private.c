/*
 * backing_private.c - is a backing directory closed to every user but
 * root?
 *
 * The mount is the only way users should reach the files: read straight
 * from the backing directory, a deny-listed or public file has no policy
 * and no audit, and ciphertext can be re-linked around the policy. Like
 * sshd's StrictModes, init and mount walk every component of the path:
 * at least one directory on it must be root's and closed to others
 * (no search permission for group or others), and no directory above the
 * backing directory may be changed by anyone but root (or a user could
 * move it aside and put another in its place). A sticky directory such as
 * /tmp is fine: others cannot rename what is not theirs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "say.h"
#include "vault.h"

static bool closed_to_others(const struct stat *st)
{
	return st->st_uid == 0 && (st->st_mode & 0011) == 0;
}

static bool others_may_change(const struct stat *st)
{
	return st->st_uid != 0 || ((st->st_mode & 0022) && !(st->st_mode & S_ISVTX));
}

int wfs_backing_private(const char *backing, bool count_self)
{
	char real[PATH_MAX], path[PATH_MAX], closer[PATH_MAX] = "";
	struct stat st;
	bool closed = false;

	if (!realpath(backing, real)) {
		int e = errno;
		vault_error("cannot resolve '%s': %s", backing, strerror(e));
		return -e;
	}
	strcpy(path, "/");
	for (const char *rest = real + 1;;) {
		bool last = !strcmp(path, real);
		if (lstat(path, &st) != 0) {
			int e = errno;
			vault_error("cannot check '%s': %s", path, strerror(e));
			return -e;
		}
		if (!last && others_may_change(&st)) {
			vault_error("'%s', above the backing directory '%s', can be changed by "
				    "users other than root (owner uid %u, mode %04o); run 'chown "
				    "root %s && chmod go-w %s'",
				    path, real, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				    path, path);
			return -EPERM;
		}
		closed = closed || ((!last || count_self) && closed_to_others(&st));
		if (last)
			break;
		snprintf(closer, sizeof(closer), "%s", path); /* the parent, at the end */
		size_t n = strcspn(rest, "/"), l = strlen(path);
		if (l > 1)
			path[l++] = '/';
		memcpy(path + l, rest, n);
		path[l + n] = '\0';
		rest += n + (rest[n] == '/');
	}
	if (!closed) {
		vault_error("users other than root can reach the backing directory '%s' and read "
			    "its files without the policy or the audit; close a directory on its "
			    "path, e.g. 'chmod 700 %s' (or pass --allow-reachable if you mean it)",
			    real, strcmp(closer, "/") && closer[0] ? closer : real);
		return -EPERM;
	}
	return 0;
}
