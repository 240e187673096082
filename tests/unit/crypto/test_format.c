/*
 * test_format.c - the encrypted file format: size mapping, form detection,
 * header authentication, random-access round trips against a reference
 * buffer at offsets/lengths around block boundaries, gaps past EOF,
 * truncate, and tampering (every kind must read as EIO, never as data).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto_internal.h"

#include "helpers.h"

#define MAXSZ (64 * 4096)

static struct wfs_keys *K;

/* An encrypted memfd plus the plaintext it should hold. */
struct model {
	int fd;
	struct wfs_file_hdr h;
	uint8_t *ref;
	off_t size;
};

static void model_open(struct model *m, off_t initial, uint32_t seed)
{
	m->fd = test_memfd();
	m->ref = calloc(1, MAXSZ);
	assert_non_null(m->ref);
	assert_int_equal(wfs_hdr_write(K, m->fd, &m->h), 0);
	assert_int_equal(test_fsize(m->fd), wfs_cipher_size(0)); /* header and end block */
	m->size = 0;
	if (initial > 0) {
		test_pattern(m->ref, (size_t)initial, seed);
		assert_int_equal(wfs_content_pwrite(K, m->fd, &m->h, m->ref, (size_t)initial, 0),
				 initial);
		m->size = initial;
	}
}

static void model_close(struct model *m)
{
	close(m->fd);
	free(m->ref);
}

static void model_write(struct model *m, off_t off, size_t n, uint32_t seed)
{
	uint8_t *data = calloc(n + 1, 1);

	test_pattern(data, n, seed);
	assert_int_equal(wfs_content_pwrite(K, m->fd, &m->h, data, n, off), (ssize_t)n);
	if (n > 0) {
		if (off > m->size)
			memset(m->ref + m->size, 0, (size_t)(off - m->size));
		memcpy(m->ref + off, data, n);
		if (off + (off_t)n > m->size)
			m->size = off + (off_t)n;
	}
	free(data);
}

static void model_truncate(struct model *m, off_t n)
{
	assert_int_equal(wfs_content_truncate(K, m->fd, &m->h, n), 0);
	if (n > m->size)
		memset(m->ref + m->size, 0, (size_t)(n - m->size));
	m->size = n;
}

/* The whole file and its size on disk must match the model. */
static void model_check(struct model *m)
{
	uint8_t *got = malloc(MAXSZ + 8192);

	assert_int_equal(test_fsize(m->fd), wfs_cipher_size(m->size));
	assert_int_equal(wfs_plain_size(test_fsize(m->fd)), m->size);
	assert_int_equal(wfs_content_pread(K, m->fd, &m->h, got, MAXSZ + 8192, 0), m->size);
	assert_memory_equal(got, m->ref, (size_t)m->size);
	assert_int_equal(wfs_content_verify(K, m->fd, NULL, NULL), 0);
	free(got);
}

static const off_t offsets[] = {0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 12338, 20000};
static const size_t lengths[] = {0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 12289};
static const off_t initials[] = {0, 1, 4096, 5000, 3 * 4096};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(wfs_plain_size(0), 0);
	assert_int_equal(wfs_plain_size(64), 0);
	assert_int_equal(wfs_plain_size(65), 0);
	assert_int_equal(wfs_plain_size(64 + 28), 0);
	assert_int_equal(wfs_plain_size(64 + 29), 1);
	assert_int_equal(wfs_plain_size(64 + 4124), 4096);
	assert_int_equal(wfs_plain_size(64 + 4124 + 10), 4096); /* cut block: damage */
	assert_int_equal(wfs_plain_size(64 + 2 * 4124 + 100), 2 * 4096 + 72);
	/* format 2: always an end block of 0..4095 bytes */
	assert_int_equal(wfs_cipher_size(0), 64 + 28);
	assert_int_equal(wfs_cipher_size(1), 64 + 29);
	assert_int_equal(wfs_cipher_size(4096), 64 + 4124 + 28);
	assert_int_equal(wfs_cipher_size(4097), 64 + 4124 + 29);
	assert_true(wfs_cipher_size(-1) < 0);
	assert_true(wfs_cipher_size(INT64_MAX) < 0);
	for (off_t p = 0; p < 3 * 4096 + 5; p++)
		assert_int_equal(wfs_plain_size(wfs_cipher_size(p)), p);
	for (off_t p = (off_t)1 << 40; p < ((off_t)1 << 40) + 5000; p += 97)
		assert_int_equal(wfs_plain_size(wfs_cipher_size(p)), p);
}

/* The geometry callers use instead of their own arithmetic. */
static void test_geometry(void **state)
{
	(void)state;
	off_t s, e;
	assert_int_equal(wfs_block_cipher_off(0), 64);
	assert_int_equal(wfs_block_cipher_off(3), 64 + 3 * 4124);
	wfs_write_cipher_span(0, 1, &s, &e); /* the end block, rewritten */
	assert_int_equal(s, 64);
	assert_int_equal(e, wfs_cipher_size(1));
	wfs_write_cipher_span(4096 + 10, 5000, &s, &e); /* from block 1 on */
	assert_int_equal(s, 64 + 4124);
	assert_int_equal(e, wfs_cipher_size(4096 + 10 + 5000));
	wfs_write_cipher_span(8192, 0, &s, &e);
	assert_int_equal(s, 64 + 2 * 4124);
	assert_int_equal(e, wfs_cipher_size(8192));
}

