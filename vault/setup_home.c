/*
 * setup_home.c - the engine of `wardfs setup-home USER`: turns a user's
 * existing home into a vault in one run. It creates the backing directory
 * and the vault, moves the home's entries into the backing directory
 * (rename(2), so the same file system is required), encrypts what the
 * policy calls sensitive (migrate.c) and leaves the home a bare mount
 * point.
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
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "say.h"
#include "vault.h"

#define MARKER WFS_SETUP_HOME_MARKER

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
static int read_marker(const struct wfs_setup_home *s, char *state, size_t len)
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
		vault_error("'%s' is being set up for user '%s' (home '%s'), not '%s'; choose "
			    "another --backing",
			    s->backing, user, home, s->user);
		return -EINVAL;
	}
	return 1;
}

static int write_marker(const struct wfs_setup_home *s, const char *state)
{
	char text[PATH_MAX + 512];
	int n = snprintf(text, sizeof(text),
			 "# wardfs setup-home progress; re-run 'wardfs setup-home %s' if the\n"
			 "# state is not done.\nuser %s\nhome %s\nstate %s\n",
			 s->user, s->user, s->home, state);
	int r = wfs_vault_write(s->backing, MARKER, text, (size_t)n, 0600);

	if (r != 0)
		vault_error("cannot write '%s/" WFS_VAULT_DIR "/" MARKER "': %s", s->backing,
			    strerror(-r));
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
static int move_entries(const struct wfs_setup_home *s)
{
	int hfd = -1, bfd = -1, r = 0;
	unsigned moved = 0;
	DIR *d = NULL;
	struct dirent *e;

	if ((hfd = open(s->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (bfd = open(s->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = vault_error_errno(errno, "cannot open '%s'", hfd < 0 ? s->home : s->backing);
		goto out;
	}
	if ((d = fdopendir(hfd)) == NULL) {
		r = vault_error_errno(errno, "cannot read '%s'", s->home);
		goto out;
	}
	hfd = -1;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strcmp(e->d_name, WFS_VAULT_DIR)) {
			r = vault_error_errno(
				0, "'%s/%s' is in the way of the vault directory; move it away",
				s->home, WFS_VAULT_DIR);
			goto out;
		}
		if (renameat2(dirfd(d), e->d_name, bfd, e->d_name, RENAME_NOREPLACE) != 0) {
			int err = errno;

			vault_error("cannot move '%s/%s' into '%s': %s%s", s->home, e->d_name,
				    s->backing, strerror(err),
				    err == EEXIST ? "; both exist: keep one and run again" : "");
			r = 1;
			goto out;
		}
		moved++;
	}
	if (fsync(bfd) != 0 || fsync(dirfd(d)) != 0) {
		r = vault_error_errno(errno, "cannot sync '%s'", s->backing);
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
static int copy_root_acls(const struct wfs_setup_home *s)
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
static int lock_bare_home(const struct wfs_setup_home *s)
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
uid_t wfs_uid_min(void)
{
	FILE *f = fopen("/etc/login.defs", "re");
	unsigned long v = 1000;
	char line[256];
	while (f && fgets(line, sizeof line, f))
		/* login.defs is root's; a value out of range only misplaces
		 * the uid boundary it sets */
		/* NOLINTNEXTLINE(cert-err34-c) */
		if (sscanf(line, " UID_MIN %lu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return (uid_t)v;
}

/* Lists (on stderr) up to 10 processes of uid; how many it found. */
int wfs_user_processes(uid_t uid)
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
			vault_detail("  pid %s (%s)", e->d_name, comm);
	}
	if (d)
		closedir(d);
	return n;
}

/* Gives the vault a slot for the organisation's escrow key, once (a run
 * resumed after it did keeps the one it made). */
static int add_escrow(const struct wfs_setup_home *s, const struct wfs_keys *keys)
{
	struct wfs_slot_new ns = {
		.type = WFS_SLOT_ESCROW, .label = "escrow", .escrow_public = s->escrow_public};
	struct wfs_keyfile_info info;
	uint8_t *kf = NULL, *nkf = NULL;
	size_t kflen, nlen;
	int r;

	if ((r = wfs_vault_read_keyfile(s->backing, &kf, &kflen)) != 0 ||
	    (r = wfs_keyfile_parse(kf, kflen, &info)) != 0) {
		vault_error_errno(-r, "cannot read the keyfile of '%s'", s->backing);
		goto out;
	}
	for (size_t i = 0; i < info.nslots; i++)
		if (info.slot[i].type == WFS_SLOT_ESCROW &&
		    !memcmp(info.slot[i].escrow_public, s->escrow_public, WFS_ESCROW_KEY_LEN))
			goto out; /* r == 0 */
	if ((r = wfs_keyfile_add(kf, kflen, keys, &ns, &nkf, &nlen, NULL)) != 0 ||
	    (r = wfs_vault_write(s->backing, WFS_VAULT_KEYFILE, nkf, nlen, 0600)) != 0)
		vault_error_errno(-r, "cannot add the escrow slot to '%s'", s->backing);
out:
	free(kf);
	free(nkf);
	return r == 0 ? 0 : -1;
}

