/*
 * fs.h - internal state of the wardfs daemon: the filesystem, its inode
 * table and per-open handles. Shared by the daemon's .c files only.
 *
 * Lock order (outer to inner): fs.tree_lock -> wfs_inode.open_lock ->
 * fs.policy_lock, and wfs_inode.open_lock -> fs.table_lock ->
 * fs.fd_lock, and wfs_inode.open_lock -> wfs_inode.io_lock (a truncate
 * that gives an empty sensitive file its header). io_lock guards I/O on
 * encrypted files and is never held while taking open_lock, table_lock or
 * fd_lock.
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

	/* name used for policy paths (table_lock): parent and last name */
	struct wfs_inode *parent;
	char *name;

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

	struct wfs_keys *keys;
	struct wfs_undo *undo; /* BACKING/.wardfs/undo, with keys */
	struct wfs_audit *audit;
	atomic_uint_fast64_t integrity_errors;
	/* READ/WRITE requests the daemon served itself (passthrough: none) */
	atomic_uint_fast64_t reads_served, writes_served;
	/* READ requests of encrypted files opened from a stream's ring */
	atomic_uint_fast64_t reads_streamed;
	/* opens of files whose form disagrees with their class (a policy
	 * change not yet followed by `wardfs migrate`) */
	atomic_uint_fast64_t form_disagrees;
};

extern struct wfs_fs wfs;

/* inode.c */
int wfs_table_init(struct wfs_fs *fs);
void wfs_table_destroy(struct wfs_fs *fs);
struct wfs_inode *wfs_inode_get(fuse_ino_t ino);
fuse_ino_t wfs_inode_ino(struct wfs_inode *n);
/* Looks up or creates the inode for name in parent; fills *st. Takes one
 * lookup reference. Returns 0 or -errno. */
int wfs_inode_lookup(struct wfs_inode *parent, const char *name, struct stat *st,
		     struct wfs_inode **out);
void wfs_inode_forget(struct wfs_inode *n, uint64_t nlookup);
/* Returns an O_PATH fd for n (cached) or -errno; pair with wfs_inode_put_fd. */
int wfs_inode_fd(struct wfs_inode *n);
void wfs_inode_put_fd(struct wfs_inode *n);
/* stat(2) of n by its parent and name; -ESTALE etc. when that misses. */
int wfs_inode_stat_by_name(struct wfs_inode *n, struct stat *st);
/* parent/name, which led to the file st describes (stat before the
 * removal), was removed: the entry forgets that name if the file has
 * others, and drops its cached fd if that was its last. */
/* n's backing file was replaced under its name by another (a converting
 * rename): n forgets its name, so requests on it get ESTALE and the kernel
 * looks the name up again; its cached fd is closed. */
void wfs_inode_unname(struct wfs_inode *n);
void wfs_inode_name_removed(struct wfs_inode *parent, const char *name, const struct stat *st);
/* After an open failed with err: closes idle cached fds if err is EMFILE
 * or ENFILE; true when it freed any (try again). Logs when it cannot. */
bool wfs_fds_reclaim(int err);
/* Opens the backing object with real flags (not O_PATH). */
int wfs_inode_open(struct wfs_inode *n, int flags);
/* Moves n's policy name after a rename. */
void wfs_inode_rename(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname);
/* The path of n relative to the mount root ("/a/b"), malloc'd into *out
 * (the caller frees it): 0, -ENOENT when a name on the way was removed, or
 * -ENOMEM. No PATH_MAX: a path may be as deep as the kernel lets a
 * program reach by relative names (issue 16). */
int wfs_inode_path(struct wfs_inode *n, char **out);
int wfs_child_path(struct wfs_inode *parent, const char *name, char **out);

/* A local freed when it goes out of scope: a path in a handler with many
 * replies. */
static inline void wfs_freep(void *p)
{
	free(*(void **)p);
}
#define WFS_AUTOFREE __attribute__((cleanup(wfs_freep)))

/* creds.c: act as the calling user for object creation, with the
 * caller's umask (this thread's only, until restore). */
