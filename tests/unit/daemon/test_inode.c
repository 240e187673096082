/*
 * test_inode.c - the inode table (daemon/inode.c) without a mount:
 * lookups and their references, the identity rule (an entry matches only
 * its own file handle, never a newer file with the same number), renames,
 * removed names, and the bounded cache of O_PATH fds.
 */
#include "helpers.h"

/* A lookup names its inode "/a/b"; a second one returns the same entry with
 * one more reference; forgetting them all empties the table. */
static void test_lookup_refs_and_forget(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_mkdir(&t, "a");
	tfs_write(&t, "a/b", "bee");

	struct stat st;
	struct wfs_inode *a = tfs_lookup(&fs->root, "a", NULL);
	struct wfs_inode *b = tfs_lookup(a, "b", &st);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 3);
	assert_int_equal(b->ino, st.st_ino);
	assert_int_equal(b->type, S_IFREG);
	tfs_assert_path(b, "/a/b");
	tfs_assert_path(&fs->root, "/");
	char *cp = NULL;
	assert_int_equal(wfs_child_path(a, "c", &cp), 0);
	assert_string_equal(cp, "/a/c");
	free(cp);
	assert_int_equal(b->nlookup, 1);
	assert_int_equal(a->nlookup, 2); /* the kernel's and b's */
	assert_int_equal(fs->ninodes, 2);
	/* the kernel's number for it leads back to it */
	assert_ptr_equal(wfs_inode_get(fs, wfs_inode_ino(b)), b);
	assert_ptr_equal(wfs_inode_get(fs, FUSE_ROOT_ID), &fs->root);

	struct wfs_inode *b2 = tfs_lookup(a, "b", NULL);
	assert_ptr_equal(b2, b);
	assert_int_equal(b->nlookup, 2);
	assert_int_equal(a->nlookup, 2); /* b names a once, however often looked up */
	assert_int_equal(fs->ninodes, 2);

	struct wfs_inode *none = NULL;
	assert_int_equal(wfs_inode_lookup(a, "missing", &st, &none), -ENOENT);
	assert_null(none);

	wfs_inode_forget(b, 1);
	assert_int_equal(fs->ninodes, 2); /* one reference left */
	wfs_inode_forget(b, 1);
	assert_int_equal(fs->ninodes, 1); /* b went, and let go of a */
	assert_int_equal(a->nlookup, 1);
	wfs_inode_forget(a, 1);
	assert_int_equal(fs->ninodes, 0);
	tfs_teardown(&t);
}

/* An entry whose handle is not the file's (same number, another
 * generation) is never returned: it leaves the hash for the stale list, and
 * is freed there when the kernel forgets it. The handle is changed by hand,
 * as if ext4 had given its number to a new file. */
static void test_other_handle_is_not_matched(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_write(&t, "x", "x");

	struct wfs_inode *old = tfs_lookup(&fs->root, "x", NULL);
	assert_true(old->hashed);
	old->handle[old->handle_bytes - 1] ^= 0xff;

	struct wfs_inode *n = tfs_lookup(&fs->root, "x", NULL);
	assert_ptr_not_equal(n, old);
	assert_true(n->hashed);
	assert_false(old->hashed);
	assert_ptr_equal(fs->stale, old);
	assert_int_equal(n->nlookup, 1);
	assert_int_equal(old->nlookup, 1); /* still the kernel's until it forgets */
	assert_int_equal(n->ino, old->ino);
	/* a third lookup finds the new entry, not the old one */
	assert_ptr_equal(tfs_lookup(&fs->root, "x", NULL), n);
	assert_int_equal(n->nlookup, 2);

	wfs_inode_forget(old, 1);
	assert_null(fs->stale);
	assert_int_equal(fs->ninodes, 1);
	wfs_inode_forget(n, 2);
	assert_int_equal(fs->ninodes, 0);
	tfs_teardown(&t);
}

/* The same with a real reuse: a file is removed and a new one takes its
 * number (ext4 and tmpfs hand out the freed number again). The lookup of
 * the new file gets a new entry; the old entry reads as the deleted file
 * it is. Skipped when the backing file system gives no number back. */
