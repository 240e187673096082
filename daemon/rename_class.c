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
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_policy.h"
#include "inode.h"
#include "rename.h"
#include "vault.h"

/* A directory moving from `from` to `to`: the walk (vault/walk.c) gives
 * each entry's old path; its new one is `to` and the rest. */
struct walk {
	struct wfs_fs *fs;
	const char *from, *to;
	size_t from_len;
	char *new; /* the entry's new path, grown by realloc */
	size_t cap;
};

/* The new path of the entry whose old path is old, or NULL (no memory). */
static const char *new_path(struct walk *w, const char *old)
{
	size_t tl = strlen(w->to), rest = strlen(old + w->from_len);
	if (tl + rest + 1 > w->cap) {
		char *p = realloc(w->new, (tl + rest + 1) * 2);
		if (!p)
			return NULL;
		w->new = p;
		w->cap = (tl + rest + 1) * 2;
	}
	memcpy(w->new, w->to, tl);
	memcpy(w->new + tl, old + w->from_len, rest + 1);
	return w->new;
}

/* A subdirectory is walked only where a rule tells its two names apart. */
static bool enter(void *arg, const char *old)
{
	struct walk *w = arg;
	const char *to = new_path(w, old);
	return !to || !wfs_subtrees_decide_alike(w->fs, old, to);
}

static int file(void *arg, int dirfd, const char *name, const char *old, const struct stat *st)
{
	(void)dirfd, (void)name, (void)st;
	struct walk *w = arg;
	const char *to = new_path(w, old);
	return to && wfs_paths_decide_alike(w->fs, old, to) ? 0 : -EXDEV;
}

int wfs_rename_keeps_class(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname)
{
	if (n->type == S_IFLNK)
		return 0; /* symlinks have no content form */
	WFS_AUTOFREE char *from = NULL;
	WFS_AUTOFREE char *to = NULL;
	int r = wfs_inode_path(n, &from);
	/* n forgot the name it had (another of its links was removed: inode.c):
	 * ESTALE makes the kernel look the path up again and retry, which
	 * gives n the name it is linked or renamed by, never a removed one. */
	if (r == -ENOENT)
		return -ESTALE;
	if (r || (r = wfs_child_path(newparent, newname, &to)))
		return r;
	if (n->type != S_IFDIR)
		return wfs_paths_decide_alike(n->fs, from, to) ? 0 : -EXDEV;
	if (wfs_subtrees_decide_alike(n->fs, from, to))
		return 0;
	/* The walk reads names on disk, and every name below that changes
	 * class would have to be encrypted again: mv copies instead. */
	if (n->fs->names)
		return -EXDEV;
	int fd = wfs_inode_open(n, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	struct walk w = {.fs = n->fs, .from = from, .to = to, .from_len = strlen(from)};
	struct wfs_walk walk = {.file = file, .enter = enter, .arg = &w, .flags = WFS_WALK_NO_STAT};
	r = wfs_walk_at(fd, n->fs->o->mountpoint, from, &walk);
	close(fd);
	free(w.new);
	/* a tree that cannot be read (wholly) is EXDEV: mv copies it */
	return r || walk.errors ? -EXDEV : 0;
}