struct wfs_creds {
	uid_t uid;
	gid_t gid;
	bool switched;
	bool masked; /* the thread's umask is the request's */
};
int wfs_creds_become(fuse_req_t req, struct wfs_creds *c);
void wfs_creds_restore(struct wfs_creds *c);
/* Data writes as the writer (creds.c's comment: space, ext4's reserve and
 * quotas): fsuid becomes the caller's, or fd's owner's for root's and the
 * kernel's requests, until write_end with what begin returned. */
uid_t wfs_creds_write_begin(fuse_req_t req, int fd);
void wfs_creds_write_end(uid_t was);
/* fuse_passthrough_open as fd's owner: the kernel keeps these credentials
 * for every passthrough read and write of the file. */
int wfs_creds_passthrough_open(fuse_req_t req, int fd);
/* Gives up every capability the daemon does not use (CAP_SYS_RESOURCE
 * first), from all sets and the bounding set; before any thread starts. */
int wfs_creds_drop_unused(void);

/* rename_class.c: 0 when n moved to newparent/newname keeps the class of
 * every file it holds, -EXDEV when not (so mv copies into the new form). */
int wfs_rename_keeps_class(struct wfs_inode *n, struct wfs_inode *newparent, const char *newname);

/* rename_convert.c: a rename of a regular file to a path of another class
 * that sheds nothing, done by converting it into the new path's form. 0
 * when done (n has lost its name: the kernel looks it up again), 1 when
 * the file is in that form already (rename it as usual), -EXDEV when it
 * may not be converted, -errno. */
#define WFS_CONVERT_MAX ((off_t)64 << 20)
int wfs_rename_convert(struct wfs_inode *parent, const char *name, struct wfs_inode *n,
		       struct wfs_inode *np, const char *newname, unsigned flags);
/* Removes what a crash left of conversions in BACKING/.wardfs. */
void wfs_rename_convert_cleanup(int vault_dirfd);

/* audit_lineage.c: at mount, a chain-break row when the vault's audit
 * database is not the one it wrote to before; records the one in use. */
void wfs_audit_lineage_check(const char *db_path);

/* log.c: from now on, each line on stderr gets a timestamp and the mount */
void wfs_log_start(const char *mount);

/* policy_watch.c: reloads on SIGHUP and on changes to the policy's sources */
void wfs_policy_watch_start(void);
void wfs_policy_watch_stop(void);

/* classify.c */
void wfs_classify(struct wfs_inode *n, const char *relpath, struct wfs_decision *out);
void wfs_classify_path(const char *relpath, struct wfs_decision *out);
/* Whether two paths decide alike under one policy: a reload between two
 * classifications must not make a same-directory rename look like a class
 * change. */
bool wfs_paths_decide_alike(const char *a, const char *b);
/* Whether every path below a decides as the same path below b, by the
 * policy alone (wfs_policy_subtrees_alike): no walk needed. */
bool wfs_subtrees_decide_alike(const char *a, const char *b);
void wfs_classify_paths(const char *a, const char *b, struct wfs_decision *da,
			struct wfs_decision *db);
int wfs_policy_reload(bool initial);
void wfs_policy_status(char *buf, size_t len);

/* access.c: the open-time decision and its audit record */
struct wfs_open_ctx {
	const char *path;
	int flags;
	bool create;
	struct wfs_decision dec;
	const char *form;
	uid_t caller_uid;
	gid_t caller_gid;
	pid_t caller_pid;
	bool have_proc;
	struct wfs_procinfo proc;
	/* audit detail: an allow-exe= decision's program identity and reason */
	char detail[192];
	/* a change other than an open (changes.c), or WFS_AUDIT_OPEN */
	enum wfs_audit_kind kind;
	const char *change_detail; /* e.g. a rename's new path */
};
/* 0, or -EACCES when the class or the rule's options refuse the caller. */
int wfs_access_check(fuse_req_t req, struct wfs_open_ctx *c);
/* Records the open with its outcome; -EACCES when the row cannot be kept
 * and the audit fails closed. */
int wfs_access_record(struct wfs_open_ctx *c, int err);
void wfs_audit_integrity(struct wfs_inode *n, const char *what);