/* A growing write that fails leaves the file byte for byte as it was,
 * its old end block included; a write that does not grow is not guarded. */
static void test_grow_guard(void **state)
{
	(void)state;
	struct model m;
	model_open(&m, 4096 + 100, 7);
	off_t size = test_fsize(m.fd);
	uint8_t *before = malloc((size_t)size), *after = malloc((size_t)size);
	assert_non_null(before);
	assert_non_null(after);
	test_pread_raw(m.fd, before, (size_t)size, 0);

	struct wfs_grow_guard g;
	wfs_grow_guard_begin(m.fd, size, 4096 + 50, &g);
	assert_false(g.grows);
	wfs_grow_guard_begin(m.fd, size, 3 * 4096, &g);
	assert_true(g.grows);
	assert_int_equal(g.tail_off, 64 + 4124);
	assert_int_equal(g.tail_len, 100 + 28);
	/* a write cut short: the old end block half overwritten, new blocks
	 * half appended */
	uint8_t junk[6000];
	memset(junk, 0xa5, sizeof(junk));
	test_pwrite_raw(m.fd, junk, sizeof(junk), g.tail_off + 10);
	wfs_grow_guard_end(m.fd, &g, true);
	assert_int_equal(test_fsize(m.fd), size);
	test_pread_raw(m.fd, after, (size_t)size, 0);
	assert_memory_equal(before, after, (size_t)size);
	uint8_t back[4096 + 100];
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, back, sizeof(back), 0), sizeof(back));
	assert_memory_equal(back, m.ref, sizeof(back));
	free(before);
	free(after);
	model_close(&m);
}

static void test_sniff(void **state)
{
	static const uint8_t magic[8] = {0x89, 'W', 'A', 'R', 'D', 'F', 'S', 0};
	uint8_t buf[64] = {0};

	(void)state;
	memcpy(buf, magic, 8);
	assert_int_equal(wfs_form_sniff(buf, 64, 0), WFS_FORM_EMPTY);
	assert_int_equal(wfs_form_sniff(buf, 64, 64), WFS_FORM_ENCRYPTED);
	assert_int_equal(wfs_form_sniff(buf, 64, 63), WFS_FORM_PLAIN);
	assert_int_equal(wfs_form_sniff(buf, 7, 100), WFS_FORM_PLAIN);
	assert_int_equal(wfs_form_sniff("hello world", 11, 11), WFS_FORM_PLAIN);
	buf[7] = 1;
	assert_int_equal(wfs_form_sniff(buf, 64, 64), WFS_FORM_PLAIN);
	assert_string_equal(wfs_form_name(WFS_FORM_EMPTY), "empty");
	assert_string_equal(wfs_form_name(WFS_FORM_PLAIN), "plain");
	assert_string_equal(wfs_form_name(WFS_FORM_ENCRYPTED), "encrypted");
}

static void test_header(void **state)
{
	struct wfs_file_hdr h, h2;
	struct wfs_keys *other = test_keys(100);
	uint8_t raw[64], b;
	int fd = test_memfd(), fd2 = test_memfd();

	(void)state;
	assert_int_equal(wfs_hdr_read(K, fd, &h), WFS_FORM_EMPTY);
	test_pwrite_raw(fd, "plain text\n", 11, 0);
	assert_int_equal(wfs_hdr_read(K, fd, &h), WFS_FORM_PLAIN);
	assert_int_equal(ftruncate(fd, 0), 0);

	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_hdr_write(K, fd2, &h2), 0);
	assert_memory_not_equal(h.file_id, h2.file_id, 16); /* random ids */
	memset(&h2, 0, sizeof(h2));
	assert_int_equal(wfs_hdr_read(K, fd, &h2), WFS_FORM_ENCRYPTED);
	assert_memory_equal(h.file_id, h2.file_id, 16);
	test_pread_raw(fd, raw, 64, 0);
	assert_int_equal(wfs_form_sniff(raw, 64, 64), WFS_FORM_ENCRYPTED);

	/* another vault's key */
	assert_int_equal(wfs_hdr_read(other, fd, &h2), -EIO);

	/* every single-bit flip of the header is caught (or unmasks it as plain) */
	for (int i = 0; i < 64 * 8; i++) {
		b = raw[i / 8] ^ (uint8_t)(1u << (i % 8));
		test_pwrite_raw(fd, &b, 1, i / 8);
		int r = wfs_hdr_read(K, fd, &h2);
		if (i < 64)
			assert_int_equal(r, WFS_FORM_PLAIN); /* magic broken */
		else
			assert_int_equal(r, -EIO);
		test_pwrite_raw(fd, raw + i / 8, 1, i / 8);
	}
	assert_int_equal(wfs_hdr_read(K, fd, &h2), WFS_FORM_ENCRYPTED);

	/* the magic, cut short */
	assert_int_equal(ftruncate(fd, 40), 0);
	assert_int_equal(wfs_hdr_read(K, fd, &h2), -EIO);
	assert_int_equal(ftruncate(fd, 5), 0);
	assert_int_equal(wfs_hdr_read(K, fd, &h2), WFS_FORM_PLAIN);
	wfs_keys_free(other);
	close(fd);
	close(fd2);
}

