/*
 * helpers.h - shared by the daemon unit tests: a filesystem object on a
 * temporary backing directory, set up the way session.c sets up a mount
 * (root_fd, mount_fd, root inode, wfs_table_init) but without FUSE.
 */
#ifndef WFS_TEST_DAEMON_HELPERS_H
#define WFS_TEST_DAEMON_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs.h"
#include "inode.h"

struct tfs {
	char dir[64];	  /* the temporary directory: policy files go here */
	char backing[96]; /* dir/home: the backing directory */
	int bfd;	  /* backing, O_PATH: for making files behind the mount */
	struct wfs_daemon_opts o;
	struct wfs_fs *fs;
};

/* fds open now: a test that leaks one, or closes one twice, shows here. */
static inline int tfs_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The temporary directory of the test under way: a failed assertion
 * leaves the test before its teardown, so it is removed at exit. */
static char tfs_left[64];

static inline void tfs_remove_left(void)
{
	char cmd[128];
	if (!tfs_left[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tfs_left);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tfs_left);
	tfs_left[0] = '\0';
}

/* Makes the backing directory and the filesystem on it; max_fds 0 leaves
 * the table's default. keys become the filesystem's (may be NULL). */
static inline void tfs_setup(struct tfs *t, int max_fds, struct wfs_keys *keys)
{
	static bool registered;
	if (!registered)
		registered = atexit(tfs_remove_left) == 0;
	tfs_remove_left(); /* an earlier test's, if it failed */
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/wfs-daemon-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(tfs_left, sizeof(tfs_left), "%s", t->dir);
	snprintf(t->backing, sizeof(t->backing), "%s/home", t->dir);
	assert_int_equal(mkdir(t->backing, 0755), 0);
	t->o.backing = t->backing;
	t->o.mountpoint = "/nonexistent";
	t->o.keys = keys;
	t->o.ready_fd = -1;
	t->fs = wfs_fs_new(&t->o);
	assert_non_null(t->fs);

	/* as wfs_daemon_run does, less the flock and the rlimit */
	struct wfs_fs *fs = t->fs;
	fs->root_fd = open(t->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fs->root_fd >= 0);
	fs->mount_fd = open(t->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fs->mount_fd >= 0);
	struct stat rst;
	assert_int_equal(fstat(fs->root_fd, &rst), 0);
	fs->root_dev = fs->root.dev = rst.st_dev;
	fs->root.ino = rst.st_ino;
	fs->max_fds = max_fds;
	assert_int_equal(wfs_table_init(fs), 0);
	t->bfd = open(t->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->bfd >= 0);
}

static inline void tfs_teardown(struct tfs *t)
{
	wfs_fs_free(t->fs);
	t->fs = NULL;
	close(t->bfd);
	tfs_remove_left();
}

/* Creates backing file rel (below the backing dir) with the given bytes. */
static inline void tfs_write(struct tfs *t, const char *rel, const char *text)
{
	int fd = openat(t->bfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static inline void tfs_mkdir(struct tfs *t, const char *rel)
{
	assert_int_equal(mkdirat(t->bfd, rel, 0755), 0);
}

/* Looks name up in parent; the lookup must succeed. */
static inline struct wfs_inode *tfs_lookup(struct wfs_inode *parent, const char *name,
					   struct stat *st)
{
	struct stat tmp;
	struct wfs_inode *n = NULL;
	assert_int_equal(wfs_inode_lookup(parent, name, st ? st : &tmp, &n), 0);
	assert_non_null(n);
	return n;
}

/* Asserts n's path is want. */
static inline void tfs_assert_path(struct wfs_inode *n, const char *want)
{
	char *p = NULL;
	assert_int_equal(wfs_inode_path(n, &p), 0);
	assert_string_equal(p, want);
	free(p);
}

#endif
