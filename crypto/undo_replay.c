/*
 * undo_replay.c - at mount, puts back what the undo journal (undo.c) kept
 * of writes a crash cut short. For each file with entries left, its live
 * redo entries first, oldest first: writes the daemon had acknowledged.
 * One that no applied mark of its file follows was perhaps never written
 * in place, and its new blocks go in place. One that a mark follows was
 * written in place, not yet durably: only its blocks that fail
 * authentication (torn by a power cut) are written again, as any other
 * valid block there is its own, the old one (the write was never synced)
 * or a newer one. Then its undo entries, newest first, while the file
 * fails verification: the entry's old bytes go back and the file is cut
 * to its old size. A file that verifies is left as it is, so entries of
 * writes that finished (and were not cleared before the crash) change
 * nothing. Every file with entries is made durable before the journal
 * that held them is emptied.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

struct entry {
	uint64_t seq;
	off_t old_size, at;
	uint32_t saved;
	int handle_type;
	uint32_t handle_bytes;
	uint8_t file_id[WFS_FILE_ID_LEN];
	uint8_t handle[WFS_UNDO_HANDLE_MAX];
	uint8_t *data;
	bool redo; /* the new bytes of whole blocks, else the old ones */
	bool mark; /* the file's redo entries before it were applied */
	bool done; /* its file was handled */
};

/* Reads the entries in order until one is older than the one before it
 * (what lies past the tail of a journal that was reset) or unreadable:
 * entries are written in the order of their places (undo.c), so a killed
 * daemon leaves no gap before an entry it wrote. One whose bytes fail
 * their sum (torn: a killed daemon's last pwrite, or pages of the journal
 * a power cut took out of order) is stepped over when its header holds.
 * Only live ones (magic intact) are kept. */
static long read_entries(int fd, struct entry **out)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t last = 0;
	uint8_t h[WFS_UNDO_HDR], sum[32];
	off_t off = 0;

	for (;;) {
		if (wfs__pread_full(fd, h, WFS_UNDO_HDR, off) != WFS_UNDO_HDR)
			break;
		bool redo = memcmp(h, WFS_REDO_MAGIC, 8) == 0;
		bool mark = memcmp(h, WFS_APPLIED_MAGIC, 8) == 0;
		bool live = redo || mark || memcmp(h, WFS_UNDO_MAGIC, 8) == 0;
		uint64_t seq = wfs__get_le64(h + 8);
		uint32_t saved = wfs__get_le32(h + 32), hb = wfs__get_le32(h + 40);
		if ((!live && !sodium_is_zero(h, 8)) || seq <= last || hb > WFS_UNDO_HANDLE_MAX ||
		    saved > (64u << 20))
			break;
		uint8_t *data = malloc(saved ? saved : 1);
		if (data == NULL)
			goto nomem;
		if (wfs__pread_full(fd, data, saved, off + WFS_UNDO_HDR) != (ssize_t)saved) {
			free(data);
			break;
		}
		wfs__undo_sum(h, data, saved, sum);
		last = seq;
		off += wfs__undo_entry_len(saved);
		/* a mark holds no bytes: one that claims some is no mark */
		if (!live || (mark && saved != 0) ||
		    sodium_memcmp(sum, h + WFS_UNDO_SUM, 32) != 0) {
			free(data);
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			struct entry *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				free(data);
				goto nomem;
			}
			v = nv;
			cap = nc;
		}
		struct entry *e = &v[n++];
		memset(e, 0, sizeof(*e));
		e->seq = seq;
		e->old_size = (off_t)wfs__get_le64(h + 16);
		e->at = (off_t)wfs__get_le64(h + 24);
		e->saved = saved;
		e->handle_type = (int)wfs__get_le32(h + 36);
		e->handle_bytes = hb;
		memcpy(e->file_id, h + 44, WFS_FILE_ID_LEN);
		memcpy(e->handle, h + 64, hb);
		e->data = data;
		e->redo = redo;
		e->mark = mark;
	}
	*out = v;
	return (long)n;
nomem:
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
	return -ENOMEM;
}

static bool same_file(const struct entry *a, const struct entry *b)
{
	return a->handle_type == b->handle_type && a->handle_bytes == b->handle_bytes &&
	       memcmp(a->handle, b->handle, a->handle_bytes) == 0;
}

/* Marks entry i and every older one of the same file handled. */
static void file_handled(struct entry *v, long i)
{
	for (long j = i; j >= 0; j--)
		if (same_file(&v[j], &v[i]))
			v[j].done = true;
}

/* Writes the blocks of applied redo entry e that fail authentication
 * in place again. Returns how many, or -errno. */
