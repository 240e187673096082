/*
 * fs.h - the daemon's core types: the filesystem object, its inodes and
 * its open files. Each service declares its functions in a header of its
 * own (inode.h, file_open.h, ...); the handlers (ops_*.c) include those
 * they use. Shared by the daemon's .c files only.
 *
 * Lock order (outer to inner; docs/design.md has it with the rest):
 * fs.keys_lock (held for reading by every operation that may use the
 * keys, from its top; keys_lock.c) before all the others, then
 * fs.tree_lock -> wfs_inode.open_lock -> fs.policy_lock, and
 * wfs_inode.open_lock -> fs.table_lock -> fs.fd_lock, and
 * wfs_inode.open_lock -> wfs_inode.io_lock (a truncate that gives an empty
 * sensitive file its header) -> stream.lock, and wfs_inode.open_lock ->
 * the holders' lock (file_fd.c), and fs.streams_lock -> fs.fd_lock.
 * io_lock guards I/O on encrypted files and is never held while taking
 * open_lock, table_lock or fd_lock.
 */
#ifndef WARDFS_FS_H
#define WARDFS_FS_H

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "audit.h"
#include "crypto.h"
#include "policy.h"
#include "procinfo.h"
#include "wardfs_daemon.h"

#define WFS_HANDLE_MAX 40 /* bytes of f_handle; ext4/xfs/btrfs/tmpfs fit */
#include "wardfs_paths.h" /* WFS_VAULT_DIR, shared with the CLI and vault/ */

/* How an open regular file's data is served. */
enum wfs_serve {
	WFS_SERVE_PASSTHROUGH, /* kernel does I/O on the backing file */
	WFS_SERVE_FORWARD,     /* daemon forwards plaintext I/O */
	WFS_SERVE_ENCRYPTED,   /* daemon encrypts/decrypts */
};

/*
 * One backing inode known to the kernel. Identified by a file handle, not an
 * fd, so the number of known inodes is not bounded by the fd limit; an
 * O_PATH fd is cached for recently used inodes (fs.fd_lru).
 */
struct wfs_inode {
	struct wfs_fs *fs; /* the filesystem it belongs to */

	/* table (table_lock) */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;
	struct wfs_inode *hnext; /* hash chain, or fs.stale when !hashed */
	bool hashed;		 /* false: its number now names another file */
	mode_t type;		 /* S_IFMT bits, fixed */

	/* identity */
	unsigned handle_type, handle_bytes;
	unsigned char handle[WFS_HANDLE_MAX];

	/* cached O_PATH fd (fd_lock) */
	int fd;
	int fd_users;
	struct wfs_inode *lru_prev, *lru_next;

	/* name used for policy paths (table_lock): parent and last name, and
	 * the name on disk (bname: name itself, or in name's allocation
	 * after it when the vault encrypts or escapes it; names.c) */
	struct wfs_inode *parent;
	char *name;
	const char *bname;

	/* a directory's id for encrypted names (names.c): set once, under
	 * fs.names_lock, then read without it once dirid_state says so */
	_Atomic int dirid_state;
	uint8_t dirid[WFS_DIRID_LEN];
	atomic_bool names_logged; /* a listing said it skipped names here */

	/* form on disk of a regular file: enum wfs_form, or -1 not yet known */
	_Atomic int form;

	/* classification cache (open_lock) */
	unsigned cls_gen;
	struct wfs_decision dec;

	/* open state (open_lock) */
	pthread_mutex_t open_lock;
	int opens;
	int backing_id; /* passthrough id shared by all opens, 0 if none */
	enum wfs_serve serve;
	struct wfs_file_hdr hdr; /* WFS_SERVE_ENCRYPTED */
	_Atomic int enc_opens;	 /* opens served encrypted, read without open_lock (lock) */
	/* its undo journal state, made once (wfs_inode_undo) */
	_Atomic(struct wfs_undo_file *) undo;

	/* serializes read-modify-write on encrypted files */
	pthread_rwlock_t io_lock;
	/* odd while the bytes of an encrypted file change (stream.c) */
	atomic_uint_fast64_t data_gen;

	/* backing bytes written in one run, not yet sent to disk (wb_lock) */
	pthread_mutex_t wb_lock;
	off_t wb_start, wb_end;
};

/* One open file (fuse_file_info.fh). */
struct wfs_file {
	int fd;	 /* -1 for a passthrough open once answered (file_fd.c) */
	int acc; /* its access mode (O_RDONLY, O_RDWR) when fd is -1 */
	enum wfs_serve serve;
	struct wfs_inode *inode;
	/* encrypted: how far reads ran in order, and their stream (stream.c) */
	_Atomic(off_t) seq_end, seq_run;
	_Atomic(struct wfs_stream *) stream;
	bool no_stream; /* one could not be started (streams_lock) */
	bool held;	/* counted against uid (wfs_file_hold) */
	uid_t uid;
};

