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
 * mount(8)'s sloppy mode asks). The -o lists are translated by
 * mount_opts.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mount_opts.h"
#include "usage.h"

int wfs_mount_helper(int argc, char **argv)
{
	struct helper h = {.prog = "mount.wardfs", .msg = stderr};
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
			       "audit-journal-size=MIB, audit-forward=DEST, audit-seal=FILE,\n"
			       "log=FILE, recovery-key, recovery-key-file=FILE, no-passthrough,\n"
			       "strict-forms, io-uring, no-io-uring, nonempty, "
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
	if (helper_push(&h, "mount") != 0)
		return 1;
	for (int i = 0; i < nopts; i++) {
		char *copy = opts[i]; /* argv strings are ours to modify */

		if (helper_translate(&h, copy, sloppy) != 0)
			return 1;
	}
	if (h.fuse[0] && (helper_push(&h, "-o") != 0 || helper_push(&h, h.fuse) != 0))
		return 1;
	if (helper_push(&h, argv[optind]) != 0 || helper_push(&h, argv[optind + 1]) != 0)
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
