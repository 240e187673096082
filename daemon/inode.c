/*
 * inode.c - the inode table: backing inodes the kernel knows, hashed by
 * (st_dev, st_ino) and identified by their whole file handles.
 *
 * A home directory has far more files than the 20,000 fds a process may
 * hold, so an inode does not own an fd. It keeps a file handle
 * (name_to_handle_at) and reopens with open_by_handle_at when needed; a
 * bounded LRU of O_PATH fds keeps hot inodes cheap.
 *
 * Every inode except the root holds a reference on the parent it was last
 * reached through, so the policy path of any known inode can be rebuilt by
 * walking up (renames move the link; see wfs_inode_rename).
 *
 * (dev, ino) alone is not an identity: ext4 hands a freed inode number to
 * the next file created, often before the kernel's FORGET of the old file
 * reaches us. A lookup that met the old entry would lend the new file the
 * old one's handle (ESTALE at open), form and class. So an entry matches
 * only when its handle (which carries the inode generation) is the file's,
 * and an entry whose number was reused leaves the hash: the kernel may
 * still name it until it forgets it, and it then reads as the deleted file
 * it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_policy.h"
#include "inode.h"
#include "names.h"

struct handle_buf {
	struct file_handle fh;
	unsigned char bytes[WFS_HANDLE_MAX];
};

static size_t bucket_of(dev_t dev, ino_t ino, size_t n)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;
	return (size_t)(h ^ (h >> 29)) & (n - 1);
}

int wfs_table_init(struct wfs_fs *fs)
{
	fs->nbuckets = 1u << 16;
	/* an array of pointers: sizeof(pointer) is the element size */
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	if (!fs->buckets)
		return -ENOMEM;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	fs->lru.lru_next = fs->lru.lru_prev = &fs->lru;
	if (!fs->max_fds)
		fs->max_fds = 8192;
	pthread_mutex_init(&fs->root.open_lock, NULL);
	pthread_rwlock_init(&fs->root.io_lock, NULL);
	pthread_mutex_init(&fs->root.wb_lock, NULL);
	fs->root.fs = fs;
	fs->root.nlookup = 1;
	fs->root.fd = fs->root_fd;
	fs->root.type = S_IFDIR;
	return 0;
}

static void lru_unlink(struct wfs_inode *n)
{
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_next = n->lru_prev = NULL;
}

static void lru_push_front(struct wfs_fs *fs, struct wfs_inode *n)
{
	n->lru_next = fs->lru.lru_next;
	n->lru_prev = &fs->lru;
	fs->lru.lru_next->lru_prev = n;
	fs->lru.lru_next = n;
}

/*
 * Lock order: table_lock, then fd_lock. No fd is closed while either is
 * held: closing the last fd of an unlinked file makes the backing file
 * system free the inode there and then (tens of microseconds, a disk
 * write), and every lookup and open would wait for it.
 */

#define TRIM_MAX 8

struct closing {
	int fds[TRIM_MAX];
	int n;
};

static void close_all(struct closing *c)
{
	for (int i = 0; i < c->n; i++)
		close(c->fds[i]);
	c->n = 0;
}

/* Takes n's cached fd off the LRU and returns it for the caller to close
 * once it has dropped fd_lock, which it holds. */
static int take_fd_locked(struct wfs_fs *fs, struct wfs_inode *n)
{
	int fd = n->fd;
	lru_unlink(n);
	n->fd = -1;
	fs->nfds--;
	return fd;
}

/* Takes idle cached fds beyond the cap (at most TRIM_MAX a call; the cap is
 * soft) for the caller to close after dropping fd_lock, which it holds. */
static void lru_trim(struct wfs_fs *fs, struct closing *c)
{
	struct wfs_inode *n = fs->lru.lru_prev;
	while (fs->nfds > fs->max_fds && n != &fs->lru && c->n < TRIM_MAX) {
		struct wfs_inode *prev = n->lru_prev;
		if (n->fd_users == 0)
			c->fds[c->n++] = take_fd_locked(fs, n);
		n = prev;
	}
}

/*
 * The cached O_PATH fds only save reopening; the fds of open files and of
 * new files are what users wait on. When an open fails for want of fds,
 * the idle half of the cache is closed, and the caller tries again (true)
 * while that freed any. Out of fds with nothing left to free is logged,
 * at most once a minute: every user of the mount is failing then.
 */