/* The request kinds the daemon counts (reqcount.c), one per handler. */
enum wfs_req {
	WFS_REQ_LOOKUP,
	WFS_REQ_FORGET,
	WFS_REQ_FORGET_MULTI,
	WFS_REQ_GETATTR,
	WFS_REQ_SETATTR,
	WFS_REQ_READLINK,
	WFS_REQ_MKNOD,
	WFS_REQ_MKDIR,
	WFS_REQ_UNLINK,
	WFS_REQ_RMDIR,
	WFS_REQ_SYMLINK,
	WFS_REQ_RENAME,
	WFS_REQ_LINK,
	WFS_REQ_OPEN,
	WFS_REQ_READ,
	WFS_REQ_WRITE,
	WFS_REQ_FLUSH,
	WFS_REQ_RELEASE,
	WFS_REQ_FSYNC,
	WFS_REQ_OPENDIR,
	WFS_REQ_READDIR,
	WFS_REQ_READDIRPLUS,
	WFS_REQ_RELEASEDIR,
	WFS_REQ_FSYNCDIR,
	WFS_REQ_STATFS,
	WFS_REQ_SETXATTR,
	WFS_REQ_GETXATTR,
	WFS_REQ_LISTXATTR,
	WFS_REQ_REMOVEXATTR,
	WFS_REQ_CREATE,
	WFS_REQ_FALLOCATE,
	WFS_REQ_LSEEK,
	WFS_REQ_TMPFILE,
	WFS_REQ_N
};

struct wfs_fs {
	struct wfs_daemon_opts *o;
	struct fuse_session *se;
	int root_fd;  /* backing root, O_PATH */
	int mount_fd; /* backing root, O_RDONLY: open_by_handle_at ignores O_PATH fds */
	struct wfs_inode root;
	dev_t root_dev;

	pthread_mutex_t table_lock;
	struct wfs_inode **buckets;
	struct wfs_inode *stale; /* entries of files whose number was reused */
	size_t nbuckets, ninodes;

	pthread_mutex_t fd_lock;
	struct wfs_inode lru; /* sentinel: lru.next = most recent */
	int nfds, max_fds;
	unsigned max_held; /* daemon-held opens per user (file_fd.c); 0 = no limit */

	atomic_bool passthrough; /* negotiated and working; workers clear it */
	atomic_bool passthrough_warned;
	double timeout;
	/* The kernel takes ENOSYS to OPENDIR for "no opendir, no releasedir"
	 * (FUSE_NO_OPENDIR_SUPPORT; set at INIT, read-only afterwards, atomic
	 * since INIT and the first readers meet only through the kernel):
	 * readdir then comes without a handle (ops_dir.c). */
	atomic_bool no_opendir;

	/* policy (policy_lock guards the pointer; readers take a ref by gen) */
	pthread_rwlock_t policy_lock;
	/* A directory's rename checks every file below it keeps its class
	 * (rename_class.c), then moves it: held for writing across both, so
	 * that no file is created (or linked, or renamed) into the tree in
	 * between under the class of its old place (issue 15.7). Everything
	 * that gives a directory a new file holds it for reading from the
	 * classification to the new name. Prefers writers: creates never
	 * starve a rename. Never taken twice by one thread. */
	pthread_rwlock_t tree_lock;
	struct wfs_policy *policy;
	atomic_uint policy_gen;
	char policy_error[512];
	int64_t policy_loaded_ns;
	unsigned policy_reloads; /* attempts after the first load (policy_lock) */

	/* The vault encrypts the names of sensitive paths (names.c; fixed at
	 * mount, from its keyfile's authenticated flags). names_lock orders
	 * the reads and makes of directory ids (a leaf lock). */
	bool names;
	pthread_mutex_t names_lock;

