/*
 * test_undo.c - the undo journal (crypto/undo.c, undo_replay.c) on real
 * files in a temporary directory: a write cut short (its entry written,
 * its bytes torn) is undone by replay, the file back as it was before the
 * write; a write that finished changes nothing at replay, whether its
 * entry was cleared or not; entries of a deleted file are skipped.
 * Redo entries: a whole-block overwrite of durable bytes leaves the file
 * as it was until a flush or a read of those blocks, and replay finishes
 * it (also over a torn copy in place). Once written in place (applied),
 * replay only mends the entry's blocks that fail, never newer ones, and a
 * flush lets go of it.
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
	int n, redo;
	off_t size_now;
};

static void on_undo(void *arg, const char *path, bool redo, off_t at, size_t restored, off_t was,
		    off_t now)
{
	struct report *r = arg;

	(void)path;
	r->redo += redo;
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

/* A file of 16 whole blocks (pattern seed), durable as it is: what a
 * redo entry is for. */
#define NB 16
static void durable_file(struct wfs_undo *u, const char *name, struct file *f, uint8_t *a, int seed)
{
	file_new(u, name, f);
	test_pattern(a, NB * 4096, seed);
	assert_int_equal(wfs_content_pwrite(K, f->fd, &f->h, a, NB * 4096, 0), NB * 4096);
	assert_int_equal(fsync(f->fd), 0);
	wfs_undo_file_synced(f->uf, test_fsize(f->fd));
}

static off_t cblock(int i)
{
	return 64 + (off_t)i * 4124;
}

/* The daemon dies with the new blocks only in the journal: the file still
 * holds the old ones, and replay writes the new ones in place. */
static void test_redo_is_replayed(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	static uint8_t a[NB * 4096], b[NB * 4096], old[2 * 4124], now[2 * 4124];
	struct wfs_file_hdr bare;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	durable_file(u, "r", &f, a, 5);
	test_pread_raw(f.fd, old, sizeof(old), cblock(2));
	test_pattern(a + 2 * 4096, 2 * 4096, 6);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 2 * 4096, 2 * 4096, 2 * 4096),
			 2 * 4096);
	assert_true(wfs_undo_file_pending(f.uf, cblock(3), cblock(3) + 1));
	assert_false(wfs_undo_file_pending(f.uf, cblock(4), cblock(5)));
	test_pread_raw(f.fd, now, sizeof(now), cblock(2));
	assert_memory_equal(old, now, sizeof(old)); /* nothing written in place */
	bare = f.h;
	bare.undo = NULL; /* a reader that does not know of the entry */
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(replay(&rep), 1);
	assert_int_equal(rep.redo, 1);
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

/* A crash while a flush wrote the blocks in place (one of them torn):
 * replay writes them again. */
static void test_redo_over_a_torn_block(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	static uint8_t a[NB * 4096], b[NB * 4096], junk[3000];
	struct wfs_file_hdr bare;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	durable_file(u, "t", &f, a, 7);
	test_pattern(a + 9 * 4096, 4096, 8);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 9 * 4096, 4096, 9 * 4096), 4096);
	memset(junk, 0x5a, sizeof(junk));
	test_pwrite_raw(f.fd, junk, sizeof(junk), cblock(9) + 1000);
	assert_true(wfs_content_verify(K, f.fd, NULL, NULL) > 0);
	assert_int_equal(replay(&rep), 1);
	assert_int_equal(wfs_content_verify(K, f.fd, NULL, NULL), 0);
	bare = f.h;
	bare.undo = NULL;
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

/* Reads, partial writes and truncates see a pending overwrite: each
 * writes it in place first. A flushed entry is cleared, so replay leaves
 * newer bytes alone. */
static void test_redo_is_seen_and_then_gone(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	static uint8_t a[NB * 4096], b[NB * 4096];
	struct wfs_file_hdr bare;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	durable_file(u, "s", &f, a, 9);
	/* a read of the block */
	test_pattern(a + 4 * 4096, 4096, 10);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 4 * 4096, 4096, 4 * 4096), 4096);
	assert_int_equal(wfs_content_pread(K, f.fd, &f.h, b, 10, 4 * 4096 + 7), 10);
	assert_memory_equal(a + 4 * 4096 + 7, b, 10);
	assert_false(wfs_undo_file_pending(f.uf, 0, INT64_MAX));
	/* a partial write into the block: the merge starts from the new one */
	test_pattern(a + 6 * 4096, 4096, 11);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 6 * 4096, 4096, 6 * 4096), 4096);
	memset(a + 6 * 4096 + 100, 0x33, 50);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 6 * 4096 + 100, 50, 6 * 4096 + 100),
			 50);
	bare = f.h;
	bare.undo = NULL;
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	/* applied entries are not replayed over what came after */
	assert_int_equal(replay(&rep), 0);
	/* a truncate below a pending block */
	test_pattern(a + 12 * 4096, 4096, 12);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 12 * 4096, 4096, 12 * 4096), 4096);
	assert_int_equal(wfs_content_truncate(K, f.fd, &f.h, 12 * 4096 + 20), 0);
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), 12 * 4096 + 20);
	assert_memory_equal(a, b, 12 * 4096 + 20);
	assert_int_equal(replay(&rep), 0);
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

