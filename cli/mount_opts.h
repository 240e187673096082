/*
 * mount_opts.h - the mount helper's -o translation (mount_opts.c), shared
 * by mount_helper.c and its fuzz target.
 */
#ifndef WARDFS_CLI_MOUNT_OPTS_H
#define WARDFS_CLI_MOUNT_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#define HELPER_ARGS_MAX 64

/* The `wardfs mount` command line being built. */
struct helper {
	const char *prog;
	FILE *msg; /* refusals and warnings; NULL: none */
	char *argv[HELPER_ARGS_MAX];
	int argc;
	char fuse[1024]; /* the -o list for FUSE */
};

/* Appends arg to argv (kept NULL-terminated): 0 or -E2BIG. */
int helper_push(struct helper *h, char *arg);
/* Translates one comma-separated -o list (modified in place; values stay
 * pointers into it): 0, -EINVAL (an unknown option unless sloppy, a value
 * missing or extra) or -E2BIG. */
int helper_translate(struct helper *h, char *opts, bool sloppy);

#endif
