/*
 * cutdisk.c - a disk whose power can be cut, for the power-cut tests
 * (test_powercut.py). There is no device-mapper here (no dm-flakey, no
 * dm-log-writes), so this FUSE file system stands in: it serves one file,
 * MOUNTPOINT/disk, over IMAGE, and a loop device on that file carries the
 * ext4 under test.
 *
 * It behaves like a disk with a volatile write cache: a write lands in
 * the cache (reads see it) and reaches IMAGE only when the kernel flushes
 * (an fsync of the file: the loop driver turns a flush request into one)
 * or when the cache fills and destages a random half of itself. SIGUSR1
 * cuts the power: each cached sector reaches IMAGE or is lost, at random
 * and independently (so unflushed writes land in any order and in part),
 * and every later write is dropped. IMAGE then holds what a disk would
 * hold after the cut, for the next mount.
 *
 * Usage: cutdisk IMAGE MOUNTPOINT SEED   (stays in the foreground)
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR	    512
#define CACHE_LIMIT 16384 /* sectors: 8 MiB, then a random half destages */

struct line {
	uint64_t sector; /* UINT64_MAX: free */
	unsigned char data[SECTOR];
};

static int image_fd;
static off_t image_size;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int cut_done;
static uint64_t seed_state;
/* The cache: open addressing on the sector number, never more than half
 * full (CACHE_LIMIT of 2 * CACHE_LIMIT slots). */
static struct line *cache;
static size_t cached;
static uint64_t stats_flushes, stats_destaged, stats_kept, stats_lost, stats_dropped;

static uint64_t rnd(void)
{
	seed_state ^= seed_state << 13;
	seed_state ^= seed_state >> 7;
	seed_state ^= seed_state << 17;
	return seed_state;
}

static struct line *slot(uint64_t sector, int add)
{
	size_t n = 2 * CACHE_LIMIT, i = (size_t)(sector * 0x9e3779b97f4a7c15ull) % n;
	for (;; i = (i + 1) % n) {
		if (cache[i].sector == sector)
			return &cache[i];
		if (cache[i].sector == UINT64_MAX)
			break;
	}
	if (!add)
		return NULL;
	cache[i].sector = sector;
	cached++;
	return &cache[i];
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void to_image(struct line *l)
{
	if (pwrite(image_fd, l->data, SECTOR, (off_t)(l->sector * SECTOR)) != SECTOR)
		die("cutdisk: write to the image");
}

/* Empties the cache; each line reaches the image when keep() says so. Lines
 * are taken out and the table rebuilt, so probing stays correct. */
static void destage(int (*keep)(void), uint64_t *written, uint64_t *lost)
{
	size_t n = 2 * CACHE_LIMIT;
	struct line *old = cache;
	cache = malloc(n * sizeof *cache);
	if (!cache)
		die("cutdisk: malloc");
	for (size_t i = 0; i < n; i++)
		cache[i].sector = UINT64_MAX;
	cached = 0;
	for (size_t i = 0; i < n; i++) {
		if (old[i].sector == UINT64_MAX)
			continue;
		int k = keep();
		if (k > 0) {
			to_image(&old[i]);
			(*written)++;
		} else if (k < 0) { /* stays cached */
			struct line *l = slot(old[i].sector, 1);
			memcpy(l->data, old[i].data, SECTOR);
		} else if (lost) {
			(*lost)++;
		}
	}
	free(old);
}

static int always(void)
{
	return 1;
}

static int coin(void)
{
	return rnd() & 1;
}

static int half_stays(void)
{
	return (rnd() & 1) ? 1 : -1;
}

/* Waits for SIGUSR1 and cuts the power: each cached sector reaches the
 * image or is lost, and later writes are dropped. Says so on stderr once
 * done, which the test waits for. */
static void *cutter(void *arg)
{
	sigset_t *set = arg;
	int sig;
	sigwait(set, &sig);
	pthread_mutex_lock(&lock);
	destage(coin, &stats_kept, &stats_lost);
	cut_done = 1;
	fprintf(stderr, "cutdisk: power cut: %llu cached sectors kept, %llu lost\n",
		(unsigned long long)stats_kept, (unsigned long long)stats_lost);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static int cd_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof *st);
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/disk"))
		return -ENOENT;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = image_size;
	st->st_blocks = image_size / 512;
	return 0;
}