static void test_roundtrip_writes(void **state)
{
	(void)state;
	for (size_t a = 0; a < N(initials); a++)
		for (size_t o = 0; o < N(offsets); o++)
			for (size_t l = 0; l < N(lengths); l++) {
				struct model m;

				model_open(&m, initials[a], (uint32_t)a);
				model_write(&m, offsets[o], lengths[l], (uint32_t)(o * 31 + l));
				model_check(&m);
				/* a second, overlapping write over the first */
				model_write(&m, offsets[(o + 3) % N(offsets)],
					    lengths[(l + 2) % N(lengths)],
					    (uint32_t)(o + 7 * l + 1000));
				model_check(&m);
				model_close(&m);
			}
}

static void test_roundtrip_reads(void **state)
{
	struct model m;
	uint8_t *got = malloc(MAXSZ);

	(void)state;
	model_open(&m, 5 * 4096 + 1234, 42);
	for (size_t o = 0; o < N(offsets); o++)
		for (size_t l = 0; l < N(lengths); l++) {
			off_t off = offsets[o];
			size_t n = lengths[l];
			ssize_t want = off >= m.size ? 0
						     : (off + (off_t)n > m.size ? m.size - off
										: (ssize_t)n);

			memset(got, 0xAA, n);
			assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, n, off), want);
			assert_memory_equal(got, m.ref + off, (size_t)want);
		}
	/* every offset of the first blocks, short reads */
	for (off_t off = 0; off < 3 * 4096; off += 509) {
		assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 7, off), 7);
		assert_memory_equal(got, m.ref + off, 7);
	}
	/* at and past EOF */
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 10, m.size), 0);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 10, m.size + 5000), 0);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 10, -1), -EINVAL);
	free(got);
	model_close(&m);
}

static void test_large_io(void **state)
{
	/* over the 256-block scratch buffer: the chunked paths */
	size_t n = (1u << 20) + 3 * 4096 + 77;
	off_t off = 4093;
	int fd = test_memfd();
	struct wfs_file_hdr h;
	uint8_t *a = malloc(n), *b = malloc(n + 4096);

	(void)state;
	test_pattern(a, n, 9);
	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, a, n, off), (ssize_t)n);
	assert_int_equal(test_fsize(fd), wfs_cipher_size(off + (off_t)n));
	assert_int_equal(wfs_content_pread(K, fd, &h, b, n + 4096, off), (ssize_t)n);
	assert_memory_equal(a, b, n);
	assert_int_equal(wfs_content_pread(K, fd, &h, b, (size_t)off, 0), off);
	for (off_t i = 0; i < off; i++)
		assert_int_equal(b[i], 0);
	/* a hole of 2 MiB past EOF */
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "x", 1, off + (off_t)n + (2 << 20)), 1);
	assert_int_equal(wfs_content_pread(K, fd, &h, b, 4096, off + (off_t)n + (1 << 20)), 4096);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(b[i], 0);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);
	free(a);
	free(b);
	close(fd);
}

/* wfs_content_open gives what wfs_content_pread gives from the same bytes,
 * for windows of the file that start on any 4 KiB boundary before the
 * range (as the daemon's O_DIRECT reads do); a window that ends inside the
 * range reads as the file's end; a flipped bit is EIO with nothing left. */
static void test_open_held_cipher(void **state)
{
	size_t n = (1u << 20) + 5 * 4096 + 99;
	int fd = test_memfd();
	struct wfs_file_hdr h;
	uint8_t *a = malloc(n), *got = malloc(n), *want = malloc(n);
	off_t csize;
	uint8_t *c;

	(void)state;
	test_pattern(a, n, 17);
	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, a, n, 0), (ssize_t)n);
	csize = test_fsize(fd);
	c = malloc((size_t)csize);
	assert_int_equal(pread(fd, c, (size_t)csize, 0), csize);
	static const off_t offs[] = {0, 1, 4095, 4096, 70000, 1 << 20, (1 << 20) + 5 * 4096};
	static const size_t lens[] = {1, 4096, 4097, 65536, 1 << 20};
	for (size_t o = 0; o < N(offs); o++)
		for (size_t l = 0; l < N(lens); l++) {
			off_t off = offs[o];
			/* the 4 KiB-aligned window around the range's blocks */
			off_t lo = wfs_cipher_size(off - off % 4096) / 4096 * 4096;
			size_t len = lens[l];
			ssize_t r = wfs_content_pread(K, fd, &h, want, len, off);
			assert_true(r > 0);
			assert_int_equal(wfs_content_open(K, &h, c + lo, (size_t)(csize - lo), lo,
							  true, got, len, off),
					 r);
			assert_memory_equal(got, want, (size_t)r);
		}
	/* a window that stops after block 3 (and a few bytes of block 4)
	 * before the file's end: the read ends there */
	assert_int_equal(wfs_content_open(K, &h, c, wfs_cipher_size(4 * 4096), 0, false, got,
					  8 * 4096, 4096),
			 3 * 4096);
	assert_memory_equal(got, a + 4096, 3 * 4096);
	/* the same bytes said to be the whole file: cut, so damage */
	assert_int_equal(wfs_content_open(K, &h, c, wfs_cipher_size(4 * 4096) - 28, 0, true, got,
					  8 * 4096, 4096),
			 -EIO);
	/* a range that starts before or after the window */
	assert_int_equal(wfs_content_open(K, &h, c + 8192, 8192, 8192, true, got, 10, 0), -EINVAL);
	assert_int_equal(wfs_content_open(K, &h, c, 8192, 0, true, got, 10, 1 << 20), -EINVAL);
	/* tampered: EIO, nothing left in the buffer */
	c[wfs_cipher_size(2 * 4096) + 100] ^= 1;
	memset(got, 0xAA, n);
	assert_int_equal(wfs_content_open(K, &h, c, (size_t)csize, 0, true, got, n, 0), -EIO);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(wfs_content_open(K, &h, c, (size_t)csize, 0, true, got, 8192, 0), 8192);
	free(c);
	free(a);
	free(got);
	free(want);
	close(fd);
}