/*
 * changes.c: changes of files that are not opens. A deny path refuses
 * every change of its content and xattrs (truncate, setxattr,
 * removexattr), as do the options of a rule that would refuse the caller
 * a write-open; every change of a sensitive or deny file is an audit row,
 * refused ones included. Between begin (0 or -EACCES, already recorded)
 * and end (records the outcome) the handler makes the change.
 */
struct wfs_change {
	struct wfs_open_ctx c;
	char *path; /* freed by wfs_change_end */
	bool audited;
};
/* Of the file n, or (n NULL) of name in parent. */
int wfs_change_begin(fuse_req_t req, struct wfs_change *ch, enum wfs_audit_kind kind,
		     struct wfs_inode *n, struct wfs_inode *parent, const char *name,
		     const char *detail);
void wfs_change_end(struct wfs_change *ch, int err);
void wfs_policy_free_retired(void);

/* ops_*.c */
void wfs_fill_ops(struct fuse_lowlevel_ops *ops);
int wfs_getattr_fd(struct wfs_inode *n, int fd, struct stat *st);
int wfs_stat_inode(struct wfs_inode *n, struct stat *st);
/* Shows an encrypted file's plaintext size in *st (its form, not class). */
void wfs_show_plain_size(struct wfs_inode *n, struct stat *st);
void wfs_fill_entry(struct fuse_entry_param *e, struct wfs_inode *n, const struct stat *st);

/* file data paths */
int wfs_file_open(fuse_req_t req, struct wfs_inode *n, int fd, struct fuse_file_info *fi,
		  bool created, const struct wfs_decision *dec, const char **form);
/* Makes empty file fd (inode n, sensitive) encrypted: writes a fresh header
 * into the file and n->hdr. The caller keeps other opens from racing it
 * (open_lock or io_lock). Returns 0 or -errno. */
int wfs_file_begin_encrypted(struct wfs_inode *n, int fd);
/* Gives h (n's header, just read or written) n's undo journal state, made
 * on first use. */
void wfs_inode_undo(struct wfs_inode *n, struct wfs_file_hdr *h, off_t cipher_size);

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

/* file_fd.c: a passthrough open gives up its fd before it is answered;
 * requests that need one borrow it (by handle) between get and put. */
void wfs_file_shed_fd(struct wfs_file *f);
/* Counts an open that keeps a daemon fd against its user (not root):
 * -EMFILE beyond wfs.max_held; unhold when it closes (file_fd.c). */
int wfs_file_hold(struct wfs_file *f, uid_t uid);
void wfs_file_unhold(struct wfs_file *f);
int wfs_file_get_fd(struct wfs_file *f); /* fd or -errno */
void wfs_file_put_fd(struct wfs_file *f, int fd);

/* stream.c: read-ahead of encrypted files read in order. */
struct wfs_stream;
/* Opens [off, off + size) from f's ring: bytes, -EIO, or -EAGAIN when the
 * ring does not hold it. Called with n->io_lock held shared. */
ssize_t wfs_stream_read(struct wfs_stream *s, char *buf, size_t size, off_t off);
/* Notes a served read of f (missed: not from the ring): starts f's stream
 * once reads run in order, and moves it to where they went. */
void wfs_stream_note(struct wfs_file *f, off_t off, size_t size, bool missed);
/* Ends f's stream, if any: at release. */
void wfs_stream_stop(struct wfs_file *f);

/* writebehind.c: the daemon wrote backing bytes [start, end) of n through
 * fd; starts their writeback once a contiguous run is long enough. */
void wfs_write_behind(struct wfs_inode *n, int fd, off_t start, off_t end);

/* readahead.c: once the kernel has answered INIT, raises the mount's
 * readahead to 1 MiB (a detached thread; failures are logged). */
void wfs_readahead_raise_async(const char *mountpoint);

/* The handlers, by file: each ops_*.c fills in its share of the table
 * (session.c puts it together). */
void wfs_fill_entry_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_dir_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_file_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_data_ops(struct fuse_lowlevel_ops *ops);
void wfs_fill_xattr_ops(struct fuse_lowlevel_ops *ops);
/* ops_file.c: creates a regular file as the caller, in the form its class
 * requires; create replies with an open file, mknod (reply_entry) with
 * the entry. */
void wfs_create_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi, bool reply_entry);

#endif