static int cd_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk", NULL, 0, 0);
	return 0;
}

static int cd_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk"))
		return -ENOENT;
	fi->direct_io = 1; /* every write reaches us, none waits in a page cache */
	return 0;
}

static int cd_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path, (void)fi;
	if (off >= image_size)
		return 0;
	if ((off_t)size > image_size - off)
		size = (size_t)(image_size - off);
	pthread_mutex_lock(&lock);
	ssize_t n = pread(image_fd, buf, size, off);
	if (n < 0)
		n = -errno;
	for (off_t s = off / SECTOR; n > 0 && s * SECTOR < off + n; s++) {
		struct line *l = slot((uint64_t)s, 0);
		if (!l)
			continue;
		off_t lo = s * SECTOR > off ? s * SECTOR : off;
		off_t hi = (s + 1) * SECTOR < off + n ? (s + 1) * SECTOR : off + n;
		memcpy(buf + (lo - off), l->data + (lo - s * SECTOR), (size_t)(hi - lo));
	}
	pthread_mutex_unlock(&lock);
	return (int)n;
}

static int cd_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path, (void)fi;
	if (off >= image_size)
		return -ENOSPC;
	if ((off_t)size > image_size - off)
		size = (size_t)(image_size - off);
	pthread_mutex_lock(&lock);
	if (cut_done) {
		stats_dropped++;
		pthread_mutex_unlock(&lock);
		return (int)size;
	}
	for (off_t s = off / SECTOR; s * SECTOR < off + (off_t)size; s++) {
		if (cached >= CACHE_LIMIT)
			destage(half_stays, &stats_destaged, NULL);
		struct line *l = slot((uint64_t)s, 0);
		off_t lo = s * SECTOR > off ? s * SECTOR : off;
		off_t hi =
			(s + 1) * SECTOR < off + (off_t)size ? (s + 1) * SECTOR : off + (off_t)size;
		if (!l) {
			l = slot((uint64_t)s, 1);
			if ((hi - lo < SECTOR) &&
			    pread(image_fd, l->data, SECTOR, s * SECTOR) != SECTOR)
				die("cutdisk: read of the image");
		}
		memcpy(l->data + (lo - s * SECTOR), buf + (lo - off), (size_t)(hi - lo));
	}
	pthread_mutex_unlock(&lock);
	return (int)size;
}

static int cd_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path, (void)datasync, (void)fi;
	pthread_mutex_lock(&lock);
	if (!cut_done) {
		destage(always, &stats_destaged, NULL);
		stats_flushes++;
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

static void cd_destroy(void *data)
{
	(void)data;
	pthread_mutex_lock(&lock);
	if (!cut_done)
		destage(always, &stats_destaged, NULL); /* a clean shutdown */
	fprintf(stderr,
		"cutdisk: %llu flushes, %llu sectors destaged, %llu writes dropped after the "
		"cut\n",
		(unsigned long long)stats_flushes, (unsigned long long)stats_destaged,
		(unsigned long long)stats_dropped);
	pthread_mutex_unlock(&lock);
	if (fsync(image_fd) != 0)
		die("cutdisk: fsync of the image");
}

static const struct fuse_operations ops = {
	.getattr = cd_getattr,
	.readdir = cd_readdir,
	.open = cd_open,
	.read = cd_read,
	.write = cd_write,
	.fsync = cd_fsync,
	.destroy = cd_destroy,
};

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: cutdisk IMAGE MOUNTPOINT SEED\n");
		return 2;
	}
	image_fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (image_fd < 0)
		die(argv[1]);
	struct stat st;
	if (fstat(image_fd, &st) != 0)
		die("fstat");
	image_size = st.st_size;
	seed_state = strtoull(argv[3], NULL, 10) * 2654435761u + 1;
	cache = malloc(2 * CACHE_LIMIT * sizeof *cache);
	if (!cache)
		die("malloc");
	for (size_t i = 0; i < 2 * CACHE_LIMIT; i++)
		cache[i].sector = UINT64_MAX;
	/* Blocked in every thread, taken by the cutter's sigwait. */
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, cutter, &set) != 0)
		die("pthread_create");
	char *fargv[] = {argv[0], "-f", "-s", "-o", "fsname=cutdisk", argv[2], NULL};
	return fuse_main(6, fargv, &ops, NULL);
}
