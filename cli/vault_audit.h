/*
 * vault_audit.h - audit rows for admins' commands on a vault (vault_audit.c).
 * Apart from vault.h, whose helpers need only the crypto library.
 */
#ifndef WARDFS_VAULT_AUDIT_H
#define WARDFS_VAULT_AUDIT_H

#include "audit.h"

/* An audit row for an admin's action on the vault, refused (err) or done,
 * in db_path or (NULL) the database the vault's daemon last wrote to;
 * nothing when there is none. */
void wfs_vault_audit(const char *backing, const char *db_path, enum wfs_audit_kind kind, int err,
		     const char *detail);

#endif
