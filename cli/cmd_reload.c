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

#define STATUS_TIMEOUT_MS 5000
#define RELOAD_TIMEOUT_MS 10000

static void usage(FILE *f)
{
	fprintf(f, "usage: wardfs reload [MOUNTPOINT...]\n\n"
		   "Reloads the policy of each wardfs mount named (default: every one) and\n"
		   "prints what is in force. A policy with errors is rejected and the one in\n"
		   "force stays: exit status 1, with the first error. Needs root.\n");
}

/* The value of "key: " in a status text, up to the end of its line. */
static const char *field(const char *status, const char *key, char *buf, size_t len)
{
	char k[64];
	snprintf(k, sizeof k, "\n%s: ", key);
	const char *p = strstr(status, k);
	if (!p && !strncmp(status, k + 1, strlen(k + 1)))
		p = status - 1;
	if (!p) {
		snprintf(buf, len, "?");
		return buf;
	}
	p += strlen(k);
	size_t n = strcspn(p, "\n");
	snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
	return buf;
}

static int reload_one(const char *mnt)
{
	char st[4096], v[600], err[600], rules[32], sha[80], path[600];
	int r = wfs_read_status(mnt, st, sizeof st, STATUS_TIMEOUT_MS);
	if (r) {
		fprintf(stderr, "wardfs reload: cannot read the status of '%s': %s%s\n", mnt,
			r == -ETIMEDOUT ? "its daemon does not answer" : strerror(-r),
			r == -ENODATA || r == -EPERM ? " (it needs root)" : "");
		return 1;
	}
	long before = atol(field(st, "policy-reloads", v, sizeof v));
	pid_t pid = (pid_t)atoi(field(st, "pid", v, sizeof v));
	if (pid <= 0 || kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "wardfs reload: cannot signal the daemon of '%s': %s\n", mnt,
			pid <= 0 ? "no pid in its status" : strerror(errno));
		return 1;
	}
	for (int waited = 0;; waited += 50) {
		if (waited >= RELOAD_TIMEOUT_MS) {
			fprintf(stderr,
				"wardfs reload: the daemon of '%s' did not reload within %d s\n",
				mnt, RELOAD_TIMEOUT_MS / 1000);
			return 1;
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (wfs_read_status(mnt, st, sizeof st, STATUS_TIMEOUT_MS) == 0 &&
		    atol(field(st, "policy-reloads", v, sizeof v)) > before)
			break;
	}
	field(st, "policy-last-error", err, sizeof err);
	field(st, "policy", path, sizeof path);
	field(st, "policy-rules", rules, sizeof rules);
	field(st, "policy-sha256", sha, sizeof sha);
	if (strcmp(err, "none")) {
		fprintf(stderr,
			"wardfs reload: %s: the policy was rejected, the one in force stays: %s\n",
			mnt, err);
		return 1;
	}
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
	int failed = 0;
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-') {
			fprintf(stderr,
				"wardfs reload: unknown option '%s'; see 'wardfs reload --help'\n",
				argv[i]);
			return 2;
		}
	if (argc == 1) {
		struct all a = {0};
		int r = wfs_each_mount(each, &a);
		if (r < 0) {
			fprintf(stderr, "wardfs reload: cannot read the mount table: %s\n",
				strerror(-r));
			return 1;
		}
		if (a.mounts == 0) {
			fprintf(stderr, "wardfs reload: no wardfs mount is running\n");
			return 1;
		}
		return a.failed;
	}
	for (int i = 1; i < argc; i++) {
		char type[64];
		int r = wfs_mount_type(argv[i], type, sizeof type);
		if (r || strcmp(type, WFS_FSTYPE)) {
			fprintf(stderr, "wardfs reload: '%s' is not a wardfs mount\n", argv[i]);
			failed = 1;
			continue;
		}
		failed |= reload_one(argv[i]);
	}
	return failed;
}
