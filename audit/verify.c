/*
 * verify.c - recomputes the audit chain: from the latest prune anchor (or
 * the start), each row's MAC must equal HMAC(key, prev_mac || row), ids
 * must be consecutive, and the last row must be the authenticated chain
 * head. Reports the first edited, inserted or deleted row.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

int aud_anchor_auth(const unsigned char *key, int64_t pruned_to, const unsigned char *mac,
		    int64_t time_ns, int64_t cutoff_ns, int64_t rows,
		    unsigned char out[AUD_MAC_LEN])
{
	unsigned char tmp[4 * 9 + 5 + AUD_MAC_LEN];
	struct aud_buf b = {tmp, 0, sizeof tmp};
	aud_enc_int(&b, pruned_to);
	aud_enc_text(&b, (const char *)mac, AUD_MAC_LEN);
	aud_enc_int(&b, time_ns);
	aud_enc_int(&b, cutoff_ns);
	aud_enc_int(&b, rows);
	return aud_mac_label(key, "wardfs-audit-anchor", tmp, b.len, out);
}

static bool blob_is(sqlite3_stmt *st, int col, const unsigned char *mac)
{
	return sqlite3_column_type(st, col) == SQLITE_BLOB &&
	       sqlite3_column_bytes(st, col) == AUD_MAC_LEN &&
	       !memcmp(sqlite3_column_blob(st, col), mac, AUD_MAC_LEN);
}

static int bad(struct wfs_audit_verify_result *r, int64_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(struct wfs_audit_verify_result *r, int64_t id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	r->bad_id = id;
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
	return 1;
}

/* Chain position from the latest anchor; 1 if the anchor is forged. */
static int load_anchor(sqlite3 *db, const unsigned char *key, struct wfs_audit_verify_result *r,
		       unsigned char *prev, int64_t *expect)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT pruned_to, mac, time_ns, cutoff_ns, rows_deleted, auth "
				    "FROM anchors ORDER BY pruned_to DESC, id DESC LIMIT 1",
				    -1, &st, NULL);
	if (rc)
		return aud_sqlite_errno(rc);
	memset(prev, 0, AUD_MAC_LEN);
	*expect = 1;
	int ret = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t to = sqlite3_column_int64(st, 0);
		unsigned char mac[AUD_MAC_LEN] = {0}, auth[AUD_MAC_LEN];
		if (sqlite3_column_bytes(st, 1) == AUD_MAC_LEN)
			memcpy(mac, sqlite3_column_blob(st, 1), AUD_MAC_LEN);
		aud_anchor_auth(key, to, mac, sqlite3_column_int64(st, 2),
				sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), auth);
		if (!blob_is(st, 5, auth)) {
			ret = bad(r, to, "the prune anchor at row %lld is forged or edited",
				  (long long)to);
		} else {
			memcpy(prev, mac, AUD_MAC_LEN);
			*expect = to + 1;
			r->anchor_id = to;
		}
	} else if (rc != SQLITE_DONE) {
		ret = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return ret;
}

struct head {
	bool present;
	int64_t id;
	unsigned char mac[AUD_MAC_LEN];
};

static int load_head(sqlite3 *db, const unsigned char *key, struct wfs_audit_verify_result *r,
		     struct head *h)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT last_id, last_mac, auth FROM chain WHERE k = 1", -1,
				    &st, NULL);
	if (rc)
		return aud_sqlite_errno(rc);
	memset(h, 0, sizeof *h);
	int ret = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		h->present = true;
		h->id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == AUD_MAC_LEN)
			memcpy(h->mac, sqlite3_column_blob(st, 1), AUD_MAC_LEN);
		unsigned char auth[AUD_MAC_LEN];
		aud_head_auth(key, h->id, h->mac, auth);
		if (!blob_is(st, 2, auth))
			ret = bad(r, h->id, "the chain head (row %lld) is forged or edited",
				  (long long)h->id);
	} else if (rc != SQLITE_DONE) {
		ret = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return ret;
}

static bool is_reverse(sqlite3_stmt *st, int pcol, int rcol)
{
	if (sqlite3_column_type(st, pcol) != SQLITE_TEXT ||
	    sqlite3_column_type(st, rcol) != SQLITE_TEXT)
		return false;
	const char *p = (const char *)sqlite3_column_text(st, pcol);
	int n = sqlite3_column_bytes(st, pcol);
	const char *q = (const char *)sqlite3_column_text(st, rcol);
	if (!p || !q || sqlite3_column_bytes(st, rcol) != n)
		return false;
	for (int i = 0; i < n; i++)
		if (q[i] != p[n - 1 - i])
			return false;
	return true;
}

static bool same_text(sqlite3_stmt *st, int a, int b)
{
	int n = sqlite3_column_bytes(st, a);
	return sqlite3_column_type(st, a) == SQLITE_TEXT &&
	       sqlite3_column_type(st, b) == SQLITE_TEXT && sqlite3_column_bytes(st, b) == n &&
	       !memcmp(sqlite3_column_text(st, a), sqlite3_column_text(st, b), (size_t)n);
}

