/*
 * prune.c - deletes rows older than a cutoff (a prefix of the chain by id),
 * after verifying them, and records an authenticated anchor (the last
 * pruned id and its MAC) so the rest of the chain stays verifiable. The
 * paths no remaining row uses go too. Deletes in chunks so a running
 * daemon's writer is never blocked for long.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit_internal.h"

#define CHUNK 10000

static int64_t one_int(sqlite3 *db, const char *sql, int64_t arg, bool *null)
{
	sqlite3_stmt *st;
	*null = true;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL))
		return 0;
	sqlite3_bind_int64(st, 1, arg);
	int64_t v = 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		v = sqlite3_column_int64(st, 0);
		*null = false;
	}
	sqlite3_finalize(st);
	return v;
}

static int chunk(sqlite3 *db, bool paths, const unsigned char *key, int64_t to, int64_t now,
		 int64_t cutoff, int64_t *anchor_row, int64_t *deleted)
{
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	unsigned char mac[AUD_MAC_LEN], auth[AUD_MAC_LEN];
	rc = sqlite3_prepare_v2(db, "SELECT mac FROM events WHERE id = ?", -1, &st, NULL);
	if (!rc) {
		sqlite3_bind_int64(st, 1, to);
		rc = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == AUD_MAC_LEN
			     ? SQLITE_OK
			     : SQLITE_CORRUPT;
		if (!rc)
			memcpy(mac, sqlite3_column_blob(st, 0), AUD_MAC_LEN);
		sqlite3_finalize(st);
	}
	/* Paths only these rows used go with them (schema v3). The anchor
	 * moves in this same transaction, which tells a running writer to
	 * drop its cache of path ids (paths.c). */
	if (!rc && paths)
		rc = sqlite3_prepare_v2(db,
					"DELETE FROM paths WHERE id IN (SELECT path_id FROM events "
					"WHERE id <= ?1) AND NOT EXISTS (SELECT 1 FROM events e "
					"WHERE e.path_id = paths.id AND e.id > ?1)",
					-1, &st, NULL);
	if (!rc && paths) {
		sqlite3_bind_int64(st, 1, to);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
		sqlite3_finalize(st);
	}
	if (!rc)
		rc = sqlite3_prepare_v2(db, "DELETE FROM events WHERE id <= ?", -1, &st, NULL);
	if (!rc) {
		sqlite3_bind_int64(st, 1, to);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
		sqlite3_finalize(st);
		*deleted += sqlite3_changes(db);
	}
	if (!rc) {
		aud_anchor_auth(key, to, mac, now, cutoff, *deleted, auth);
		rc = sqlite3_prepare_v2(
			db,
			*anchor_row ? "UPDATE anchors SET time_ns = ?1, cutoff_ns = ?2, pruned_to "
				      "= ?3, "
				      "rows_deleted = ?4, mac = ?5, auth = ?6 WHERE id = ?7"
				    : "INSERT INTO anchors (time_ns, cutoff_ns, pruned_to, "
				      "rows_deleted, "
				      "mac, auth) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			-1, &st, NULL);
	}
	if (!rc) {
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2, cutoff);
		sqlite3_bind_int64(st, 3, to);
		sqlite3_bind_int64(st, 4, *deleted);
		sqlite3_bind_blob(st, 5, mac, AUD_MAC_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, auth, AUD_MAC_LEN, SQLITE_STATIC);
		if (*anchor_row)
			sqlite3_bind_int64(st, 7, *anchor_row);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
		sqlite3_finalize(st);
		if (!rc && !*anchor_row)
			*anchor_row = sqlite3_last_insert_rowid(db);
	}
	if (!rc)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int wfs_audit_prune(struct wfs_audit_db *d, const char *key_path, int64_t cutoff_ns,
		    struct wfs_audit_prune_result *res, char *err, size_t errlen)
{
	memset(res, 0, sizeof *res);
	unsigned char key[AUD_KEY_LEN];
	int r = aud_key_for_db(d->path, key_path, key, err, errlen);
	if (r)
		return r;
	bool null1, null2;
	int64_t to =
		one_int(d->db,
			"SELECT coalesce((SELECT min(id) FROM events WHERE time_ns >= ?1) - 1, "
			"(SELECT max(id) FROM events))",
			cutoff_ns, &null1);
	int64_t first = one_int(d->db, "SELECT min(id) FROM events", 0, &null2);
	if (null1 || null2 || to < first)
		goto out; /* nothing older than the cutoff */

	/* Refuse to erase evidence of tampering. */
	struct wfs_audit_verify_result vr;
	sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL);
	r = aud_chain_verify(d->db, key, to, &vr, NULL);
	sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
	if (r) {
		if (r > 0) {
			snprintf(err, errlen,
				 "refusing to prune '%s': %s (see 'wardfs audit verify')", d->path,
				 vr.reason);
			r = -EBADMSG;
		} else {
			snprintf(err, errlen, "cannot verify '%s' before pruning: %s", d->path,
				 sqlite3_errmsg(d->db));
		}
		goto out;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, anchor_row = 0;
	for (int64_t from = first; from <= to; from += CHUNK) {
		int64_t upto = from + CHUNK - 1 < to ? from + CHUNK - 1 : to;
		int rc = chunk(d->db, d->version >= 3, key, upto, now, cutoff_ns, &anchor_row,
			       &res->rows_deleted);
		if (rc) {
			snprintf(err, errlen, "cannot prune '%s': %s", d->path,
				 rc == SQLITE_CORRUPT ? "a row to prune has no MAC"
						      : sqlite3_errmsg(d->db));
			r = aud_sqlite_errno(rc);
			goto out;
		}
		res->pruned_to = upto;
	}
out:
	explicit_bzero(key, sizeof key);
	return r;
}