bool wfs_fds_reclaim(struct wfs_fs *fs, int err)
{
	if (err != EMFILE && err != ENFILE)
		return false;
	int closed = 0, cached = 0;
	int saved = errno; /* the caller reports the open's own errno */
	for (;;) {
		struct closing c = {.n = 0};
		pthread_mutex_lock(&fs->fd_lock);
		cached = fs->nfds; /* for the message below: nfds is fd_lock's */
		int want = fs->nfds / 2;
		struct wfs_inode *n = fs->lru.lru_prev;
		while (n != &fs->lru && c.n < TRIM_MAX && closed + c.n < want) {
			struct wfs_inode *prev = n->lru_prev;
			if (n->fd_users == 0)
				c.fds[c.n++] = take_fd_locked(fs, n);
			n = prev;
		}
		pthread_mutex_unlock(&fs->fd_lock);
		closed += c.n;
		close_all(&c);
		if (c.n < TRIM_MAX)
			break;
	}
	if (closed == 0) {
		static _Atomic time_t last;
		time_t now = time(NULL), prev = atomic_load(&last);
		if (now - prev >= 60 && atomic_compare_exchange_strong(&last, &prev, now))
			fprintf(stderr,
				"wardfs: out of file descriptors (%s), with %d cached and none "
				"idle; opens and creates fail until files are closed\n",
				strerror(err), cached);
	}
	errno = saved;
	return closed > 0;
}

/* Caller holds no lock (see above). */
static void inode_free(struct wfs_fs *fs, struct wfs_inode *n)
{
	int fd = -1;
	pthread_mutex_lock(&fs->fd_lock);
	if (n->fd >= 0)
		fd = take_fd_locked(fs, n);
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd >= 0)
		close(fd);
	pthread_mutex_destroy(&n->open_lock);
	pthread_rwlock_destroy(&n->io_lock);
	pthread_mutex_destroy(&n->wb_lock);
	wfs_undo_file_free(atomic_load(&n->undo));
	wfs_decision_put(&n->dec);
	free(n->name);
	free(n);
}

static void free_chain(struct wfs_fs *fs, struct wfs_inode *n)
{
	while (n) {
		struct wfs_inode *next = n->hnext;
		inode_free(fs, n);
		n = next;
	}
}

void wfs_table_destroy(struct wfs_fs *fs)
{
	for (size_t i = 0; i < fs->nbuckets; i++)
		free_chain(fs, fs->buckets[i]);
	free_chain(fs, fs->stale);
	fs->stale = NULL;
	free(fs->buckets);
	fs->buckets = NULL;
	wfs_decision_put(&fs->root.dec);
}

void wfs_table_each(struct wfs_fs *fs, void (*fn)(struct wfs_inode *n, void *arg), void *arg)
{
	pthread_mutex_lock(&fs->table_lock);
	for (size_t b = 0; b <= fs->nbuckets; b++) /* and the unhashed ones last */
		for (struct wfs_inode *n = b < fs->nbuckets ? fs->buckets[b] : fs->stale; n;
		     n = n->hnext)
			fn(n, arg);
	pthread_mutex_unlock(&fs->table_lock);
}

struct wfs_inode *wfs_inode_get(struct wfs_fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	return (struct wfs_inode *)(uintptr_t)ino;
}

