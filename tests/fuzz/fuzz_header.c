/*
 * fuzz_header.c - libFuzzer target for the encrypted file format: the input
 * is a whole cipher file. Exercises wfs_form_sniff, wfs_hdr_read and (with
 * the fixed test key, so seeds can hold valid blocks) reads, writes,
 * truncates and verification on a memfd holding the input. Nothing may
 * crash, and nothing but an error may come from a damaged block.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crypto.h"
#include "crypto_internal.h"

static struct wfs_keys *keys;

static void count(void *arg, uint64_t block, off_t off, const char *why)
{
	(void)block;
	(void)off;
	if (why == NULL || *why == '\0')
		abort();
	(*(long *)arg)++;
}

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[3 * 4096 + 17];
	struct wfs_file_hdr h = {0};
	uint32_t sel = 0;
	long n = 0, v;
	int fd, r;

	if (keys == NULL) {
		uint8_t mk[WFS_KEY_LEN];

		if (wfs_crypto_init() != 0)
			abort();
		for (int i = 0; i < WFS_KEY_LEN; i++)
			mk[i] = (uint8_t)i; /* the key of tests/data/format-kat.txt */
		if (wfs__keys_from_master(mk, &keys) != 0)
			abort();
	}
	enum wfs_form f = wfs_form_sniff(data, size, (off_t)size);
	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	r = wfs_hdr_read(keys, fd, &h);
	if (r == WFS_FORM_ENCRYPTED && f != WFS_FORM_ENCRYPTED)
		abort(); /* an authentic header always has the magic */
	if (r == -EIO && size >= 32) {
		/* try the blocks anyway, in the format the header claims */
		memcpy(h.file_id, data + 16, sizeof(h.file_id));
		h.version = data[8] == 1 && data[9] == 0 ? 1 : 2;
		h.undo = NULL;
	} else if (r != WFS_FORM_ENCRYPTED)
		goto out;
	if (size >= 4)
		memcpy(&sel, data + size - 4, 4);

	ssize_t got = wfs_content_pread(keys, fd, &h, buf, sizeof(buf), (off_t)(sel % 9000));
	if (got > (ssize_t)sizeof(buf) || (got < 0 && got != -EIO))
		abort();
	v = wfs_content_verify(keys, fd, count, &n);
	if (v >= 0 && v != n)
		abort();
	if (sel & 1) {
		ssize_t w = wfs_content_pwrite(keys, fd, &h, data, size < 5000 ? size : 5000,
					       (off_t)((sel >> 1) % 12000));
		if (w < 0 && w != -EIO && !(w == -EINVAL && size < WFS_HDR_SIZE))
			abort(); /* damage, or no room for a header at all */
	} else {
		r = wfs_content_truncate(keys, fd, &h, (off_t)((sel >> 1) % 20000));
		if (r != 0 && r != -EIO && !(r == -EINVAL && size < WFS_HDR_SIZE))
			abort();
	}
	got = wfs_content_pread(keys, fd, &h, buf, sizeof(buf), 0);
	if (got < 0 && got != -EIO)
		abort();
out:
	close(fd);
	return 0;
}
