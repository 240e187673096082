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
 * Redo entries: that fdatasync before each write is paid by every write
 * that lands on bytes an fsync made durable, which is each write of a
 * random overwrite after one (a database's pages, a disk image): 4 KiB
 * random writes ran at a quarter of gocryptfs's rate. A write of whole
 * blocks inside such bytes (wfs__undo_redo) therefore does not touch the
 * file at all: its new blocks go to a redo entry, and the write is done.
 * The entries wait (pending, kept in memory too) until a full batch
 * (REDO_BUDGET bytes), or anything that reads or changes bytes a pending
 * entry covers, applies them (apply_batch_locked): the journal is made
 * durable, the blocks are written in place (in file order, each block
 * once) and an *applied* mark follows the batch in the journal. The file
 * is not made durable there: the entries stay, pinned, until it is (its
 * fsync, a flush, a checkpoint's syncfs), as its kernel writeback may
 * still tear a block a power cut interrupts. One fdatasync per batch of
 * about a thousand writes instead of one per write (docs/benchmarks.md).
 * wfs_undo_file_flush (fsync, last close, truncate, hole punch) makes the
 * file durable and clears its entries, durably. Mount (undo_replay.c)
 * applies a file's live redo entries oldest first, before any undo: one
 * with no mark after it unconditionally (a killed daemon's acknowledged
 * write, kept only in the journal); one marked applied only over a block
 * that fails authentication, so newer bytes are never overwritten. A mark
 * lost to a power cut leaves its entries unconditional, which is safe
 * because nothing makes newer bytes durable before the journal is synced
 * again (every durable entry, the next batch, the fsync that clears them).
 *
 * Lock order: callers serialize writes per file (the daemon's io_lock);
 * f->lock (pending redo) before u->lock; u->lock is taken last and held
 * across no I/O but the journal's own writes to the page cache (entries
 * are written under it, in order, and cleared under it) and a
 * checkpoint's syncfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_internal.h"

/* a journal this long with entries still pinned: sync and start over.
 * Applied redo batches of a file written at random and never synced pin
 * about 4 MiB each; each checkpoint's syncfs cost about 0.15 s here
 * whatever it wrote, which every 64 MiB took 10 % off such writes */
#define CHECKPOINT ((off_t)256 << 20)
#define TOUCHED	   8
/* pending redo entries of a file before it is flushed: about 1,000 blocks */
#define REDO_BUDGET ((size_t)4 << 20)
#define PBUF_SIZE   (REDO_BUDGET + (size_t)wfs__undo_entry_len(WFS_REDO_MAX))

struct pin {
	off_t off;
	struct wfs_undo_file *owner; /* NULL once the file is forgotten */
};

struct wfs_undo {
	int fd;
	pthread_mutex_t lock;
	off_t tail;
	uint64_t seq;
	unsigned live;	    /* entries written and not cleared */
	unsigned redo_live; /* of them, redo entries not yet flushed */
	off_t next_checkpoint;
	struct pin *pins;
	size_t npins, cap;
};

/* a pending redo entry */
struct redo {
	off_t at, joff;	  /* cipher offset; the entry's offset in the journal */
	size_t len, boff; /* cipher bytes; where the entry is in pbuf */
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
	/* redo entries not yet written in place (f->lock), oldest first;
	 * the entries themselves, as written to the journal, back to back
	 * in pbuf (pend_bytes used): the flush writes from there */
	pthread_mutex_t lock;
	struct redo *pend;
	size_t npend, cap, pend_bytes;
	uint8_t *pbuf;
	atomic_size_t npend_now; /* npend, read without the lock */
	int fd;			 /* the file, for the flush: a dup while npend > 0 or applied */
	/* entries applied in place and pinned until the file is durable
	 * (set and cleared under u->lock; read without it too) */
	atomic_bool applied;
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
	u->next_checkpoint = CHECKPOINT;
	*out = u;
	return 0;
}

void wfs_undo_close(struct wfs_undo *u)
{
	if (u == NULL)
		return;
	/* every write is durable once the file system is synced: the
	 * journal can go, unless a redo entry a flush failed to write in
	 * place is still in it (the next mount will) */
	if (syncfs(u->fd) == 0 && u->redo_live == 0 && ftruncate(u->fd, 0) == 0)
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
	f->fd = -1;
	pthread_mutex_init(&f->lock, NULL);
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
		u->next_checkpoint = CHECKPOINT;
	}
}

void wfs_undo_file_free(struct wfs_undo_file *f)
{
	if (f == NULL)
		return;
	/* nobody reads the file through this state any more, but a later
	 * open must find the blocks in place; if that fails, mount will */
	wfs_undo_file_flush(f);
	if (f->fd >= 0)
		close(f->fd);
	free(f->pbuf);
	free(f->pend);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_lock(&f->u->lock);
	for (size_t i = 0; i < f->u->npins; i++)
		if (f->u->pins[i].owner == f)
			f->u->pins[i].owner = NULL;
	pthread_mutex_unlock(&f->u->lock);
	free(f);
}

static bool empty_locked(struct wfs_undo *u);

static int pin_cmp(const void *pa, const void *pb)
{
	const struct pin *a = pa, *b = pb;

	return (a->off > b->off) - (a->off < b->off);
}

/* Clears the pinned entries of f (of every file when f is NULL; u->lock
 * held) in journal order, oldest first: a daemon killed in the middle
 * leaves the newest of them live, with the applied marks after them, so
 * replay never meets an older entry of a block whose newer one is gone,
 * nor an applied entry whose mark is. */
static void clear_pins_locked(struct wfs_undo *u, struct wfs_undo_file *f)
{
	size_t n = u->npins, k = 0;

	qsort(u->pins, n, sizeof(*u->pins), pin_cmp);
	for (size_t i = 0; i < n; i++)
		if (f == NULL || u->pins[i].owner == f)
			clear_locked(u, u->pins[i].off);
		else
			u->pins[k++] = u->pins[i];
	u->npins = k;
}

/* No entry of f's is needed until it writes again (u->lock held). */
static void forget_state_locked(struct wfs_undo_file *f)
{
	f->fresh_sync = true;
	f->ntouched = 0;
	atomic_store(&f->applied, false);
}

/* The file is durable as it is (u->lock held): its pinned entries go.
 * Returns whether applied redo entries were among them: their clearing
 * must be made durable before the caller says the file is. */
static bool synced_locked(struct wfs_undo_file *f, off_t cipher_size)
{
	struct wfs_undo *u = f->u;
	bool applied = atomic_load(&f->applied);
	size_t mine = 0;

	for (size_t i = 0; i < u->npins; i++)
		mine += u->pins[i].owner == f;
	/* every live entry f's: one stop mark clears them all at once */
	if (mine > 0 && (mine != u->live || !empty_locked(u)))
		clear_pins_locked(u, f);
	/* undo entries' clears reach the disk with the next durable entry,
	 * which the next write of this file makes (fresh_sync) */
	forget_state_locked(f);
	f->synced_size = cipher_size;
	return applied;
}

/* The file is durable as it is: its pinned entries go, and applied redo
 * entries go durably (an applied entry left in the journal unmarked by a
 * power cut would be replayed over whatever the file holds). */
static int synced(struct wfs_undo_file *f, off_t cipher_size)
{
	bool applied;

	pthread_mutex_lock(&f->u->lock);
	applied = synced_locked(f, cipher_size);
	pthread_mutex_unlock(&f->u->lock);
	return applied && fdatasync(f->u->fd) != 0 ? -errno : 0;
}

void wfs_undo_file_synced(struct wfs_undo_file *f, off_t cipher_size)
{
	if (f != NULL)
		synced(f, cipher_size);
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
 * files not synced since (applied redo batches of a file that is written
 * and never synced, above all). After syncfs every write is durable, so
 * the pinned entries are cleared and made durable as cleared, and their
 * files start over as after an fsync: the next entry that saves their
 * bytes is durable again. The tail goes back to 0 only when no entry is
 * live, and a file's pending redo entries wait for its own flush: the
 * next checkpoint is another CHECKPOINT on. */
static void checkpoint_locked(struct wfs_undo *u)
{
	u->next_checkpoint = u->tail + CHECKPOINT;
	if (u->npins == 0 || syncfs(u->fd) != 0)
		return;
	for (size_t i = 0; i < u->npins; i++)
		if (u->pins[i].owner != NULL)
			forget_state_locked(u->pins[i].owner);
	if (u->live != u->npins || !empty_locked(u))
		clear_pins_locked(u, NULL);
	fdatasync(u->fd);
}

/* Room for n more pins (u->lock held). */
static int reserve_pins_locked(struct wfs_undo *u, size_t n)
{
	if (u->npins + n > u->cap) {
		size_t cap = u->cap ? u->cap : 64;
		while (cap < u->npins + n)
			cap *= 2;
		struct pin *p = realloc(u->pins, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		u->pins = p;
		u->cap = cap;
	}
	return 0;
}

static int add_pin_locked(struct wfs_undo *u, struct wfs_undo_file *f, off_t off)
{
	int r = reserve_pins_locked(u, 1);

	if (r != 0)
		return r;
	u->pins[u->npins].off = off;
	u->pins[u->npins++].owner = f;
	return 0;
}

/* An entry's header for [at, at + n) of f's file (the n bytes follow it
 * at e + WFS_UNDO_HDR), all but its sequence number, sum and magic. */
static void entry_fill(uint8_t *e, const struct wfs_undo_file *f, const struct wfs_file_hdr *h,
		       off_t size, off_t at, size_t n)
{
	wfs__put_le64(e + 16, (uint64_t)size);
	wfs__put_le64(e + 24, (uint64_t)at);
	wfs__put_le32(e + 32, (uint32_t)n);
	wfs__put_le32(e + 36, (uint32_t)f->handle_type);
	wfs__put_le32(e + 40, f->handle_bytes);
	memcpy(e + 44, h->file_id, WFS_FILE_ID_LEN);
	memcpy(e + 64, f->handle, f->handle_bytes);
}

/* Seals entry e (n bytes after its header) and gives it its place at the
 * tail (u->lock held): its offset in the journal. The caller writes it
 * before it lets go of the lock: entries reach the journal in the order
 * of their places, so a killed daemon never leaves a gap (an entry placed
 * and not yet written) with acknowledged entries after it, which would
 * end the replay's reading before them. */
static off_t entry_place_locked(struct wfs_undo *u, uint8_t *e, size_t n, const char *magic)
{
	off_t off;

	if (u->tail > u->next_checkpoint)
		checkpoint_locked(u);
	wfs__put_le64(e + 8, ++u->seq);
	wfs__undo_sum(e, e + WFS_UNDO_HDR, n, e + WFS_UNDO_SUM);
	memcpy(e, magic, 8);
	off = u->tail;
	u->tail += wfs__undo_entry_len(n);
	u->live++;
	return off;
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
	entry_fill(e, f, h, old_size, at, saved);

	pthread_mutex_lock(&u->lock);
	t->off = entry_place_locked(u, e, saved, WFS_UNDO_MAGIC);
	ssize_t w = wfs__pwrite_full(u->fd, e, (size_t)wfs__undo_entry_len(saved), t->off);
	durable = needs_durable_locked(f, at, at + (off_t)saved);
	if (w >= 0 && durable && (r = add_pin_locked(u, f, t->off)) != 0)
		w = r;
	else if (w >= 0 && durable) {
		f->fresh_sync = false;
		note_touched_locked(f, at, at + (off_t)saved);
	}
	pthread_mutex_unlock(&u->lock);
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

/* Does a pending redo entry of f lie in [lo, hi)? (f->lock held) */
static bool overlaps_locked(const struct wfs_undo_file *f, off_t lo, off_t hi)
{
	for (size_t i = 0; i < f->npend; i++)
		if (f->pend[i].at < hi && lo < f->pend[i].at + (off_t)f->pend[i].len)
			return true;
	return false;
}

bool wfs_undo_file_pending(struct wfs_undo_file *f, off_t lo, off_t hi)
{
	bool r;

	if (f == NULL || atomic_load(&f->npend_now) == 0)
		return false;
	pthread_mutex_lock(&f->lock);
	r = overlaps_locked(f, lo, hi);
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* The journal is emptied by a flush (u->lock held): every live entry is
 * f's, and all are cleared at once by a sequence number of 0 in the first
 * entry, where a reader stops (one small write to make durable, where
 * clearing each entry would dirty a page of the journal per entry). */
static bool empty_locked(struct wfs_undo *u)
{
	static const uint8_t stop[16];

	if (pwrite(u->fd, stop, sizeof(stop), 0) != (ssize_t)sizeof(stop))
		return false;
	u->live = 0;
	u->redo_live = 0;
	u->tail = 0;
	u->npins = 0;
	u->next_checkpoint = CHECKPOINT;
	return true;
}

/* A block of a pending redo entry, in the order the flush writes it. */
struct blk {
	off_t at;	  /* its cipher offset */
	const uint8_t *b; /* its sealed bytes, in pbuf */
	size_t seq;	  /* its place in the batch: the newest copy wins */
};

static int blk_cmp(const void *pa, const void *pb)
{
	const struct blk *a = pa, *b = pb;

	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Writes the batch's blocks in place (f->lock held) in file order, each
 * block once (its newest copy), adjacent ones in one pwritev: a batch that
 * rewrites a block (a database's hot page) or a run writes it once, and
 * in an order the disk likes. */
static int apply_locked(struct wfs_undo_file *f)
{
	struct iovec iov[64];
	struct blk *v;
	size_t nb = 0, k = 0;
	int r = 0;

	for (size_t i = 0; i < f->npend; i++)
		nb += f->pend[i].len / WFS_CBLOCK_SIZE;
	if ((v = malloc(nb * sizeof(*v))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < f->npend; i++)
		for (size_t j = 0; j < f->pend[i].len / WFS_CBLOCK_SIZE; j++, k++) {
			v[k].at = f->pend[i].at + (off_t)(j * WFS_CBLOCK_SIZE);
			v[k].b = f->pbuf + f->pend[i].boff + WFS_UNDO_HDR + j * WFS_CBLOCK_SIZE;
			v[k].seq = k;
		}
	qsort(v, nb, sizeof(*v), blk_cmp);
	for (size_t i = 0; i < nb && r == 0;) {
		off_t start = v[i].at, next = start;
		int n = 0;

		while (i < nb && n < 64 && v[i].at == next) {
			while (i + 1 < nb && v[i + 1].at == v[i].at)
				i++; /* older copies of the block */
			iov[n].iov_base = (void *)v[i].b;
			iov[n++].iov_len = WFS_CBLOCK_SIZE;
			next += (off_t)WFS_CBLOCK_SIZE;
			i++;
		}
		r = wfs__pwritev_full(f->fd, iov, n, start);
	}
	free(v);
	return r;
}

/* Pins the entry at off for f, as applied (u->lock held, room reserved:
 * add_pin_locked cannot fail). */
static void pin_applied_locked(struct wfs_undo_file *f, off_t off)
{
	(void)add_pin_locked(f->u, f, off);
	atomic_store(&f->applied, true);
}

/* Writes f's pending redo entries in place (f->lock held, apply_locked's
 * order), after the journal that holds them is durable, and marks them
 * applied: pinned until the file is durable (the top of the file). If the
 * mark cannot be written, the file is made durable and the entries
 * cleared instead, as an unmarked entry must not outlive the next change.
 * On an error before that they stay pending, for the next flush or the
 * mount. */
static int apply_batch_locked(struct wfs_undo_file *f)
{
	struct wfs_undo *u = f->u;
	uint8_t m[WFS_UNDO_HDR];
	off_t moff;
	int r;

	if (f->npend == 0)
		return 0;
	if (fdatasync(u->fd) != 0)
		return -errno;
	if ((r = apply_locked(f)) < 0)
		return r;
	/* the mark: the header of the batch's first entry (f's handle and
	 * file id), holding no bytes, no size, no offset */
	memcpy(m, f->pbuf, sizeof(m));
	wfs__put_le64(m + 16, 0);
	wfs__put_le64(m + 24, 0);
	wfs__put_le32(m + 32, 0);
	pthread_mutex_lock(&u->lock);
	moff = entry_place_locked(u, m, 0, WFS_APPLIED_MAGIC);
	r = reserve_pins_locked(u, f->npend + 1);
	if (r == 0 && wfs__pwrite_full(u->fd, m, WFS_UNDO_HDR, moff) < 0)
		r = -EIO;
	pthread_mutex_unlock(&u->lock);
	if (r != 0 && fdatasync(f->fd) != 0) {
		r = -errno;
		pthread_mutex_lock(&u->lock);
		clear_locked(u, moff);
		pthread_mutex_unlock(&u->lock);
		return r;
	}
	pthread_mutex_lock(&u->lock);
	if (r == 0)
		pin_applied_locked(f, moff);
	else
		clear_locked(u, moff);
	for (size_t i = 0; i < f->npend; i++)
		if (r == 0)
			pin_applied_locked(f, f->pend[i].joff);
		else
			clear_locked(u, f->pend[i].joff);
	u->redo_live -= (unsigned)f->npend;
	pthread_mutex_unlock(&u->lock);
	f->npend = 0;
	f->pend_bytes = 0;
	atomic_store(&f->npend_now, 0);
	free(f->pbuf);
	f->pbuf = NULL;
	if (r != 0 && fdatasync(u->fd) != 0)
		return -errno;
	return 0;
}

/* Makes f durable and clears its entries, durably (f->lock held): after
 * this a stale entry can never be applied over newer bytes, whatever
 * happens to the file. */
static int flush_locked(struct wfs_undo_file *f)
{
	struct stat st;
	int r;

	if ((r = apply_batch_locked(f)) < 0)
		return r;
	if (atomic_load(&f->applied)) {
		/* that fdatasync makes every earlier write of the file durable */
		if (fdatasync(f->fd) != 0 || fstat(f->fd, &st) != 0)
			return -errno;
		if ((r = synced(f, st.st_size)) < 0)
			return r;
	}
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	return 0;
}

int wfs_undo_file_settle(struct wfs_undo_file *f, off_t lo, off_t hi)
{
	int r = 0;

	if (f == NULL || atomic_load(&f->npend_now) == 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (overlaps_locked(f, lo, hi))
		r = apply_batch_locked(f);
	pthread_mutex_unlock(&f->lock);
	return r;
}

int wfs_undo_file_flush(struct wfs_undo_file *f)
{
	int r;

	if (f == NULL || (atomic_load(&f->npend_now) == 0 && !atomic_load(&f->applied)))
		return 0;
	pthread_mutex_lock(&f->lock);
	r = flush_locked(f);
	pthread_mutex_unlock(&f->lock);
	return r;
}

int wfs__undo_redo(struct wfs_undo_file *f, int fd, const struct wfs_file_hdr *h,
		   const uint8_t *cipher, size_t n, off_t at, off_t size)
{
	struct wfs_undo *u;
	uint8_t *e;
	bool durable, retried = false;
	int r = 0;

	if (f == NULL || n > WFS_REDO_MAX)
		return 1;
	u = f->u;
	pthread_mutex_lock(&u->lock);
	durable = needs_durable_locked(f, at, at + (off_t)n);
	pthread_mutex_unlock(&u->lock);
	if (!durable)
		return 1; /* an undo entry costs no fdatasync here */
	pthread_mutex_lock(&f->lock);
again:
	if (f->pend_bytes + n > REDO_BUDGET && (r = apply_batch_locked(f)) < 0)
		goto out;
	if (f->pbuf == NULL && (f->pbuf = malloc(PBUF_SIZE)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	e = f->pbuf + f->pend_bytes;
	memset(e, 0, (size_t)wfs__undo_entry_len(n));
	memcpy(e + WFS_UNDO_HDR, cipher, n);
	entry_fill(e, f, h, size, at, n);
	if (f->npend == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 32;
		struct redo *p = realloc(f->pend, cap * sizeof(*p));
		if (p == NULL) {
			r = -ENOMEM;
			goto out;
		}
		f->pend = p;
		f->cap = cap;
	}
	if (f->fd < 0 && (f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		r = -errno;
		goto out;
	}
	pthread_mutex_lock(&u->lock);
	off_t joff = entry_place_locked(u, e, n, WFS_REDO_MAGIC);
	u->redo_live++;
	ssize_t w = wfs__pwrite_full(u->fd, e, (size_t)wfs__undo_entry_len(n), joff);
	pthread_mutex_unlock(&u->lock);
	if (w < 0) {
		pthread_mutex_lock(&u->lock);
		clear_locked(u, joff);
		u->redo_live--;
		pthread_mutex_unlock(&u->lock);
		if (w == -ENOSPC && !retried) {
			/* applied entries waiting for a sync filled the disk
			 * (the write itself needs no room): the file's pending
			 * ones join them, a checkpoint syncs and clears them all,
			 * and the journal starts over where it has room */
			retried = true;
			if ((r = apply_batch_locked(f)) < 0)
				goto out;
			pthread_mutex_lock(&u->lock);
			checkpoint_locked(u);
			pthread_mutex_unlock(&u->lock);
			goto again;
		}
		r = (int)w;
		goto out;
	}
	f->pend[f->npend].at = at;
	f->pend[f->npend].joff = joff;
	f->pend[f->npend].boff = f->pend_bytes;
	f->pend[f->npend++].len = n;
	f->pend_bytes += (size_t)wfs__undo_entry_len(n);
	atomic_store(&f->npend_now, f->npend);
	if (f->npend % 64 == 0) /* the flush's fdatasync of the journal waits for less */
		sync_file_range(u->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
out:
	if (f->npend == 0 && !atomic_load(&f->applied) && f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}
