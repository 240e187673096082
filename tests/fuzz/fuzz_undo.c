/*
 * fuzz_undo.c - libFuzzer target for the undo journal's reader and replay
 * (crypto/undo_replay.c): what mount reads back from BACKING/.wardfs/undo
 * after a crash, and applies to a real encrypted file.
 *
 * The input is a list of entries the harness turns into a journal as
 * docs/format.md lays it out, with valid sums and the file's real handle
 * and id where the input asks for them (a fuzzer cannot forge a BLAKE2b
 * sum), then damaged byte by byte where the input says. Each record: kind
 * (bit 0 redo, bit 1 a foreign file id, bit 2 a broken sum, bit 3 cleared,
 * bit 4 an applied mark),
 * the entry's offset in blocks (u8), the size it claims (u16 LE, in 64
 * bytes), a length (u8, in 37 bytes) and that many bytes. A trailing part
 * after a 0xff kind: (offset u16 LE, byte) pairs written over the journal.
 *
 * Replay must not crash, must stay inside the file's first megabyte (what
 * the entries can name here), and must leave the file reading or failing
 * with EIO, never anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "crypto_internal.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wfs_keys *keys;
static char dir[64];
static int dfd = -1;
static uint8_t *image; /* the file as made once: restored before each input */
static size_t image_len;
static struct {
	struct file_handle fh;
	unsigned char b[WFS_UNDO_HANDLE_MAX];
} handle;
static uint8_t file_id[WFS_FILE_ID_LEN];

static void cleanup(void)
{
	unlinkat(dfd, "f", 0);
	unlinkat(dfd, "undo", 0);
	rmdir(dir);
}

static void init(void)
{
	uint8_t mk[WFS_KEY_LEN], plain[5 * 4096 + 300];
	struct wfs_file_hdr h = {0};
	int fd, mnt;

	if (wfs_crypto_init() != 0)
		abort();
	for (int i = 0; i < WFS_KEY_LEN; i++)
		mk[i] = (uint8_t)i;
	if (wfs__keys_from_master(mk, &keys) != 0)
		abort();
	snprintf(dir, sizeof(dir), "/tmp/fuzz-undo-XXXXXX");
	if (mkdtemp(dir) == NULL || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	atexit(cleanup);
	if ((fd = openat(dfd, "f", O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    wfs_hdr_write(keys, fd, &h) != 0)
		abort();
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7);
	if (wfs_content_pwrite(keys, fd, &h, plain, sizeof(plain), 0) != (ssize_t)sizeof(plain))
		abort();
	memcpy(file_id, h.file_id, sizeof(file_id));
	handle.fh.handle_bytes = WFS_UNDO_HANDLE_MAX;
	if (name_to_handle_at(fd, "", &handle.fh, &mnt, AT_EMPTY_PATH) != 0)
		abort();
	image_len = (size_t)lseek(fd, 0, SEEK_END);
	if ((image = malloc(image_len)) == NULL ||
	    pread(fd, image, image_len, 0) != (ssize_t)image_len)
		abort();
	close(fd);
}

/* Appends one entry to j (at *len, room for cap) from record bytes. */
static size_t entry(uint8_t *j, size_t len, size_t cap, uint64_t seq, uint8_t kind, off_t at,
		    off_t size, const uint8_t *bytes, size_t n)
{
	size_t total = (size_t)wfs__undo_entry_len(n);

	if (len + total > cap)
		return len;
	uint8_t *e = j + len;
	memset(e, 0, total);
	wfs__put_le64(e + 8, seq);
	wfs__put_le64(e + 16, (uint64_t)size);
	wfs__put_le64(e + 24, (uint64_t)at);
	wfs__put_le32(e + 32, (uint32_t)n);
	wfs__put_le32(e + 36, (uint32_t)handle.fh.handle_type);
	wfs__put_le32(e + 40, handle.fh.handle_bytes);
	memcpy(e + 44, file_id, WFS_FILE_ID_LEN);
	if (kind & 2)
		e[44] ^= 1;
	memcpy(e + 64, handle.fh.f_handle, handle.fh.handle_bytes);
	memcpy(e + WFS_UNDO_HDR, bytes, n);
	wfs__undo_sum(e, e + WFS_UNDO_HDR, n, e + WFS_UNDO_SUM);
	if (kind & 4)
		e[WFS_UNDO_SUM] ^= 1;
	if (!(kind & 8))
		memcpy(e,
		       (kind & 16)  ? WFS_APPLIED_MAGIC
		       : (kind & 1) ? WFS_REDO_MAGIC
				    : WFS_UNDO_MAGIC,
		       8);
	return len + total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t j[1 << 16], out[8 * 4096];
	size_t len = 0, i = 0;
	uint64_t seq = 1;
	struct stat st;
	int fd;

	if (keys == NULL)
		init();
	while (i + 5 <= size && data[i] != 0xff) {
		uint8_t kind = data[i];
		off_t at = (off_t)data[i + 1] * 4124 + 64;
		off_t sz = (off_t)(data[i + 2] | data[i + 3] << 8) * 64;
		size_t n = (size_t)data[i + 4] * 37;

		i += 5;
		if (n > size - i)
			n = size - i;
		len = entry(j, len, sizeof(j), seq++, kind, at, sz, data + i, n);
		i += n;
	}
	for (i++; i + 3 <= size; i += 3) {
		size_t off = (size_t)(data[i] | data[i + 1] << 8);
		if (off < len)
			j[off] = data[i + 2];
	}
	if ((fd = openat(dfd, "undo", O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    (len > 0 && write(fd, j, len) != (ssize_t)len))
		abort();
	close(fd);
	if ((fd = openat(dfd, "f", O_RDWR | O_TRUNC)) < 0 ||
	    pwrite(fd, image, image_len, 0) != (ssize_t)image_len)
		abort();
	close(fd);

	int mnt = open(dir, O_RDONLY | O_DIRECTORY);
	long r = wfs_undo_replay(keys, dfd, "undo", mnt, NULL, NULL);
	close(mnt);
	if (r < 0 && r != -ENOMEM && r != -EFBIG && r != -EINVAL)
		abort(); /* the file and the journal are this harness's own */
	if ((fd = openat(dfd, "f", O_RDONLY)) < 0 || fstat(fd, &st) != 0)
		abort();
	if (st.st_size > (1 << 20) + 256 * 4124)
		abort(); /* nothing an entry names lies past this */
	struct wfs_file_hdr h;
	if (wfs_hdr_read(keys, fd, &h) == WFS_FORM_ENCRYPTED) {
		ssize_t got = wfs_content_pread(keys, fd, &h, out, sizeof(out), 0);
		if (got < 0 && got != -EIO)
			abort();
	}
	close(fd);
	return 0;
}