static void test_reused_number_gets_a_new_entry(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_write(&t, "x", "x");

	struct stat st1, st2;
	struct wfs_inode *old = tfs_lookup(&fs->root, "x", &st1);
	/* as unlink does: the cached fd must not keep the file alive */
	wfs_inode_name_removed(&fs->root, "x", &st1);
	assert_int_equal(unlinkat(t.bfd, "x", 0), 0);

	char name[16];
	bool reused = false;
	for (int i = 0; i < 64 && !reused; i++) {
		snprintf(name, sizeof(name), "y%d", i);
		tfs_write(&t, name, "y");
		assert_int_equal(fstatat(t.bfd, name, &st2, 0), 0);
		reused = st2.st_ino == st1.st_ino;
	}
	if (!reused) {
		wfs_inode_forget(old, 1);
		tfs_teardown(&t);
		skip(); /* test_other_handle_is_not_matched covers the rule */
	}

	struct wfs_inode *n = tfs_lookup(&fs->root, name, NULL);
	assert_ptr_not_equal(n, old);
	assert_false(old->hashed);
	char want[32];
	snprintf(want, sizeof(want), "/%s", name);
	tfs_assert_path(n, want);
	/* the old entry's handle names the deleted file, not the new one */
	assert_int_equal(wfs_inode_fd(old), -ESTALE);
	int fd = wfs_inode_fd(n);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	wfs_inode_put_fd(n);
	wfs_inode_forget(old, 1);
	wfs_inode_forget(n, 1);
	tfs_teardown(&t);
}

/* A rename moves the entry's name and its parent reference, and moves the
 * policy generation (paths below it changed); a directory's rename moves
 * the paths of the entries below it. */
static void test_rename_moves_the_path(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_mkdir(&t, "a");
	tfs_mkdir(&t, "c");
	tfs_write(&t, "a/b", "b");

	struct wfs_inode *a = tfs_lookup(&fs->root, "a", NULL);
	struct wfs_inode *c = tfs_lookup(&fs->root, "c", NULL);
	struct wfs_inode *b = tfs_lookup(a, "b", NULL);
	unsigned gen = atomic_load(&fs->policy_gen);
	assert_int_equal(renameat(t.bfd, "a/b", t.bfd, "c/d"), 0);
	wfs_inode_rename(b, c, "d", NULL);
	tfs_assert_path(b, "/c/d");
	assert_int_equal(atomic_load(&fs->policy_gen), gen + 1);
	assert_int_equal(a->nlookup, 1); /* b no longer holds a */
	assert_int_equal(c->nlookup, 2);
	assert_ptr_equal(tfs_lookup(c, "d", NULL), b);
	assert_int_equal(b->nlookup, 2);

	assert_int_equal(renameat(t.bfd, "c", t.bfd, "e"), 0);
	wfs_inode_rename(c, &fs->root, "e", NULL);
	tfs_assert_path(b, "/e/d");

	wfs_inode_forget(a, 1);
	wfs_inode_forget(b, 2);
	wfs_inode_forget(c, 1);
	assert_int_equal(fs->ninodes, 0);
	tfs_teardown(&t);
}

/* A removed name of a file with other names is forgotten (only when it is
 * the entry's name); a file's last name is kept, and its idle cached fd is
 * closed (its space is freed by the time unlink returns). */
static void test_name_removed(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_write(&t, "f", "f");
	assert_int_equal(linkat(t.bfd, "f", t.bfd, "g", 0), 0);

	struct stat st;
	struct wfs_inode *n = tfs_lookup(&fs->root, "f", &st);
	assert_int_equal(st.st_nlink, 2);
	assert_true(n->fd >= 0);
	wfs_inode_name_removed(&fs->root, "g", &st); /* not the name it has */
	tfs_assert_path(n, "/f");
	wfs_inode_name_removed(&fs->root, "f", &st);
	char *p = NULL;
	assert_int_equal(wfs_inode_path(n, &p), -ENOENT);
	assert_null(p);
	struct stat sst;
	assert_int_equal(wfs_inode_stat_by_name(n, &sst), -ENOENT);
	assert_true(n->fd >= 0); /* the file lives on: the fd stays cached */
	assert_int_equal(unlinkat(t.bfd, "f", 0), 0);

	/* looked up by its other name, the entry takes that name */
	assert_ptr_equal(tfs_lookup(&fs->root, "g", &st), n);
	tfs_assert_path(n, "/g");
	assert_int_equal(wfs_inode_stat_by_name(n, &sst), 0);
	assert_int_equal(sst.st_ino, n->ino);
	assert_int_equal(st.st_nlink, 1);

	/* its last name: an fd in use is not closed under its user */
	int fd = wfs_inode_fd(n);
	assert_true(fd >= 0);
	wfs_inode_name_removed(&fs->root, "g", &st);
	assert_int_equal(n->fd, fd);
	assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
	wfs_inode_put_fd(n);
	int nfds = fs->nfds;
	wfs_inode_name_removed(&fs->root, "g", &st);
	assert_int_equal(n->fd, -1);
	assert_int_equal(fs->nfds, nfds - 1);
	tfs_assert_path(n, "/g"); /* the only name it had: kept */
	assert_int_equal(unlinkat(t.bfd, "g", 0), 0);

	wfs_inode_forget(n, 2);
	assert_int_equal(fs->ninodes, 0);
	tfs_teardown(&t);
}

