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
 */
#include <errno.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
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

int wfs_creds_become(fuse_req_t req, struct wfs_creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	c->uid = ctx->uid;
	c->gid = ctx->gid;
	c->switched = false;
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
	if (!c->switched)
		return;
	/* Back to fsuid 0: the kernel restores the filesystem capabilities. */
	setfsuid(0);
	setfsgid(0);
	c->switched = false;
}