/* Large runs of blocks are opened on two threads (crypto/parallel.c): a
 * bad block in either half fails the whole read with EIO and nothing of
 * the buffer is left behind; the rest of the file still reads. */
static void test_parallel_tamper(void **state)
{
	size_t n = 64 * 4096;
	int fd = test_memfd();
	struct wfs_file_hdr h;
	uint8_t *a = malloc(n), *b = malloc(n), byte;

	(void)state;
	test_pattern(a, n, 21);
	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, a, n, 0), (ssize_t)n);
	static const size_t bad[] = {50, 10}; /* the helper's half, the caller's */
	for (size_t w = 0; w < N(bad); w++) {
		off_t pos = 64 + (off_t)bad[w] * 4124 + 100;

		test_pread_raw(fd, &byte, 1, pos);
		byte ^= 1;
		test_pwrite_raw(fd, &byte, 1, pos);
		memset(b, 0x5a, n);
		assert_int_equal(wfs_content_pread(K, fd, &h, b, n, 0), -EIO);
		for (size_t i = 0; i < n; i++)
			if (b[i] != 0)
				fail_msg("byte %zu left in the buffer after EIO", i);
		size_t good = bad[w] < 32 ? 32 : 0; /* the other half */
		assert_int_equal(wfs_content_pread(K, fd, &h, b, 32 * 4096, (off_t)good * 4096),
				 32 * 4096);
		assert_memory_equal(b, a + good * 4096, 32 * 4096);
		byte ^= 1;
		test_pwrite_raw(fd, &byte, 1, pos);
	}
	assert_int_equal(wfs_content_pread(K, fd, &h, b, n, 0), (ssize_t)n);
	assert_memory_equal(a, b, n);
	free(a);
	free(b);
	close(fd);
}

static void test_gap(void **state)
{
	(void)state;
	for (size_t a = 0; a < N(initials); a++)
		for (off_t gap = 1; gap < 3 * 4096; gap += 1021) {
			struct model m;

			model_open(&m, initials[a], 3);
			model_write(&m, m.size + gap, 100, 4);
			model_check(&m);
			model_close(&m);
		}
}

static void test_truncate(void **state)
{
	static const off_t sizes[] = {0, 1, 28, 29, 4095, 4096, 4097, 8192, 10000, 20000};

	(void)state;
	for (size_t a = 0; a < N(initials); a++)
		for (size_t s = 0; s < N(sizes); s++) {
			struct model m;

			model_open(&m, initials[a], 5);
			model_truncate(&m, sizes[s]);
			model_check(&m);
			/* the cut block was stored again: writing after it still works */
			model_write(&m, m.size, 5000, 6);
			model_check(&m);
			model_truncate(&m, sizes[(s + 4) % N(sizes)]);
			model_check(&m);
			model_close(&m);
		}
	int fd = test_memfd();
	assert_int_equal(wfs_content_truncate(K, fd, NULL, 10), -EINVAL); /* no header */
	close(fd);
}

struct damage {
	int n;
	uint64_t block[8];
	off_t off[8];
	char why[8][64];
};

static void on_damage(void *arg, uint64_t block, off_t off, const char *why)
{
	struct damage *d = arg;

	if (d->n < 8) {
		d->block[d->n] = block;
		d->off[d->n] = off;
		snprintf(d->why[d->n], sizeof(d->why[0]), "%s", why);
	}
	d->n++;
}

/* Reads each of nb blocks alone and checks which are EIO. */
static void expect_bad(struct model *m, int nb, unsigned badmask)
{
	uint8_t got[4096];

	for (int i = 0; i < nb; i++) {
		ssize_t r = wfs_content_pread(K, m->fd, &m->h, got, 4096, (off_t)i * 4096);

		if (badmask & (1u << i)) {
			assert_int_equal(r, -EIO);
			for (size_t j = 0; j < sizeof(got); j++)
				assert_int_equal(got[j], 0); /* wiped, no garbage */
		} else {
			off_t want = m->size - (off_t)i * 4096;
			assert_int_equal(r, want > 4096 ? 4096 : want);
			assert_memory_equal(got, m->ref + i * 4096, (size_t)r);
		}
	}
}

