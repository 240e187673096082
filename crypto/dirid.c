/*
 * dirid.c - the small files of encrypted names in a backing directory
 * (docs/format.md, "Encrypted names"): the directory id wfs~dirid and
 * long names' sidecars, and what a listing shows for a backing name. Each is made whole before it
 * gets its name (an O_TMPFILE, written, fsynced, then linked without replacing anything), so a
 * crash leaves it whole or absent, never torn.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

static const uint8_t dirid_magic[8] = {0x89, 0x57, 0x46, 0x53, 0x44, 0x49, 0x52, 0x00};

void wfs_dirid_format(const uint8_t id[WFS_DIRID_LEN], uint8_t out[WFS_DIRID_FILE_LEN])
{
	uint8_t sum[crypto_hash_sha256_BYTES];

	memset(out, 0, WFS_DIRID_FILE_LEN);
	memcpy(out, dirid_magic, sizeof(dirid_magic));
	wfs__put_le16(out + 8, 1); /* version */
	memcpy(out + 16, id, WFS_DIRID_LEN);
	crypto_hash_sha256(sum, out, 32);
	memcpy(out + 32, sum, 16);
}

int wfs_dirid_parse(const uint8_t *buf, size_t len, uint8_t id[WFS_DIRID_LEN])
{
	uint8_t want[WFS_DIRID_FILE_LEN];

	if (len != WFS_DIRID_FILE_LEN)
		return -EUCLEAN;
	wfs_dirid_format(buf + 16, want);
	if (memcmp(want, buf, WFS_DIRID_FILE_LEN) != 0)
		return -EUCLEAN; /* magic, version, flags, reserved or check */
	memcpy(id, buf + 16, WFS_DIRID_LEN);
	return 0;
}

/* Reads the regular file dirfd/name into buf (cap + 1 bytes): its size
 * up to cap + 1 (cap + 1: longer than cap), -ENOENT, -EUCLEAN when it is
 * no regular file, -errno. */
static ssize_t read_small(int dirfd, const char *name, uint8_t *buf, size_t cap)
{
	struct stat st;
	ssize_t n, r = 0;
	size_t got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return errno == ELOOP ? -EUCLEAN : -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EUCLEAN;
	while (r == 0 && got < cap + 1) {
		n = read(fd, buf + got, cap + 1 - got);
		if (n < 0 && errno != EINTR)
			r = -errno;
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
	}
	close(fd);
	return r < 0 ? r : (ssize_t)got;
}

static int write_all(int fd, const void *buf, size_t len)
{
	if (pwrite(fd, buf, len, 0) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return fsync(fd) < 0 ? -errno : 0;
}

static int fsync_dir(int dirfd)
{
	int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (d < 0)
		return -errno;
	if (fsync(d) < 0)
		r = -errno;
	close(d);
	return r;
}

static bool no_tmpfile;

void wfs__names_no_tmpfile(bool on)
{
	no_tmpfile = on;
}

/*
 * Gives dirfd/name the bytes buf, made whole and durable before they get
 * the name, never replacing a file already there: 0, -EEXIST, -errno.
 */
static int link_new(int dirfd, const char *name, const void *buf, size_t len)
{
	char tmp[32], proc[32];
	uint8_t rnd[8];
	int fd, r;

	if (no_tmpfile) {
		errno = EOPNOTSUPP;
		fd = -1;
	} else {
		fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
	}
	if (fd >= 0) {
		if ((r = write_all(fd, buf, len)) == 0 &&
		    linkat(fd, "", dirfd, name, AT_EMPTY_PATH) < 0) {
			r = -errno;
			if (r == -ENOENT) { /* AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH */
				snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
				r = linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) < 0
					    ? -errno
					    : 0;
			}
		}
		close(fd);
		return r;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* no O_TMPFILE: a reserved temporary name, linked, then removed */
	wfs__random(rnd, sizeof(rnd));
	memcpy(tmp, WFS_NAME_PREFIX "t", 5);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(tmp + 5 + 2 * i, 3, "%02x", rnd[i]);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, len);
	close(fd);
	if (r == 0 && linkat(dirfd, tmp, dirfd, name, 0) < 0)
		r = -errno;
	(void)unlinkat(dirfd, tmp, 0);
	return r;
}

int wfs_dirid_read(int dirfd, uint8_t id[WFS_DIRID_LEN])
{
	uint8_t buf[WFS_DIRID_FILE_LEN + 1];
	ssize_t n = read_small(dirfd, WFS_DIRID_NAME, buf, WFS_DIRID_FILE_LEN);

	if (n < 0)
		return (int)n;
	return wfs_dirid_parse(buf, (size_t)n, id);
}

/* A stream of dirfd's entries on an fd of its own (dirfd stays the
 * caller's, its offset untouched), or NULL with errno set. */
static DIR *dir_stream(int dirfd)
{
	int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = d < 0 ? NULL : fdopendir(d);

	if (d >= 0 && dir == NULL) {
		int e = errno;
		close(d);
		errno = e;
	}
	return dir;
}

/* Does the directory hold any encrypted name (short, long or sidecar)?
 * 1, 0 or -errno. */
static int has_encrypted(int dirfd)
{
	int r = 0;
	DIR *dir = dir_stream(dirfd);
	struct dirent *e;

	if (dir == NULL)
		return -errno;
	while ((e = readdir(dir)) != NULL) {
		/* one classification per entry: encrypted, long or a sidecar */
		enum wfs_name_kind kind = wfs_name_classify(e->d_name, strlen(e->d_name));

		if (kind == WFS_NAME_ENCRYPTED || kind == WFS_NAME_LONG ||
		    kind == WFS_NAME_SIDECAR) {
			r = 1;
			break;
		}
	}
	closedir(dir);
	return r;
}

