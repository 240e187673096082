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
 * The record is plain text, one "key value" per line, written atomically
 * (a temporary file renamed over it):
 *   id 0123456789abcdef0123456789abcdef
 *   created 1733300000000000000
 *   path /var/lib/wardfs/audit.db
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

#define RECORD	   "audit-db"
#define RECORD_TMP "audit-db.tmp"

struct record {
	struct wfs_audit_identity ident;
	char path[PATH_MAX];
};

/* 0, -ENOENT when there is no record, -EINVAL when it cannot be read. */
static int read_record(int dfd, struct record *rec)
{
	char buf[PATH_MAX + 256];
	memset(rec, 0, sizeof *rec);
	int fd = openat(dfd, RECORD, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "id ", 3))
			snprintf(rec->ident.id, sizeof rec->ident.id, "%s", line + 3);
		else if (!strncmp(line, "created ", 8))
			rec->ident.created_ns = strtoll(line + 8, NULL, 10);
		else if (!strncmp(line, "path ", 5))
			snprintf(rec->path, sizeof rec->path, "%s", line + 5);
	}
	return strlen(rec->ident.id) == WFS_AUDIT_ID_LEN ? 0 : -EINVAL;
}

static int write_record(int dfd, const struct wfs_audit_identity *id, const char *path)
{
	char buf[PATH_MAX + 256];
	int len = snprintf(buf, sizeof buf, "id %s\ncreated %" PRId64 "\npath %s\n", id->id,
			   id->created_ns, path);
	if (len < 0 || (size_t)len >= sizeof buf)
		return -ENAMETOOLONG;
	int fd = openat(dfd, RECORD_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (!r && renameat(dfd, RECORD_TMP, dfd, RECORD) < 0)
		r = -errno;
	if (r)
		unlinkat(dfd, RECORD_TMP, 0);
	else
		fsync(dfd);
	return r;
}

static void chain_break(const char *detail)
{
	fprintf(stderr, "wardfs: warning: %s\n", detail);
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_CHAIN_BREAK, .allowed = true, .detail = detail};
	wfs_audit_record(wfs.audit, &ev);
}

static void replaced(const struct record *was, const struct wfs_audit_identity *now)
{
	char t_was[64], t_now[64], detail[PATH_MAX + 512];
	wfs_audit_format_time(was->ident.created_ns, t_was, sizeof t_was);
	wfs_audit_format_time(now->created_ns, t_now, sizeof t_now);
	snprintf(detail, sizeof detail,
		 "this audit database (id %s, created %s) is %s the one this vault wrote to "
		 "before (id %s, created %s, at '%s'): the vault's earlier rows are not here",
		 now->id, t_now, now->created_ns > was->ident.created_ns ? "younger than" : "not",
		 was->ident.id, t_was, was->path);
	chain_break(detail);
}

void wfs_audit_lineage_check(const char *db_path)
{
	int dfd =
		openat(wfs.root_fd, WFS_VAULT_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return; /* no vault directory: a mount without keys */
	struct wfs_audit_identity now;
	struct record was;
	wfs_audit_identity(wfs.audit, &now);
	int r = read_record(dfd, &was);
	if (r == -EINVAL) {
		char detail[PATH_MAX + 256];
		snprintf(detail, sizeof detail,
			 "the vault's record of its audit database ('%s/%s/%s') is unreadable: "
			 "the vault's earlier rows may be in another database",
			 wfs.o->backing, WFS_VAULT_DIR, RECORD);
		chain_break(detail);
	} else if (r == 0 && strcmp(was.ident.id, now.id)) {
		replaced(&was, &now);
	}
	if (r || strcmp(was.ident.id, now.id) || strcmp(was.path, db_path)) {
		int w = write_record(dfd, &now, db_path);
		if (w)
			fprintf(stderr,
				"wardfs: warning: cannot record the audit database's identity in "
				"'%s/%s/%s': %s\n",
				wfs.o->backing, WFS_VAULT_DIR, RECORD, strerror(-w));
	}
	close(dfd);
}
