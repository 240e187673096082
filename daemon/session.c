/*
 * session.c - the daemon's life: set up state, negotiate with the kernel,
 * mount, serve on a thread pool, reload the policy on SIGHUP or when the
 * file changes, and tear everything down (audit drained, keys wiped).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "fs_policy.h"
#include "io_buf.h"
#include "inode.h"
#include "lifecycle.h"
#include "ops.h"
#include "rename.h"
#include "reqcount.h"
#include "uring.h"

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct wfs_fs *fs = userdata;
	/* Passthrough and writeback cache exclude each other per connection
	 * (docs/design.md): never ask for writeback. */
	fuse_unset_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
	fs->passthrough = false;
	if (fs->o->passthrough) {
		if (fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH))
			fs->passthrough = true;
		else
			fprintf(stderr, "wardfs: the kernel offers no FUSE passthrough; "
					"serving public files through the daemon\n");
	}
	/*
	 * With handle_killpriv_v2 the kernel sets SB_NOSEC, so a write to a
	 * file without setuid bits stops asking for security.capability on
	 * every write (one GETXATTR per write(2) otherwise). The daemon then
	 * owns killing setuid/setgid: see kill_suid and setattr.
	 */
	fuse_set_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV_V2);
	/*
	 * POSIX ACLs: with FUSE_POSIX_ACL the kernel enforces them (it reads
	 * system.posix_acl_* through getxattr, caches them, and forgets them
	 * on its own setfacl and chmod); without it only the mode bits count
	 * and an ACL a user sets is stored but means nothing. The backing
	 * file system does the rest when the daemon forwards the xattr: it
	 * keeps the mode in sync with an access ACL, updates the ACL's mask
	 * on chmod, and gives new files their parent's default ACL. For the
	 * last, the umask must not be applied when the parent has a default
	 * ACL: FUSE_DONT_MASK leaves it to the daemon, which creates with the
	 * caller's umask (creds.c) so the backing file system decides.
	 */
	if (!fuse_set_feature_flag(conn, FUSE_CAP_POSIX_ACL))
		fprintf(stderr, "wardfs: the kernel offers no FUSE POSIX ACL support; "
				"ACLs are stored but only the mode bits are enforced\n");
	else if (!fuse_set_feature_flag(conn, FUSE_CAP_DONT_MASK))
		/* The kernel masks the mode itself: a new file's inherited
		 * default ACL is masked by the umask too. */
		fprintf(stderr, "wardfs: the kernel offers no FUSE_DONT_MASK; files created "
				"under a default ACL are also masked by the umask\n");
	fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS);
	fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	/*
	 * Directory handles cost two round trips per listing (OPENDIR and
	 * RELEASEDIR; every `git status` lists every directory) and carry
	 * nothing the daemon needs: an opendir is neither judged nor audited,
	 * and the kernel checks the caller's read permission itself. Where
	 * the kernel can do without them, the first OPENDIR answers ENOSYS
	 * and the kernel sends none again; it then keeps each directory's
	 * listing cached as it did with the handles' cache_readdir and
	 * keep_cache (its default for a handle it made itself), and readdir
	 * opens the directory per request (ops_dir.c).
	 */
	atomic_store(&fs->no_opendir, fuse_set_feature_flag(conn, FUSE_CAP_NO_OPENDIR_SUPPORT));
	fuse_set_feature_flag(conn, FUSE_CAP_PARALLEL_DIROPS);
	/*
	 * A symlink's target is fixed for the life of its inode (nothing
	 * rewrites one in place; a new target is a new symlink, a new
	 * inode): the kernel may keep it in the symlink's page cache instead
	 * of a READLINK round trip for every `ls -l` and every path walked
	 * through it (libraries' .so links, a venv's bin/python).
	 */
	fuse_set_feature_flag(conn, FUSE_CAP_CACHE_SYMLINKS);
	/*
	 * auto_inval_data drops a file's page cache whenever a GETATTR shows a
	 * new mtime, and our own writes through the mount make one: every
	 * block an encrypted file's writer just put in the cache was thrown
	 * away and decrypted again on the next read. Only the daemon writes
	 * the backing files of the files it serves from the cache (encrypted
	 * ones, opened with keep_cache; a second mount of a backing dir is
	 * refused), so nothing is lost by turning it off. Forwarded public
	 * files are opened without keep_cache and still see changes made
	 * behind the mount at their next open; passthrough files use the
	 * backing file's own cache.
	 */
	fuse_unset_feature_flag(conn, FUSE_CAP_AUTO_INVAL_DATA);
	fuse_unset_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS); /* kernel-local locks */
	fuse_unset_feature_flag(conn, FUSE_CAP_POSIX_LOCKS);
	wfs_uring_init(fs, conn);
	conn->max_write = WFS_MAX_IO;
	conn->max_readahead = WFS_MAX_IO;
	conn->time_gran = 1;
}

