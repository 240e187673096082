/*
 * difftest.c - randomized differential test: the same seeded sequence of
 * file operations on a file through a wardfs mount (A) and on a reference
 * file on an ordinary filesystem (B); results, sizes and contents must agree.
 *
 *   difftest FILE_A FILE_B SEED NOPS [FULL_EVERY]
 *
 * Ops: pwrite (offsets biased to 4096-block boundaries +-1, lengths 0..20000,
 * sometimes far past EOF), O_APPEND write, ftruncate (shrink/grow), pread of
 * random ranges, fallocate, mmap write/read of a range, fsync (+ drop the
 * file's page cache so later reads come from the daemon), close/reopen.
 * After every op the sizes are compared and the touched range is read back;
 * every FULL_EVERY ops (default 16) and at the end the whole files are.
 *
 * On a mismatch it prints the seed, the op index and the last ops, and
 * exits 1. Exit 2 on a setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSZ (3L << 20) /* files are kept below about this size */
#define HIST  24

static uint64_t rng;
static unsigned long long seed, opi;
static const char *pa, *pb;
static int fa = -1, fb = -1, apa = -1, apb = -1;
static char hist[HIST][160];
static unsigned char *wbuf, *ra, *rb;

static uint64_t next(void)
{ /* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? next() % n : 0;
}

static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hist[opi % HIST], sizeof(hist[0]), fmt, ap);
	va_end(ap);
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "difftest MISMATCH: seed=%llu op=%llu: ", seed, opi);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nlast ops:\n");
	unsigned long long first = opi >= HIST - 1 ? opi - (HIST - 1) : 0;
	for (unsigned long long i = first; i <= opi; i++)
		fprintf(stderr, "  #%llu %s\n", i, hist[i % HIST]);
	fprintf(stderr, "reproduce: difftest A B %llu %llu\n", seed, opi + 1);
	exit(1);
}

static void die(const char *what)
{
	fprintf(stderr, "difftest: %s: %s (seed=%llu op=%llu)\n", what, strerror(errno), seed, opi);
	exit(2);
}

static void open_all(void)
{
	fa = open(pa, O_RDWR | O_CREAT, 0600);
	fb = open(pb, O_RDWR | O_CREAT, 0600);
	apa = open(pa, O_WRONLY | O_APPEND);
	apb = open(pb, O_WRONLY | O_APPEND);
	if (fa < 0 || fb < 0 || apa < 0 || apb < 0)
		die("open");
}

static void close_all(void)
{
	close(fa);
	close(fb);
	close(apa);
	close(apb);
}

static off_t size_of(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat");
	return st.st_size;
}

/* Both results must agree: same value, or same errno. */
static void same_result(const char *what, long long a, int ea, long long b, int eb)
{
	if (a != b || (a < 0 && ea != eb))
		fail("%s: mount returned %lld (%s), reference %lld (%s)", what, a,
		     a < 0 ? strerror(ea) : "ok", b, b < 0 ? strerror(eb) : "ok");
}

static void compare_range(off_t off, size_t len)
{
	while (len > 0) {
		size_t n = len > (1u << 20) ? (1u << 20) : len;
		errno = 0;
		ssize_t x = pread(fa, ra, n, off);
		int ex = errno;
		errno = 0;
		ssize_t y = pread(fb, rb, n, off);
		int ey = errno;
		same_result("pread", x, ex, y, ey);
		if (x <= 0)
			return;
		if (memcmp(ra, rb, (size_t)x) != 0) {
			size_t i = 0;
			while (ra[i] == rb[i])
				i++;
			fail("content differs at offset %lld (mount %02x, reference %02x), read of "
			     "%zu at %lld",
			     (long long)(off + (off_t)i), ra[i], rb[i], n, (long long)off);
		}
		off += x;
		len -= (size_t)x;
	}
}

static void compare_size(void)
{
	off_t a = size_of(fa), b = size_of(fb);
	if (a != b)
		fail("size differs: mount %lld, reference %lld", (long long)a, (long long)b);
}

static void compare_all(void)
{
	compare_size();
	off_t sz = size_of(fb);
	compare_range(0, (size_t)sz + 4096);
}

static off_t pick_offset(off_t size)
{
	switch (below(8)) {
	case 0:
	case 1: { /* a block boundary +-1 near or inside the file */
		off_t blocks = size / 4096 + 2;
		off_t o = (off_t)below((uint64_t)blocks) * 4096 + (off_t)below(3) - 1;
		return o < 0 ? 0 : o;
	}
	case 2:
		return size; /* exactly at EOF */
	case 3:		     /* far past EOF */
		return size + 4096 * (off_t)below(200) + (off_t)below(4097);
	case 4:
		return size > 0 ? size - (off_t)below((uint64_t)(size < 5000 ? size : 5000)) : 0;
	default:
		return (off_t)below((uint64_t)size + 8192);
	}
}

static size_t pick_len(void)
{
	static const size_t special[] = {0,    1,    27,   28,	 29,   4095,
					 4096, 4097, 8191, 8192, 8193, 12288};
	if (below(3) == 0)
		return special[below(sizeof(special) / sizeof(special[0]))];
	return (size_t)below(20001);
}

static void fill(size_t len)
{
	uint64_t x = next();
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			x = next();
		wbuf[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
	if (below(4) == 0) /* some zero runs: zero data must not look like a hole */
		memset(wbuf, 0, len / 2);
}

static void op_pwrite(void)
{
	off_t size = size_of(fb);
	off_t off = pick_offset(size);
	size_t len = pick_len();
	if (off + (off_t)len > MAXSZ) {
		off = (off_t)below(MAXSZ / 2);
	}
	fill(len);
	note("pwrite off=%lld len=%zu (size %lld)", (long long)off, len, (long long)size);
	errno = 0;
	ssize_t x = pwrite(fa, wbuf, len, off);
	int ex = errno;
	errno = 0;
	ssize_t y = pwrite(fb, wbuf, len, off);
	same_result("pwrite", x, ex, y, errno);
	compare_size();
	off_t lo = off > 4096 ? off - 4096 : 0;
	compare_range(lo, len + 8192);
}

static void op_append(void)
{
	size_t len = pick_len();
	if (size_of(fb) + (off_t)len > MAXSZ)
		len = 0;
	fill(len);
	off_t size = size_of(fb);
	note("append len=%zu (size %lld)", len, (long long)size);
	errno = 0;
	ssize_t x = write(apa, wbuf, len);
	int ex = errno;
	errno = 0;
	ssize_t y = write(apb, wbuf, len);
	same_result("append write", x, ex, y, errno);
	compare_size();
	compare_range(size > 4096 ? size - 4096 : 0, len + 8192);
}

static void op_truncate(void)
{
	off_t size = size_of(fb), ns;
	switch (below(5)) {
	case 0:
		ns = 0;
		break;
	case 1:
		ns = (off_t)below((uint64_t)size + 1); /* shrink */
		break;
	case 2: /* block boundary +-1 */
		ns = (off_t)below((uint64_t)size / 4096 + 3) * 4096 + (off_t)below(3) - 1;
		if (ns < 0)
			ns = 0;
		break;
	default: /* grow */
		ns = size + (off_t)below(100000);
	}
	if (ns > MAXSZ)
		ns = MAXSZ / 3;
	note("ftruncate %lld (size %lld)", (long long)ns, (long long)size);
	errno = 0;
	int x = ftruncate(fa, ns);
	int ex = errno;
	errno = 0;
	int y = ftruncate(fb, ns);
	same_result("ftruncate", x, ex, y, errno);
	compare_size();
	off_t lo = ns > 8192 ? ns - 8192 : 0;
	compare_range(lo, 16384);
}

static void op_pread(void)
{
	off_t size = size_of(fb);
	off_t off = below(4) == 0 ? pick_offset(size) : (off_t)below((uint64_t)size + 1);
	size_t len = below(8) == 0 ? (size_t)below(300000) : pick_len();
	note("pread off=%lld len=%zu (size %lld)", (long long)off, len, (long long)size);
	compare_range(off, len);
}

static void op_fallocate(void)
{
	off_t size = size_of(fb);
	off_t off = (off_t)below((uint64_t)size + 20000);
	off_t len = 1 + (off_t)below(30000);
	if (off + len > MAXSZ)
		return;
	note("fallocate off=%lld len=%lld (size %lld)", (long long)off, (long long)len,
	     (long long)size);
	errno = 0;
	int x = fallocate(fa, 0, off, len);
	int ex = errno;
	if (x < 0 && ex == EOPNOTSUPP) {
		/* allowed to be unsupported: then nothing must have changed */
		compare_size();
		return;
	}
	errno = 0;
	int y = fallocate(fb, 0, off, len);
	same_result("fallocate", x, ex, y, errno);
	compare_size();
	compare_range(size > 4096 ? size - 4096 : 0, (size_t)(off + len - size) + 8192);
}

static void op_mmap(void)
{
	off_t size = size_of(fb);
	if (size == 0)
		return;
	off_t pg = (off_t)below((uint64_t)(size + 4095) / 4096);
	off_t mlen = size - pg * 4096;
	if (mlen > 65536)
		mlen = 65536;
	off_t woff = (off_t)below((uint64_t)mlen); /* within the file */
	size_t wlen = (size_t)below((uint64_t)(mlen - woff) + 1);
	int rw = below(3) != 0;
	note("mmap %s page=%lld maplen=%lld write off=%lld len=%zu (size %lld)", rw ? "rw" : "ro",
	     (long long)pg, (long long)mlen, (long long)woff, wlen, (long long)size);
	int prot = PROT_READ | (rw ? PROT_WRITE : 0);
	unsigned char *ma = mmap(NULL, (size_t)mlen, prot, MAP_SHARED, fa, pg * 4096);
	if (ma == MAP_FAILED)
		fail("mmap of the mount file failed: %s", strerror(errno));
	unsigned char *mb = mmap(NULL, (size_t)mlen, prot, MAP_SHARED, fb, pg * 4096);
	if (mb == MAP_FAILED)
		die("mmap reference");
	if (memcmp(ma, mb, (size_t)mlen) != 0)
		fail("mmap contents differ before write");
	if (rw) {
		fill(wlen);
		memcpy(ma + woff, wbuf, wlen);
		memcpy(mb + woff, wbuf, wlen);
		if (below(2)) {
			if (msync(ma, (size_t)mlen, MS_SYNC) < 0)
				fail("msync of the mount file failed: %s", strerror(errno));
			msync(mb, (size_t)mlen, MS_SYNC);
		}
	}
	munmap(ma, (size_t)mlen);
	munmap(mb, (size_t)mlen);
	compare_size();
	compare_range(pg * 4096, (size_t)mlen);
}

static void op_fsync(void)
{
	int drop = below(2);
	note("fsync%s", drop ? " + drop page cache" : "");
	if (fsync(fa) < 0)
		fail("fsync of the mount file failed: %s", strerror(errno));
	fsync(fb);
	if (drop)
		posix_fadvise(fa, 0, 0, POSIX_FADV_DONTNEED);
	compare_all();
}

static void op_reopen(void)
{
	note("close + reopen");
	close_all();
	open_all();
	compare_all();
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: difftest FILE_A FILE_B SEED NOPS [FULL_EVERY]\n");
		return 2;
	}
	pa = argv[1];
	pb = argv[2];
	seed = strtoull(argv[3], NULL, 0);
	unsigned long long nops = strtoull(argv[4], NULL, 0);
	unsigned long long every = argc > 5 ? strtoull(argv[5], NULL, 0) : 16;
	rng = seed;
	wbuf = malloc(1 << 20);
	ra = malloc(1 << 20);
	rb = malloc(1 << 20);
	if (!wbuf || !ra || !rb)
		die("malloc");
	open_all();
	for (opi = 0; opi < nops; opi++) {
		unsigned r = (unsigned)below(100);
		if (r < 36)
			op_pwrite();
		else if (r < 42)
			op_append();
		else if (r < 52)
			op_truncate();
		else if (r < 80)
			op_pread();
		else if (r < 84)
			op_fallocate();
		else if (r < 91)
			op_mmap();
		else if (r < 96)
			op_fsync();
		else
			op_reopen();
		if (every && opi % every == every - 1)
			compare_all();
	}
	note("final full compare after reopen");
	close_all();
	open_all();
	posix_fadvise(fa, 0, 0, POSIX_FADV_DONTNEED);
	compare_all();
	close_all();
	printf("difftest ok: seed=%llu ops=%llu size=%lld\n", seed, nops,
	       (long long)size_of((fb = open(pb, O_RDONLY))));
	return 0;
}
