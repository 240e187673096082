/*
 * audit_lineage.c - the vault remembers which audit database it writes to.
 *
 * A vault's audit rows live in a database beside neither: deleting it (or
 * its directory) between two mounts, or pointing --audit-db at a new file,
 * gives a fresh database that verifies "ok" from its first row, and the
 * vault's history is silently gone (issue 22.8). So the vault keeps the
 * identity of its database (a random id made with the database, which
 * moves and is copied with the file; audit.h) in BACKING/.wardfs/audit-db.
 * At mount, another id there means the rows before are not in this
 * database: that becomes a chain-break row, which `audit verify` reports,
 * and the record is rewritten for the database now in use.
 *
 * The record's format is the audit library's (audit/lineage.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"

static void chain_break(struct wfs_fs *fs, const char *detail)
{
	fprintf(stderr, "wardfs: warning: %s\n", detail);
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_CHAIN_BREAK, .allowed = true, .detail = detail};
	wfs_audit_record(fs->audit, &ev);
}

static void replaced(struct wfs_fs *fs, const struct wfs_audit_lineage *was,
		     const struct wfs_audit_identity *now)
{
	char t_was[64], t_now[64], detail[PATH_MAX + 512];
	wfs_audit_format_time(was->ident.created_ns, t_was, sizeof t_was);
	wfs_audit_format_time(now->created_ns, t_now, sizeof t_now);
	snprintf(detail, sizeof detail,
		 "this audit database (id %s, created %s) is %s the one this vault wrote to "
		 "before (id %s, created %s, at '%s'): the vault's earlier rows are not here",
		 now->id, t_now, now->created_ns > was->ident.created_ns ? "younger than" : "not",
		 was->ident.id, t_was, was->path);
	chain_break(fs, detail);
}

void wfs_fs_check_audit_lineage(struct wfs_fs *fs, const char *db_path)
{
	int dfd =
		openat(fs->root_fd, WFS_VAULT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return; /* no vault directory: a mount without keys */
	struct wfs_audit_identity now;
	struct wfs_audit_lineage was;
	wfs_audit_identity(fs->audit, &now);
	int r = wfs_audit_lineage_read(dfd, &was);
	if (r == -EINVAL) {
		char detail[PATH_MAX + 256];
		snprintf(detail, sizeof detail,
			 "the vault's record of its audit database ('%s/%s/%s') is unreadable: "
			 "the vault's earlier rows may be in another database",
			 fs->o->backing, WFS_VAULT_DIR, WFS_AUDIT_LINEAGE_FILE);
		chain_break(fs, detail);
	} else if (r == 0 && strcmp(was.ident.id, now.id)) {
		replaced(fs, &was, &now);
	}
	if (r || strcmp(was.ident.id, now.id) || strcmp(was.path, db_path)) {
		int w = wfs_audit_lineage_write(dfd, &now, db_path);
		if (w)
			fprintf(stderr,
				"wardfs: warning: cannot record the audit database's identity in "
				"'%s/%s/%s': %s\n",
				fs->o->backing, WFS_VAULT_DIR, WFS_AUDIT_LINEAGE_FILE,
				strerror(-w));
	}
	close(dfd);
}
