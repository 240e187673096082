/* procinfo.h - process name and executable of a caller, and what makes an
 * allowed program's process untrustworthy. */
#ifndef WARDFS_PROCINFO_H
#define WARDFS_PROCINFO_H

#include <limits.h>
#include <stdlib.h>
#include <sys/types.h>

struct wfs_procinfo {
	char comm[32];
	char exe[PATH_MAX];
};

/* What the daemon remembers of callers (an fd on each one's
 * /proc/PID/exe, its comm), in 256 slots by pid: one per filesystem. */
struct wfs_procinfo_cache;
struct wfs_procinfo_cache *wfs_procinfo_cache_new(void);
void wfs_procinfo_cache_free(struct wfs_procinfo_cache *c);

/* Fills out (comm "?" and exe "" when the process is gone); 0 or -errno. */
int wfs_procinfo_get(struct wfs_procinfo_cache *c, pid_t pid, struct wfs_procinfo *out);

/*
 * What pid runs, as the daemon sees it: the device and inode of the file
 * /proc/PID/exe resolves to. stat() follows that magic link to the file
 * the kernel loaded, wherever the caller's mount namespace put it, so a
 * bind mount over an allowed path cannot fake it. 0 or -errno.
 */
int wfs_procinfo_exe_id(pid_t pid, dev_t *dev, ino_t *ino);

/*
 * Why pid, running an allowed program, may not be that program's own
 * doing: it lives in another user namespace than the daemon (where its
 * user can mount over what the program loads), a thread of it is traced,
 * or its initial environment asks the loader for other code (LD_PRELOAD,
 * LD_LIBRARY_PATH, LD_AUDIT, GCONV_PATH). Writes the reason into why and
 * returns 1; 0 when none is found; 1 also when it cannot be told.
 */
int wfs_procinfo_suspect(pid_t pid, char *why, size_t len);

#endif
