/*
 * wardfs_daemon.h - the daemon module's public interface: run a wardfs
 * mount in the calling process until it is unmounted.
 */
#ifndef WARDFS_DAEMON_H
#define WARDFS_DAEMON_H

#include <stdbool.h>

struct wfs_keys;

struct wfs_daemon_opts {
	const char *backing;	 /* absolute, canonical */
	const char *mountpoint;	 /* absolute, canonical */
	const char *policy_path; /* NULL: built-in default (everything public) */
	bool policy_required;	 /* the path was given explicitly: must load */
	const char *audit_db;	 /* NULL: no audit (hidden debug flag) */
	bool audit_fail_open;
	unsigned audit_journal_mib; /* 0: the audit library's default */
	const char *audit_forward;  /* --audit-forward list, or NULL */
	const char *audit_seal_out; /* --audit-seal: seal an unsealed db, key here */
	bool passthrough;	    /* false: --no-passthrough */
	bool strict_forms;	    /* refuse plain files in sensitive paths */
	bool io_uring;		    /* --io-uring: serve through FUSE over io_uring */
	bool foreground;
	bool debug;
	const char *fuse_opts;	   /* extra -o options, comma list, may be NULL */
	struct wfs_keys *keys;	   /* unlocked vault keys or NULL; ownership passes in */
	const char *unlocked_with; /* which key slot unlocked them, for the mount row */
	int ready_fd;		   /* written "ok\n" or an error line once mounted; -1 */
};

/*
 * Mounts and serves until unmounted or signalled. Returns 0 on a clean
 * unmount, or 1 after printing a one-line error.
 */
int wfs_daemon_run(struct wfs_daemon_opts *o);

/*
 * Why --io-uring cannot be had here (this libfuse was built without it,
 * or the kernel's FUSE over io_uring is missing or off), or NULL when it
 * can. The mount then warns and serves through /dev/fuse.
 */
const char *wfs_uring_unavailable(void);

#endif
