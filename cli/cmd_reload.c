/*
 * cmd_reload.c - `wardfs reload [MOUNTPOINT...]`: makes running daemons
 * read their policy again now (SIGHUP) and says, per mount, whether the
 * new policy is in force or was rejected (and why: the old one stays).
 *
 * Daemons also reload by themselves within a second of a change to any
 * file the policy reads (daemon/policy_watch.c); this is for scripts that
 * must know the outcome before they go on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "mounted.h"
#include "usage.h"
#include "wardfs_status.h"

#define RELOAD_TIMEOUT_MS 10000

static const char usage[] =
	"usage: wardfs reload [MOUNTPOINT...]\n\n"
	"Reloads the policy of each wardfs mount named (default: every one) and\n"
	"prints what is in force. A policy with errors is rejected and the one in\n"
	"force stays: exit status 1, with the first error. Needs root.\n";

static const char *field(const char *status, const char *key, char *buf, size_t len)
{
	wfs_status_get(status, key, buf, len);
	return buf;
}

static int reload_one(const char *mnt)
{
	char st[4096], v[600], err[600], rules[32], sha[80], path[600];
	int r = wfs_read_status(mnt, st, sizeof st, WFS_STATUS_TIMEOUT_MS);
	if (r)
		return error("cannot read the status of '%s': %s%s", mnt,
			     r == -ETIMEDOUT ? "its daemon does not answer" : strerror(-r),
			     r == -ENODATA || r == -EPERM ? " (it needs root)" : "");
	long before = strtol(field(st, WFS_STATUS_POLICY_RELOADS, v, sizeof v), NULL, 10);
	pid_t pid = (pid_t)strtol(field(st, WFS_STATUS_PID, v, sizeof v), NULL, 10);
	if (pid <= 0 || kill(pid, SIGHUP) < 0)
		return error("cannot signal the daemon of '%s': %s", mnt,
			     pid <= 0 ? "no pid in its status" : strerror(errno));
	for (int waited = 0;; waited += 50) {
		if (waited >= RELOAD_TIMEOUT_MS)
			return error("the daemon of '%s' did not reload within %d s", mnt,
				     RELOAD_TIMEOUT_MS / 1000);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (wfs_read_status(mnt, st, sizeof st, WFS_STATUS_TIMEOUT_MS) == 0 &&
		    strtol(field(st, WFS_STATUS_POLICY_RELOADS, v, sizeof v), NULL, 10) > before)
			break;
	}
	field(st, WFS_STATUS_POLICY_ERROR, err, sizeof err);
	field(st, WFS_STATUS_POLICY, path, sizeof path);
	field(st, WFS_STATUS_POLICY_RULES, rules, sizeof rules);
	field(st, WFS_STATUS_POLICY_SHA256, sha, sizeof sha);
	if (strcmp(err, "none"))
		return error("%s: the policy was rejected, the one in force stays: %s", mnt, err);
	printf("%s: reloaded %s (%s rules, sha256 %.16s...)\n", mnt, path, rules, sha);
	return 0;
}

struct all {
	int failed, mounts;
};

static int each(void *arg, const char *mnt, const char *backing)
{
	(void)backing;
	struct all *a = arg;
	a->mounts++;
	a->failed |= reload_one(mnt);
	return 0;
}

int wfs_cmd_reload(int argc, char **argv)
{
	static const struct opt opts[] = {OPT_END()};
	int failed = 0, status, i;

	if ((i = parse_options(argc, argv, opts, usage, 0, &status)) < 0)
		return status;
	if (i == argc) {
		struct all a = {0};
		int r = wfs_each_mount(each, &a);
		if (r < 0)
			return error("cannot read the mount table: %s", strerror(-r));
		if (a.mounts == 0)
			return error("no wardfs mount is running");
		return a.failed;
	}
	for (; i < argc; i++) {
		char type[64];
		int r = wfs_mount_type(argv[i], type, sizeof type);
		if (r || strcmp(type, WFS_FSTYPE)) {
			failed = error("'%s' is not a wardfs mount", argv[i]);
			continue;
		}
		failed |= reload_one(argv[i]);
	}
	return failed;
}
