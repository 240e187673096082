/*
 * test_undo.c - the undo journal (crypto/undo.c, undo_replay.c) on real
 * files in a temporary directory: a write cut short (its entry written,
 * its bytes torn) is undone by replay, the file back as it was before the
 * write; a write that finished changes nothing at replay, whether its
 * entry was cleared or not; entries of a deleted file are skipped.
 */
#include <fcntl.h>

#include "helpers.h"

static struct wfs_keys *K;
static char dir[64];
static int dfd;

struct file {
	int fd;
	struct wfs_file_hdr h;
	struct wfs_undo_file *uf;
};

static void file_new(struct wfs_undo *u, const char *name, struct file *f)
{
	struct {
		struct file_handle fh;
		unsigned char b[128];
	} hb = {.fh.handle_bytes = 128};
	int mnt;

	f->fd = openat(dfd, name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->fd >= 0);
	assert_int_equal(wfs_hdr_write(K, f->fd, &f->h), 0);
	assert_int_equal(name_to_handle_at(f->fd, "", &hb.fh, &mnt, AT_EMPTY_PATH), 0);
	f->uf = wfs_undo_file_new(u, hb.fh.handle_type, hb.fh.f_handle, hb.fh.handle_bytes,
				  test_fsize(f->fd));
	assert_non_null(f->uf);
	f->h.undo = f->uf;
}

struct report {
	int n;
	off_t size_now;
};

static void on_undo(void *arg, const char *path, off_t at, size_t restored, off_t was, off_t now)
{
	struct report *r = arg;

	(void)path;
	(void)at;
	(void)restored;
	(void)was;
	r->n++;
	r->size_now = now;
}

static long replay(struct report *r)
{
	int mfd = open(dir, O_RDONLY | O_DIRECTORY);
	long n = wfs_undo_replay(K, dfd, "undo", mfd, on_undo, r);

	close(mfd);
	return n;
}

static void test_cut_write_is_undone(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	uint8_t a[3 * 4096 + 100], b[3 * 4096 + 100], junk[6000];
	struct wfs__undo_ticket t;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	file_new(u, "f", &f);
	test_pattern(a, sizeof(a), 1);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a, sizeof(a), 0), sizeof(a));
	off_t before = test_fsize(f.fd);
	/* a finished write: nothing left to replay */
	assert_int_equal(replay(&rep), 0);
	/* an append cut short: its entry is in the journal (the daemon died
	 * before it was cleared) and the old end block half overwritten */
	off_t at = 64 + 3 * 4124;
	assert_int_equal(wfs__undo_begin(f.uf, f.fd, &f.h, at, sizeof(junk), before, &t), 0);
	memset(junk, 0x6b, sizeof(junk));
	test_pwrite_raw(f.fd, junk, sizeof(junk), at + 50);
	assert_true(wfs_content_verify(K, f.fd, NULL, NULL) > 0);
	assert_int_equal(replay(&rep), 1);
	assert_int_equal(rep.n, 1);
	assert_int_equal(test_fsize(f.fd), before);
	assert_int_equal(wfs_content_pread(K, f.fd, &f.h, b, sizeof(b) + 10, 0), sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(wfs_content_verify(K, f.fd, NULL, NULL), 0);
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

static void test_finished_write_with_its_entry_left(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	uint8_t a[10000], b[10000];
	struct wfs__undo_ticket t;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	file_new(u, "g", &f);
	test_pattern(a, sizeof(a), 2);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a, 5000, 0), 5000);
	/* the entry of the next write is left behind (crash after the write,
	 * before the clear): the file verifies, so replay keeps the write */
	f.h.undo = NULL;
	assert_int_equal(wfs__undo_begin(f.uf, f.fd, &f.h, 64, 8000, test_fsize(f.fd), &t), 0);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 5000, 5000, 5000), 5000);
	assert_int_equal(replay(&rep), 0);
	assert_int_equal(wfs_content_pread(K, f.fd, &f.h, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

static void test_entries_of_a_deleted_file(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	uint8_t a[5000];
	struct wfs__undo_ticket t;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	file_new(u, "gone", &f);
	test_pattern(a, sizeof(a), 3);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a, sizeof(a), 0), sizeof(a));
	assert_int_equal(wfs__undo_begin(f.uf, f.fd, &f.h, 64, 4124, test_fsize(f.fd), &t), 0);
	close(f.fd);
	assert_int_equal(unlinkat(dfd, "gone", 0), 0);
	assert_int_equal(replay(&rep), 0);
	wfs_undo_file_free(f.uf);
	wfs_undo_close(u);
}

/* Writes through content.c journal and clear their entries: after many
 * writes, fsyncs and a close, the journal is empty. */
static void test_journal_empties(void **state)
{
	struct wfs_undo *u;
	struct file f;
	uint8_t a[20000];
	struct stat st;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	file_new(u, "h", &f);
	test_pattern(a, sizeof(a), 4);
	for (int i = 0; i < 200; i++) {
		size_t n = 100 + (size_t)(i % 50) * 300;
		assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a, n, i * 77), n);
		if (i % 10 == 0) {
			assert_int_equal(fsync(f.fd), 0);
			wfs_undo_file_synced(f.uf, test_fsize(f.fd));
		}
	}
	/* cleared entries let the journal start over: it stays short */
	assert_int_equal(fstatat(dfd, "undo", &st, 0), 0);
	assert_true(st.st_size < 512 * 1024);
	assert_int_equal(wfs_content_truncate(K, f.fd, &f.h, 3000), 0);
	assert_int_equal(fsync(f.fd), 0);
	wfs_undo_file_synced(f.uf, test_fsize(f.fd));
	struct report rep = {0};
	assert_int_equal(replay(&rep), 0); /* every entry cleared */
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
	assert_int_equal(fstatat(dfd, "undo", &st, 0), 0);
	assert_int_equal(st.st_size, 0);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(wfs_crypto_init(), 0);
	K = test_keys(7);
	snprintf(dir, sizeof(dir), "/tmp/wfs-undo-XXXXXX");
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	wfs_keys_free(K);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_write_is_undone),
		cmocka_unit_test(test_finished_write_with_its_entry_left),
		cmocka_unit_test(test_entries_of_a_deleted_file),
		cmocka_unit_test(test_journal_empties),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
