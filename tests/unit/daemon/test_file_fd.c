/*
 * test_file_fd.c - the per-user count of opens that keep a daemon fd
 * (daemon/file_fd.c: wfs_file_hold / wfs_file_unhold), and the fd a
 * passthrough open sheds and borrows back by handle.
 */
#include "helpers.h"

#include "file_fd.h"

#define LIMIT 3

static struct wfs_file file_of(struct wfs_inode *n, enum wfs_serve serve)
{
	return (struct wfs_file){.fd = -1, .serve = serve, .inode = n};
}

/* A user gets -EMFILE beyond fs->max_held; other users and root are not
 * counted against it; passthrough opens are not counted; an unhold frees a
 * place, once. */
static void test_hold_limit_per_user(void **state)
{
	(void)state;
	struct wfs_daemon_opts o = {.ready_fd = -1};
	struct wfs_fs *fs = wfs_fs_new(&o);
	assert_non_null(fs);
	struct wfs_inode n = {.fs = fs}; /* hold needs only the inode's fs */
	fs->max_held = LIMIT;

	struct wfs_file a[LIMIT + 1], b[LIMIT], r[2 * LIMIT];
	for (int i = 0; i < LIMIT; i++) {
		a[i] = file_of(&n, WFS_SERVE_ENCRYPTED);
		assert_int_equal(wfs_file_hold(&a[i], 1000), 0);
		assert_true(a[i].held);
		assert_int_equal(a[i].uid, 1000);
	}
	a[LIMIT] = file_of(&n, WFS_SERVE_FORWARD);
	assert_int_equal(wfs_file_hold(&a[LIMIT], 1000), -EMFILE);
	assert_false(a[LIMIT].held);
	wfs_file_unhold(&a[LIMIT]); /* not held: frees nothing */
	assert_int_equal(wfs_file_hold(&a[LIMIT], 1000), -EMFILE);

	/* passthrough keeps no daemon fd: never counted */
	struct wfs_file pt = file_of(&n, WFS_SERVE_PASSTHROUGH);
	assert_int_equal(wfs_file_hold(&pt, 1000), 0);
	assert_false(pt.held);

	/* another user has a count of its own */
	for (int i = 0; i < LIMIT; i++) {
		b[i] = file_of(&n, WFS_SERVE_FORWARD);
		assert_int_equal(wfs_file_hold(&b[i], 1001), 0);
	}
	/* root is never limited, nor counted */
	for (int i = 0; i < 2 * LIMIT; i++) {
		r[i] = file_of(&n, WFS_SERVE_ENCRYPTED);
		assert_int_equal(wfs_file_hold(&r[i], 0), 0);
		assert_false(r[i].held);
	}

	/* a close frees one place, and only one */
	wfs_file_unhold(&a[1]);
	assert_false(a[1].held);
	wfs_file_unhold(&a[1]);
	assert_int_equal(wfs_file_hold(&a[LIMIT], 1000), 0);
	assert_int_equal(wfs_file_hold(&a[1], 1000), -EMFILE);

	/* no limit at all: 0 */
	fs->max_held = 0;
	assert_int_equal(wfs_file_hold(&a[1], 1000), 0);
	assert_false(a[1].held);
	fs->max_held = LIMIT;

	for (int i = 0; i < LIMIT + 1; i++)
		wfs_file_unhold(&a[i]);
	for (int i = 0; i < LIMIT; i++)
		wfs_file_unhold(&b[i]);
	for (int i = 0; i < LIMIT; i++) {
		a[i] = file_of(&n, WFS_SERVE_ENCRYPTED);
		assert_int_equal(wfs_file_hold(&a[i], 1000), 0);
		wfs_file_unhold(&a[i]);
	}
	wfs_fs_free(fs);
}

/* A passthrough open sheds its fd; requests borrow one by handle, with the
 * open's access mode, and give it back. Other opens keep theirs. */
static void test_shed_and_borrow(void **state)
{
	(void)state;
	struct tfs t;
	tfs_setup(&t, 0, NULL);
	struct wfs_fs *fs = t.fs;
	tfs_write(&t, "p", "plain");
	struct wfs_inode *n = tfs_lookup(&fs->root, "p", NULL);

	struct wfs_file f = file_of(n, WFS_SERVE_PASSTHROUGH);
	f.fd = wfs_inode_open(n, O_RDWR);
	assert_true(f.fd >= 0);
	int fds = tfs_count_fds();
	wfs_file_shed_fd(&f);
	assert_int_equal(f.fd, -1);
	assert_int_equal(f.acc, O_RDWR);
	assert_int_equal(tfs_count_fds(), fds - 1);

	int fd = wfs_file_get_fd(&f);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	char buf[8] = "";
	assert_int_equal(pread(fd, buf, 5, 0), 5);
	assert_memory_equal(buf, "plain", 5);
	wfs_file_put_fd(&f, fd);
	assert_int_equal(tfs_count_fds(), fds - 1);

	struct wfs_file e = file_of(n, WFS_SERVE_FORWARD);
	e.fd = wfs_inode_open(n, O_RDONLY);
	wfs_file_shed_fd(&e); /* not passthrough: keeps it */
	assert_true(e.fd >= 0);
	assert_int_equal(wfs_file_get_fd(&e), e.fd);
	wfs_file_put_fd(&e, e.fd);
	assert_int_equal(fcntl(e.fd, F_GETFD), FD_CLOEXEC); /* still open */
	close(e.fd);

	wfs_inode_forget(n, 1);
	tfs_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold_limit_per_user),
		cmocka_unit_test(test_shed_and_borrow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
