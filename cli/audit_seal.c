/*
 * audit_seal.c - `wardfs audit seal-init` and the seal report of `wardfs
 * audit verify --verify-key` (docs/audit.md "Sealing"); the sealing
 * itself is in audit/ (seal*.c).
 */
#include <stdio.h>
#include <unistd.h>

#include "audit_seal.h"
#include "usage.h"

int wfs_audit_seal_init_cmd(struct wfs_audit_db *db, const char *db_path, const char *out,
			    uint64_t rows, uint64_t interval_s)
{
	char err[768];
	int r;
	if (out) {
		r = wfs_audit_seal_init_file(db, rows, interval_s, out, err, sizeof err);
	} else {
		fflush(stdout);
		r = wfs_audit_seal_init(db, rows, interval_s, STDOUT_FILENO, err, sizeof err);
	}
	if (r) {
		error("%s", err);
		return 1;
	}
	if (out)
		fprintf(stderr,
			"wardfs audit seal-init: wrote the verification key of '%s' to '%s': take "
			"it "
			"off this host and delete it here\n",
			db_path, out);
	else
		fprintf(stderr,
			"wardfs audit seal-init: above is the verification key of '%s'; it is "
			"shown "
			"once: keep it off this host\n",
			db_path);
	return 0;
}

int wfs_audit_seal_verify_cmd(struct wfs_audit_db *db, const char *db_path, const char *key,
			      const char *vkey, const char *checkpoints, int chain_status,
			      int64_t chain_rows)
{
	char err[768];
	struct wfs_audit_seal_result r;
	struct wfs_audit_seal_opts o = {
		.vkey_path = vkey, .key_path = key, .checkpoints = checkpoints};
	int v = wfs_audit_seal_verify(db, &o, &r, err, sizeof err);
	if (v < 0) {
		error("%s", err);
		return 1;
	}
	if (r.seals)
		printf("sealed: rows %lld..%lld in %llu seals (epochs 0..%llu)%s\n",
		       (long long)r.sealed_first, (long long)r.sealed_to,
		       (unsigned long long)r.seals, (unsigned long long)r.seals - 1,
		       v == WFS_SEAL_TAMPERED ? "" : ", unaltered");
	if (r.unsealed)
		printf("%lld rows unsealed (after row %lld): not covered by a seal yet\n",
		       (long long)r.unsealed, (long long)r.sealed_to);
	if (checkpoints)
		printf("checkpoints: %llu of this database matched%s\n",
		       (unsigned long long)r.checkpoints,
		       r.malformed ? " (some lines naming wardfs-checkpoint are malformed)" : "");
	if (r.note[0])
		printf("note: %s\n", r.note);
	if (v == WFS_SEAL_TAMPERED) {
		error("'%s': %s", db_path, r.reason);
		return 1;
	}
	if (chain_status)
		return 1;
	if (v == WFS_SEAL_UNVERIFIABLE) {
		error("'%s': not verified: %s", db_path, r.reason);
		return 3;
	}
	printf("ok: %lld rows verified by the chain; rows %lld..%lld sealed and verified with the "
	       "verification key\n",
	       (long long)chain_rows, (long long)r.sealed_first, (long long)r.sealed_to);
	return 0;
}
