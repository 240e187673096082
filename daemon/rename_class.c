/*
 * rename_class.c - may a rename or link keep every file's decision?
 *
 * A link or rename must never give a file a weaker decision than it had:
 * the new path must decide alike (class and every allow-* option; see
 * wfs_decision_same), or a user could link ~/.aws/credentials to a name
 * without allow-exe= and read it through that. Such requests fail with
 * EXDEV (mv then copies, and the copy is judged by its own path).
 *
 * A file's class follows its path, but its form (plain or encrypted) is
 * fixed on disk. Renaming it to a path of another class would leave a
 * plaintext file in the sensitive area, or ciphertext in the public one, so
 * such renames fail with EXDEV and `mv` copies instead, through the mount,
 * into the new form. For a directory this must hold for every file below
 * it. Mostly the policy alone shows that it does (no rule can tell the old
 * subtree from the new: wfs_policy_subtrees_alike), whatever the tree
 * holds; otherwise the subtree is walked and each file's old and new path
 * classified. Such walks are capped; a tree too large to check is EXDEV as
 * well, which is slow for the caller (mv copies) but never wrong.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define WALK_MAX_ENTRIES 100000
#define WALK_MAX_DEPTH	 64

struct walk {
	char from[PATH_MAX];
	char to[PATH_MAX];
	size_t from_len, to_len;
	long entries;
};

/* Appends "/name" to both paths; false when either would be too long. */
static bool push(struct walk *w, const char *name)
{
	size_t l = strlen(name);
	if (w->from_len + l + 2 > sizeof(w->from) || w->to_len + l + 2 > sizeof(w->to))
		return false;
	w->from[w->from_len++] = '/';
	memcpy(w->from + w->from_len, name, l + 1);
	w->from_len += l;
	w->to[w->to_len++] = '/';
	memcpy(w->to + w->to_len, name, l + 1);
	w->to_len += l;
	return true;
}

static void pop(struct walk *w, size_t from_len, size_t to_len)
{
	w->from_len = from_len;
	w->from[from_len] = '\0';
	w->to_len = to_len;
	w->to[to_len] = '\0';
}

static bool path_keeps_class(const struct walk *w)
{
	return wfs_paths_decide_alike(w->from, w->to);
}

/* Checks every regular file below dirfd (which it closes). 0 or -EXDEV. */
static int walk_dir(struct walk *w, int fd, int depth)
{
	int r = 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -EXDEV;
	}
	struct dirent *e;
	while (r == 0 && (errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++w->entries > WALK_MAX_ENTRIES) {
			r = -EXDEV;
			break;
		}
		size_t fl = w->from_len, tl = w->to_len;
		if (!push(w, e->d_name)) {
			r = -EXDEV;
			break;
		}
		unsigned char type = e->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			type = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
					       S_ISDIR(st.st_mode)
				       ? DT_DIR
				       : DT_REG;
		}
		if (type == DT_DIR) {
			int sub = depth < WALK_MAX_DEPTH
					  ? openat(dirfd(d), e->d_name,
						   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
					  : -1;
			r = sub < 0 ? -EXDEV : walk_dir(w, sub, depth + 1);
		} else if (type == DT_REG && !path_keeps_class(w)) {
			r = -EXDEV;
		}
		pop(w, fl, tl);
	}
	if (r == 0 && errno)
		r = -EXDEV;
	closedir(d);
	return r;
}

int wfs_rename_keeps_class(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname)
{
	if (n->type == S_IFLNK)
		return 0; /* symlinks have no content form */
	struct walk w = {0};
	if (wfs_inode_path(n, w.from, sizeof(w.from)) ||
	    wfs_child_path(newparent, newname, w.to, sizeof(w.to)))
		return -ENAMETOOLONG;
	w.from_len = strlen(w.from);
	w.to_len = strlen(w.to);
	if (n->type != S_IFDIR)
		return path_keeps_class(&w) ? 0 : -EXDEV;
	if (wfs_subtrees_decide_alike(w.from, w.to))
		return 0;
	int fd = wfs_inode_open(n, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	return walk_dir(&w, fd, 0);
}
