/* procinfo.h - process name and executable of a caller. */
#ifndef WARDFS_PROCINFO_H
#define WARDFS_PROCINFO_H

#include <limits.h>
#include <stdlib.h>
#include <sys/types.h>

struct wfs_procinfo {
	char comm[32];
	char exe[PATH_MAX];
};

/* Fills out (comm "?" and exe "" when the process is gone); 0 or -errno. */
int wfs_procinfo_get(pid_t pid, struct wfs_procinfo *out);

#endif