static long repair_blocks(const struct wfs_keys *k, int fd, const struct wfs_file_hdr *h,
			  const struct entry *e)
{
	uint8_t cb[WFS_CBLOCK_SIZE], pt[WFS_BLOCK_SIZE];
	long n = 0;

	if (e->at < (off_t)WFS_HDR_SIZE || (e->at - (off_t)WFS_HDR_SIZE) % WFS_CBLOCK_SIZE != 0)
		return 0; /* not a redo entry's range: nothing of it is trusted */
	for (size_t j = 0; j + WFS_CBLOCK_SIZE <= e->saved; j += WFS_CBLOCK_SIZE) {
		off_t at = e->at + (off_t)j;
		uint64_t i = (uint64_t)(at - (off_t)WFS_HDR_SIZE) / WFS_CBLOCK_SIZE;
		ssize_t got = wfs__pread_full(fd, cb, sizeof(cb), at);

		if (got < 0)
			return got;
		if (wfs__open_block(k, h, i, false, cb, (size_t)got, pt) >= 0)
			continue;
		if ((got = wfs__pwrite_full(fd, e->data + j, WFS_CBLOCK_SIZE, at)) < 0)
			return got;
		n++;
	}
	sodium_memzero(pt, sizeof(pt));
	return n;
}

/* Finishes file fd's redo entries in v (oldest first), then rolls it back
 * with its undo entries (newest first) while it fails verification, and
 * makes it durable. Returns entries applied or -errno. */
static long replay_file(const struct wfs_keys *k, int fd, struct entry *v, long first,
			wfs_undo_report_fn fn, void *arg, const char *name)
{
	struct wfs_file_hdr h;
	long applied = 0, marked = -1;

	if (wfs_hdr_read(k, fd, &h) != WFS_FORM_ENCRYPTED ||
	    memcmp(h.file_id, v[first].file_id, WFS_FILE_ID_LEN) != 0)
		return 0; /* not the file the entries were written for */
	for (long i = 0; i <= first; i++)
		if (v[i].mark && same_file(&v[i], &v[first]))
			marked = i; /* its redo entries before this were applied */
	for (long i = 0; i <= first; i++) {
		struct entry *e = &v[i];
		struct stat st;
		ssize_t w;

		if (!e->redo || !same_file(e, &v[first]))
			continue;
		if (fstat(fd, &st) != 0)
			return -errno;
		if (e->at + (off_t)e->saved > st.st_size)
			continue; /* a power cut took the size it was written under */
		if (i < marked)
			w = repair_blocks(k, fd, &h, e);
		else
			w = wfs__pwrite_full(fd, e->data, e->saved, e->at);
		if (w < 0)
			return w;
		if (i < marked && w == 0)
			continue;
		applied++;
		if (fn != NULL)
			fn(arg, name, true, e->at, e->saved, st.st_size, st.st_size);
	}
	for (long i = first; i >= 0; i--) {
		struct entry *e = &v[i];
		struct stat st;

		if (e->redo || e->mark || !same_file(e, &v[first]))
			continue;
		if (wfs_content_verify(k, fd, NULL, NULL) == 0)
			break;
		if (fstat(fd, &st) != 0)
			return -errno;
		ssize_t w = wfs__pwrite_full(fd, e->data, e->saved, e->at);
		if (w < 0)
			return w;
		if (st.st_size > e->old_size && ftruncate(fd, e->old_size) != 0)
			return -errno;
		applied++;
		if (fn != NULL)
			fn(arg, name, false, e->at, e->saved, st.st_size, e->old_size);
	}
	/* even with nothing applied: the journal is emptied after this, and
	 * blocks written in place before the crash may not be durable yet */
	if (fsync(fd) != 0)
		return -errno;
	return applied;
}

long wfs_undo_replay(const struct wfs_keys *k, int dirfd, const char *name, int mount_fd,
		     wfs_undo_report_fn fn, void *arg)
{
	struct entry *v = NULL;
	long n, total = 0, r = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read_entries(fd, &v);
	close(fd);
	if (n < 0)
		return n;
	for (long i = n - 1; i >= 0 && r >= 0; i--) {
		if (v[i].done)
			continue;
		struct {
			struct file_handle fh;
			unsigned char b[WFS_UNDO_HANDLE_MAX];
		} hb;
		hb.fh.handle_type = v[i].handle_type;
		hb.fh.handle_bytes = v[i].handle_bytes;
		memcpy(hb.fh.f_handle, v[i].handle, v[i].handle_bytes);
		int ffd = open_by_handle_at(mount_fd, &hb.fh, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (ffd < 0) {
			/* gone since (ESTALE): nothing to put back */
			if (errno != ESTALE && errno != ENOENT)
				r = -errno;
			file_handled(v, i);
			continue;
		}
		char path[64], real[4096];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", ffd);
		ssize_t l = readlink(path, real, sizeof(real) - 1);
		real[l > 0 ? l : 0] = '\0';
		r = replay_file(k, ffd, v, i, fn, arg, real);
		close(ffd);
		file_handled(v, i); /* whatever came of it: the file is opened once */
		if (r > 0)
			total += r;
	}
	for (long i = 0; i < n; i++)
		free(v[i].data);
	free(v);
	return r < 0 ? r : total;
}