static void test_tamper_bitflip(void **state)
{
	struct model m;
	struct damage d = {0};
	uint8_t b, all[3 * 4096];

	(void)state;
	model_open(&m, 3 * 4096 - 100, 11);
	/* one flipped bit in block 1's nonce, ciphertext, tag */
	static const size_t where[] = {0, 11, 12, 500, 4107, 4108, 4123};
	for (size_t w = 0; w < N(where); w++) {
		off_t pos = 64 + 4124 + (off_t)where[w];

		test_pread_raw(m.fd, &b, 1, pos);
		b ^= 0x10;
		test_pwrite_raw(m.fd, &b, 1, pos);
		expect_bad(&m, 3, 1u << 1);
		assert_int_equal(wfs_content_pread(K, m.fd, &m.h, all, sizeof(all), 0), -EIO);
		/* a write touching only part of the bad block refuses too */
		assert_int_equal(wfs_content_pwrite(K, m.fd, &m.h, "x", 1, 4096 + 5), -EIO);
		memset(&d, 0, sizeof(d));
		assert_int_equal(wfs_content_verify(K, m.fd, on_damage, &d), 1);
		assert_int_equal(d.n, 1);
		assert_int_equal(d.block[0], 1);
		assert_int_equal(d.off[0], 64 + 4124);
		assert_string_equal(d.why[0], "authentication failed");
		b ^= 0x10;
		test_pwrite_raw(m.fd, &b, 1, pos);
		model_check(&m);
	}
	/* a whole-block overwrite repairs it */
	test_pwrite_raw(m.fd, "\xff", 1, 64 + 4124 + 20);
	model_write(&m, 4096, 4096, 12);
	model_check(&m);
	model_close(&m);
}

static void test_tamper_swap(void **state)
{
	struct model m;
	uint8_t b0[4124], b1[4124];

	(void)state;
	model_open(&m, 4 * 4096, 13);
	test_pread_raw(m.fd, b0, 4124, 64);
	test_pread_raw(m.fd, b1, 4124, 64 + 4124);
	test_pwrite_raw(m.fd, b1, 4124, 64);
	test_pwrite_raw(m.fd, b0, 4124, 64 + 4124);
	expect_bad(&m, 4, 0x3);
	assert_int_equal(wfs_content_verify(K, m.fd, NULL, NULL), 2);
	/* a block copied onto another index of the same file */
	test_pwrite_raw(m.fd, b0, 4124, 64);
	test_pwrite_raw(m.fd, b1, 4124, 64 + 4124);
	expect_bad(&m, 4, 0);
	test_pwrite_raw(m.fd, b0, 4124, 64 + 3 * 4124);
	expect_bad(&m, 4, 0x8);
	model_close(&m);
}

static void test_tamper_cross_file(void **state)
{
	struct model a, b;
	uint8_t blk[4124], hdr[64];
	struct wfs_file_hdr h;

	(void)state;
	model_open(&a, 3 * 4096, 14);
	model_open(&b, 3 * 4096, 15);
	/* block 2 of b pasted at block 2 of a: same index, other file id */
	test_pread_raw(b.fd, blk, 4124, 64 + 2 * 4124);
	test_pwrite_raw(a.fd, blk, 4124, 64 + 2 * 4124);
	expect_bad(&a, 3, 0x4);
	/* b's header pasted onto a: the header is authentic, but a's blocks fail */
	test_pread_raw(b.fd, hdr, 64, 0);
	test_pwrite_raw(a.fd, hdr, 64, 0);
	assert_int_equal(wfs_hdr_read(K, a.fd, &h), WFS_FORM_ENCRYPTED);
	assert_memory_equal(h.file_id, b.h.file_id, 16);
	a.h = h;
	uint8_t got[4096];
	/* block 2 came from b and matches, but a read of it checks a's empty
	 * end block after it, which does not */
	for (int i = 0; i < 3; i++)
		assert_int_equal(wfs_content_pread(K, a.fd, &h, got, 4096, (off_t)i * 4096), -EIO);
	assert_int_equal(wfs_content_pread(K, b.fd, &h, got, 4096, 2 * 4096), 4096);
	/* blocks 0 and 1, and a's end block */
	assert_int_equal(wfs_content_verify(K, a.fd, NULL, NULL), 3);
	/* other vault's key: header fails, verify reports header and all blocks */
	struct wfs_keys *other = test_keys(200);
	struct damage d = {0};
	assert_int_equal(wfs_hdr_read(other, b.fd, &h), -EIO);
	assert_int_equal(wfs_content_verify(other, b.fd, on_damage, &d), 5);
	assert_int_equal(d.block[0], WFS_BLOCK_HEADER);
	assert_int_equal(d.block[3], 2);
	assert_int_equal(d.block[4], 3);
	wfs_keys_free(other);
	model_close(&a);
	model_close(&b);
}

static void test_tamper_truncated(void **state)
{
	struct model m;
	struct damage d = {0};
	uint8_t got[3 * 4096];

	(void)state;
	model_open(&m, 3 * 4096, 16);
	/* cut in the middle of block 2: it fails, 0 and 1 are fine */
	assert_int_equal(ftruncate(m.fd, 64 + 2 * 4124 + 2000), 0);
	assert_int_equal(wfs_plain_size(test_fsize(m.fd)), 2 * 4096 + 2000 - 28);
	expect_bad(&m, 3, 0x4);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, sizeof(got), 0), -EIO);
	assert_int_equal(wfs_content_verify(K, m.fd, on_damage, &d), 1);
	assert_string_equal(d.why[0], "authentication failed");
	/* cut leaving 1..28 bytes of block 2: "truncated block" */
	assert_int_equal(ftruncate(m.fd, 64 + 2 * 4124 + 10), 0);
	assert_int_equal(wfs_plain_size(test_fsize(m.fd)), 2 * 4096);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 2 * 4096), -EIO);
	/* the last whole block's read checks the end, which is torn */
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 4096), -EIO);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 0), 4096);
	memset(&d, 0, sizeof(d));
	assert_int_equal(wfs_content_verify(K, m.fd, on_damage, &d), 1);
	assert_int_equal(d.block[0], 2);
	assert_string_equal(d.why[0], "truncated block");
	/* truncate to the good part cleans it */
	m.size = 2 * 4096;
	model_truncate(&m, 2 * 4096);
	model_check(&m);
	model_close(&m);
}

