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

/* The inodes of encrypted files, open or with pages in the kernel: their
 * numbers in a malloc'd *out (the table may change after: a number whose
 * inode went is answered ENOENT by the kernel, which is fine). */
static size_t encrypted_inodes(struct wfs_fs *fs, fuse_ino_t **out)
{
	size_t n = 0, cap = 0;
	fuse_ino_t *v = NULL;
	pthread_mutex_lock(&fs->table_lock);
	for (size_t b = 0; b <= fs->nbuckets; b++) /* and the unhashed ones last */
		for (struct wfs_inode *i = b < fs->nbuckets ? fs->buckets[b] : fs->stale; i;
		     i = i->hnext) {
			if (atomic_load(&i->form) != WFS_FORM_ENCRYPTED)
				continue;
			if (n == cap) {
				fuse_ino_t *g = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
				if (!g)
					goto out;
				v = g;
			}
			v[n++] = wfs_inode_ino(i);
		}
out:
	pthread_mutex_unlock(&fs->table_lock);
	*out = v;
	return n;
}

/* Drops the kernel's pages of every encrypted file (writing back the
 * dirty ones of shared mappings first: the kernel launders them). */
static void drop_pages(struct wfs_fs *fs)
{
	fuse_ino_t *inos;
	size_t n = encrypted_inodes(fs, &inos);
	for (size_t i = 0; i < n; i++)
		(void)fuse_lowlevel_notify_inval_inode(fs->se, inos[i], 0, 0);
	free(inos);
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
	char *open = NULL;
	ssize_t len = wfs_fs_open_sensitive(fs, &open);
	size_t files = 0;
	for (ssize_t i = 0; i < len; i++)
		files += open[i] == '\n';
	free(open);
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

ssize_t wfs_fs_open_sensitive(struct wfs_fs *fs, char **out)
{
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	buf[0] = 0;
	pthread_mutex_lock(&fs->table_lock);
	for (size_t b = 0; b <= fs->nbuckets; b++)
		for (struct wfs_inode *i = b < fs->nbuckets ? fs->buckets[b] : fs->stale; i;
		     i = i->hnext) {
			char *p = NULL;
			if (atomic_load(&i->enc_opens) <= 0 || wfs_inode_path_locked(i, &p))
				continue;
			size_t pl = strlen(p);
			if (len + pl + 2 > cap) {
				char *g = realloc(buf, cap = 2 * (len + pl + 2));
				if (!g) {
					free(p);
					continue;
				}
				buf = g;
			}
			memcpy(buf + len, p, pl);
			len += pl;
			buf[len++] = '\n';
			buf[len] = 0;
			free(p);
		}
	pthread_mutex_unlock(&fs->table_lock);
	*out = buf;
	return (ssize_t)len;
}
