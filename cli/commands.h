/*
 * commands.h - the wardfs subcommands. Each takes argc/argv starting at its
 * own name, prints usage for --help, and returns the process exit status.
 */
#ifndef WARDFS_COMMANDS_H
#define WARDFS_COMMANDS_H

int wfs_cmd_mount(int argc, char **argv);
int wfs_cmd_umount(int argc, char **argv);
int wfs_cmd_status(int argc, char **argv);
int wfs_cmd_reload(int argc, char **argv);
int wfs_cmd_policy(int argc, char **argv);
int wfs_cmd_init(int argc, char **argv);
int wfs_cmd_passwd(int argc, char **argv);
int wfs_cmd_migrate(int argc, char **argv);
int wfs_cmd_fsck(int argc, char **argv);
int wfs_cmd_audit(int argc, char **argv);
int wfs_cmd_setup_home(int argc, char **argv);
int wfs_cmd_key(int argc, char **argv);
int wfs_cmd_lock(int argc, char **argv);
int wfs_cmd_unlock(int argc, char **argv);

/* The mount(8) helper: argv[0] is mount.wardfs or mount.fuse.wardfs. */
int wfs_mount_helper(int argc, char **argv);

#endif
