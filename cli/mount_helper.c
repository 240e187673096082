/*
 * mount_helper.c - the mount(8) helper. Installed as mount.wardfs and
 * mount.fuse.wardfs (links to the wardfs binary; mount -t fuse.wardfs runs
 * the latter), it translates the helper calling convention
 *
 *   mount.wardfs BACKING MOUNTPOINT [-sfnv] [-o OPT,...] [-t TYPE]
 *
 * into `wardfs mount`, so /etc/fstab, mount(8) and pam_mount work. (umount(8)
 * needs no helper: the daemon drains and exits when the kernel unmounts.) fstab options name the
 * mount command's long options (passfile=, policy=, ...); mount(8)-only options are ignored; kernel
 * mount flags go to FUSE; anything else is refused (or ignored with a warning under -s, as
 * mount(8)'s sloppy mode asks).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "usage.h"

#define HELPER_ARGS_MAX 64

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
	{"log", "--log", true},
	{"recovery-key", "--recovery-key", false},
	{"recovery-key-file", "--recovery-key-file", true},
	{"no-passthrough", "--no-passthrough", false},
	{"strict-forms", "--strict-forms", false},
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

struct helper {
	const char *prog;
	char *argv[HELPER_ARGS_MAX];
	int argc;
	char fuse[1024];
};

static int push(struct helper *h, char *arg)
{
	if (h->argc >= HELPER_ARGS_MAX - 1) {
		error("too many options");
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
		error("mount options too long");
		return -E2BIG;
	}
	snprintf(h->fuse + used, sizeof(h->fuse) - used, "%s%s", used ? "," : "", opt);
	return 0;
}

/* Translates one comma-separated -o list (modified in place). */
static int translate(struct helper *h, char *opts, bool sloppy)
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
				error("option '%s' %s; see mount.wardfs(8)", tok,
				      mapped[i].value ? "needs a value (NAME=VALUE)"
						      : "takes no value");
				return -EINVAL;
			}
			if ((r = push(h, (char *)mapped[i].longopt)) != 0 ||
			    (val != NULL && (r = push(h, val)) != 0))
				return r;
			continue;
		}
		if (sloppy) {
			warning("ignoring unknown option '%s'", tok);
			continue;
		}
		error("unknown mount option '%s%s%s'; wardfs takes passfile=, extpass=, "
		      "policy=, audit-db=, audit-failure=, audit-journal-size=, log=, "
		      "recovery-key, recovery-key-file=, "
		      "no-passthrough, strict-forms, nonempty and kernel flags such as "
		      "nosuid,nodev "
		      "(see mount.wardfs(8)); mount -s ignores unknown options",
		      tok, val ? "=" : "", val ? val : "");
		return -EINVAL;
	}
	return 0;
}

int wfs_mount_helper(int argc, char **argv)
{
	struct helper h = {.prog = "mount.wardfs"};
	char *opts[16];
	int nopts = 0, c, status = 32; /* mount(8)'s "mount failure" */
	bool sloppy = false, fake = false, verbose = false;

	set_prog(h.prog); /* also as mount.fuse.wardfs, as mount.wardfs(8) shows */
	if (argc == 2 && !strcmp(argv[1], "--help"))
		argv[1] = "-h";
	optind = 1;
	opterr = 0;
	while ((c = getopt(argc, argv, "sfnvho:t:N:")) != -1) {
		switch (c) {
		case 's':
			sloppy = true;
			break;
		case 'f':
			fake = true;
			break;
		case 'n':
			break; /* no mtab: there is none to write */
		case 'v':
			verbose = true;
			break;
		case 't':
			break; /* fuse.wardfs, or wardfs */
		case 'o':
			if (nopts == (int)(sizeof(opts) / sizeof(opts[0]))) {
				error("too many -o options");
				return 1;
			}
			opts[nopts++] = optarg;
			break;
		case 'h':
			printf("usage: mount.wardfs BACKING MOUNTPOINT [-sfnv] [-o "
			       "OPT[,OPT...]]\n\n"
			       "The mount(8) helper for wardfs: see mount.wardfs(8) and\n"
			       "'wardfs mount --help'. Options: passfile=FILE, extpass=CMD,\n"
			       "policy=FILE, audit-db=FILE, audit-failure=closed|open,\n"
			       "audit-journal-size=MIB, log=FILE, recovery-key,\n"
			       "recovery-key-file=FILE, no-passthrough, strict-forms, nonempty, "
			       "and kernel\n"
			       "flags (ro, nosuid, nodev, noexec, noatime, ...).\n");
			return 0;
		case 'N':
			error("mount namespaces (-N) are not supported");
			return 1;
		default:
			error("unknown option '-%c'; see mount.wardfs(8)", optopt);
			return 1;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: mount.wardfs BACKING MOUNTPOINT [-sfnv] [-o OPT,...]\n");
		return 1;
	}
	if (push(&h, "mount") != 0)
		return 1;
	for (int i = 0; i < nopts; i++) {
		char *copy = opts[i]; /* argv strings are ours to modify */

		if (translate(&h, copy, sloppy) != 0)
			return 1;
	}
	if (h.fuse[0] && (push(&h, "-o") != 0 || push(&h, h.fuse) != 0))
		return 1;
	if (push(&h, argv[optind]) != 0 || push(&h, argv[optind + 1]) != 0)
		return 1;
	if (verbose || fake) {
		fprintf(stderr, "%s: wardfs", h.prog);
		for (int i = 0; i < h.argc; i++)
			fprintf(stderr, " %s", h.argv[i]);
		fputc('\n', stderr);
	}
	if (fake)
		return 0;
	set_prog("wardfs mount"); /* its messages are wardfs mount's */
	status = wfs_cmd_mount(h.argc, h.argv);
	return status == 0 ? 0 : 32;
}