/* Written in place (by a read of it) but not yet durable, a block that a
 * power cut tore is mended from its applied entry; a neighbour changed
 * since is left alone. An fsync lets go of the entries. */
static void test_applied_redo_mends_a_torn_block(void **state)
{
	struct wfs_undo *u;
	struct file f;
	struct report rep = {0};
	static uint8_t a[NB * 4096], b[NB * 4096], junk[500], before[4124], after[4124];
	struct wfs_file_hdr bare;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	durable_file(u, "p", &f, a, 16);
	test_pattern(a + 3 * 4096, 3 * 4096, 17);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 3 * 4096, 3 * 4096, 3 * 4096),
			 3 * 4096);
	assert_int_equal(wfs_content_pread(K, f.fd, &f.h, b, 10, 3 * 4096), 10);
	assert_false(wfs_undo_file_pending(f.uf, 0, INT64_MAX));
	memset(a + 5 * 4096 + 10, 0x44, 30);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 5 * 4096 + 10, 30, 5 * 4096 + 10),
			 30);
	memset(junk, 0xa5, sizeof(junk));
	test_pwrite_raw(f.fd, junk, sizeof(junk), cblock(4) + 2000);
	test_pread_raw(f.fd, before, sizeof(before), cblock(5));
	assert_true(wfs_content_verify(K, f.fd, NULL, NULL) > 0);
	assert_int_equal(replay(&rep), 1);
	assert_int_equal(rep.redo, 1);
	assert_int_equal(wfs_content_verify(K, f.fd, NULL, NULL), 0);
	test_pread_raw(f.fd, after, sizeof(after), cblock(5));
	assert_memory_equal(before, after, sizeof(before)); /* not rewritten */
	bare = f.h;
	bare.undo = NULL;
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
	/* after an fsync the journal no longer holds them */
	assert_int_equal(fsync(f.fd), 0);
	wfs_undo_file_synced(f.uf, test_fsize(f.fd));
	test_pwrite_raw(f.fd, junk, sizeof(junk), cblock(4) + 2000);
	rep.n = 0;
	assert_int_equal(replay(&rep), 0);
	assert_true(wfs_content_verify(K, f.fd, NULL, NULL) > 0);
	wfs_undo_file_free(f.uf);
	close(f.fd);
	wfs_undo_close(u);
}

/* More overwrites than one batch holds: flushed as they go, the journal
 * short, every block right; closing the journal with nothing pending
 * empties it. */
static void test_redo_batches(void **state)
{
	struct wfs_undo *u;
	struct file f;
	static uint8_t a[NB * 4096], b[NB * 4096];
	struct stat st;
	struct wfs_file_hdr bare;

	(void)state;
	assert_int_equal(wfs_undo_open(dfd, "undo", &u), 0);
	durable_file(u, "m", &f, a, 13);
	for (int i = 0; i < 3000; i++) {
		int blk = (i * 7) % NB;
		a[blk * 4096] = (uint8_t)i;
		assert_int_equal(
			wfs_content_pwrite(K, f.fd, &f.h, a + blk * 4096, 4096, blk * 4096), 4096);
	}
	/* entries that overlap in one batch: the newer wins block by block */
	test_pattern(a + 6 * 4096, 2 * 4096, 14);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 6 * 4096, 2 * 4096, 6 * 4096),
			 2 * 4096);
	test_pattern(a + 5 * 4096, 2 * 4096, 15);
	assert_int_equal(wfs_content_pwrite(K, f.fd, &f.h, a + 5 * 4096, 2 * 4096, 5 * 4096),
			 2 * 4096);
	assert_true(wfs_undo_file_pending(f.uf, cblock(7), cblock(8)));
	assert_int_equal(fstatat(dfd, "undo", &st, 0), 0);
	assert_true(st.st_size < 16 * 1024 * 1024);
	bare = f.h;
	bare.undo = NULL;
	assert_int_equal(wfs_undo_file_flush(f.uf), 0);
	assert_int_equal(wfs_content_pread(K, f.fd, &bare, b, sizeof(b), 0), sizeof(b));
	assert_memory_equal(a, b, sizeof(a));
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
		cmocka_unit_test(test_redo_is_replayed),
		cmocka_unit_test(test_redo_over_a_torn_block),
		cmocka_unit_test(test_redo_is_seen_and_then_gone),
		cmocka_unit_test(test_applied_redo_mends_a_torn_block),
		cmocka_unit_test(test_redo_batches),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
