/*
 * audit_seal.h - the sealing halves of `wardfs audit`: seal-init, and what
 * verify adds with --verify-key (cmd_audit.c parses the options).
 */
#ifndef WARDFS_CLI_AUDIT_SEAL_H
#define WARDFS_CLI_AUDIT_SEAL_H

#include <stdint.h>

#include "audit.h"

/* seal-init: out NULL prints the key on stdout. The exit status. */
int wfs_audit_seal_init_cmd(struct wfs_audit_db *db, const char *db_path, const char *out,
			    uint64_t rows, uint64_t interval_s);

/* verify --verify-key: prints the seals' verdict after the chain's
 * (chain_status: 0 intact, 1 broken). The exit status: 1 broken, 3 not
 * verifiable, 0 ok. */
int wfs_audit_seal_verify_cmd(struct wfs_audit_db *db, const char *db_path, const char *key,
			      const char *vkey, const char *checkpoints, int chain_status,
			      int64_t chain_rows);

#endif
