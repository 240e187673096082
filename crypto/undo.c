/*
 * undo.c - the vault's undo journal: no write of an encrypted file
 * overwrites the only copy of bytes a caller was told are written.
 *
 * A block is re-sealed in place, and a crash in the middle of its write
 * would leave it failing authentication, and with it the bytes of it that
 * were written before. So before every write that changes a file's stored
 * bytes (content.c), the old bytes of the range and the file's old size go
 * to an entry appended to BACKING/.wardfs/undo; when the write is done the
 * entry is cleared (its magic zeroed). Against a killed daemon that is
 * enough: the page cache keeps both. Against a power cut, an entry whose
 * old bytes an fsync had made durable is itself made durable (fdatasync)
 * before the write, and stays until the file's next fsync (pinned).
 * Mount replays what is left (wfs_undo_replay): newest first, an entry's
 * old bytes go back and the file is cut to its old size while the file
 * fails verification. The journal is emptied (its tail goes back to 0)
 * whenever no entry is live. Layout in docs/format.md.
 *
 * Lock order: callers serialize writes per file (the daemon's io_lock);
 * u->lock is taken last and never held across I/O other than the small
 * pwrite that clears an entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

/* a journal this long with entries still pinned: sync and start over */
#define CHECKPOINT ((off_t)64 << 20)
#define TOUCHED	   8

struct pin {
	off_t off;
	struct wfs_undo_file *owner; /* NULL once the file is forgotten */
};

struct wfs_undo {
	int fd;
	pthread_mutex_t lock;
	off_t tail;
	uint64_t seq;
	unsigned live; /* entries written and not cleared */
	struct pin *pins;
	size_t npins, cap;
};

struct wfs_undo_file {
	struct wfs_undo *u;
	int handle_type;
	unsigned handle_bytes;
	uint8_t handle[WFS_UNDO_HANDLE_MAX];
	/* since the last fsync (u->lock): the first entry must be durable,
	 * and so must any that saves bytes the fsync made durable that no
	 * durable entry saved yet */
	bool fresh_sync;
	off_t synced_size;
	struct {
		off_t lo, hi;
	} touched[TOUCHED];
	unsigned ntouched;
};

void wfs__undo_sum(const uint8_t *hdr, const uint8_t *saved, size_t n, uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, hdr + 8, WFS_UNDO_SUM - 8);
	crypto_generichash_update(&st, saved, n);
	crypto_generichash_final(&st, out, 32);
}

int wfs_undo_open(int dirfd, const char *name, struct wfs_undo **out)
{
	struct wfs_undo *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return -ENOMEM;
	u->fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (u->fd < 0) {
		int e = -errno;
		free(u);
		return e;
	}
	if (ftruncate(u->fd, 0) != 0) {
		int e = -errno;
		close(u->fd);
		free(u);
		return e;
	}
	pthread_mutex_init(&u->lock, NULL);
	*out = u;
	return 0;
}

void wfs_undo_close(struct wfs_undo *u)
{
	if (u == NULL)
		return;
	/* every write is durable once the file system is synced: the
	 * journal can go */
	if (syncfs(u->fd) == 0 && ftruncate(u->fd, 0) == 0)
		fsync(u->fd);
	close(u->fd);
	pthread_mutex_destroy(&u->lock);
	free(u->pins);
	free(u);
}

struct wfs_undo_file *wfs_undo_file_new(struct wfs_undo *u, int handle_type, const void *handle,
					unsigned handle_bytes, off_t size)
{
	struct wfs_undo_file *f;

	if (u == NULL || handle_bytes > WFS_UNDO_HANDLE_MAX || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->u = u;
	f->handle_type = handle_type;
	f->handle_bytes = handle_bytes;
	memcpy(f->handle, handle, handle_bytes);
	/* bytes that were there when the file was opened may be durable:
	 * an entry saving them is made durable too; a new file (size 0)
	 * has none, so writing it costs no fdatasync */
	f->synced_size = size;
	return f;
}

/* Clears the entry at off (u->lock held): it is no longer needed. */
static void clear_locked(struct wfs_undo *u, off_t off)
{
	static const uint8_t zero[8];

	if (pwrite(u->fd, zero, sizeof(zero), off) != (ssize_t)sizeof(zero)) {
		/* left as it is: replay only applies an entry while the file
		 * fails verification, newest first */
	}
	if (--u->live == 0) {
		u->tail = 0;
		u->npins = 0;
	}
}

void wfs_undo_file_free(struct wfs_undo_file *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->u->lock);
	for (size_t i = 0; i < f->u->npins; i++)
		if (f->u->pins[i].owner == f)
			f->u->pins[i].owner = NULL;
	pthread_mutex_unlock(&f->u->lock);
	free(f);
}

void wfs_undo_file_synced(struct wfs_undo_file *f, off_t cipher_size)
{
	struct wfs_undo *u;

	if (f == NULL)
		return;
	u = f->u;
	pthread_mutex_lock(&u->lock);
	for (size_t i = 0; i < u->npins;) {
		if (u->pins[i].owner != f) {
			i++;
			continue;
		}
		off_t off = u->pins[i].off;
		u->pins[i] = u->pins[--u->npins];
		clear_locked(u, off);
	}
	/* these clears reach the disk with the next durable entry, which
	 * the next write of this file makes (fresh_sync) */
	f->fresh_sync = true;
	f->synced_size = cipher_size;
	f->ntouched = 0;
	pthread_mutex_unlock(&u->lock);
}