/* A stored block of zeros (not the end block) is a hole and reads as
 * zeros (docs/format.md says what that allows); a zeroed end block, or a
 * file grown from the backing side, is damage. */
static void test_tamper_zero_block(void **state)
{
	struct model m;
	uint8_t z[4124] = {0}, got[4096];

	(void)state;
	model_open(&m, 3 * 4096 - 10, 17);
	test_pwrite_raw(m.fd, z, sizeof(z), 64 + 4124);
	memset(m.ref + 4096, 0, 4096);
	model_check(&m);
	test_pwrite_raw(m.fd, z, 4086 + 28, 64 + 2 * 4124); /* the end block */
	expect_bad(&m, 3, 0x4);
	model_close(&m);
	/* grown to 3 blocks from the backing side: block 0 (the old end) and
	 * the missing end fail, the zeros between are holes */
	model_open(&m, 1, 18);
	assert_int_equal(ftruncate(m.fd, 64 + 3 * 4124), 0);
	assert_int_equal(wfs_plain_size(test_fsize(m.fd)), 3 * 4096);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 0), -EIO);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 4096), 4096);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 2 * 4096), -EIO);
	assert_int_equal(wfs_content_verify(K, m.fd, NULL, NULL), 2);
	model_close(&m);
}

/* Format 2 authenticates the end: a file cut at a block boundary (or to
 * its bare header) and whole blocks appended to a file are damage. */
static void test_tamper_end(void **state)
{
	struct model m;
	struct damage d = {0};
	uint8_t got[4 * 4096], blk[4124];

	(void)state;
	model_open(&m, 3 * 4096 + 100, 30);
	/* cut after block 2: the end block is gone */
	assert_int_equal(ftruncate(m.fd, 64 + 3 * 4124), 0);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, sizeof(got), 0), -EIO);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 2 * 4096), -EIO);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 0), 4096); /* before it */
	assert_int_equal(wfs_content_verify(K, m.fd, on_damage, &d), 1);
	assert_int_equal(d.block[0], 3);
	assert_string_equal(d.why[0], "no end block: the file was cut at a block boundary");
	/* cut after block 0, and to the bare header */
	assert_int_equal(ftruncate(m.fd, 64 + 4124), 0);
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, 4096, 0), -EIO);
	assert_int_equal(ftruncate(m.fd, 64), 0);
	assert_int_equal(wfs_content_verify(K, m.fd, NULL, NULL), 1);
	model_close(&m);

	/* whole blocks of a longer version appended after the end block */
	model_open(&m, 2 * 4096 + 100, 31);
	struct model longer;
	model_open(&longer, 5 * 4096, 32);
	test_pread_raw(longer.fd, blk, sizeof(blk), 64 + 3 * 4124);
	test_pwrite_raw(m.fd, blk, sizeof(blk), test_fsize(m.fd));
	assert_int_equal(wfs_content_pread(K, m.fd, &m.h, got, sizeof(got), 0), -EIO);
	assert_true(wfs_content_verify(K, m.fd, NULL, NULL) > 0);
	model_close(&longer);
	model_close(&m);
}

/* Holes: writes past the end and wfs_content_zero leave blocks unstored,
 * SEEK_DATA / SEEK_HOLE find them, and they read as zeros. */
/* A growth the backing file system refuses (a file larger than it allows)
 * leaves the file as it was; and fsck's walk jumps over holes: a terabyte
 * hole is verified without being read through. */
static void test_huge_growth_and_huge_hole(void **state)
{
	/* a real file system (memfd's allows files of 8 EiB) */
	char path[] = "/tmp/wfs-huge.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct wfs_file_hdr h;
	uint8_t buf[16];
	struct stat st, st2;
	(void)state;
	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "hi\n", 3, 0), 3);
	assert_int_equal(fstat(fd, &st), 0);
	off_t huge = (off_t)1 << 61; /* past ext4's (16 TiB), xfs's, btrfs's (8 EiB) */
	assert_true(wfs_content_truncate(K, fd, &h, huge) < 0);
	assert_true(wfs_content_pwrite(K, fd, &h, "x", 1, huge) < 0);
	assert_int_equal(fstat(fd, &st2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(wfs_content_pread(K, fd, &h, buf, sizeof buf, 0), 3);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);

	off_t tib = (off_t)1 << 40;
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "far", 3, tib), 3);
	time_t t0 = time(NULL);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);
	assert_true(time(NULL) - t0 < 10); /* 268 million blocks if read */
	close(fd);
}

