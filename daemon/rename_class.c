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
 * classified, skipping every subdirectory no rule tells apart. There is no
 * cap on depth or size: a rename that changes no decision is never EXDEV
 * (only a tree that cannot be read is, and mv copies it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_policy.h"
#include "inode.h"
#include "rename.h"

/* A path that grows as deep as the tree goes. */
struct wpath {
	char *s; /* malloc'd (wfs_inode_path), grown by realloc */
	size_t len, cap;
};

/* The old and new path of the entry being looked at. */
struct walk {
	struct wfs_fs *fs;
	struct wpath from, to;
};

static bool append(struct wpath *p, const char *name, size_t l)
{
	if (p->len + l + 2 > p->cap) {
		size_t c = (p->len + l + 2) * 2;
		char *n = realloc(p->s, c);
		if (!n)
			return false;
		p->s = n, p->cap = c;
	}
	p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, l + 1);
	p->len += l;
	return true;
}

/* Appends "/name" to both paths; false when memory runs out. */
static bool push(struct walk *w, const char *name)
{
	size_t l = strlen(name);
	return append(&w->from, name, l) && append(&w->to, name, l);
}

static void cut(struct wpath *p, size_t len)
{
	p->len = len;
	p->s[len] = '\0';
}

/* Checks every regular file below dirfd (which it closes) whose decision a
 * rule could change: a subdirectory no rule tells apart under its two
 * names is skipped whole. 0 or -EXDEV (also when the tree cannot be read:
 * then mv copies, never wrong). */
static int walk_dir(struct walk *w, int fd)
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
		size_t fl = w->from.len, tl = w->to.len;
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
		if (type == DT_DIR && !wfs_subtrees_decide_alike(w->fs, w->from.s, w->to.s)) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sub < 0 ? -EXDEV : walk_dir(w, sub);
		} else if (type == DT_REG && !wfs_paths_decide_alike(w->fs, w->from.s, w->to.s)) {
			r = -EXDEV;
		}
		cut(&w->from, fl);
		cut(&w->to, tl);
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
	struct walk w = {.fs = n->fs};
	int r = wfs_inode_path(n, &w.from.s);
	if (r || (r = wfs_child_path(newparent, newname, &w.to.s)))
		goto out;
	if (n->type != S_IFDIR) {
		r = wfs_paths_decide_alike(w.fs, w.from.s, w.to.s) ? 0 : -EXDEV;
		goto out;
	}
	if (wfs_subtrees_decide_alike(w.fs, w.from.s, w.to.s))
		goto out;
	w.from.len = strlen(w.from.s);
	w.from.cap = w.from.len + 1;
	w.to.len = strlen(w.to.s);
	w.to.cap = w.to.len + 1;
	int fd = wfs_inode_open(n, O_RDONLY | O_DIRECTORY);
	r = fd < 0 ? fd : walk_dir(&w, fd);
out:
	free(w.from.s);
	free(w.to.s);
	return r;
}
