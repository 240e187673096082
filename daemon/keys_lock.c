/*
 * keys_lock.c - `wardfs lock` and `wardfs unlock` of a running mount: the
 * keys leave the daemon (wiped, with every thread's key schedules and
 * plaintext buffers, and the kernel's cached pages of encrypted files) and
 * come back, while public files go on being served.
 *
 * Every use of fs->keys happens between wfs_keys_hold and
 * wfs_keys_release, which share keys_lock; lock and unlock take it
 * exclusively, so they wait for the operations in flight and no operation
 * sees half a change. keys_lock is taken at the top of an operation,
 * before any other lock of the daemon (fs.h), and prefers writers: a
 * stream of reads does not keep a lock out. A thread may hold it again
 * (a per-thread count), which a writer-preferring lock would otherwise
 * deadlock on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"
#include "io_buf.h"
#include "procinfo.h"
#include "keys_lock.h"

#define NOTE_MAX 200 /* the unlock's note (which slot), in the audit row */

static __thread unsigned held; /* this thread's holds of keys_lock */

int wfs_fs_keys_init(struct wfs_fs *fs)
{
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int r = -pthread_rwlock_init(&fs->keys_lock, &a);
	pthread_rwlockattr_destroy(&a);
	if (!r && fs->keys)
		r = wfs_keys_id(fs->keys, fs->key_id);
	return r;
}

void wfs_fs_keys_destroy(struct wfs_fs *fs)
{
	pthread_rwlock_destroy(&fs->keys_lock);
}

void wfs_keys_hold(struct wfs_fs *fs)
{
	if (held++ == 0)
		pthread_rwlock_rdlock(&fs->keys_lock);
}

void wfs_keys_release(struct wfs_fs *fs)
{
	if (--held == 0)
		pthread_rwlock_unlock(&fs->keys_lock);
}

/* The row of a lock or unlock: who asked, and what happened. */
static void record(fuse_req_t req, struct wfs_fs *fs, int err, const char *detail)
{
	if (!fs->audit)
		return;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct wfs_procinfo p;
	bool have = wfs_procinfo_get(fs->procs, ctx->pid, &p) == 0;
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_VAULT,
		.path = "/",
		.allowed = err == 0,
		.err = err,
		.uid = ctx->uid,
		.gid = ctx->gid,
		.pid = ctx->pid,
		.comm = have ? p.comm : NULL,
		.exe = have && p.exe[0] ? p.exe : NULL,
		.detail = detail,
	};
	wfs_audit_record(fs->audit, &ev);
}

/* The numbers of the inodes of encrypted files, open or with pages in the
 * kernel (the table may change after: a number whose inode went is
 * answered ENOENT by the kernel, which is fine). */
struct inos {
	fuse_ino_t *v;
	size_t n, cap;
};

static void add_encrypted(struct wfs_inode *i, void *arg)
{
	struct inos *s = arg;
	if (atomic_load(&i->form) != WFS_FORM_ENCRYPTED)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		fuse_ino_t *g = realloc(s->v, cap * sizeof *g);
		if (!g)
			return; /* those found so far */
		s->v = g;
		s->cap = cap;
	}
	s->v[s->n++] = wfs_inode_ino(i);
}

/* Drops the kernel's pages of every encrypted file (writing back the
 * dirty ones of shared mappings first: the kernel launders them). */
static void drop_pages(struct wfs_fs *fs)
{
	struct inos s = {0};
	wfs_table_each(fs, add_encrypted, &s);
	for (size_t i = 0; i < s.n; i++)
		(void)fuse_lowlevel_notify_inval_inode(fs->se, s.v[i], 0, 0);
	free(s.v);
}

static void count_open(struct wfs_inode *i, void *arg)
{
	*(size_t *)arg += atomic_load(&i->enc_opens) > 0;
}