/* Must an entry saving [lo, hi) be durable? (u->lock held) */
static bool needs_durable_locked(struct wfs_undo_file *f, off_t lo, off_t hi)
{
	if (f->fresh_sync)
		return true;
	if (hi > f->synced_size)
		hi = f->synced_size;
	if (lo >= hi)
		return false; /* only bytes written since the fsync */
	for (unsigned i = 0; i < f->ntouched; i++)
		if (f->touched[i].lo <= lo && hi <= f->touched[i].hi)
			return false; /* saved durably since the fsync */
	return true;
}

static void note_touched_locked(struct wfs_undo_file *f, off_t lo, off_t hi)
{
	for (unsigned i = 0; i < f->ntouched; i++)
		if (lo <= f->touched[i].hi && f->touched[i].lo <= hi) {
			if (lo < f->touched[i].lo)
				f->touched[i].lo = lo;
			if (hi > f->touched[i].hi)
				f->touched[i].hi = hi;
			return;
		}
	unsigned i = f->ntouched < TOUCHED ? f->ntouched++ : (unsigned)(lo % TOUCHED);
	f->touched[i].lo = lo;
	f->touched[i].hi = hi;
}

/* Checkpoint (u->lock held): the journal grew long with entries pinned by
 * files not synced since. After syncfs every write is durable, so the
 * pinned entries are cleared and made durable as cleared. */
static void checkpoint_locked(struct wfs_undo *u)
{
	if (u->npins == 0 || syncfs(u->fd) != 0)
		return;
	while (u->npins > 0)
		clear_locked(u, u->pins[--u->npins].off);
	fdatasync(u->fd);
}

static int add_pin_locked(struct wfs_undo *u, struct wfs_undo_file *f, off_t off)
{
	if (u->npins == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 64;
		struct pin *p = realloc(u->pins, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		u->pins = p;
		u->cap = cap;
	}
	u->pins[u->npins].off = off;
	u->pins[u->npins++].owner = f;
	return 0;
}

int wfs__undo_begin(struct wfs_undo_file *f, int fd, const struct wfs_file_hdr *h, off_t at,
		    size_t len, off_t old_size, struct wfs__undo_ticket *t)
{
	struct wfs_undo *u;
	size_t saved = 0;
	uint8_t *e;
	bool durable;
	int r;

	t->off = -1;
	if (f == NULL)
		return 0;
	u = f->u;
	if (at < old_size)
		saved = (size_t)(old_size - at) < len ? (size_t)(old_size - at) : len;
	if ((e = calloc(1, (size_t)wfs__undo_entry_len(saved))) == NULL)
		return -ENOMEM;
	ssize_t got = wfs__pread_full(fd, e + WFS_UNDO_HDR, saved, at);
	if (got < 0) {
		free(e);
		return (int)got;
	}
	saved = (size_t)got;
	wfs__put_le64(e + 16, (uint64_t)old_size);
	wfs__put_le64(e + 24, (uint64_t)at);
	wfs__put_le32(e + 32, (uint32_t)saved);
	wfs__put_le32(e + 36, (uint32_t)f->handle_type);
	wfs__put_le32(e + 40, f->handle_bytes);
	memcpy(e + 44, h->file_id, WFS_FILE_ID_LEN);
	memcpy(e + 64, f->handle, f->handle_bytes);

	pthread_mutex_lock(&u->lock);
	if (u->tail > CHECKPOINT)
		checkpoint_locked(u);
	wfs__put_le64(e + 8, ++u->seq);
	wfs__undo_sum(e, e + WFS_UNDO_HDR, saved, e + WFS_UNDO_SUM);
	memcpy(e, WFS_UNDO_MAGIC, 8);
	t->off = u->tail;
	u->tail += wfs__undo_entry_len(saved);
	u->live++;
	durable = needs_durable_locked(f, at, at + (off_t)saved);
	if (durable && (r = add_pin_locked(u, f, t->off)) != 0) {
		clear_locked(u, t->off);
		pthread_mutex_unlock(&u->lock);
		free(e);
		return r;
	}
	if (durable) {
		f->fresh_sync = false;
		note_touched_locked(f, at, at + (off_t)saved);
	}
	pthread_mutex_unlock(&u->lock);

	ssize_t w = wfs__pwrite_full(u->fd, e, (size_t)wfs__undo_entry_len(saved), t->off);
	free(e);
	if (w >= 0 && durable && fdatasync(u->fd) != 0)
		w = -errno;
	if (w < 0) {
		/* the write must not happen without its entry */
		pthread_mutex_lock(&u->lock);
		if (durable)
			for (size_t i = 0; i < u->npins; i++)
				if (u->pins[i].off == t->off) {
					u->pins[i] = u->pins[--u->npins];
					break;
				}
		clear_locked(u, t->off);
		pthread_mutex_unlock(&u->lock);
		t->off = -1;
		return (int)w;
	}
	t->pinned = durable;
	return 0;
}

void wfs__undo_end(struct wfs_undo_file *f, const struct wfs__undo_ticket *t)
{
	if (f == NULL || t->off < 0 || t->pinned)
		return; /* a pinned entry waits for the file's next fsync */
	pthread_mutex_lock(&f->u->lock);
	clear_locked(f->u, t->off);
	pthread_mutex_unlock(&f->u->lock);
}
