/*
 * ops_xattr.c - extended attributes, forwarded to the backing inode, and
 * the status attribute on the mount root that `wardfs status` reads
 * (trusted.* names need CAP_SYS_ADMIN, so only admins see it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "access.h"
#include "fs_policy.h"
#include "inode.h"
#include "ops.h"
#include "reqcount.h"
#include "uring.h"
#include "keys_lock.h"
#include "wardfs_status.h"

#define OWN_PREFIX "trusted.wardfs."

/* The daemon's own names (the mark that says a file is ciphertext, the
 * status) are not the user's: never read, listed, set or removed through
 * the mount, by root neither. */
static bool own_name(const char *name)
{
	return !strncmp(name, OWN_PREFIX, sizeof(OWN_PREFIX) - 1);
}

/*
 * SELinux labels are not stored through the mount: security.selinux is
 * answered EOPNOTSUPP, never listed, never set. A kernel with SELinux
 * answers the name itself from the mount's label (genfs labelling for
 * FUSE) and never asks, and says EOPNOTSUPP to a set; without it, a
 * label in the backing file means nothing. The answer is what makes `ls
 * -l` cheap: it asks every entry for its label, nothing in FUSE caches a
 * missing attribute, and libselinux's callers (ls) stop asking for the
 * rest of the device after one EOPNOTSUPP, where ENODATA cost one round
 * trip per entry (docs/benchmarks.md, "Requests per file").
 */
static bool label_name(const char *name)
{
	return !strcmp(name, "security.selinux");
}

/* Names the mount never lists: the daemon's own and the label. */
static bool hidden_name(const char *name)
{
	return own_name(name) || label_name(name);
}

/* One line per forwarded destination: up or down, rows sent, the last row
 * known delivered, failed attempts (docs/audit.md, "Forwarding"). */
static void status_forward(struct wfs_fs *fs, char *buf, size_t len)
{
	static const struct {
		unsigned dest;
		const char *name;
	} dests[] = {{WFS_FWD_JOURNAL, "journal"}, {WFS_FWD_SYSLOG, "syslog"}};
	for (size_t i = 0; i < sizeof dests / sizeof dests[0]; i++) {
		struct wfs_audit_forward_counters c;
		size_t used = strlen(buf);
		if (used >= len || !wfs_audit_forward_counters(fs->audit, dests[i].dest, &c))
			continue;
		snprintf(buf + used, len - used,
			 "audit-forward-%s: %s, sent %llu, delivered to row %lld, failures %llu\n",
			 dests[i].name, c.down ? "down" : "up", (unsigned long long)c.sent,
			 (long long)c.cursor, (unsigned long long)c.failures);
	}
}

/* audit-seal: whether rows are being sealed (docs/audit.md "Sealing"). */
static void status_seal(struct wfs_fs *fs, char *buf, size_t len)
{
	struct wfs_audit_seal_counters c;
	size_t used = strlen(buf);
	if (used >= len)
		return;
	wfs_audit_seal_counters(fs->audit, &c);
	if (c.on)
		snprintf(buf + used, len - used,
			 "audit-seal: on, %llu seals, sealed to row %lld, %lld rows unsealed, "
			 "every %llu rows or %llu s\n",
			 (unsigned long long)c.epoch, (long long)c.sealed_to, (long long)c.unsealed,
			 (unsigned long long)c.rows, (unsigned long long)c.interval_s);
	else if (c.error[0])
		snprintf(buf + used, len - used, "audit-seal: off: %s\n", c.error);
	else
		snprintf(buf + used, len - used, "audit-seal: off\n");
}

/* Drops the hidden names from a listxattr result; its new length. */
static size_t drop_hidden_names(char *list, size_t len)
{
	size_t out = 0;
	for (size_t i = 0; i < len;) {
		/* list is set when len > 0 (the analyzer takes list_names'
		 * -errno for a possible positive) */
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
		size_t l = strnlen(list + i, len - i) + 1;
		if (!hidden_name(list + i)) {
			memmove(list + out, list + i, l);
			out += l;
		}
		i += l;
	}
	return out;
}

/* "unlocked", "locked" (`wardfs lock`) or "none" (a vault without keys) */
static const char *vault_state(struct wfs_fs *fs)
{
	wfs_keys_hold(fs);
	const char *s = atomic_load(&fs->locked) ? "locked" : fs->keys ? "unlocked" : "none";
	wfs_keys_release(fs);
	return s;
}