fuse_ino_t wfs_inode_ino(struct wfs_inode *n)
{
	struct wfs_fs *fs = n->fs;
	return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* Takes n off its chain: its hash bucket, or the list of stale entries. */
static void unchain_locked(struct wfs_fs *fs, struct wfs_inode *n)
{
	struct wfs_inode **pp =
		n->hashed ? &fs->buckets[bucket_of(n->dev, n->ino, fs->nbuckets)] : &fs->stale;
	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	n->hnext = NULL;
}

/* Moves n, whose inode number now names another file, to the stale list:
 * lookups no longer find it, and it is freed when the kernel forgets it. */
static void unhash_locked(struct wfs_fs *fs, struct wfs_inode *n)
{
	unchain_locked(fs, n);
	n->hashed = false;
	n->hnext = fs->stale;
	fs->stale = n;
}

/* Drops count references from n; an inode whose count reaches zero leaves
 * the table and drops its reference on its parent. nlookup counts both the
 * kernel's lookups and children linked below, since both keep it alive. */
static void unref_locked(struct wfs_fs *fs, struct wfs_inode *n, uint64_t count,
			 struct wfs_inode **freelist)
{
	while (n && n != &fs->root) {
		n->nlookup -= count;
		if (n->nlookup)
			return;
		unchain_locked(fs, n);
		fs->ninodes--;
		struct wfs_inode *parent = n->parent;
		n->hnext = *freelist;
		*freelist = n;
		n = parent;
		count = 1;
	}
}

void wfs_inode_forget(struct wfs_inode *n, uint64_t nlookup)
{
	struct wfs_fs *fs = n->fs;
	struct wfs_inode *freelist = NULL;
	pthread_mutex_lock(&fs->table_lock);
	unref_locked(fs, n, nlookup, &freelist);
	pthread_mutex_unlock(&fs->table_lock);
	free_chain(fs, freelist);
}

/* Points n at (parent, name), bname its name on disk (name itself when
 * they are the same); caller holds table_lock and frees what lands on
 * *freelist (an old parent nobody else holds) after dropping it. */
static int set_name_locked(struct wfs_inode *n, struct wfs_inode *parent, const char *name,
			   const char *bname, struct wfs_inode **freelist)
{
	struct wfs_fs *fs = n->fs;
	if (n->parent == parent && n->name && n->bname && !strcmp(n->name, name) &&
	    !strcmp(n->bname, bname))
		return 0;
	size_t nl = strlen(name) + 1, bl = strcmp(bname, name) ? strlen(bname) + 1 : 0;
	char *copy = malloc(nl + bl);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, nl);
	memcpy(copy + nl, bname, bl);
	struct wfs_inode *old = n->parent;
	if (parent != &fs->root)
		parent->nlookup++;
	n->parent = parent;
	free(n->name);
	n->name = copy;
	n->bname = bl ? copy + nl : copy;
	if (old && old != &fs->root)
		unref_locked(fs, old, 1, freelist);
	return 0;
}

void wfs_inode_rename(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname,
		      const char *newbname)
{
	struct wfs_fs *fs = n->fs;
	struct wfs_inode *freelist = NULL;
	pthread_mutex_lock(&fs->table_lock);
	set_name_locked(n, newparent, newname, newbname ? newbname : newname, &freelist);
	atomic_fetch_add(&fs->policy_gen, 1); /* paths under n changed */
	pthread_mutex_unlock(&fs->table_lock);
	free_chain(fs, freelist);
}

/* The entry of (dev, ino) in the hash: the newest file with that number. */
static struct wfs_inode *find_locked(struct wfs_fs *fs, dev_t dev, ino_t ino)
{
	struct wfs_inode *n = fs->buckets[bucket_of(dev, ino, fs->nbuckets)];
	while (n && !(n->ino == ino && n->dev == dev))
		n = n->hnext;
	return n;
}

static bool same_handle(const struct wfs_inode *n, const struct file_handle *fh)
{
	return n->handle_type == (unsigned)fh->handle_type && n->handle_bytes == fh->handle_bytes &&
	       memcmp(n->handle, fh->f_handle, fh->handle_bytes) == 0;
}

/*
 * The entry of the file st and fh describe, with one more lookup reference
 * and its name set to (parent, name); NULL when there is none. An entry
 * of an older file with the same number leaves the hash (see the top).
 */
static struct wfs_inode *take_known_locked(const struct stat *st, const struct file_handle *fh,
					   struct wfs_inode *parent, const char *name,
					   const char *bname, struct wfs_inode **freelist)
{
	struct wfs_fs *fs = parent->fs;
	struct wfs_inode *n = find_locked(fs, st->st_dev, st->st_ino);
	if (!n)
		return NULL;
	if (!same_handle(n, fh)) {
		unhash_locked(fs, n);
		return NULL;
	}
	n->nlookup++;
	set_name_locked(n, parent, name, bname, freelist);
	return n;
}

/* Gives a fresh O_PATH fd to n's cache, or closes it. */
static void adopt_fd(struct wfs_inode *n, int fd)
{
	struct wfs_fs *fs = n->fs;
	struct closing c = {.n = 0};
	pthread_mutex_lock(&fs->fd_lock);
	if (n->fd < 0) {
		n->fd = fd;
		lru_push_front(fs, n);
		fs->nfds++;
		lru_trim(fs, &c);
		fd = -1;
	}
	pthread_mutex_unlock(&fs->fd_lock);
	close_all(&c);
	if (fd >= 0)
		close(fd);
}