int wfs_fs_lock_keys(fuse_req_t req, struct wfs_fs *fs)
{
	int r = 0;
	/* First while the keys are here: pages a program wrote through a
	 * shared mapping and the kernel has not sent yet are written now,
	 * encrypted, instead of failing after the wipe. */
	if (!atomic_load(&fs->locked))
		drop_pages(fs);
	pthread_rwlock_wrlock(&fs->keys_lock);
	if (atomic_load(&fs->locked))
		r = -EALREADY;
	else if (!fs->keys)
		r = -ENOKEY;
	if (!r) {
		atomic_store(&fs->locked, true);
		wfs_keys_free(fs->keys); /* wiped, with crypto's own threads */
		fs->keys = NULL;
		wfs_crypto_forget(); /* the workers' key schedules and scratch */
		wfs_io_bufs_wipe(fs);
	}
	pthread_rwlock_unlock(&fs->keys_lock);
	if (r)
		return r;
	/* Pages read since would still be served from the page cache: drop
	 * them again (after the unlock of keys_lock, so the reads the kernel
	 * sends meanwhile get their EIO instead of waiting on us). */
	drop_pages(fs);
	size_t files = 0;
	wfs_table_each(fs, count_open, &files);
	char detail[128];
	snprintf(detail, sizeof detail, "locked: keys wiped; %zu encrypted files open", files);
	record(req, fs, 0, detail);
	fprintf(stderr, "wardfs: %s\n", detail);
	return 0;
}

int wfs_fs_unlock_keys(fuse_req_t req, struct wfs_fs *fs, char *value, size_t size)
{
	struct wfs_keys *k = NULL;
	uint8_t id[WFS_MASTER_KEY_LEN];
	char note[NOTE_MAX + 1] = "", detail[NOTE_MAX + 64];
	int r = 0;
	if (size < WFS_MASTER_KEY_LEN) {
		r = -EINVAL;
		goto out;
	}
	size_t nl = size - WFS_MASTER_KEY_LEN < NOTE_MAX ? size - WFS_MASTER_KEY_LEN : NOTE_MAX;
	memcpy(note, value + WFS_MASTER_KEY_LEN, nl);
	for (size_t i = 0; i < nl; i++)
		if ((unsigned char)note[i] < 0x20 || note[i] == 0x7f)
			note[i] = '?'; /* one line in the row and the log */
	if ((r = wfs_keys_import((const uint8_t *)value, &k)) || (r = wfs_keys_id(k, id)))
		goto out;
	if (wfs_ct_compare(id, fs->key_id, sizeof id)) {
		r = -EKEYREJECTED;
		goto out;
	}
	if (wfs_keys_lock(k) < 0)
		fprintf(stderr, "wardfs: cannot lock the keys in memory: %s\n", strerror(errno));
	pthread_rwlock_wrlock(&fs->keys_lock);
	if (!atomic_load(&fs->locked)) {
		r = -EALREADY;
	} else {
		fs->keys = k;
		k = NULL;
		atomic_store(&fs->locked, false);
	}
	pthread_rwlock_unlock(&fs->keys_lock);
out:
	wfs_memzero(value, size); /* the request's buffer: the key was in it */
	wfs_keys_free(k);
	if (r == -EALREADY)
		return r;
	if (r == -EKEYREJECTED)
		snprintf(detail, sizeof detail, "unlock refused: not this vault's key%s%s",
			 note[0] ? "; " : "", note);
	else if (r)
		snprintf(detail, sizeof detail, "unlock failed: %s", strerror(-r));
	else
		snprintf(detail, sizeof detail, "unlocked%s%s", note[0] ? " with " : "", note);
	record(req, fs, -r, detail);
	fprintf(stderr, "wardfs: %s\n", detail);
	return r;
}

/* wfs_fs_open_sensitive's text, growing; failed once the memory ran out. */
struct open_list {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void add_open(struct wfs_inode *i, void *arg)
{
	struct open_list *o = arg;
	char *p = NULL;
	if (o->failed || atomic_load(&i->enc_opens) <= 0 || wfs_inode_path_locked(i, &p))
		return;
	size_t pl = strlen(p);
	if (o->len + pl + 2 > o->cap) {
		size_t cap = 2 * (o->len + pl + 2);
		char *g = realloc(o->buf, cap);
		if (!g) {
			o->failed = true;
			free(p);
			return;
		}
		o->buf = g;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, pl);
	o->len += pl;
	o->buf[o->len++] = '\n';
	o->buf[o->len] = 0;
	free(p);
}

ssize_t wfs_fs_open_sensitive(struct wfs_fs *fs, char **out)
{
	struct open_list o = {.buf = calloc(1, 256), .cap = 256};
	if (!o.buf)
		return -ENOMEM;
	wfs_table_each(fs, add_open, &o);
	if (o.failed) {
		free(o.buf);
		return -ENOMEM;
	}
	*out = o.buf;
	return (ssize_t)o.len;
}