int wfs_setup_home(struct wfs_setup_home *s)
{
	struct wfs_policy *pol = NULL;
	struct wfs_keys *keys = NULL;
	struct wfs_migrate_stats ms = {0};
	struct stat hst, bst, pst;
	char state[64] = "", vdir[PATH_MAX + 16], parent[PATH_MAX + 4];
	int r, status = 1;

	if (stat(s->home, &hst) != 0 || !S_ISDIR(hst.st_mode))
		return vault_error_errno(errno == 0 ? 0 : errno,
					 "home '%s' of '%s' is not a directory", s->home, s->user);
	snprintf(parent, sizeof(parent), "%s/..", s->home);
	if (stat(parent, &pst) == 0 && pst.st_dev != hst.st_dev)
		return vault_error_errno(0,
					 "'%s' is a mount point; unmount it (and log %s out) first",
					 s->home, s->user);
	if (is_under(s->backing, s->home) || is_under(s->home, s->backing))
		return vault_error_errno(
			0,
			"the backing directory '%s' and the home '%s' must not contain "
			"each other",
			s->backing, s->home);
	if (wfs_vault_load_policy(s->policy_path, 0, &pol) != 0)
		goto out;
	if ((r = make_parents(s->backing)) != 0) {
		vault_error_errno(-r, "cannot create the parents of '%s'", s->backing);
		goto out;
	}
	if (mkdir(s->backing, 0700) != 0 && errno != EEXIST) {
		vault_error_errno(errno, "cannot create '%s'", s->backing);
		goto out;
	}
	if (stat(s->backing, &bst) != 0 || !S_ISDIR(bst.st_mode)) {
		vault_error_errno(0, "'%s' is not a directory", s->backing);
		goto out;
	}
	/* The backing root is about to become the user's: a directory above it
	 * must keep other users (the user too) out. */
	if (wfs_backing_private(s->backing, false) != 0) {
		(void)rmdir(s->backing); /* only if we just made it, empty */
		goto out;
	}
	if (bst.st_dev != hst.st_dev) {
		vault_error_errno(
			0,
			"'%s' is not on the file system of '%s' (entries are moved, not copied); "
			"choose a --backing beside the home",
			s->backing, s->home);
		goto out;
	}
	if ((r = read_marker(s, state, sizeof(state))) < 0) {
		if (r != -EINVAL)
			vault_error_errno(-r, "cannot read the state of '%s'", s->backing);
		goto out;
	}
	if (r == 0 && wfs_vault_exists(s->backing)) {
		vault_error_errno(0, "'%s' is already a wardfs vault (not made by setup-home)",
				  s->backing);
		goto out;
	}
	if (!strcmp(state, "done")) {
		if ((r = lock_bare_home(s)) != 0) {
			vault_error_errno(-r, "cannot make the bare home '%s' root's and read-only",
					  s->home);
			goto out;
		}
		s->was_done = true;
		status = 0;
		goto out;
	}
	if (r == 0) { /* a fresh start */
		if ((r = only_vault_dir(s->backing)) <= 0) {
			vault_error_errno(r < 0 ? -r : 0,
					  "'%s' is not empty; choose an empty or new --backing",
					  s->backing);
			goto out;
		}
		snprintf(vdir, sizeof(vdir), "%s/" WFS_VAULT_DIR, s->backing);
		if (mkdir(vdir, 0700) != 0 && errno != EEXIST) {
			vault_error_errno(errno, "cannot create '%s'", vdir);
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
		vault_error_errno(errno, "cannot set the owner and mode of '%s'", s->backing);
		goto out;
	}
	if ((r = copy_root_acls(s)) != 0) {
		vault_error_errno(-r, "cannot give '%s' the ACLs of '%s'", s->backing, s->home);
		goto out;
	}
	s->po.may_write = true; /* a resumed run writes the vault anyway */
	if (!wfs_vault_exists(s->backing)) {
		if (wfs_vault_create(s->backing, &s->po, &s->kp, 0, &keys) != 0)
			goto out;
	} else if (wfs_crypto_init() != 0 || wfs_vault_unlock(s->backing, &s->po, &keys) != 0) {
		goto out;
	}
	if (s->escrow_public != NULL && add_escrow(s, keys) != 0)
		goto out;
	if (move_entries(s) != 0)
		goto out;
	if (wfs_vault_migrate(s->backing, pol, keys, &ms) != 0)
		goto out;
	if (ms.failed || ms.skipped || ms.errors) {
		vault_error("%u file%s could not be encrypted, %u skipped (hard links), %u "
			    "unreadable; fix them and run 'wardfs setup-home %s' again",
			    ms.failed, ms.failed == 1 ? "" : "s", ms.skipped, ms.errors, s->user);
		goto out;
	}
	if (write_marker(s, "done") != 0)
		goto out;
	if ((r = lock_bare_home(s)) != 0) {
		vault_error_errno(-r, "cannot make the bare home '%s' root's and read-only",
				  s->home);
		goto out;
	}
	s->encrypted = ms.encrypted;
	status = 0;
out:
	wfs_keys_free(keys);
	wfs_policy_free(pol);
	return status ? -1 : 0;
}
