/*
 * access.c - the open-time decision: the policy's class and options
 * applied to the calling process (allow-exe= by the inode of its program),
 * and the audit row that records it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "access.h"
#include "inode.h"
#include "procinfo.h"

#define MAX_GROUPS 64

static bool needs_caller(const struct wfs_decision *d)
{
	return d->opts != NULL;
}

/*
 * allow-exe=: the caller's program is the inode its /proc/PID/exe resolves
 * to, never the text of that link, which is a path in the caller's mount
 * namespace (in a user namespace anyone can bind-mount cat over an allowed
 * path). It is compared with the inode each allowed path resolves to here,
 * in the daemon's namespace, following symbolic links (a symlinked
 * allow-exe= means its target). Resolved at every check, never cached: a
 * package update renames a new binary over the path, and the next open
 * sees it. A stat of one or two paths, on opens of allow-exe= files only.
 */
struct exe_match {
	pid_t pid;
	bool looked, known; /* the caller's program was identified */
	dev_t dev;
	ino_t ino;
	bool matched; /* an allowed path names it */
};

static bool exe_is(void *arg, const char *allowed)
{
	struct exe_match *m = arg;
	struct stat st;
	if (!m->looked) {
		m->looked = true;
		m->known = wfs_procinfo_exe_id(m->pid, &m->dev, &m->ino) == 0;
	}
	if (!m->known || stat(allowed, &st) < 0 || st.st_dev != m->dev || st.st_ino != m->ino)
		return false;
	m->matched = true;
	return true;
}

/* The audit detail of an allow-exe= decision: the program's identity
 * (docs/audit.md), and why it was refused. */
static void exe_detail(struct wfs_open_ctx *c, const struct exe_match *m, const char *refused)
{
	int n = 0;
	if (m->known)
		n = snprintf(c->detail, sizeof(c->detail), "exe-dev=%u:%u exe-ino=%llu",
			     major(m->dev), minor(m->dev), (unsigned long long)m->ino);
	else
		n = snprintf(c->detail, sizeof(c->detail), "exe-dev=? exe-ino=?");
	if (refused && n > 0 && (size_t)n < sizeof(c->detail))
		snprintf(c->detail + n, sizeof(c->detail) - (size_t)n, "; refused: %s", refused);
}

int wfs_access_check(fuse_req_t req, struct wfs_open_ctx *c)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	c->caller_uid = ctx->uid;
	c->caller_gid = ctx->gid;
	c->caller_pid = ctx->pid;
	c->have_proc = false;
	c->detail[0] = '\0';
	if (fs->audit || needs_caller(&c->dec)) {
		wfs_procinfo_get(fs->procs, ctx->pid, &c->proc);
		c->have_proc = true;
	}
	if (c->dec.cls == WFS_DENY)
		return -EACCES;
	if (needs_caller(&c->dec)) {
		gid_t groups[MAX_GROUPS];
		int n = fuse_req_getgroups(req, MAX_GROUPS, groups);
		struct exe_match m = {.pid = ctx->pid};
		struct wfs_caller who = {
			.uid = ctx->uid,
			.gid = ctx->gid,
			.groups = groups,
			.ngroups = n > 0 ? (n < MAX_GROUPS ? n : MAX_GROUPS) : 0,
			.exe = c->proc.exe[0] ? c->proc.exe : NULL,
			.exe_is = exe_is,
			.exe_arg = &m,
		};
		bool ok = wfs_policy_allows(&c->dec, &who);
		if (!m.looked)
			return ok ? 0 : -EACCES; /* no allow-exe= in the rule */
		if (!m.matched) {
			exe_detail(c, &m,
				   m.known ? "not an allowed program" : "its program is unknown");
			return -EACCES;
		}
		/* The right program; now whether it is running its own code.
		 * Only once the rest allowed it: a refusal says why. */
		char why[128];
		if (ok && wfs_procinfo_suspect(ctx->pid, why, sizeof(why))) {
			exe_detail(c, &m, why);
			return -EACCES;
		}
		exe_detail(c, &m, NULL);
		return ok ? 0 : -EACCES;
	}
	return 0;
}

/*
 * Logs an open refused because its audit row cannot be recorded, with the
 * audit's own reason. While the db stays broken every open is refused: log
 * at most one a second and count the rest, so the log cannot flood.
 */
static void log_refusal(struct wfs_fs *fs, const char *path, int err)
{
	static _Atomic int64_t last_sec = -1;
	static atomic_uint_fast64_t unlogged;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t prev = atomic_load(&last_sec);
	if (prev == (int64_t)ts.tv_sec ||
	    !atomic_compare_exchange_strong(&last_sec, &prev, (int64_t)ts.tv_sec)) {
		atomic_fetch_add(&unlogged, 1);
		return;
	}
	struct wfs_audit_counters ac;
	wfs_audit_counters(fs->audit, &ac);
	unsigned long long more = atomic_exchange(&unlogged, 0);
	char tail[64] = "";
	if (more)
		snprintf(tail, sizeof(tail), " (%llu more refused since the last message)", more);
	fprintf(stderr,
		"wardfs: cannot record the open of '%s' in the audit db: %s (%s); refusing it%s\n",
		path, strerror(-err), ac.last_error[0] ? ac.last_error : "no detail", tail);
}

int wfs_access_record(struct wfs_open_ctx *c, int err)
{
	struct wfs_fs *fs = c->fs;
	if (!fs->audit)
		return 0;
	struct wfs_audit_event ev = {
		.kind = c->kind != WFS_AUDIT_OPEN ? c->kind
			: c->create		  ? WFS_AUDIT_CREATE
						  : WFS_AUDIT_OPEN,
		.path = c->path,
		.flags = c->flags,
		.cls = wfs_class_name(c->dec.cls),
		.form = c->form,
		.allowed = err == 0,
		.err = err < 0 ? -err : err,
		.rule_file = c->dec.file,
		.rule_line = c->dec.line,
		.uid = c->caller_uid,
		.gid = c->caller_gid,
		.pid = c->caller_pid,
		.comm = c->have_proc ? c->proc.comm : NULL,
		.exe = c->have_proc ? c->proc.exe : NULL,
		.detail = c->detail[0] ? c->detail : c->change_detail,
	};
	int r = wfs_audit_record(fs->audit, &ev);
	if (r) {
		log_refusal(fs, c->path, r);
		return -EACCES;
	}
	return 0;
}

void wfs_fs_integrity_failure(struct wfs_inode *n, const char *what)
{
	struct wfs_fs *fs = n->fs;
	WFS_AUTOFREE char *known = NULL;
	const char *path = wfs_inode_path(n, &known) ? "?" : known;
	atomic_fetch_add(&fs->integrity_errors, 1);
	fprintf(stderr, "wardfs: integrity failure in '%s': %s\n", path, what);
	if (!fs->audit)
		return;
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_INTEGRITY,
		.path = path,
		.cls = "sensitive",
		.form = "encrypted",
		.allowed = false,
		.err = EIO,
		.detail = what,
	};
	wfs_audit_record(fs->audit, &ev);
}