/* unname: the entry forgets its name (ESTALE, then a new lookup) and its
 * idle cached fd; it can still be opened by handle. */
static void test_unname(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_write(&t, "u", "u");

	struct wfs_inode *n = tfs_lookup(&fs->root, "u", NULL);
	assert_true(n->fd >= 0);
	assert_int_equal(fs->nfds, 1);
	wfs_inode_unname(n);
	char *p = NULL;
	assert_int_equal(wfs_inode_path(n, &p), -ENOENT);
	assert_int_equal(n->fd, -1);
	assert_int_equal(fs->nfds, 0);

	int fd = wfs_inode_fd(n); /* reopened by handle */
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, n->ino);
	wfs_inode_put_fd(n);

	assert_ptr_equal(tfs_lookup(&fs->root, "u", NULL), n);
	tfs_assert_path(n, "/u");
	wfs_inode_forget(n, 2);
	tfs_teardown(&t);
}

#define NFILES 20
#define MAXFDS 4

/* Asserts fd is an open fd of n's backing file. */
static void assert_fd_of(int fd, struct wfs_inode *n)
{
	struct stat st;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, n->ino);
}

/* The fd cache keeps at most max_fds idle fds; an evicted inode's fd is
 * reopened by handle; an fd in use is never closed under its user (the
 * cap is soft); reclaim closes half the idle ones on EMFILE/ENFILE only. */
static void test_fd_cache_bounded(void **state)
{
	(void)state;
	int fds0 = tfs_count_fds();
	struct tfs t;
	tfs_setup(&t, MAXFDS, NULL);
	struct wfs_fs *fs = t.fs;
	struct wfs_inode *n[NFILES];
	char name[16];
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		tfs_write(&t, name, name);
		n[i] = tfs_lookup(&fs->root, name, NULL);
		assert_true(fs->nfds <= MAXFDS);
	}
	assert_int_equal(fs->nfds, MAXFDS);
	assert_int_equal(fs->ninodes, NFILES);

	for (int i = 0; i < NFILES; i++) {
		int fd = wfs_inode_fd(n[i]);
		assert_fd_of(fd, n[i]);
		wfs_inode_put_fd(n[i]);
		assert_true(fs->nfds <= MAXFDS);
		/* twice: the second is the cached one */
		assert_int_equal(wfs_inode_fd(n[i]), fd);
		wfs_inode_put_fd(n[i]);
	}

	/* more in use than the cap: all stay open */
	int held[MAXFDS + 2];
	for (int i = 0; i < MAXFDS + 2; i++)
		held[i] = wfs_inode_fd(n[i]);
	assert_int_equal(fs->nfds, MAXFDS + 2);
	for (int i = 0; i < MAXFDS + 2; i++)
		assert_fd_of(held[i], n[i]);
	for (int i = 0; i < MAXFDS + 2; i++)
		wfs_inode_put_fd(n[i]);
	assert_int_equal(fs->nfds, MAXFDS);

	/* reclaim: only for want of fds, and half of the idle ones */
	errno = EMFILE;
	assert_false(wfs_fds_reclaim(fs, EINVAL));
	assert_int_equal(fs->nfds, MAXFDS);
	assert_true(wfs_fds_reclaim(fs, EMFILE));
	assert_int_equal(fs->nfds, MAXFDS / 2);
	assert_int_equal(errno, EMFILE); /* the caller's errno is kept */
	assert_true(wfs_fds_reclaim(fs, ENFILE));
	assert_int_equal(fs->nfds, MAXFDS / 4);

	/* fds in use are never reclaimed */
	int a = wfs_inode_fd(n[7]), b = wfs_inode_fd(n[8]);
	while (wfs_fds_reclaim(fs, EMFILE))
		;
	assert_fd_of(a, n[7]);
	assert_fd_of(b, n[8]);
	assert_int_equal(n[7]->fd, a);
	assert_int_equal(n[8]->fd, b);
	wfs_inode_put_fd(n[7]);
	wfs_inode_put_fd(n[8]);

	for (int i = 0; i < NFILES; i++)
		wfs_inode_forget(n[i], 1);
	assert_int_equal(fs->ninodes, 0);
	assert_int_equal(fs->nfds, 0);
	tfs_teardown(&t);
	assert_int_equal(tfs_count_fds(), fds0); /* none leaked */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_refs_and_forget),
		cmocka_unit_test(test_other_handle_is_not_matched),
		cmocka_unit_test(test_reused_number_gets_a_new_entry),
		cmocka_unit_test(test_rename_moves_the_path),
		cmocka_unit_test(test_name_removed),
		cmocka_unit_test(test_unname),
		cmocka_unit_test(test_fd_cache_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