static void test_holes(void **state)
{
	int fd = test_memfd();
	struct wfs_file_hdr h;
	uint8_t buf[8192];
	struct stat st;
	off_t far = (off_t)10 << 20;

	(void)state;
	assert_int_equal(wfs_hdr_write(K, fd, &h), 0);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "head", 4, 0), 4);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "tail", 4, far), 4);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_blocks * 512 < 64 * 1024); /* not 10 MiB of zero blocks */
	assert_int_equal(wfs_content_pread(K, fd, &h, buf, sizeof(buf), 4096 * 100), sizeof(buf));
	assert_true(wfs__all_zero(buf, sizeof(buf)));
	assert_int_equal(wfs_content_pread(K, fd, &h, buf, 4, far), 4);
	assert_memory_equal(buf, "tail", 4);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);
	/* block 0 is data (the old end, now whole); the hole starts at block
	 * 2, as block 1's first bytes share a backing page with block 0 */
	assert_int_equal(wfs_content_seek(fd, &h, 0, SEEK_DATA), 0);
	assert_int_equal(wfs_content_seek(fd, &h, 0, SEEK_HOLE), 2 * 4096);
	assert_int_equal(wfs_content_seek(fd, &h, 5000, SEEK_HOLE), 2 * 4096);
	assert_int_equal(wfs_content_seek(fd, &h, 9000, SEEK_HOLE), 9000);
	off_t d = wfs_content_seek(fd, &h, 9000, SEEK_DATA);
	assert_true(d > 9000 && d <= far && far - d < 4096 * 2);
	assert_int_equal(wfs_content_seek(fd, &h, far, SEEK_HOLE), far + 4);
	assert_int_equal(wfs_content_seek(fd, &h, far + 4, SEEK_DATA), -ENXIO);
	/* zero a range: whole blocks punched, partial ones rewritten */
	uint8_t *a = malloc(64 * 4096);
	test_pattern(a, 64 * 4096, 40);
	assert_int_equal(wfs_content_pwrite(K, fd, &h, a, 64 * 4096, 0), 64 * 4096);
	assert_int_equal(wfs_content_zero(K, fd, &h, 1000, 20 * 4096), 0);
	memset(a + 1000, 0, 20 * 4096);
	uint8_t *b = malloc(64 * 4096);
	assert_int_equal(wfs_content_pread(K, fd, &h, b, 64 * 4096, 0), 64 * 4096);
	assert_memory_equal(a, b, 64 * 4096);
	/* block 1's first bytes share a page with block 0: the backing
	 * file's hole may start at block 2 */
	off_t hole = wfs_content_seek(fd, &h, 0, SEEK_HOLE);
	assert_true(hole == 4096 || hole == 2 * 4096);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_blocks * 512 < 50 * 4096);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);
	/* zeroing the end block's bytes keeps it an end block */
	assert_int_equal(wfs_content_zero(K, fd, &h, far, 100), 0);
	assert_int_equal(wfs_content_pread(K, fd, &h, buf, 100, far), 4);
	assert_true(wfs__all_zero(buf, 4));
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 0);
	free(a);
	free(b);
	close(fd);
}

/* A crash while a write grew the file leaves damage at its end only:
 * trim_tail keeps the whole blocks before it and gives the file an end
 * block; damage before intact blocks is left alone. */
static void test_trim_tail(void **state)
{
	struct model m;
	off_t was;
	uint8_t junk[3300];

	(void)state;
	model_open(&m, 3 * 4096 + 100, 50);
	assert_int_equal(wfs_content_trim_tail(K, m.fd, &was), m.size); /* nothing to do */
	memset(junk, 0x5c, sizeof(junk));
	test_pwrite_raw(m.fd, junk, sizeof(junk), 64 + 2 * 4124 + 1000); /* blocks 2 and 3 */
	assert_int_equal(wfs_content_trim_tail(K, m.fd, &was), 2 * 4096);
	assert_int_equal(was, wfs_plain_size(64 + 2 * 4124 + 1000 + 3300)); /* grown by the junk */
	m.size = 2 * 4096;
	model_check(&m);
	/* damage in the middle: refused, nothing changed */
	model_write(&m, m.size, 3 * 4096, 51);
	test_pwrite_raw(m.fd, junk, 10, 64 + 4124 + 50);
	assert_int_equal(wfs_content_trim_tail(K, m.fd, &was), -EIO);
	assert_int_equal(test_fsize(m.fd), wfs_cipher_size(m.size));
	/* fsck --hole-damaged: the torn block becomes a hole, the rest reads */
	assert_int_equal(wfs_content_hole_damaged(K, m.fd), 1);
	memset(m.ref + 4096, 0, 4096);
	model_check(&m);
	assert_int_equal(wfs_content_verify(K, m.fd, NULL, NULL), 0);
	/* the end block is never a hole: trim_tail's */
	test_pwrite_raw(m.fd, junk, 10, test_fsize(m.fd) - 20);
	assert_int_equal(wfs_content_hole_damaged(K, m.fd), 0);
	assert_int_equal(wfs_content_verify(K, m.fd, NULL, NULL), 1);
	model_close(&m);
}

static void test_no_header(void **state)
{
	int fd = test_memfd();
	struct wfs_file_hdr h = {{0}, 0, NULL};

	(void)state;
	assert_int_equal(wfs_content_pwrite(K, fd, &h, "abc", 3, 0), -EINVAL);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), -EINVAL);
	/* the caller calls it encrypted (its mark): no header is damage, and
	 * nothing in it can be read, so repair keeps nothing */
	test_pwrite_raw(fd, "plain", 5, 0);
	assert_int_equal(wfs_content_verify(K, fd, NULL, NULL), 1);
	off_t was;
	assert_int_equal(wfs_content_trim_tail(K, fd, &was), 0);
	assert_int_equal(was, 5);
	assert_int_equal(test_fsize(fd), 0);
	close(fd);
}