	/* The vault's keys, NULL when it has none or is locked (keys_lock.c).
	 * Read only between wfs_keys_hold and wfs_keys_release: lock and
	 * unlock change it under keys_lock, taken before any other lock. */
	struct wfs_keys *keys;
	pthread_rwlock_t keys_lock;
	atomic_bool locked;		    /* `wardfs lock`: keys wiped until unlock */
	uint8_t key_id[WFS_MASTER_KEY_LEN]; /* wfs_keys_id of the vault's key */
	struct wfs_undo *undo;		    /* BACKING/.wardfs/undo, with keys */
	struct wfs_audit *audit;
	atomic_uint_fast64_t integrity_errors;
	/* READ/WRITE requests the daemon served itself (passthrough: none) */
	atomic_uint_fast64_t reads_served, writes_served;
	/* READ requests of encrypted files opened from a stream's ring */
	atomic_uint_fast64_t reads_streamed;
	/* opens of files whose form disagrees with their class (a policy
	 * change not yet followed by `wardfs migrate`) */
	atomic_uint_fast64_t form_disagrees;
	/* requests that reached each handler, and those of them that came
	 * through io_uring (reqcount.c) */
	atomic_uint_fast64_t req_count[WFS_REQ_N];
	atomic_uint_fast64_t req_uring;
	atomic_bool uring_seen; /* any request came through io_uring */
	/* --io-uring: why it is not used ("" while it may be; uring.c) */
	char uring_off[256];

	/* callers' programs and names (procinfo.c) */
	struct wfs_procinfo_cache *procs;
	/* daemon-held opens per user (file_fd.c) */
	struct wfs_holders *holders;
	/* read-ahead streams running (stream.c; streams_lock) */
	pthread_mutex_t streams_lock;
	int nstreams;
	/* each worker's I/O buffer (ops_data.c) */
	pthread_key_t io_buf_key;
	bool io_buf_key_made;
	pthread_mutex_t io_bufs_lock; /* every worker's buffer, for a lock's wipe */
	struct wfs_io_buf *io_bufs;
	/* names of conversions in progress (rename_convert.c) */
	atomic_uint convert_seq;

	/* the policy watcher (policy_watch.c). watcher_stop is set by the
	 * main thread at the end and read by the watcher: a plain flag would
	 * be a data race, and the compiler may hoist its load. */
	pthread_t watcher;
	atomic_bool watcher_stop;
	bool watching;

	/* the first error of the mount, told to `wardfs mount` (session.c) */
	char first_error[1024];
};

/* fs.c: made per mount (o->keys become the filesystem's), and unmade
 * with everything it owns: inodes, undo journal, policy, keys (wiped),
 * the vault's lock. The audit and the session are the session's. */
struct wfs_fs *wfs_fs_new(struct wfs_daemon_opts *o);
void wfs_fs_free(struct wfs_fs *fs);

/* A request's filesystem: the session's userdata (passthrough_ll's
 * lo_data). There is no process-wide one. */
static inline struct wfs_fs *wfs_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A local freed when it goes out of scope: a path in a handler with many
 * replies. */
static inline void wfs_freep(void *p)
{
	free(*(void **)p);
}
#define WFS_AUTOFREE __attribute__((cleanup(wfs_freep)))

/*
 * Every change of an encrypted file's bytes goes between these two: they
 * take n->io_lock exclusively and keep n->data_gen odd meanwhile, so that
 * ciphertext read ahead without the lock (stream.c) is known to be stale.
 */
static inline void wfs_io_change_begin(struct wfs_inode *n)
{
	pthread_rwlock_wrlock(&n->io_lock);
	atomic_fetch_add(&n->data_gen, 1);
}

static inline void wfs_io_change_end(struct wfs_inode *n)
{
	atomic_fetch_add(&n->data_gen, 1);
	pthread_rwlock_unlock(&n->io_lock);
}

/*
 * With n->io_lock held shared, before stored bytes [lo, hi) of an
 * encrypted file are read: if a redo entry still holds some of them
 * (crypto/undo.c), they are written in place first, as a change, so that
 * ciphertext read ahead before is known to be stale. Returns with the lock
 * held shared again; 0 or -errno.
 */
static inline int wfs_io_settle(struct wfs_inode *n, off_t lo, off_t hi)
{
	int r = 0;

	while (r == 0 && wfs_undo_file_pending(atomic_load(&n->undo), lo, hi)) {
		pthread_rwlock_unlock(&n->io_lock);
		wfs_io_change_begin(n);
		r = wfs_undo_file_settle(atomic_load(&n->undo), lo, hi);
		wfs_io_change_end(n);
		pthread_rwlock_rdlock(&n->io_lock);
	}
	return r;
}

/* Writes what redo entries hold of n in place, durably (its fsync, its
 * last close). Only a write in place needs the readers kept out. */
static inline int wfs_io_flush(struct wfs_inode *n)
{
	int r;

	if (!wfs_undo_file_pending(atomic_load(&n->undo), 0, INT64_MAX))
		return wfs_undo_file_flush(atomic_load(&n->undo));
	wfs_io_change_begin(n);
	r = wfs_undo_file_flush(atomic_load(&n->undo));
	wfs_io_change_end(n);
	return r;
}

#endif
