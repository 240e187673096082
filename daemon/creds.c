/*
 * creds.c - act as the calling user while creating objects, so files,
 * directories, symlinks and device nodes belong to the caller and their
 * group follows the caller's fsgid or a setgid parent directory.
 *
 * setfsuid/setfsgid are per-thread system calls. Changing fsuid away from 0
 * clears the filesystem capabilities from the effective set; they are raised
 * again (capset, per thread) because the kernel has already checked the
 * caller's permission with default_permissions, including supplementary
 * groups that this thread does not carry.
 *
 * The umask: with FUSE_POSIX_ACL the kernel leaves it to the file system
 * (FUSE_DONT_MASK; it comes with each create, mkdir and mknod), because
 * only the file system knows whether the parent has a default ACL, in
 * which case POSIX.1e says the umask is not applied. The backing file
 * system knows, and applies its caller's umask exactly when it must: so
 * the worker thread takes the request's umask while it creates. umask(2)
 * is per fs_struct, which threads share, so each worker first gets its
 * own (unshare(CLONE_FS), as virtiofsd does).
 *
 * Space: ext4 lends its reserved blocks to fsuid 0 (its resuid) and to
 * CAP_SYS_RESOURCE, and quotas are waived for CAP_SYS_RESOURCE. A daemon
 * writing users' data as root would lend both to every user of the mount,
 * who could then fill the disk past the reserve meant for root and lock
 * everybody out (issue 15.11). So the daemon gives up CAP_SYS_RESOURCE
 * (with every capability it does not use) before it serves anything, and
 * writes data as the writer: the caller, or the file's owner where the
 * request carries no user of its own (root's, or the kernel flushing a
 * shared mapping). Passthrough I/O never reaches the daemon; the kernel
 * runs it with the credentials that registered the backing file, so that
 * is done as the file's owner too.
 */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "creds.h"

static int raise_effective(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[0].effective = d[0].permitted;
	d[1].effective = d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/* Whether this thread has an fs_struct (so a umask) of its own. */
static __thread bool own_umask;

/* Sets this thread's umask only; -errno when it cannot have its own. */
static int thread_umask(mode_t mask)
{
	if (!own_umask) {
		if (unshare(CLONE_FS) < 0)
			return -errno;
		own_umask = true;
	}
	umask(mask);
	return 0;
}

int wfs_creds_become(fuse_req_t req, struct wfs_creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	c->uid = ctx->uid;
	c->gid = ctx->gid;
	c->switched = false;
	c->masked = false;
	/* Requests that create carry the caller's umask (0 in the others,
	 * whose modes do not matter: symlinks). Without FUSE_DONT_MASK the
	 * kernel has applied it already, and applying it again changes
	 * nothing. */
	if (ctx->umask) {
		int r = thread_umask(ctx->umask & 0777);
		if (r)
			return r;
		c->masked = true;
	}
	if (geteuid() != 0 || (c->uid == 0 && c->gid == 0))
		return 0;
	setfsgid(c->gid);
	setfsuid(c->uid);
	c->switched = true;
	int r = raise_effective();
	if (r) {
		wfs_creds_restore(c);
		return r;
	}
	return 0;
}

void wfs_creds_restore(struct wfs_creds *c)
{
	if (c->masked) {
		/* The daemon's own default (session.c): modes as asked. */
		umask(0);
		c->masked = false;
	}
	if (!c->switched)
		return;
	/* Back to fsuid 0: the kernel restores the filesystem capabilities. */
	setfsuid(0);
	setfsgid(0);
	c->switched = false;
}

/*
 * What the daemon does with each capability it keeps, once mounted:
 *   CHOWN, FOWNER, FSETID, DAC_OVERRIDE, DAC_READ_SEARCH: act on backing
 *     files for callers the kernel has already checked (default_permissions),
 *     and open_by_handle_at;
 *   SETUID, SETGID: setfsuid/setfsgid to create as the caller;
 *   MKNOD: device nodes; SETFCAP: security.capability for callers allowed it;
 *   SYS_ADMIN: passthrough registration, trusted.* (the encryption mark),
 *     the unmount at the end;
 *   SYS_PTRACE: /proc/PID/exe and cmdline of other users' processes;
 *   IPC_LOCK: locked memory for keys; LINUX_IMMUTABLE: chattr +i/+a as root
 *     would; LEASE: leases on backing files; KILL: nothing of its own, but
 *     libfuse's exit path may signal; SETPCAP: this function.
 * Everything else, CAP_SYS_RESOURCE first, goes: from the bounding set too,
 * so that no exec or capset can bring it back.
 */
static const int kept_caps[] = {
	CAP_CHOWN,	CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,  CAP_FSETID,
	CAP_SETUID,	CAP_SETGID,	  CAP_MKNOD,	       CAP_SETFCAP, CAP_SYS_ADMIN,
	CAP_SYS_PTRACE, CAP_IPC_LOCK,	  CAP_LINUX_IMMUTABLE, CAP_LEASE,   CAP_KILL,
	CAP_SETPCAP,
};

static bool kept(int cap)
{
	for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
		if (kept_caps[i] == cap)
			return true;
	return false;
}

int wfs_creds_drop_unused(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	int last = CAP_LAST_CAP;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		/* the kernel writes a small int */
		/* NOLINTNEXTLINE(cert-err34-c) */
		if (fscanf(f, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	for (int cap = 0; cap <= last && cap < 64; cap++) {
		if (kept(cap))
			continue;
		/* EINVAL for a cap this kernel lacks; EPERM without SETPCAP
		 * (a daemon not run as root): the sets below still drop it. */
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
		uint32_t bit = 1u << (cap % 32);
		d[cap / 32].effective &= ~bit;
		d[cap / 32].permitted &= ~bit;
		d[cap / 32].inheritable &= ~bit;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/* The uid whose space a write of fd on behalf of req uses. */
static uid_t writer_uid(fuse_req_t req, int fd)
{
	uid_t uid = fuse_req_ctx(req)->uid;
	struct stat st;
	if (uid == 0 && fd >= 0 && fstat(fd, &st) == 0)
		uid = st.st_uid;
	return uid;
}

uid_t wfs_creds_write_begin(fuse_req_t req, int fd)
{
	if (geteuid() != 0)
		return 0;
	uid_t uid = writer_uid(req, fd);
	if (uid != 0)
		setfsuid(uid);
	return uid;
}

void wfs_creds_write_end(uid_t was)
{
	/* Back to fsuid 0: the kernel gives the filesystem capabilities back
	 * from the permitted set. */
	if (was != 0)
		setfsuid(0);
}

int wfs_creds_passthrough_open(fuse_req_t req, int fd)
{
	struct stat st;
	uid_t uid = geteuid() == 0 && fstat(fd, &st) == 0 ? st.st_uid : 0;
	if (uid != 0)
		setfsuid(uid);
	int id = fuse_passthrough_open(req, fd);
	int e = errno;
	if (uid != 0)
		setfsuid(0);
	errno = e;
	return id;
}