static void test_nonce_fresh(void **state)
{
	struct model m;
	uint8_t a[4124], b[4124];

	(void)state;
	model_open(&m, 4096, 19);
	test_pread_raw(m.fd, a, sizeof(a), 64);
	model_write(&m, 0, 4096, 19); /* same bytes again */
	test_pread_raw(m.fd, b, sizeof(b), 64);
	assert_memory_not_equal(a, b, 12);	       /* fresh nonce */
	assert_memory_not_equal(a + 12, b + 12, 4112); /* so fresh ciphertext */
	model_close(&m);
}

/* Two keys alternating on one thread: the cached key schedules must follow. */
static void test_key_switch(void **state)
{
	struct wfs_keys *k2 = test_keys(50);
	struct wfs_file_hdr h1, h2;
	int f1 = test_memfd(), f2 = test_memfd();
	uint8_t a[5000], b[5000];

	(void)state;
	test_pattern(a, sizeof(a), 20);
	assert_int_equal(wfs_hdr_write(K, f1, &h1), 0);
	assert_int_equal(wfs_hdr_write(k2, f2, &h2), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wfs_content_pwrite(K, f1, &h1, a, sizeof(a), 0), 5000);
		assert_int_equal(wfs_content_pwrite(k2, f2, &h2, a, sizeof(a), 0), 5000);
	}
	assert_int_equal(wfs_content_pread(K, f1, &h1, b, sizeof(b), 0), 5000);
	assert_memory_equal(a, b, 5000);
	assert_int_equal(wfs_content_pread(k2, f2, &h2, b, sizeof(b), 0), 5000);
	assert_memory_equal(a, b, 5000);
	assert_int_equal(wfs_content_pread(k2, f1, &h1, b, sizeof(b), 0), -EIO);
	assert_int_equal(wfs_content_pread(K, f2, &h2, b, sizeof(b), 0), -EIO);
	/* freeing keys and making new ones at maybe the same address */
	wfs_keys_free(k2);
	k2 = test_keys(51);
	assert_int_equal(wfs_content_pread(k2, f2, &h2, b, sizeof(b), 0), -EIO);
	wfs_keys_free(k2);
	close(f1);
	close(f2);
}

static void *thread_main(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	struct wfs_keys *k = id % 2 ? test_keys(60) : K;
	struct wfs_file_hdr h;
	int fd = memfd_create("t", 0);
	uint8_t *a = malloc(300000), *b = malloc(300000);
	uintptr_t bad = 0;

	test_pattern(a, 300000, (uint32_t)id);
	if (wfs_hdr_write(k, fd, &h) != 0)
		bad++;
	for (int i = 0; i < 20; i++) {
		off_t off = (off_t)(i * 7919) % 100000;
		if (wfs_content_pwrite(k, fd, &h, a + off, 200000, off) != 200000)
			bad++;
		if (wfs_content_pread(k, fd, &h, b, 200000, off) != 200000 ||
		    memcmp(a + off, b, 200000) != 0)
			bad++;
	}
	if (k != K)
		wfs_keys_free(k);
	free(a);
	free(b);
	close(fd);
	return (void *)bad;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	void *ret;

	(void)state;
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_int_equal((uintptr_t)ret, 0);
	}
}

static void test_enospc_like(void **state)
{
	/* a read-only fd: writes fail with the errno, file left intact */
	struct model m;
	char path[] = "/tmp/wfs-crypto-XXXXXX";
	int fd = mkstemp(path), ro;

	(void)state;
	assert_true(fd >= 0);
	m.fd = fd;
	m.ref = calloc(1, MAXSZ);
	m.size = 0;
	assert_int_equal(wfs_hdr_write(K, fd, &m.h), 0);
	model_write(&m, 0, 5000, 21);
	ro = open(path, O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(wfs_content_pwrite(K, ro, &m.h, "abc", 3, 10), -EBADF);
	assert_int_equal(wfs_content_truncate(K, ro, &m.h, 10), -EBADF);
	close(ro);
	model_check(&m);
	unlink(path);
	model_close(&m);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(wfs_crypto_init(), 0);
	K = test_keys(1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wfs_keys_free(K);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_roundtrip_writes),
		cmocka_unit_test(test_roundtrip_reads),
		cmocka_unit_test(test_large_io),
		cmocka_unit_test(test_open_held_cipher),
		cmocka_unit_test(test_parallel_tamper),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_tamper_bitflip),
		cmocka_unit_test(test_tamper_swap),
		cmocka_unit_test(test_tamper_cross_file),
		cmocka_unit_test(test_tamper_truncated),
		cmocka_unit_test(test_tamper_zero_block),
		cmocka_unit_test(test_tamper_end),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_huge_growth_and_huge_hole),
		cmocka_unit_test(test_trim_tail),
		cmocka_unit_test(test_no_header),
		cmocka_unit_test(test_nonce_fresh),
		cmocka_unit_test(test_key_switch),
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_grow_guard),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_enospc_like),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
