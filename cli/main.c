/*
 * main.c - the `wardfs` binary: a small table that dispatches subcommands
 * (after WireGuard's wg.c) and prints usage. Called as mount.wardfs
 * or mount.fuse.wardfs it is the mount(8) helper.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "usage.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} subcommands[] = {
	{"mount", wfs_cmd_mount, "mount a backing directory over a mount point"},
	{"umount", wfs_cmd_umount, "unmount a wardfs mount"},
	{"status", wfs_cmd_status, "show a running mount's policy, keys and audit state"},
	{"reload", wfs_cmd_reload, "make running mounts read their policy again now"},
	{"lock", wfs_cmd_lock, "wipe a running mount's keys (sensitive files wait for unlock)"},
	{"unlock", wfs_cmd_unlock, "give a locked mount its keys back"},
	{"policy", wfs_cmd_policy, "check, explain and scan policies"},
	{"init", wfs_cmd_init, "create a vault in a backing directory"},
	{"passwd", wfs_cmd_passwd, "change a vault's passphrase"},
	{"key", wfs_cmd_key, "list, add and remove a vault's key slots; make escrow keys"},
	{"migrate", wfs_cmd_migrate, "convert files whose form on disk disagrees with the policy"},
	{"fsck", wfs_cmd_fsck, "verify every block of every encrypted file"},
	{"audit", wfs_cmd_audit,
	 "query, tail, verify, prune, seal and report on the audit database"},
	{"setup-home", wfs_cmd_setup_home,
	 "move a user's home into a new vault, encrypting as the policy says"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: wardfs <command> [<args>]\n\n"
		   "wardfs mounts a backing directory and serves each path as public\n"
		   "(passthrough), sensitive (encrypted) or deny, as an admin policy says,\n"
		   "recording every open in an audit database.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'wardfs <command> --help' shows a command's options.\n");
}

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? basename(argv[0]) : "wardfs";

	set_prog("wardfs"); /* also makes the vault library speak as the CLI */
	if (!strcmp(self, "mount.wardfs") || !strcmp(self, "mount.fuse.wardfs"))
		return wfs_mount_helper(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("wardfs 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name)) {
			push_prog(subcommands[i].name); /* "wardfs mount: ..." */
			return subcommands[i].fn(argc - 1, argv + 1);
		}
	return error("'%s' is not a wardfs command; see 'wardfs --help'", argv[1]);
}