/* An O_PATH fd of name in parent (pfd), and its backing name in bname
 * (NULL: name itself): in a vault with encrypted names, the form the
 * name's class asks for, else the other one (names.c). -errno. */
static int open_entry(struct wfs_inode *parent, int pfd, const char *name, const char *bname,
		      struct wfs_bname *b, const char **used)
{
	struct wfs_fs *fs = parent->fs;
	int fd, r = 0;
	bool enc = false;
	*used = bname ? bname : name;
	if (fs->names && !bname) {
		r = wfs_bname_encrypted_by_policy(parent, name, &enc);
		if (r)
			return r;
		r = wfs_bname_form(parent, pfd, name, enc, b);
		*used = b->name;
	}
	if (!r) {
		do
			fd = openat(pfd, *used, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		while (fd < 0 && wfs_fds_reclaim(fs, errno));
		if (fd >= 0)
			return fd;
		r = -errno;
	}
	if (!fs->names || bname || (r != -ENOENT && r != -ENOKEY))
		return r;
	/* not there in its own form: the other, where a policy change left it */
	int ra = wfs_bname_form(parent, pfd, name, !enc, b);
	if (ra)
		return r;
	*used = b->name;
	fd = openat(pfd, *used, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : r;
}

int wfs_inode_lookup(struct wfs_inode *parent, const char *name, struct stat *st,
		     struct wfs_inode **out)
{
	return wfs_inode_lookup_at(parent, name, NULL, st, out);
}

int wfs_inode_lookup_at(struct wfs_inode *parent, const char *name, const char *bname,
			struct stat *st, struct wfs_inode **out)
{
	struct wfs_fs *fs = parent->fs;
	struct wfs_inode *freelist = NULL;
	struct handle_buf hb = {.fh.handle_bytes = WFS_HANDLE_MAX};
	int mount_id;
	int pfd = wfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	struct wfs_bname bn; /* bname may point into it */
	int fd = open_entry(parent, pfd, name, bname, &bn, &bname);
	int err = fd < 0 ? fd : 0;
	if (!err && (fstat(fd, st) < 0 ||
		     name_to_handle_at(fd, "", &hb.fh, &mount_id, AT_EMPTY_PATH) < 0)) {
		err = errno == EOVERFLOW ? -EOPNOTSUPP : -errno;
		close(fd);
	}
	if (err) {
		wfs_inode_put_fd(parent);
		return err;
	}

	pthread_mutex_lock(&fs->table_lock);
	struct wfs_inode *n = take_known_locked(st, &hb.fh, parent, name, bname, &freelist);
	pthread_mutex_unlock(&fs->table_lock);
	if (n) {
		wfs_inode_put_fd(parent);
		goto found;
	}

	/* Every regular file's form, whatever its class: stat, truncate and
	 * every open must treat a file as what it is on disk, also where a
	 * policy change made it disagree with its class. By name in the
	 * parent (one call): the kernel holds the parent's lock, so the name
	 * is still this file. An unreadable mark leaves the form unknown, and
	 * an open then fails with the mark's error. */
	enum wfs_form form;
	bool known = S_ISREG(st->st_mode) && wfs_form_of_at(pfd, bname, st->st_size, &form) >= 0;
	wfs_inode_put_fd(parent);

	n = calloc(1, sizeof(*n));
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n->fs = fs;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->handle_type = (unsigned)hb.fh.handle_type;
	n->handle_bytes = hb.fh.handle_bytes;
	memcpy(n->handle, hb.fh.f_handle, hb.fh.handle_bytes);
	n->fd = -1;
	n->nlookup = 1;
	n->cls_gen = (unsigned)-1;
	atomic_init(&n->form, known ? (int)form : -1);
	pthread_mutex_init(&n->open_lock, NULL);
	pthread_rwlock_init(&n->io_lock, NULL);
	pthread_mutex_init(&n->wb_lock, NULL);

	pthread_mutex_lock(&fs->table_lock);
	struct wfs_inode *raced = take_known_locked(st, &hb.fh, parent, name, bname, &freelist);
	if (raced) {
		pthread_mutex_unlock(&fs->table_lock);
		inode_free(fs, n);
		n = raced;
		goto found;
	}
	err = set_name_locked(n, parent, name, bname, &freelist);
	if (err) {
		pthread_mutex_unlock(&fs->table_lock);
		inode_free(fs, n);
		close(fd);
		return err;
	}
	size_t b = bucket_of(n->dev, n->ino, fs->nbuckets);
	n->hnext = fs->buckets[b];
	n->hashed = true;
	fs->buckets[b] = n;
	fs->ninodes++;
	pthread_mutex_unlock(&fs->table_lock);
found:
	free_chain(fs, freelist);
	adopt_fd(n, fd);
	*out = n;
	return 0;
}

static int open_handle(struct wfs_inode *n, int flags)
{
	struct wfs_fs *fs = n->fs;
	struct handle_buf hb;
	hb.fh.handle_bytes = n->handle_bytes;
	hb.fh.handle_type = (int)n->handle_type;
	memcpy(hb.fh.f_handle, n->handle, n->handle_bytes);
	int fd;
	do
		fd = open_by_handle_at(fs->mount_fd, &hb.fh, flags | O_CLOEXEC);
	while (fd < 0 && wfs_fds_reclaim(fs, errno));
	return fd < 0 ? -errno : fd;
}

int wfs_inode_fd(struct wfs_inode *n)
{
	struct wfs_fs *fs = n->fs;
	if (n == &fs->root)
		return fs->root_fd;
	pthread_mutex_lock(&fs->fd_lock);
	if (n->fd >= 0) {
		n->fd_users++;
		lru_unlink(n);
		lru_push_front(fs, n);
		int fd = n->fd;
		pthread_mutex_unlock(&fs->fd_lock);
		return fd;
	}
	pthread_mutex_unlock(&fs->fd_lock);

	int fd = open_handle(n, O_PATH);
	if (fd < 0)
		return fd;
	struct closing c = {.n = 0};
	pthread_mutex_lock(&fs->fd_lock);
	if (n->fd >= 0) {
		c.fds[c.n++] = fd; /* another thread cached one first */
	} else {
		n->fd = fd;
		lru_push_front(fs, n);
		fs->nfds++;
	}
	n->fd_users++;
	lru_trim(fs, &c);
	fd = n->fd;
	pthread_mutex_unlock(&fs->fd_lock);
	close_all(&c);
	return fd;
}

void wfs_inode_put_fd(struct wfs_inode *n)
{
	struct wfs_fs *fs = n->fs;
	if (n == &fs->root)
		return;
	struct closing c = {.n = 0};
	pthread_mutex_lock(&fs->fd_lock);
	n->fd_users--;
	if (fs->nfds > fs->max_fds)
		lru_trim(fs, &c);
	pthread_mutex_unlock(&fs->fd_lock);
	close_all(&c);
}

/* n's cached fd, taken for the caller to close once it drops its locks,
 * when no one is using it; else -1. */
static int take_idle_fd(struct wfs_inode *n)
{
	struct wfs_fs *fs = n->fs;
	int fd = -1;
	pthread_mutex_lock(&fs->fd_lock);
	if (n->fd >= 0 && n->fd_users == 0)
		fd = take_fd_locked(fs, n);
	pthread_mutex_unlock(&fs->fd_lock);
	return fd;
}

/*
 * parent/name, which led to the file (dev, ino), was removed (unlink,
 * rmdir, or a rename over it). nlink is the file's link count before.
 *
 * A file that keeps other names must not be judged or audited under the
 * removed one: its entry forgets the name, so the next open without a
 * fresh lookup is answered ESTALE and the kernel looks the path up again
 * (LOOKUP_REVAL), which gives the entry the name it was really opened by.
 * A file that lost its last name keeps it: it is the only name it had, and
 * a reopen through /proc/PID/fd is judged by it.
 *
 * Our cached O_PATH fd may also be the last reference to a file whose last
 * name went: its space is only freed when the fd is closed. Closing it
 * here, before the removal is answered, frees the space by the time
 * unlink(2) returns, as on ext4, instead of at the FORGET that follows.
 */
void wfs_inode_name_removed(struct wfs_inode *parent, const char *name, const struct stat *st)
{
	struct wfs_fs *fs = parent->fs;
	int fd = -1;
	bool last = !S_ISDIR(st->st_mode) && st->st_nlink <= 1;
	pthread_mutex_lock(&fs->table_lock);
	struct wfs_inode *n = find_locked(fs, st->st_dev, st->st_ino);
	if (n && !last && n->parent == parent && n->name && !strcmp(n->name, name)) {
		free(n->name);
		n->name = NULL;
		n->bname = NULL;
	}
	if (n && last)
		fd = take_idle_fd(n);
	pthread_mutex_unlock(&fs->table_lock);
	if (fd >= 0)
		close(fd);
}

void wfs_inode_unname(struct wfs_inode *n)
{
	struct wfs_fs *fs = n->fs;
	pthread_mutex_lock(&fs->table_lock);
	free(n->name);
	n->name = NULL;
	n->bname = NULL;
	int fd = take_idle_fd(n);
	pthread_mutex_unlock(&fs->table_lock);
	if (fd >= 0)
		close(fd);
}

/*
 * Without an fd of its own: stats n through its parent's (cached) fd and
 * its name, if the name still leads to n (a rename behind our back makes it
 * miss; the caller then opens n by handle). One fstatat instead of
 * open_by_handle_at + fstat + close: with more files than the fd cache
 * holds, every stat missed the cache.
 */
int wfs_inode_stat_by_name(struct wfs_inode *n, struct stat *st)
{
	struct wfs_fs *fs = n->fs;
	char name[NAME_MAX + 1];
	pthread_mutex_lock(&fs->table_lock);
	struct wfs_inode *parent = n->parent;
	if (!parent || !n->bname || strlen(n->bname) > NAME_MAX) {
		pthread_mutex_unlock(&fs->table_lock);
		return -ENOENT;
	}
	strcpy(name, n->bname);
	if (parent != &fs->root)
		parent->nlookup++; /* a rename of n cannot free it meanwhile */
	pthread_mutex_unlock(&fs->table_lock);

	int r = wfs_inode_fd(parent);
	if (r >= 0) {
		int pfd = r;
		if (fstatat(pfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		else
			r = st->st_dev == n->dev && st->st_ino == n->ino ? 0 : -ESTALE;
		wfs_inode_put_fd(parent);
	}
	if (parent != &fs->root)
		wfs_inode_forget(parent, 1);
	return r;
}

int wfs_inode_open(struct wfs_inode *n, int flags)
{
	struct wfs_fs *fs = n->fs;
	if (n == &fs->root) {
		int fd = openat(fs->root_fd, ".", flags | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	return open_handle(n, flags);
}

/* The path of n, then "/" and name when name is not NULL. Two passes under
 * table_lock: the length, then the bytes from the end backwards. */
static int path_locked(struct wfs_inode *n, const char *name, char **out)
{
	struct wfs_fs *fs = n->fs;
	size_t len = name ? 1 + strlen(name) : 0;
	for (struct wfs_inode *p = n; p && p != &fs->root; p = p->parent) {
		if (!p->name)
			return -ENOENT;
		len += 1 + strlen(p->name);
	}
	if (len == 0)
		len = 1; /* the root itself: "/" */
	char *buf = malloc(len + 1), *pos = buf + len;
	if (!buf)
		return -ENOMEM;
	*pos = '\0';
	if (name) {
		size_t l = strlen(name);
		pos -= l;
		memcpy(pos, name, l);
		*--pos = '/';
	}
	for (struct wfs_inode *p = n; p && p != &fs->root; p = p->parent) {
		size_t l = strlen(p->name);
		pos -= l;
		memcpy(pos, p->name, l);
		*--pos = '/';
	}
	if (pos > buf)
		*--pos = '/';
	*out = buf;
	return 0;
}

int wfs_inode_path_locked(struct wfs_inode *n, char **out)
{
	return path_locked(n, NULL, out);
}

int wfs_inode_path(struct wfs_inode *n, char **out)
{
	struct wfs_fs *fs = n->fs;
	pthread_mutex_lock(&fs->table_lock);
	int r = path_locked(n, NULL, out);
	pthread_mutex_unlock(&fs->table_lock);
	return r;
}

int wfs_child_path(struct wfs_inode *parent, const char *name, char **out)
{
	struct wfs_fs *fs = parent->fs;
	pthread_mutex_lock(&fs->table_lock);
	int r = path_locked(parent, name, out);
	pthread_mutex_unlock(&fs->table_lock);
	return r;
}