static void status_text(struct wfs_fs *fs, char *buf, size_t len)
{
	/* ninodes and nfds change under their locks on every lookup and
	 * open by other workers: read them under the same locks. */
	pthread_mutex_lock(&fs->table_lock);
	size_t ninodes = fs->ninodes;
	pthread_mutex_unlock(&fs->table_lock);
	pthread_mutex_lock(&fs->fd_lock);
	int nfds = fs->nfds;
	pthread_mutex_unlock(&fs->fd_lock);
	size_t used = 0;
	used += (size_t)snprintf(
		buf + used, len - used,
		"backing: %s\nmountpoint: %s\n" WFS_STATUS_PID ": %d\npassthrough: %s\n"
		"vault: %s\nintegrity-errors: %llu\nreads-served: %llu\n"
		"writes-served: %llu\nreads-streamed: %llu\nopens-form-disagrees: %llu\n"
		"strict-forms: %s\ninodes: %zu\ncached-fds: %d\n",
		fs->o->backing, fs->o->mountpoint, (int)getpid(), fs->passthrough ? "on" : "off",
		vault_state(fs), (unsigned long long)atomic_load(&fs->integrity_errors),
		(unsigned long long)atomic_load(&fs->reads_served),
		(unsigned long long)atomic_load(&fs->writes_served),
		(unsigned long long)atomic_load(&fs->reads_streamed),
		(unsigned long long)atomic_load(&fs->form_disagrees),
		fs->o->strict_forms ? "on" : "off", ninodes, nfds);
	if (used < len)
		wfs_fs_policy_status(fs, buf + used, len - used);
	wfs_uring_status(fs, buf, len);
	wfs_reqcount_status(fs, buf, len);
	used = strlen(buf);
	if (used < len) {
		if (fs->audit) {
			struct wfs_audit_counters c;
			wfs_audit_counters(fs->audit, &c);
			snprintf(buf + used, len - used,
				 "audit-db: %s\naudit-recorded: %llu\naudit-lost: %llu\n"
				 "audit-pending: %llu\naudit-last-error: %s\n",
				 fs->o->audit_db, (unsigned long long)c.recorded,
				 (unsigned long long)c.lost, (unsigned long long)c.pending,
				 c.last_error[0] ? c.last_error : "none");
			status_seal(fs, buf, len);
			status_forward(fs, buf, len);
		} else {
			snprintf(buf + used, len - used, "audit-db: disabled\n");
		}
	}
}

/* Replies to a get or list of size bytes with the r bytes of val, or
 * with r's error. */
static void reply_value(fuse_req_t req, ssize_t r, const char *val, size_t size)
{
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else if ((size_t)r > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, (size_t)r);
}

/*
 * The backing inode's path through its O_PATH fd. The path calls that
 * follow links (getxattr, not lgetxattr) resolve /proc/self/fd/N to the
 * inode itself and do not follow it further when it is a symlink: a
 * symlink's attributes are its own, and the answers are the backing file
 * system's (ENODATA for a missing name, EPERM for setting user.* on it).
 * fgetxattr and the *xattrat calls refuse O_PATH fds (EBADF).
 */
static int proc_path(struct wfs_inode *n, char *buf, size_t len, int *fd)
{
	*fd = wfs_inode_fd(n);
	if (*fd < 0)
		return *fd;
	snprintf(buf, len, "/proc/self/fd/%d", *fd);
	return 0;
}

/* The value of name on n: its length, and (size not 0) its bytes in
 * *val, which the caller frees; or -errno. */
static ssize_t get_value(struct wfs_fs *fs, struct wfs_inode *n, const char *name, size_t size,
			 char **val)
{
	*val = NULL;
	if (n == &fs->root && !strcmp(name, WFS_STATUS_XATTR)) {
		if (!(*val = malloc(WFS_STATUS_MAX)))
			return -ENOMEM;
		status_text(fs, *val, WFS_STATUS_MAX);
		return (ssize_t)strlen(*val);
	}
	if (n == &fs->root && !strcmp(name, WFS_OPEN_SENSITIVE_XATTR))
		return wfs_fs_open_sensitive(fs, val);
	if (own_name(name))
		return -ENODATA;
	if (label_name(name))
		return -EOPNOTSUPP;
	char pp[64];
	int fd;
	int r = proc_path(n, pp, sizeof(pp), &fd);
	if (r)
		return r;
	ssize_t len = -ENOMEM;
	if (!size || (*val = malloc(size)) != NULL) {
		len = getxattr(pp, name, *val, size);
		if (len < 0)
			len = -errno;
	}
	wfs_inode_put_fd(n);
	return len;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	WFS_AUTOFREE char *val = NULL;
	ssize_t r = get_value(wfs_fs_of(req), wfs_inode_of(req, ino), name, size, &val);
	reply_value(req, r, val, size);
}

/* n's names but the hidden ones, in *val (the caller frees it): their length
 * or -errno. The whole list even when only its size is asked: the size
 * must not count the names dropped from it. */
