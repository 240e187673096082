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
 */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"

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