int wfs_dirid_create(int dirfd, uint8_t id[WFS_DIRID_LEN])
{
	uint8_t buf[WFS_DIRID_FILE_LEN];
	int r = wfs_dirid_read(dirfd, id);

	if (r != -ENOENT)
		return r;
	if ((r = has_encrypted(dirfd)) != 0)
		return r < 0 ? r : -EUCLEAN;
	wfs__random(id, WFS_DIRID_LEN);
	wfs_dirid_format(id, buf);
	r = link_new(dirfd, WFS_DIRID_NAME, buf, sizeof(buf));
	if (r == -EEXIST) /* another writer was first: theirs */
		return wfs_dirid_read(dirfd, id);
	if (r == 0)
		r = fsync_dir(dirfd);
	return r;
}

int wfs_name_sidecar_write(int dirfd, const struct wfs_name_enc *e)
{
	uint8_t old[WFS_SIDECAR_MAX + 1];
	ssize_t n;
	int r;

	if (!e->is_long)
		return -EINVAL;
	for (int tries = 0; tries < 2; tries++) {
		r = link_new(dirfd, e->sidecar_name, e->sidecar, e->sidecar_len);
		if (r == 0)
			return fsync_dir(dirfd);
		if (r != -EEXIST)
			return r;
		/* one is there: the same bytes (a function of the directory id
		 * and the name) are kept; other bytes are damage, replaced */
		n = read_small(dirfd, e->sidecar_name, old, WFS_SIDECAR_MAX);
		if (n == (ssize_t)e->sidecar_len && memcmp(old, e->sidecar, e->sidecar_len) == 0)
			return 0;
		if (n < 0 && n != -ENOENT)
			return (int)n; /* -EUCLEAN: a directory or symlink there, left */
		if (n >= 0 && unlinkat(dirfd, e->sidecar_name, 0) < 0 && errno != ENOENT)
			return -errno;
	}
	return -EEXIST;
}

ssize_t wfs_name_read_long(const struct wfs_keys *k, const uint8_t dirid[WFS_DIRID_LEN], int dirfd,
			   const char *entry, size_t len, char plain[WFS_NAME_MAX + 1])
{
	char side[WFS_NAME_LONG_LEN + 1];
	uint8_t buf[WFS_SIDECAR_MAX + 1];
	ssize_t n;

	plain[0] = '\0';
	if (wfs_name_classify(entry, len) != WFS_NAME_LONG ||
	    wfs_name_long_pair(entry, len, side) != 0)
		return -EINVAL;
	if ((n = read_small(dirfd, side, buf, WFS_SIDECAR_MAX)) < 0)
		return n;
	return wfs_name_decrypt_long(k, dirid, entry, len, (const char *)buf, (size_t)n, plain);
}

int wfs_name_sidecar_remove(int dirfd, const char *entry, size_t len)
{
	char side[WFS_NAME_LONG_LEN + 1];

	if (wfs_name_classify(entry, len) != WFS_NAME_LONG ||
	    wfs_name_long_pair(entry, len, side) != 0)
		return -EINVAL;
	if (unlinkat(dirfd, side, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

ssize_t wfs_name_show(const struct wfs_keys *k, const uint8_t *dirid, int dirfd, const char *name,
		      size_t len, enum wfs_name_kind *kind, char plain[WFS_NAME_MAX + 1])
{
	enum wfs_name_kind kd = wfs_name_classify(name, len);

	if (kind != NULL)
		*kind = kd;
	plain[0] = '\0';
	switch (kd) {
	case WFS_NAME_PLAIN:
	case WFS_NAME_ESCAPED:
		return wfs_name_unescape(name, len, plain);
	case WFS_NAME_ENCRYPTED:
		return dirid == NULL ? -ENOKEY : wfs_name_decrypt(k, dirid, name, len, plain);
	case WFS_NAME_LONG:
		return dirid == NULL ? -ENOKEY
				     : wfs_name_read_long(k, dirid, dirfd, name, len, plain);
	default:
		return 0; /* a sidecar, the id, a reserved name: never listed */
	}
}

/* wfs~t + 16 hex digits: link_new's temporary without O_TMPFILE */
bool wfs_name_is_temp(const char *name)
{
	size_t n = strlen(name);

	if (n != 5 + 16 || memcmp(name, WFS_NAME_PREFIX "t", 5) != 0)
		return false;
	for (size_t i = 5; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

int wfs_names_rmdir_prepare(int dirfd)
{
	int r = 0, pass;
	DIR *dir = dir_stream(dirfd);
	struct dirent *e;

	if (dir == NULL)
		return -errno;
	/* pass 0: is anything listed (or unknown) there? pass 1: remove our
	 * own files, the id last (below) */
	for (pass = 0; pass < 2 && r == 0; pass++) {
		rewinddir(dir);
		while ((e = readdir(dir)) != NULL) {
			const char *n = e->d_name;

			if (!strcmp(n, ".") || !strcmp(n, ".."))
				continue;
			enum wfs_name_kind kind = wfs_name_classify(n, strlen(n));

			if (kind == WFS_NAME_DIRID)
				continue;
			/* orphan sidecars (there is no long entry) and temporaries
			 * go; anything else, another version's files too, stays */
			if (kind != WFS_NAME_SIDECAR &&
			    !(kind == WFS_NAME_RESERVED && wfs_name_is_temp(n)))
				r = -ENOTEMPTY;
			if (r != 0)
				break;
			if (pass == 1 && unlinkat(dirfd, n, 0) < 0 && errno != ENOENT) {
				r = -errno;
				break;
			}
		}
	}
	closedir(dir);
	if (r == 0 && unlinkat(dirfd, WFS_DIRID_NAME, 0) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}