/*
 * What query's path filter reads is derived from path and lies outside the
 * MAC: v2's rpath column, v3's path_id and the path and rpath it points
 * to. An edit there alone would hide a row from path queries (or show it
 * under another path), so verify checks them too. Columns from `col` on:
 * v2 rpath; v3 path_id, paths.path, paths.rpath.
 */
enum derived { NONE, RPATH_COLUMN, PATHS_TABLE };

static enum derived derived_kind(sqlite3 *db)
{
	static const char *probe[] = {"SELECT path_id FROM events LIMIT 0",
				      "SELECT rpath FROM events LIMIT 0"};
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, probe[i], -1, &st, NULL) == SQLITE_OK) {
			sqlite3_finalize(st);
			return i == 0 ? PATHS_TABLE : RPATH_COLUMN;
		}
	}
	return NONE;
}

static const char *derived_wrong(sqlite3_stmt *st, enum derived kind, int col)
{
	int path = 1 + AUD_ROW_PATH;
	bool null_path = sqlite3_column_type(st, path) == SQLITE_NULL;
	switch (kind) {
	case RPATH_COLUMN:
		if (null_path ? sqlite3_column_type(st, col) != SQLITE_NULL
			      : !is_reverse(st, path, col))
			return "its rpath is not its path reversed";
		return NULL;
	case PATHS_TABLE:
		if (null_path)
			return sqlite3_column_type(st, col) == SQLITE_NULL
				       ? NULL
				       : "it has a path_id but no path";
		if (!same_text(st, path, col + 1))
			return "its path_id does not name its path";
		if (!is_reverse(st, col + 1, col + 2))
			return "the rpath of its path in paths is not the path reversed";
		return NULL;
	default:
		return NULL;
	}
}

/* "e.time_ns,e.mount,...": AUD_ROW_COLS of events aliased e. */
static void qualified_cols(char *buf, size_t len)
{
	size_t o = 0;
	for (const char *c = AUD_ROW_COLS; *c && o + 3 < len;) {
		size_t n = strcspn(c, ",");
		o += (size_t)snprintf(buf + o, len - o, "%se.%.*s", o ? "," : "", (int)n, c);
		c += n + (c[n] == ',');
	}
}

