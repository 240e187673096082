/*
 * audit_row.c - what admins do to a vault outside a mount is audited too:
 * a failed unlock at mount, a passphrase change, a migrate (issue 16). The
 * row goes to the database the vault last wrote to, as its daemon recorded
 * in BACKING/.wardfs/audit-db (daemon/audit_lineage.c), or to the one the
 * command was given. Best effort: a vault never audited, or a database
 * that cannot be opened, is said on stderr and does not fail the command.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "say.h"
#include "vault.h"

/* The database the vault's daemon last wrote to, into db; 0 or -errno. */
static int recorded_db(const char *backing, char *db, size_t len)
{
	char dir[PATH_MAX];
	struct wfs_audit_lineage rec;
	snprintf(dir, sizeof dir, "%s/" WFS_VAULT_DIR, backing);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = wfs_audit_lineage_read(dfd, &rec);
	close(dfd);
	if (!r)
		snprintf(db, len, "%s", rec.path);
	return r;
}

void wfs_vault_audit(const char *backing, const char *db_path, const char *by,
		     enum wfs_audit_kind kind, int err, const char *detail)
{
	char db[PATH_MAX], msg[256];
	if (db_path)
		snprintf(db, sizeof db, "%s", db_path);
	else if (recorded_db(backing, db, sizeof db) != 0)
		return; /* never mounted with an audit database: nowhere to tell */
	struct wfs_audit *a = NULL;
	struct wfs_audit_opts o = {.db_path = db, .mount_id = backing};
	if (wfs_audit_open(&o, &a, msg, sizeof msg) != 0) {
		vault_error("cannot record this in the audit database '%s': %s", db, msg);
		return;
	}
	struct wfs_audit_event ev = {
		.kind = kind,
		.path = "/",
		.allowed = err == 0,
		.err = err,
		.uid = getuid(),
		.gid = getgid(),
		.pid = getpid(),
		.comm = by,
		.detail = detail,
	};
	wfs_audit_record(a, &ev);
	wfs_audit_close(a);
}
