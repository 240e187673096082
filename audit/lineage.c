/*
 * lineage.c - the record a vault keeps of the audit database it writes to.
 *
 * Deleting a vault's audit database (or pointing --audit-db at a new file)
 * gives a fresh database that verifies "ok" from its first row, and the
 * vault's history is silently gone (issue 22.8). So the vault keeps the
 * identity of its database (wfs_audit_identity) in a small file in its
 * own directory; the daemon compares it at mount, and commands run on a
 * vault outside a mount find the database there. One parser for both.
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

#include "audit.h"

#define RECORD_TMP WFS_AUDIT_LINEAGE_FILE ".tmp"

int wfs_audit_lineage_read(int dfd, struct wfs_audit_lineage *rec)
{
	char buf[PATH_MAX + 256];
	memset(rec, 0, sizeof *rec);
	int fd = openat(dfd, WFS_AUDIT_LINEAGE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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
		else if (!strncmp(line, "path /", 6))
			snprintf(rec->path, sizeof rec->path, "%s", line + 5);
	}
	return strlen(rec->ident.id) == WFS_AUDIT_ID_LEN && rec->path[0] ? 0 : -EINVAL;
}

int wfs_audit_lineage_write(int dfd, const struct wfs_audit_identity *id, const char *db_path)
{
	char buf[PATH_MAX + 256];
	int len = snprintf(buf, sizeof buf, "id %s\ncreated %" PRId64 "\npath %s\n", id->id,
			   id->created_ns, db_path);
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
	if (!r && renameat(dfd, RECORD_TMP, dfd, WFS_AUDIT_LINEAGE_FILE) < 0)
		r = -errno;
	if (r)
		unlinkat(dfd, RECORD_TMP, 0);
	else
		fsync(dfd);
	return r;
}
