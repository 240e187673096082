/*
 * test_stream.c - read-ahead of encrypted files (daemon/stream.c) without
 * a mount: a real encrypted backing file, read in order as op_read does
 * (wfs_content_pread, then wfs_stream_note), starts a stream; its ring
 * then serves the right plaintext, short at the end; a change of the
 * file's bytes makes what the ring holds unusable (never stale plaintext),
 * and a missed read in order makes it read on from there.
 */
#include "helpers.h"

#include "crypto.h"
#include "test_bytes.h" /* tests/common: test_pattern */
#include "test_keys.h"	/* tests/common: test_keys */
#include "stream.h"

#define MIB   ((off_t)1 << 20)
#define SIZE  (6 * MIB + 1000) /* the last block is a partial one */
#define START (4 * MIB)	       /* stream.c's START_RUN */

static uint8_t *data; /* the file's plaintext */

/* Reads [off, off + size) from the stream alone (io_lock shared, as a
 * reader holds it). */
static ssize_t ring_read(struct wfs_file *f, char *buf, size_t size, off_t off)
{
	pthread_rwlock_rdlock(&f->inode->io_lock);
	ssize_t r = wfs_stream_read(atomic_load(&f->stream), buf, size, off);
	pthread_rwlock_unlock(&f->inode->io_lock);
	return r;
}

static void test_stream_serves_and_stays_coherent(void **state)
{
	(void)state;
	struct wfs_keys *k = test_keys(7);
	struct tfs t;
	tfs_setup(&t, 0, k);
	struct wfs_fs *fs = t.fs;

	/* the encrypted backing file, as a sensitive create and write make it */
	data = malloc(SIZE);
	assert_non_null(data);
	test_pattern(data, SIZE, 42);
	int wfd = openat(t.bfd, "enc", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(wfd >= 0);
	struct wfs_file_hdr h;
	assert_int_equal(wfs_hdr_write(k, wfd, &h), 0);
	assert_int_equal(wfs_content_pwrite(k, wfd, &h, data, SIZE, 0), SIZE);

	struct wfs_inode *n = tfs_lookup(&fs->root, "enc", NULL);
	assert_int_equal(atomic_load(&n->form), WFS_FORM_ENCRYPTED);
	n->hdr = h;
	n->serve = WFS_SERVE_ENCRYPTED;
	struct wfs_file f = {.serve = WFS_SERVE_ENCRYPTED, .inode = n};
	f.fd = wfs_inode_open(n, O_RDONLY);
	assert_true(f.fd >= 0);

	size_t cap = (size_t)MIB;
	char *buf = malloc(cap);
	assert_non_null(buf);
	bool streamed;

	/* in order: no stream before START bytes, one after */
	for (off_t off = 0; off < START; off += MIB) {
		assert_null(atomic_load(&f.stream));
		assert_int_equal(wfs_stream_pread(&f, buf, (size_t)MIB, off, &streamed), MIB);
		assert_false(streamed);
		assert_memory_equal(buf, data + off, (size_t)MIB);
	}
	assert_non_null(atomic_load(&f.stream));
	assert_int_equal(fs->nstreams, 1);

	/* the ring serves what follows: a whole chunk, across two chunks,
	 * and the end of the file (short) */
	assert_int_equal(wfs_stream_pread(&f, buf, (size_t)MIB, START, &streamed), MIB);
	assert_true(streamed);
	assert_memory_equal(buf, data + START, (size_t)MIB);
	off_t across = 5 * MIB - 65536;
	assert_int_equal(wfs_stream_pread(&f, buf, 131072, across, &streamed), 131072);
	assert_true(streamed);
	assert_memory_equal(buf, data + across, 131072);
	assert_int_equal(wfs_stream_pread(&f, buf, 65536, 6 * MIB, &streamed), 1000);
	assert_true(streamed);
	assert_memory_equal(buf, data + 6 * MIB, 1000);
	assert_int_equal(atomic_load(&fs->reads_streamed), 3);

	/* a change of the bytes the ring holds: never served stale */
	off_t r1 = 5 * MIB + 65536, w = r1 + 8192;
	test_pattern(data + w, 4096, 43);
	wfs_io_change_begin(n);
	assert_int_equal(wfs_content_pwrite(k, wfd, &h, data + w, 4096, w), 4096);
	wfs_io_change_end(n);
	assert_int_equal(ring_read(&f, buf, 65536, r1), -EAGAIN);

	/* the reader in order misses, reads the file, and the ring reads on
	 * from there: it then holds the new bytes */
	assert_int_equal(wfs_stream_pread(&f, buf, 65536, r1, &streamed), 65536);
	assert_false(streamed);
	assert_memory_equal(buf, data + r1, 65536);
	assert_int_equal(ring_read(&f, buf, 65536, r1), 65536);
	assert_memory_equal(buf, data + r1, 65536);
	assert_int_equal(wfs_stream_pread(&f, buf, (size_t)MIB, 5 * MIB, &streamed), MIB);
	assert_true(streamed);
	assert_memory_equal(buf, data + 5 * MIB, (size_t)MIB);

	/* too big for one chunk, or empty: not the ring's */
	assert_int_equal(ring_read(&f, buf, 0, 0), -EAGAIN);

	wfs_stream_stop(&f);
	assert_null(atomic_load(&f.stream));
	assert_int_equal(fs->nstreams, 0);
	wfs_stream_stop(&f); /* none: nothing to do */

	free(buf);
	free(data);
	close(f.fd);
	close(wfd);
	wfs_inode_forget(n, 1);
	tfs_teardown(&t);
}

int main(void)
{
	assert_int_equal(wfs_crypto_init(), 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_serves_and_stays_coherent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
