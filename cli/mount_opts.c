/*
 * mount_opts.c - the mount helper's -o translation (mount_helper.c): fstab
 * options to `wardfs mount` arguments and FUSE kernel flags. Apart from the
 * helper so that it can be run on any string with no effect but its
 * result (tests/fuzz/fuzz_mount_opts.c): the helper runs as root, and what
 * reaches `wardfs mount` must be only the options listed here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mount_opts.h"

static void say(const struct helper *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct helper *h, const char *fmt, ...)
{
	va_list ap;

	if (h->msg == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(h->msg, fmt, ap);
	va_end(ap);
}

/* Options mount(8), systemd or pam_mount use that mean nothing to wardfs. */
static const char *const ignored[] = {
	"defaults", "auto",  "noauto",	"nofail", "user", "users",  "nouser",
	"owner",    "group", "_netdev", "rw",	  "loud", "silent", NULL,
};

/* Options passed through to FUSE (kernel mount flags libfuse knows). */
static const char *const fuse_flags[] = {
	"ro",
	"suid",
	"nosuid",
	"dev",
	"nodev",
	"exec",
	"noexec",
	"async",
	"sync",
	"noatime",
	"nodiratime",
	"norelatime",
	"nostrictatime",
	"symfollow",
	"nosymfollow",
	"dirsync",
	"nonempty",
	NULL,
};

/* fstab option -> `wardfs mount` long option; value says it takes one. */
static const struct {
	const char *name, *longopt;
	bool value;
} mapped[] = {
	{"passfile", "--passfile", true},
	{"extpass", "--extpass", true},
	{"policy", "--policy", true},
	{"audit-db", "--audit-db", true},
	{"audit-failure", "--audit-failure", true},
	{"audit-journal-size", "--audit-journal-size", true},
	{"audit-forward", "--audit-forward", true},
	{"audit-seal", "--audit-seal", true},
	{"log", "--log", true},
	{"recovery-key", "--recovery-key", false},
	{"recovery-key-file", "--recovery-key-file", true},
	{"no-passthrough", "--no-passthrough", false},
	{"strict-forms", "--strict-forms", false},
	{"io-uring", "--io-uring", false},
	{"io_uring", "--io-uring", false}, /* libfuse's spelling */
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

int helper_push(struct helper *h, char *arg)
{
	if (h->argc >= HELPER_ARGS_MAX - 1) {
		say(h, "%s: too many options\n", h->prog);
		return -E2BIG;
	}
	h->argv[h->argc++] = arg;
	h->argv[h->argc] = NULL;
	return 0;
}

static int add_fuse(struct helper *h, const char *opt)
{
	size_t used = strlen(h->fuse);

	if (used + strlen(opt) + 2 > sizeof(h->fuse)) {
		say(h, "%s: mount options too long\n", h->prog);
		return -E2BIG;
	}
	snprintf(h->fuse + used, sizeof(h->fuse) - used, "%s%s", used ? "," : "", opt);
	return 0;
}

int helper_translate(struct helper *h, char *opts, bool sloppy)
{
	char *save = NULL;

	for (char *tok = strtok_r(opts, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		size_t i;
		int r;

		if (val != NULL)
			*val++ = '\0';
		if (in_list(ignored, tok) || !strncmp(tok, "x-", 2) || !strcmp(tok, "comment"))
			continue;
		if (in_list(fuse_flags, tok) && val == NULL) {
			if ((r = add_fuse(h, tok)) != 0)
				return r;
			continue;
		}
		for (i = 0; i < sizeof(mapped) / sizeof(mapped[0]); i++)
			if (!strcmp(mapped[i].name, tok))
				break;
		if (i < sizeof(mapped) / sizeof(mapped[0])) {
			if (mapped[i].value != (val != NULL)) {
				say(h, "%s: option '%s' %s; see mount.wardfs(8)\n", h->prog, tok,
				    mapped[i].value ? "needs a value (NAME=VALUE)"
						    : "takes no value");
				return -EINVAL;
			}
			if ((r = helper_push(h, (char *)mapped[i].longopt)) != 0 ||
			    (val != NULL && (r = helper_push(h, val)) != 0))
				return r;
			continue;
		}
		if (sloppy) {
			say(h, "%s: warning: ignoring unknown option '%s'\n", h->prog, tok);
			continue;
		}
		say(h,
		    "%s: unknown mount option '%s%s%s'; wardfs takes passfile=, extpass=, "
		    "policy=, audit-db=, audit-failure=, audit-journal-size=, audit-forward=, "
		    "audit-seal=, "
		    "log=, "
		    "recovery-key, recovery-key-file=, "
		    "no-passthrough, strict-forms, io-uring, nonempty and kernel flags such as "
		    "nosuid,nodev "
		    "(see mount.wardfs(8)); mount -s ignores unknown options\n",
		    h->prog, tok, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}
