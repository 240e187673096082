/*
 * uring.c - FUSE over io_uring (`wardfs mount --io-uring`): whether this
 * kernel and this libfuse can serve the mount through io_uring, asking for
 * it at INIT, and what `wardfs status` says about it.
 *
 * Asked for but unavailable is a warning and a mount through /dev/fuse, not
 * a failed mount: io_uring changes how requests travel, never what they
 * do, and a home listed in fstab with io_uring must still mount on a
 * kernel where enable_uring is off. The status says which transport
 * serves, judged by where requests really came from (reqcount.c), since
 * libfuse falls back to /dev/fuse quietly when its ring cannot start.
 */
#include <stdio.h>
#include <string.h>

#include "uring.h"
#include "wardfs_daemon.h"

#define ENABLE_URING "/sys/module/fuse/parameters/enable_uring"

const char *wfs_uring_unavailable(void)
{
	const char *why = NULL;
#ifndef WFS_FUSE_URING
	why = "this wardfs was built against a libfuse without io_uring";
#else
	char c = 0;
	FILE *f = fopen(ENABLE_URING, "re");
	if (!f) {
		why = "the kernel has no FUSE over io_uring: no " ENABLE_URING;
	} else {
		if (fread(&c, 1, 1, f) != 1 || c != 'Y')
			why = "the kernel's FUSE over io_uring is off: " ENABLE_URING " is not Y";
		fclose(f);
	}
#endif
	return why;
}

bool wfs_uring_plan(struct wfs_fs *fs)
{
	const char *why;

	if (!fs->o->io_uring)
		return false;
	why = wfs_uring_unavailable();
	if (!why)
		return true;
	snprintf(fs->uring_off, sizeof fs->uring_off, "%s", why);
	fprintf(stderr, "wardfs: warning: io_uring asked for, but %s; serving through /dev/fuse\n",
		why);
	return false;
}

void wfs_uring_init(struct wfs_fs *fs, struct fuse_conn_info *conn)
{
	if (!fs->o->io_uring || fs->uring_off[0]) {
		fuse_unset_feature_flag(conn, FUSE_CAP_OVER_IO_URING);
		return;
	}
	if (!fuse_set_feature_flag(conn, FUSE_CAP_OVER_IO_URING)) {
		snprintf(fs->uring_off, sizeof fs->uring_off,
			 "the kernel did not offer it when the mount started");
		fprintf(stderr,
			"wardfs: warning: io_uring asked for, but %s; serving through /dev/fuse\n",
			fs->uring_off);
	}
}

void wfs_uring_status(struct wfs_fs *fs, char *buf, size_t len)
{
	size_t used = strlen(buf);
	const char *state = "off";

	if (used + 1 >= len)
		return;
	/* The status request itself is seen before it is answered: a ring
	 * that works has carried at least this one. */
	if (fs->o->io_uring && !fs->uring_off[0] && !atomic_load(&fs->uring_seen))
		state = "off, asked for but no request came through the ring: libfuse "
			"could not start it, see the log";
	else if (fs->o->io_uring && !fs->uring_off[0])
		state = "on";
	if (fs->o->io_uring && fs->uring_off[0])
		snprintf(buf + used, len - used, "io-uring: off, asked for but %s\n",
			 fs->uring_off);
	else
		snprintf(buf + used, len - used, "io-uring: %s\n", state);
}
