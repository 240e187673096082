/*
 * vault_args.h - what the vault commands (init, passwd, fsck, migrate and
 * `key`) share on the command line: their arguments, the one BACKING
 * operand, and the first checks.
 */
#ifndef WARDFS_VAULT_ARGS_H
#define WARDFS_VAULT_ARGS_H

#include <stdbool.h>

#include "usage.h"
#include "vault.h"

/* Everything any vault command may be given; each command's table says
 * which it takes. */
struct args {
	struct wfs_pass_opts po;
	const char *new_passfile, *policy, *audit_db;
	const char *type, *label, *escrow_public,
		*slot;			     /* `key add` / `key remove`, `passwd --slot` */
	unsigned long long kdf_mib, kdf_ops; /* 0: not given */
	bool dry_run, allow_reachable, repair, hole_damaged, yes, encrypt_names;
	char *backing;		   /* normalized copy of the first operand */
	const char *operand2_name; /* set before parse_args: a second operand is wanted */
	const char *operand2;	   /* ... and here it is */
};

/*
 * The options of opts, then exactly one BACKING operand (trailing slashes
 * dropped), and a second one when a->operand2_name names it. 0, or -1 with
 * *status the exit status (0 after --help).
 */
int parse_args(struct args *a, int argc, char **argv, const struct opt *opts, const char *help,
	       int *status);
/* A usable backing directory, or 1 after one line of error. */
int check_backing(const struct args *a);
/* 0, or -errno after one line of error. */
int crypto_start(void);

#endif