static void op_destroy(void *userdata)
{
	(void)userdata;
}

static void op_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode, struct fuse_file_info *fi)
{
	(void)parent;
	(void)mode;
	(void)fi;
	/* An anonymous file has no path to classify: refuse clearly. */
	fuse_reply_err(req, EOPNOTSUPP);
}

void wfs_fill_ops(struct fuse_lowlevel_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->init = op_init;
	ops->destroy = op_destroy;
	ops->tmpfile = op_tmpfile;
	wfs_fill_entry_ops(ops);
	wfs_fill_dir_ops(ops);
	wfs_fill_file_ops(ops);
	wfs_fill_data_ops(ops);
	wfs_fill_xattr_ops(ops);
	wfs_reqcount_wrap(ops);
}

/* ---- run ------------------------------------------------------------ */

static void report(struct wfs_fs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tell_parent(struct wfs_daemon_opts *o, const char *line)
{
	char buf[1100];
	if (o->ready_fd < 0)
		return;
	snprintf(buf, sizeof buf, "%s\n", line);
	if (write(o->ready_fd, buf, strlen(buf)) < 0) {
		/* the parent is gone; nothing more to tell */
	}
	close(o->ready_fd);
	o->ready_fd = -1;
}

static void report(struct wfs_fs *fs, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
	if (!strcmp(line, "ok"))
		tell_parent(fs->o, line);
	else if (!fs->first_error[0])
		snprintf(fs->first_error, sizeof fs->first_error, "%s", line);
}

/* Each write a crash cut short and the undo journal put back, or that it
 * finished (a redo entry): a row. */
static void undo_applied(void *arg, const char *path, bool redo, off_t at, size_t n, off_t size_was,
			 off_t size_now)
{
	struct wfs_fs *fs = arg;
	char detail[256];
	const char *rel = path;
	size_t bl = strlen(fs->o->backing);
	if (!strncmp(path, fs->o->backing, bl) && path[bl] == '/')
		rel = path + bl;
	if (redo)
		snprintf(detail, sizeof(detail),
			 "undo journal: a write the daemon had acknowledged was finished: "
			 "%zu bytes written at cipher offset %lld",
			 n, (long long)at);
	else
		snprintf(detail, sizeof(detail),
			 "undo journal: a write cut short by a crash was undone: %zu bytes put "
			 "back at cipher offset %lld, size %lld -> %lld",
			 n, (long long)at, (long long)size_was, (long long)size_now);
	fprintf(stderr, "wardfs: %s: %s\n", rel, detail);
	struct wfs_audit_event ev = {.kind = WFS_AUDIT_INTEGRITY,
				     .path = rel,
				     .form = "encrypted",
				     .allowed = true,
				     .detail = detail};
	wfs_audit_record(fs->audit, &ev);
}

/*
 * Puts back what the undo journal kept of writes a crash cut short (before
 * anything is served), then starts it afresh for this mount.
 */
static int start_undo(struct wfs_fs *fs, struct wfs_daemon_opts *o)
{
	int dfd = openat(fs->root_fd, ".wardfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	long r;
	if (dfd < 0) {
		report(fs, "wardfs: cannot open '%s/.wardfs': %s", o->backing, strerror(errno));
		return -1;
	}
	wfs_rename_convert_cleanup(dfd);
	r = wfs_undo_replay(fs->keys, dfd, "undo", fs->mount_fd, undo_applied, fs);
	if (r < 0) {
		report(fs, "wardfs: cannot replay the undo journal '%s/.wardfs/undo': %s",
		       o->backing, strerror((int)-r));
		close(dfd);
		return -1;
	}
	if ((r = wfs_undo_open(dfd, "undo", &fs->undo)) < 0)
		report(fs, "wardfs: cannot open the undo journal '%s/.wardfs/undo': %s", o->backing,
		       strerror((int)-r));
	close(dfd);
	return r < 0 ? -1 : 0;
}

/*
 * BACKING/.wardfs/running names the daemon serving the vault ("PID
 * MOUNTED_NS"); a clean end removes it. Found at the next mount (one
 * daemon per vault: the flock), it says the last daemon died: killed or
 * crashed, and its mount row tells the auditor (issue 16). Vaults without
 * a .wardfs (no keys) have none.
 */
#define RUNNING "running"

static void running_mark(struct wfs_fs *fs, char *unclean, size_t len)
{
	char buf[128];
	unclean[0] = '\0';
	int dfd = openat(fs->root_fd, WFS_VAULT_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return;
	int fd = openat(dfd, RUNNING, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		long pid = 0;
		long long ns = 0;
		buf[n > 0 ? n : 0] = '\0';
		char when[64] = "an unknown time";
		/* the daemon wrote both numbers */
		/* NOLINTNEXTLINE(cert-err34-c) */
		if (sscanf(buf, "%ld %lld", &pid, &ns) == 2)
			wfs_audit_format_time(ns, when, sizeof when);
		snprintf(unclean, len,
			 "; the previous mount (daemon pid %ld, mounted %s) did not end cleanly: "
			 "its daemon was killed or crashed",
			 pid, when);
		fprintf(stderr, "wardfs: warning: %s\n", unclean + 2);
	}
	fd = openat(dfd, RUNNING, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int n = snprintf(buf, sizeof buf, "%d %lld\n", (int)getpid(),
				 (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
		if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
			/* told nothing at the next mount; the mount still works */
		}
		close(fd);
	}
	close(dfd);
}

int wfs_daemon_run(struct wfs_daemon_opts *o)
{
	char unclean[256] = "";
	int ret = 1;
	struct fuse_session *se = NULL;
	bool mounted = false;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char *optstr = NULL;

	/* Keys live in this process: no core dumps, no ptrace by others. */
	prctl(PR_SET_DUMPABLE, 0);

	/* SIGHUP reloads the policy (the watcher thread waits for it) instead
	 * of ending the session: block it before any thread (the audit writer,
	 * FUSE workers) starts, so every thread inherits the mask. */
	sigset_t hup;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &hup, NULL);

	/*
	 * Creates apply the caller's umask (sent with each create, mkdir and
	 * mknod), never the daemon's own (the mounting shell's 022 would turn
	 * a 0664 the caller asked for into 0644): workers take the request's
	 * while they create (creds.c) and return to 0. The daemon's own files
	 * (audit db, key, journal) are created with explicit modes; the log
	 * is opened by the mount command.
	 */
	umask(0);

	wfs_log_start(o->mountpoint);
	struct wfs_fs *fs = wfs_fs_new(o);
	if (!fs) {
		wfs_keys_free(o->keys);
		o->keys = NULL;
		tell_parent(o, "wardfs: out of memory");
		return 1;
	}
	/* `wardfs mount` unlocked the keys before it forked us, and mlock(2)
	 * locks are not inherited: lock them again in the process that keeps
	 * them, or they could be swapped out. */
	if (fs->keys && wfs_keys_lock(fs->keys) < 0)
		fprintf(stderr, "wardfs: cannot lock the keys in memory: %s\n", strerror(errno));

	fs->root_fd = open(o->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0) {
		report(fs, "wardfs: cannot open backing directory '%s': %s", o->backing,
		       strerror(errno));
		goto out;
	}
	/* One daemon per backing directory. */
	int lockfd = open(o->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->mount_fd = lockfd;
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		report(fs, "wardfs: '%s' is already mounted by another wardfs; unmount it first",
		       o->backing);
		goto out;
	}
	struct stat rst;
	fstat(fs->root_fd, &rst);
	fs->root_dev = rst.st_dev;
	fs->root.dev = rst.st_dev;
	fs->root.ino = rst.st_ino;

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		/* Cache at most a third of the fd budget; open files need the rest. */
		fs->max_fds = rl.rlim_cur / 3 > 64 ? (int)(rl.rlim_cur / 3) : 64;
		/* half of all fds: one user holding files open leaves the other
		 * half to everyone else (file_fd.c) */
		fs->max_held = rl.rlim_cur / 2 > 64 ? (unsigned)(rl.rlim_cur / 2) : 64;
	}
	/* Before any thread starts, so that every one inherits the sets. */
	int dropped = geteuid() == 0 ? wfs_creds_drop_unused() : 0;
	if (dropped < 0)
		fprintf(stderr, "wardfs: cannot drop unused capabilities: %s\n",
			strerror(-dropped));
	if (wfs_table_init(fs) < 0) {
		report(fs, "wardfs: out of memory");
		goto out;
	}
	if (wfs_fs_reload_policy(fs, true) < 0) {
		report(fs, "wardfs: cannot load policy: %s", fs->policy_error);
		goto out;
	}
	if (o->audit_db) {
		char err[512];
		struct wfs_audit_opts ao = {
			.db_path = o->audit_db,
			.mount_id = o->mountpoint,
			.fail_open = o->audit_fail_open,
			.journal_kib = o->audit_journal_mib * 1024,
			.forward = o->audit_forward,
		};
		if (wfs_audit_open(&ao, &fs->audit, err, sizeof(err)) < 0) {
			report(fs, "wardfs: cannot open audit db '%s': %s", o->audit_db, err);
			goto out;
		}
		wfs_fs_check_audit_lineage(fs, o->audit_db);
		if (o->audit_seal_out) {
			int sr = wfs_audit_seal_at_mount(o->audit_db, o->audit_seal_out, err,
							 sizeof err);
			if (sr < 0) {
				report(fs, "wardfs: cannot seal audit db '%s': %s", o->audit_db,
				       err);
				goto out;
			}
			if (sr == 1) {
				fprintf(stderr,
					"wardfs: sealed audit db '%s'; its verification key is in "
					"'%s': take it off this host\n",
					o->audit_db, o->audit_seal_out);
				wfs_audit_seal_poke(fs->audit);
			}
		}
	}

	if (fs->keys && start_undo(fs, o) != 0)
		goto out;

	struct fuse_lowlevel_ops ops;
	wfs_fill_ops(&ops);
	if (asprintf(&optstr, "allow_other,default_permissions,fsname=%s,subtype=wardfs%s%s%s",
		     o->backing, wfs_uring_plan(fs) ? ",io_uring" : "", o->fuse_opts ? "," : "",
		     o->fuse_opts ? o->fuse_opts : "") < 0)
		goto out;
	if (fuse_opt_add_arg(&args, "wardfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, optstr) || (o->debug && fuse_opt_add_arg(&args, "-d")))
		goto out;
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!se) {
		report(fs, "wardfs: cannot start a FUSE session (bad -o option?)");
		goto out;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se) < 0)
		goto out;

	if (fuse_session_mount(se, o->mountpoint) != 0) {
		report(fs, "wardfs: cannot mount on '%s'", o->mountpoint);
		goto out;
	}
	mounted = true;
	running_mark(fs, unclean, sizeof unclean);
	wfs_readahead_raise_async(o->mountpoint);
	wfs_fs_policy_watch_start(fs);
	if (fs->audit) {
		/* what an auditor asks of a mount: how it was unlocked, and
		 * whether the one before it ended (running_mark) */
		char detail[PATH_MAX + 512];
		snprintf(detail, sizeof detail, "%s%s%s%s", o->backing,
			 o->unlocked_with ? "; unlocked with " : "",
			 o->unlocked_with ? o->unlocked_with : "", unclean);
		struct wfs_audit_event ev = {
			.kind = WFS_AUDIT_MOUNT, .path = "/", .allowed = true, .detail = detail};
		wfs_audit_record(fs->audit, &ev);
	}
	report(fs, "ok");

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	/* At most 16 workers, and idle ones are kept (libfuse's default): a
	 * worker that exits takes its warm buffers with it, and the next
	 * burst of requests pays for new ones. */
	fuse_loop_cfg_set_max_threads(cfg, 16);
	ret = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
	fuse_loop_cfg_destroy(cfg);

out:
	wfs_fs_policy_watch_stop(fs);
	if (mounted)
		fuse_session_unmount(se);
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	free(optstr);
	if (fs->audit) {
		struct wfs_audit_event ev = {.kind = WFS_AUDIT_UNMOUNT,
					     .path = "/",
					     .allowed = true,
					     .detail = o->backing};
		wfs_audit_record(fs->audit, &ev);
		wfs_audit_close(fs->audit);
		fs->audit = NULL;
	}
	if (mounted) /* the rows are in; this end was clean */
		unlinkat(fs->root_fd, WFS_VAULT_DIR "/" RUNNING, 0);
	char error[sizeof(fs->first_error)];
	snprintf(error, sizeof(error), "%s",
		 fs->first_error[0] ? fs->first_error : "wardfs: mount failed");
	wfs_fs_free(fs); /* lets go of the vault's lock: then tell */
	o->keys = NULL;
	if (ret)
		tell_parent(o, error);
	return ret;
}