int aud_chain_verify(sqlite3 *db, const unsigned char *key, int64_t upto,
		     struct wfs_audit_verify_result *r, unsigned char *last_mac)
{
	memset(r, 0, sizeof *r);
	/* set by the loaders; initialised too, as the analyzer cannot see
	 * that a loader returning an error makes this return first */
	unsigned char prev[AUD_MAC_LEN] = {0};
	int64_t expect = 1;
	struct head h = {0};
	int ret = load_anchor(db, key, r, prev, &expect);
	if (!ret)
		ret = load_head(db, key, r, &h);
	if (ret)
		return ret;
	sqlite3_stmt *st;
	char cols[512], sql[1024];
	enum derived kind = derived_kind(db);
	static const char *extra[] = {[NONE] = "",
				      [RPATH_COLUMN] = ",e.rpath",
				      [PATHS_TABLE] = ",e.path_id,p.path,p.rpath"};
	qualified_cols(cols, sizeof cols);
	snprintf(sql, sizeof sql, "SELECT e.id,%s,e.mac%s FROM events e%s%s ORDER BY e.id", cols,
		 extra[kind], kind == PATHS_TABLE ? " LEFT JOIN paths p ON p.id = e.path_id" : "",
		 upto > 0 ? " WHERE e.id <= ?" : "");
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc)
		return aud_sqlite_errno(rc);
	if (upto > 0)
		sqlite3_bind_int64(st, 1, upto);
	struct aud_buf b = {0};
	bool pending = false;
	int64_t pend_id = 0, breaks = 0, break_id = 0;
	char break_why[160] = "";
	unsigned char pend_mac[AUD_MAC_LEN];
	const int maccol = AUD_ROW_NFIELDS + 1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct aud_row row;
		aud_row_from_columns(st, 1, &row);
		b.len = 0;
		if ((ret = aud_row_encode(&b, &row)))
			break;
		unsigned char mac[AUD_MAC_LEN];
		if (pending) {
			/* Does this row chain from the suspect row's stored MAC? */
			aud_mac_row(key, pend_mac, id, b.p, b.len, mac);
			ret = blob_is(st, maccol, mac) && id == pend_id + 1
				      ? bad(r, pend_id,
					    "row %lld: edited (its fields do not match "
					    "its MAC)",
					    (long long)pend_id)
				      : bad(r, pend_id,
					    "row %lld: inserted or edited (neither it "
					    "nor the next row chain)",
					    (long long)pend_id);
			break;
		}
		if (id < expect) {
			ret = bad(r, id,
				  "row %lld: inserted (the chain continues at row %lld after the "
				  "prune anchor)",
				  (long long)id, (long long)expect);
			break;
		}
		if (id > expect) {
			ret = id == expect + 1
				      ? bad(r, expect, "row %lld: deleted", (long long)expect)
				      : bad(r, expect, "rows %lld..%lld: deleted",
					    (long long)expect, (long long)id - 1);
			break;
		}
		aud_mac_row(key, prev, id, b.p, b.len, mac);
		if (blob_is(st, maccol, mac)) {
			const char *why = derived_wrong(st, kind, maccol + 1);
			if (why) {
				ret = bad(r, id, "row %lld: edited (%s)", (long long)id, why);
				break;
			}
			/* A chain-break row is authentic: the writer found the
			 * head missing or wrong (writer.c) and says so. */
			if (sqlite3_column_type(st, 3) == SQLITE_TEXT &&
			    !strcmp((const char *)sqlite3_column_text(st, 3), "chain-break") &&
			    !breaks++) {
				break_id = id;
				snprintf(break_why, sizeof break_why, "%s",
					 sqlite3_column_type(st, AUD_ROW_NFIELDS) == SQLITE_TEXT
						 ? (const char *)sqlite3_column_text(
							   st, AUD_ROW_NFIELDS)
						 : "");
			}
			memcpy(prev, mac, AUD_MAC_LEN);
			expect++;
			r->rows++;
			continue;
		}
		if (sqlite3_column_type(st, maccol) != SQLITE_BLOB ||
		    sqlite3_column_bytes(st, maccol) != AUD_MAC_LEN) {
			ret = bad(r, id, "row %lld: inserted (it has no MAC)", (long long)id);
			break;
		}
		if (h.present && id > h.id) {
			ret = bad(r, id, "row %lld: inserted (after the chain head, row %lld)",
				  (long long)id, (long long)h.id);
			break;
		}
		pending = true;
		pend_id = id;
		memcpy(pend_mac, sqlite3_column_blob(st, maccol), AUD_MAC_LEN);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE && !ret)
		ret = aud_sqlite_errno(rc);
	sqlite3_finalize(st);
	aud_buf_free(&b);
	if (ret)
		return ret;
	if (pending)
		return h.present && h.id == pend_id && !memcmp(h.mac, pend_mac, AUD_MAC_LEN)
			       ? bad(r, pend_id,
				     "row %lld: edited (its fields do not match its MAC)",
				     (long long)pend_id)
			       : bad(r, pend_id, "row %lld: edited or inserted",
				     (long long)pend_id);
	if (upto <= 0 && h.present) {
		int64_t last = expect - 1;
		if (last < h.id)
			return last + 1 == h.id
				       ? bad(r, h.id, "row %lld: deleted (it was the last row)",
					     (long long)h.id)
				       : bad(r, last + 1, "rows %lld..%lld: deleted (at the end)",
					     (long long)last + 1, (long long)h.id);
		if (last == h.id && memcmp(prev, h.mac, AUD_MAC_LEN))
			return bad(r, last, "row %lld: does not match the chain head",
				   (long long)last);
	}
	/* The head is written with every row: rows (or a prune anchor) without
	 * one means the newest rows were deleted together with it. */
	if (upto <= 0 && !h.present && expect > 1)
		return bad(r, expect,
			   "the chain head is missing while rows exist up to row %lld: newer "
			   "rows may have been deleted with it",
			   (long long)expect - 1);
	if (upto <= 0 && breaks)
		return bad(r, break_id, "row %lld: a chain break was recorded: %s%s",
			   (long long)break_id, break_why,
			   breaks > 1 ? " (and more chain breaks after it)" : "");
	if (last_mac)
		memcpy(last_mac, prev, AUD_MAC_LEN);
	return 0;
}

int aud_key_for_db(const char *db_path, const char *key_path, unsigned char key[AUD_KEY_LEN],
		   char *err, size_t errlen)
{
	char *kp = NULL;
	if (!key_path) {
		if (asprintf(&kp, "%s.key", db_path) < 0)
			return -ENOMEM;
		key_path = kp;
	}
	int r = aud_key_load(key_path, false, key, err, errlen);
	free(kp);
	return r;
}

int wfs_audit_verify(struct wfs_audit_db *d, const char *key_path,
		     struct wfs_audit_verify_result *r, char *err, size_t errlen)
{
	unsigned char key[AUD_KEY_LEN];
	memset(r, 0, sizeof *r);
	int ret = aud_key_for_db(d->path, key_path, key, err, errlen);
	if (ret)
		return ret;
	sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL); /* one snapshot */
	ret = aud_chain_verify(d->db, key, 0, r, NULL);
	sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
	explicit_bzero(key, sizeof key);
	if (ret < 0)
		snprintf(err, errlen, "cannot verify '%s': %s", d->path, sqlite3_errmsg(d->db));
	return ret;
}