static ssize_t list_names(struct wfs_inode *n, char **val)
{
	char pp[64];
	int fd;
	int r = proc_path(n, pp, sizeof(pp), &fd);
	*val = NULL;
	if (r)
		return r;
	ssize_t len;
	for (;;) {
		len = listxattr(pp, NULL, 0);
		if (len <= 0)
			break;
		char *grown = realloc(*val, (size_t)len);
		if (!grown) {
			errno = ENOMEM;
			len = -1;
			break;
		}
		*val = grown;
		len = listxattr(pp, *val, (size_t)len);
		if (len >= 0 || errno != ERANGE)
			break; /* ERANGE: it grew meanwhile */
	}
	if (len < 0)
		len = -errno;
	wfs_inode_put_fd(n);
	return len > 0 ? (ssize_t)drop_hidden_names(*val, (size_t)len) : len;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	/* freed by hand, not WFS_AUTOFREE: clang-tidy's analyzer does not run
	 * cleanup functions and would report a leak */
	char *val = NULL;
	ssize_t r = list_names(wfs_inode_of(req, ino), &val);
	reply_value(req, r, val, size);
	free(val);
}

#define ACL_ACCESS "system.posix_acl_access"
#define MAX_GROUPS 256

/* Whether the caller may keep a setgid bit of group gid (root standing for
 * CAP_FSETID, as the kernel's in_group_or_capable would). */
static bool in_group_or_root(fuse_req_t req, gid_t gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (ctx->uid == 0 || ctx->gid == gid)
		return true;
	gid_t groups[MAX_GROUPS];
	int n = fuse_req_getgroups(req, MAX_GROUPS, groups);
	for (int i = 0; i < n && i < MAX_GROUPS; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * Setting an access ACL clears the setgid bit of a file whose group the
 * caller is not in (posix_acl_update_mode, natively). The backing file
 * system sees the daemon (root) and keeps it; the kernel asks FUSE
 * servers to do it with FUSE_SETXATTR_ACL_KILL_SGID, which libfuse 3.17
 * does not pass on: so the daemon decides as the kernel would.
 */
static void acl_kill_sgid(fuse_req_t req, const char *pp)
{
	struct stat st;
	if (stat(pp, &st) == 0 && (st.st_mode & S_ISGID) && !in_group_or_root(req, st.st_gid))
		chmod(pp, st.st_mode & 07777 & ~S_ISGID);
}

/* Sets name on n to value (or removes it: value NULL), judged and
 * recorded as a change (changes.c). */
static int change_value(fuse_req_t req, struct wfs_inode *n, const char *name, const char *value,
			size_t size, int flags)
{
	if (own_name(name))
		return -EPERM;
	if (label_name(name))
		return -EOPNOTSUPP;
	struct wfs_change ch;
	int r = wfs_change_begin(req, &ch, value ? WFS_AUDIT_SETXATTR : WFS_AUDIT_REMOVEXATTR, n,
				 NULL, NULL, name);
	if (r)
		return r;
	char pp[64];
	int fd;
	r = proc_path(n, pp, sizeof(pp), &fd);
	if (!r) {
		if (value)
			r = setxattr(pp, name, value, size, flags) < 0 ? -errno : 0;
		else
			r = removexattr(pp, name) < 0 ? -errno : 0;
		if (!r && value && !strcmp(name, ACL_ACCESS))
			acl_kill_sgid(req, pp);
		wfs_inode_put_fd(n);
	}
	wfs_change_end(&ch, r);
	return r;
}

/*
 * `wardfs lock` and `unlock`: attributes of the mount root that only root
 * sets (trusted.*: the kernel asks for CAP_SYS_ADMIN in the initial user
 * namespace; the uid is checked again here). The unlock's value is the
 * master key, in libfuse's request buffer: keys_lock.c wipes it there.
 */
static bool lock_request(fuse_req_t req, struct wfs_inode *n, const char *name, const char *value,
			 size_t size)
{
	struct wfs_fs *fs = wfs_fs_of(req);
	bool lock = !strcmp(name, WFS_LOCK_XATTR), unlock = !strcmp(name, WFS_UNLOCK_XATTR);
	if (n != &fs->root || (!lock && !unlock))
		return false;
	int r;
	if (fuse_req_ctx(req)->uid != 0)
		r = -EPERM;
	else if (lock)
		r = wfs_fs_lock_keys(req, fs);
	else /* NOLINTNEXTLINE(clang-diagnostic-cast-qual): libfuse's buffer, ours to wipe */
		r = wfs_fs_unlock_keys(req, fs, (char *)value, size);
	fuse_reply_err(req, -r);
	return true;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	if (lock_request(req, wfs_inode_of(req, ino), name, value, size))
		return;
	/* value is never NULL here: an empty value is "" with size 0 */
	fuse_reply_err(req, -change_value(req, wfs_inode_of(req, ino), name, value ? value : "",
					  size, flags));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -change_value(req, wfs_inode_of(req, ino), name, NULL, 0, 0));
}

void wfs_fill_xattr_ops(struct fuse_lowlevel_ops *ops)
{
	ops->getxattr = op_getxattr;
	ops->listxattr = op_listxattr;
	ops->setxattr = op_setxattr;
	ops->removexattr = op_removexattr;
}
