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

/* Walks the directory open as dfd (consumed), whose relpath is k->rel. */
static int walk_dir(struct walker *k, int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	int r = 0;
	/* read once, and NO_STAT tested alone below: so that clang-tidy's
	 * analyzer too sees that no_stat (st unset) skips st.st_dev; it
	 * assumes the callbacks may change k->w->flags */
	const unsigned flags = k->w->flags;

	if (d == NULL) {
		walk_error(k, NULL, errno);
		close(dfd);
		return 0;
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
		if (no_stat && e->d_type != DT_UNKNOWN) {
			type = DTTOIF(e->d_type);
		} else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			type = st.st_mode & S_IFMT;
			no_stat = false;
		} else {
			if (errno != ENOENT) /* gone since readdir: not an error */
				walk_error(k, e->d_name, errno);
			continue;
		}
		if (!push(k, e->d_name, strlen(e->d_name))) {
			walk_error(k, e->d_name, ENOMEM);
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
				walk_error(k, e->d_name, errno);
			} else {
				r = walk_dir(k, sub);
			}
		}
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
