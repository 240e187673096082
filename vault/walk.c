/*
 * walk.c - the one walk of a backing tree. init, migrate, fsck, policy
 * scan, mark adoption and the orphan check all look at the same files the
 * same way: regular files only, symlinks never followed (a link could lead
 * out of the tree), BACKING/.wardfs skipped (the vault is not a user's
 * file), and no limit on depth: the relative path grows on the heap.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "say.h"
#include "vault.h"

struct walker {
	struct wfs_walk *w;
	const char *root;
	dev_t dev;
	char *rel; /* "/a/b", grown by realloc */
	size_t len, cap;
};

static void walk_error(struct walker *k, const char *name, int err)
{
	vault_error("cannot read '%s%s%s%s': %s", strcmp(k->root, "/") || !k->len ? k->root : "",
		    k->rel, name ? "/" : "", name ? name : "", strerror(err));
	k->w->errors++;
}

/* Appends "/name" to k->rel; false when memory runs out. */
static bool push(struct walker *k, const char *name, size_t nl)
{
	if (k->len + nl + 2 > k->cap) {
		size_t cap = (k->len + nl + 2) * 2;
		char *p = realloc(k->rel, cap);
		if (p == NULL)
			return false;
		k->rel = p;
		k->cap = cap;
	}
	k->rel[k->len] = '/';
	memcpy(k->rel + k->len + 1, name, nl + 1);
	k->len += nl + 1;
	return true;
}

static void cut(struct walker *k, size_t len)
{
	k->len = len;
	k->rel[len] = '\0';
}

static bool is_vault_dir(const struct walker *k)
{
	return !strcmp(k->rel, "/" WFS_VAULT_DIR);
}

static void name_issue(struct walker *k, int dfd, const char *bname, enum wfs_name_issue what)
{
	if (k->w->name_issue)
		k->w->name_issue(k->w->arg, dfd, k->rel[0] ? k->rel : "/", bname, what);
}

/* The name the entry bname shows as (names.c's rules): its length in
 * plain, 0 to skip it (wardfs's own, or said to name_issue). */
static ssize_t shown_name(struct walker *k, int dfd, const uint8_t *id, bool id_bad,
			  const char *bname, char plain[WFS_NAME_MAX + 1])
{
	enum wfs_name_kind kind;
	size_t len = strlen(bname);
	ssize_t n = wfs_name_show(k->w->names_keys, id, dfd, bname, len, &kind, plain);
	char pair[WFS_NAME_LONG_LEN + 1];
	struct stat st;
	if (n > 0)
		return n;
	if (n == 0) {
		if (kind == WFS_NAME_SIDECAR && wfs_name_long_pair(bname, len, pair) == 0 &&
		    fstatat(dfd, pair, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
			name_issue(k, dfd, bname, WFS_NAME_ORPHAN_SIDECAR);
		else if (wfs_name_is_temp(bname))
			name_issue(k, dfd, bname, WFS_NAME_TEMP);
		else if (kind == WFS_NAME_RESERVED)
			name_issue(k, dfd, bname, WFS_NAME_UNKNOWN);
		return 0;
	}
	if (n == -ENOKEY && !id_bad)
		name_issue(k, dfd, bname, WFS_NAME_NO_DIRID);
	else if (n == -ENOENT || (n == -EUCLEAN && kind == WFS_NAME_LONG))
		name_issue(k, dfd, bname, WFS_NAME_NO_SIDECAR);
	else if (n != -ENOKEY)
		name_issue(k, dfd, bname, WFS_NAME_UNREADABLE);
	return 0;
}

/* Walks the directory open as dfd (consumed), whose relpath is k->rel. */
static int walk_dir(struct walker *k, int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	int r = 0;
	uint8_t id[WFS_DIRID_LEN];
	bool have_id = false, id_bad = false;
	/* read once, and NO_STAT tested alone below: so that clang-tidy's
	 * analyzer too sees that no_stat (st unset) skips st.st_dev; it
	 * assumes the callbacks may change k->w->flags */
	const unsigned flags = k->w->flags;

	if (d == NULL) {
		walk_error(k, NULL, errno);
		close(dfd);
		return 0;
	}
	if (k->w->names_keys) {
		int ir = wfs_dirid_read(dirfd(d), id);
		have_id = ir == 0;
		id_bad = ir == -EUCLEAN;
		if (id_bad)
			name_issue(k, dirfd(d), WFS_DIRID_NAME, WFS_NAME_BAD_DIRID);
		else if (ir && ir != -ENOENT)
			walk_error(k, WFS_DIRID_NAME, -ir);
	}
	for (;;) {
		struct stat st;
		size_t len = k->len;
		bool no_stat = flags & WFS_WALK_NO_STAT;
		mode_t type;

		errno = 0;
		if ((e = readdir(d)) == NULL) {
			if (errno != 0)
				walk_error(k, NULL, errno);
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		const char *shown = e->d_name;
		char plain[WFS_NAME_MAX + 1];
		if (k->w->names_keys && !(k->len == 0 && !strcmp(e->d_name, WFS_VAULT_DIR))) {
			if (shown_name(k, dirfd(d), have_id ? id : NULL, id_bad, e->d_name,
				       plain) <= 0)
				continue;
			shown = plain;
		}
		if (no_stat && e->d_type != DT_UNKNOWN) {
			type = DTTOIF(e->d_type);
		} else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			type = st.st_mode & S_IFMT;
			no_stat = false;
		} else {
			if (errno != ENOENT) /* gone since readdir: not an error */
				walk_error(k, shown, errno);
			continue;
		}
		if (!push(k, shown, strlen(shown))) {
			walk_error(k, shown, ENOMEM);
			continue;
		}
		if (S_ISREG(type)) {
			r = k->w->file(k->w->arg, dirfd(d), e->d_name, k->rel,
				       no_stat ? NULL : &st);
		} else if (S_ISDIR(type) && !is_vault_dir(k) &&
			   (flags & WFS_WALK_NO_STAT || flags & WFS_WALK_XDEV ||
			    st.st_dev == k->dev) &&
			   (k->w->enter == NULL || k->w->enter(k->w->arg, k->rel))) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				cut(k, len);
				walk_error(k, shown, errno);
				continue;
			} else {
				r = walk_dir(k, sub);
			}
		}
		if (r == 0 && k->w->entry_done)
			r = k->w->entry_done(k->w->arg, dirfd(d), e->d_name, k->rel, type);
		cut(k, len);
		if (r != 0)
			break;
	}
	closedir(d);
	return r;
}

int wfs_walk_at(int dirfd, const char *root, const char *base, struct wfs_walk *w)
{
	struct walker k = {.w = w, .root = root};
	struct stat st;
	int fd, r;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	k.dev = st.st_dev;
	k.len = strlen(base);
	k.cap = k.len + 256;
	if ((k.rel = malloc(k.cap)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(k.rel, base, k.len + 1);
	r = walk_dir(&k, fd);
	free(k.rel);
	return r;
}

int wfs_walk(const char *root, struct wfs_walk *w)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = wfs_walk_at(fd, root, "", w);
	close(fd);
	return r;
}

int wfs_vault_walk(const char *backing, wfs_walk_fn fn, void *arg, unsigned *errors)
{
	struct wfs_walk w = {.file = fn, .arg = arg};
	int r = wfs_walk(backing, &w);

	if (errors != NULL)
		*errors += w.errors;
	return r;
}
