/*
 * series.c - the weekly report's time series (`wardfs audit report`):
 * opens and creates per time bucket and class, and denied rows per bucket,
 * in one grouped scan of the rows a filter selects.
 */
#include <errno.h>
#include <stdio.h>

#include "audit_internal.h"

int wfs_audit_series(struct wfs_audit_db *d, const struct wfs_audit_filter *f, int64_t origin_ns,
		     int64_t bucket_ns, wfs_audit_series_cb cb, void *arg, char *err, size_t errlen)
{
	struct wfs_audit_filter g = *f;
	struct aud_where w;
	sqlite3_stmt *st = NULL;
	char sql[2048];
	int r = 0, rc;

	if (bucket_ns <= 0 || f->since_ns < origin_ns) {
		snprintf(err, errlen, "bad time buckets");
		return -EINVAL;
	}
	g.limit = 0;
	g.after_id = 0;
	aud_where_build(&w, &g, d->version, false);
	/* ?1 origin, ?2 bucket width; the filter's anonymous parameters
	 * come after them (SQLite numbers a '?' after the largest so far) */
	snprintf(sql, sizeof sql,
		 "SELECT (time_ns - ?1) / ?2, coalesce(class, ''), "
		 "coalesce(sum(kind IN ('open', 'create')), 0), "
		 "coalesce(sum(decision = 'deny'), 0) FROM events%s GROUP BY 1, 2 ORDER BY 1, 2",
		 w.sql);
	rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, origin_ns);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, bucket_ns);
	if (rc == SQLITE_OK)
		rc = aud_where_bind(st, &w, 3);
	if (rc != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)))
			break;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = SQLITE_OK;
out:
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot query '%s': %s", d->path, sqlite3_errmsg(d->db));
		r = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}
