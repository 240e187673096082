/*
 * uring.c - FUSE over io_uring: whether this kernel and this libfuse can
 * serve the mount through io_uring, asking for it at INIT, and what
 * `wardfs status` says about it.
 *
 * By default a mount uses it when the kernel offers it (its enable_uring
 * switch is on) and serves through /dev/fuse otherwise, quietly;
 * --no-io-uring never uses it. Asked for (--io-uring) but unavailable is a
 * warning and a mount through /dev/fuse, not a failed mount: io_uring
 * changes how requests travel, never what they do, and a home listed in
 * fstab with io_uring must still mount on a kernel where it is off. The status says which transport
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

	if (fs->o->io_uring == WFS_URING_OFF)
		return false;
	why = wfs_uring_unavailable();
	if (!why)
		return true;
	snprintf(fs->uring_off, sizeof fs->uring_off, "%s", why);
	if (fs->o->io_uring == WFS_URING_ON)
		fprintf(stderr,
			"wardfs: warning: io_uring asked for, but %s; serving through /dev/fuse\n",
			why);
	return false;
}

void wfs_uring_init(struct wfs_fs *fs, struct fuse_conn_info *conn)
{
	if (fs->o->io_uring == WFS_URING_OFF || fs->uring_off[0]) {
		fuse_unset_feature_flag(conn, FUSE_CAP_OVER_IO_URING);
		return;
	}
	if (!fuse_set_feature_flag(conn, FUSE_CAP_OVER_IO_URING)) {
		snprintf(fs->uring_off, sizeof fs->uring_off,
			 "the kernel did not offer it when the mount started");
		if (fs->o->io_uring == WFS_URING_ON)
			fprintf(stderr,
				"wardfs: warning: io_uring asked for, but %s; serving through "
				"/dev/fuse\n",
				fs->uring_off);
	}
}

void wfs_uring_status(struct wfs_fs *fs, char *buf, size_t len)
{
	size_t used = strlen(buf);
	enum wfs_uring_mode mode = fs->o->io_uring;
	const char *asked = mode == WFS_URING_ON ? ", asked for" : "";

	if (used + 1 >= len)
		return;
	if (mode == WFS_URING_OFF)
		snprintf(buf + used, len - used, "io-uring: off (--no-io-uring)\n");
	else if (fs->uring_off[0])
		/* "off: the kernel's ... is off", "off, asked for: ..." */
		snprintf(buf + used, len - used, "io-uring: off%s: %s\n", asked, fs->uring_off);
	else if (!atomic_load(&fs->uring_seen))
		/* The status request itself is seen before it is answered: a
		 * ring that works has carried at least this one. */
		snprintf(buf + used, len - used,
			 "io-uring: off%s: no request came through the ring: libfuse could "
			 "not start it, see the log\n",
			 asked);
	else
		snprintf(buf + used, len - used, "io-uring: on\n");
}
