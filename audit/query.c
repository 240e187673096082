/*
 * query.c - the admin side's read path: open a db for queries, turn a
 * filter into an index-friendly WHERE clause, iterate rows, and compute
 * stats (top paths, executables, users, denials; totals).
 *
 * A path filter selects ids in `paths` (schema v3: one row per distinct
 * path), then rows through events_path_id. A glob with a literal prefix
 * becomes a range on paths.path (prefix <= path < prefix+1), whatever the
 * binding; one without a prefix but with a literal suffix (`*.pem`) the
 * same kind of range on rpath, the path reversed. Only globs with
 * wildcards at both ends (`*secret*`) scan, and they scan the paths, not
 * the rows. The time order is then a sort of the matching rows, unless
 * so many rows match that walking the time index to the first N of them
 * reads fewer (see path_is_dense).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

int wfs_audit_db_open(const char *path, bool writable, struct wfs_audit_db **out, char *err,
		      size_t errlen)
{
	*out = NULL;
	struct wfs_audit_db *d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path))) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = aud_db_open(path, writable ? AUD_DB_WRITE : AUD_DB_READ, &d->db, err, errlen,
			    &d->version);
	if (r) {
		free(d->path);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void wfs_audit_db_close(struct wfs_audit_db *d)
{
	if (!d)
		return;
	sqlite3_close(d->db);
	free(d->path);
	free(d);
}

int wfs_audit_db_identity(struct wfs_audit_db *d, struct wfs_audit_identity *out)
{
	return aud_db_identity(d->db, out);
}

void wfs_audit_filter_init(struct wfs_audit_filter *f)
{
	memset(f, 0, sizeof *f);
	f->uid = f->pid = -1;
}

static void add(struct aud_where *w, const char *cond)
{
	size_t n = strlen(w->sql);
	snprintf(w->sql + n, sizeof w->sql - n, "%s%s", n ? " AND " : " WHERE ", cond);
}

static void bind_int(struct aud_where *w, int64_t v)
{
	w->b[w->nb].is_text = false;
	w->b[w->nb++].i = v;
}

static void bind_text(struct aud_where *w, const char *s)
{
	w->b[w->nb].is_text = true;
	w->b[w->nb++].s = s;
}

static void cat(char *buf, size_t len, const char *cond)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s%s", n ? " AND " : "", cond);
}

/* col >= lit AND col < lit with its last byte + 1: the rows whose col
 * starts with lit, as an index range. */
static void add_range(struct aud_where *w, char *cond, size_t len, const char *col, const char *lit,
		      size_t n)
{
	if (n == 0 || n >= sizeof w->lo || (unsigned char)lit[n - 1] == 0xff)
		return;
	memcpy(w->lo, lit, n);
	memcpy(w->hi, lit, n);
	w->lo[n] = w->hi[n] = 0;
	w->hi[n - 1]++;
	char c[64];
	snprintf(c, sizeof c, "%s >= ? AND %s < ?", col, col);
	cat(cond, len, c);
	bind_text(w, w->lo);
	bind_text(w, w->hi);
	w->selective = n > 1;
}

/*
 * The conditions on the path: an exact path, a range on path for a literal
 * prefix, a range on rpath for a literal suffix, then the GLOB itself. From
 * schema v3 they select ids in `paths` (one row per distinct path), older
 * dbs have path (and from v2 rpath) in events.
 */
static void add_path(struct aud_where *w, const char *g, int version)
{
	char cond[256] = "";
	size_t lit = strcspn(g, "*?["), len = strlen(g), tail = len;
	while (tail > 0 && !strchr("*?[]", g[tail - 1]))
		tail--;
	if (!g[lit]) {
		cat(cond, sizeof cond, "path = ?");
		bind_text(w, g);
		w->selective = true;
	} else if (lit > 0) {
		add_range(w, cond, sizeof cond, "path", g, lit);
	} else if (version >= 2 && len - tail > 0 && len - tail < sizeof w->lo) {
		/* `*.pem`: a range on the reversed path ("mep." ...). */
		char rev[sizeof w->lo];
		aud_reverse_bytes(rev, g + tail, len - tail);
		add_range(w, cond, sizeof cond, "rpath", rev, len - tail);
	}
	if (g[lit]) {
		cat(cond, sizeof cond, "path GLOB ?");
		bind_text(w, g);
	}
	if (version < 3) {
		add(w, cond);
		return;
	}
	char sub[sizeof cond + 64];
	/* "+path_id": no index on it, so the planner walks the time order */
	snprintf(sub, sizeof sub, "%spath_id IN (SELECT id FROM paths WHERE %s)",
		 w->path_by_time ? "+" : "", cond);
	add(w, sub);
}

void aud_where_build(struct aud_where *w, const struct wfs_audit_filter *f, int version,
		     bool path_by_time)
{
	memset(w, 0, sizeof *w);
	w->path_by_time = path_by_time;
	if (f->since_ns) {
		add(w, "time_ns >= ?");
		bind_int(w, f->since_ns);
	}
	if (f->until_ns) {
		add(w, "time_ns < ?");
		bind_int(w, f->until_ns);
	}
	if (f->uid >= 0) {
		add(w, "uid = ?");
		bind_int(w, f->uid);
	}
	if (f->pid >= 0) {
		add(w, "pid = ?");
		bind_int(w, f->pid);
	}
	if (f->path_glob)
		add_path(w, f->path_glob, version);
	/* --exe: a path, a glob (GLOB: case-sensitive, like paths), or a
	 * program's basename, which matches it in any directory */
	const char *exe_sql = "exe = ?", *exe = f->exe;
	if (exe && strpbrk(exe, "*?[")) {
		exe_sql = "exe GLOB ?";
	} else if (exe && !strchr(exe, '/')) {
		snprintf(w->exe_glob, sizeof w->exe_glob, "*/%s", exe);
		exe_sql = "exe GLOB ?";
		exe = w->exe_glob;
	}
	const char *eq[][2] = {{"class = ?", f->cls},
			       {exe_sql, exe},
			       {"mount = ?", f->mount},
			       {"kind = ?", f->kind}};
	for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++)
		if (eq[i][1]) {
			add(w, eq[i][0]);
			bind_text(w, eq[i][1]);
		}
	if (f->exe)
		w->selective = true;
	if (f->denied_only)
		add(w, "decision = 'deny'");
	if (f->after_id > 0) {
		add(w, "id > ?");
		bind_int(w, f->after_id);
	}
}

int aud_where_bind(sqlite3_stmt *st, const struct aud_where *w, int first)
{
	for (int i = 0; i < w->nb; i++) {
		int rc = w->b[i].is_text
				 ? sqlite3_bind_text(st, first + i, w->b[i].s, -1, SQLITE_STATIC)
				 : sqlite3_bind_int64(st, first + i, w->b[i].i);
		if (rc)
			return rc;
	}
	return 0;
}

#define COLS "id," AUD_ROW_COLS

static int64_t one_int(sqlite3 *db, const char *sql, const struct aud_where *w)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL))
		return -1;
	if (!w || !aud_where_bind(st, w, 1))
		v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}

/*
 * Whether the newest (or oldest) `limit` rows matching a path glob are
 * found faster by walking the time index than by sorting every match. With
 * M of R rows matching, the walk reads about limit * R / M rows and the
 * sort M, so the walk wins when M exceeds sqrt(limit * R). Counting the
 * matches up to that bound reads at most that many index entries.
 * (`*proj7*` over 10 M rows matches 1.1 M of them: 3.9 s sorted.)
 */
static bool path_is_dense(const struct wfs_audit_db *d, const struct aud_where *w, int64_t limit)
{
	int64_t rows = one_int(
		d->db, "SELECT (SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1",
		NULL);
	if (rows <= 0)
		return false;
	int64_t bound = (int64_t)ceil(sqrt((double)limit * (double)rows));
	if (bound >= rows)
		return false;
	char sql[sizeof w->sql + 96];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT 1 FROM events%s LIMIT %lld)",
		 w->sql, (long long)bound);
	return one_int(d->db, sql, w) >= bound;
}

static int build_query(const struct wfs_audit_db *d, const struct wfs_audit_filter *f,
		       struct aud_where *w, char *sql, size_t len)
{
	aud_where_build(w, f, d->version, false);
	if (d->version >= 3 && f->path_glob && f->limit > 0 && path_is_dense(d, w, f->limit))
		aud_where_build(w, f, d->version, true);
	/* With a selective path/exe filter, sort the matches rather than walk
	 * the time index: "+time_ns" keeps the planner off events_time. */
	const char *t = w->selective && !w->path_by_time ? "+time_ns" : "time_ns";
	char lim[32] = "";
	if (f->limit > 0)
		snprintf(lim, sizeof lim, " LIMIT %lld", (long long)f->limit);
	int n;
	if (f->order == WFS_AUDIT_BY_ID && f->limit > 0)
		n = snprintf(sql, len,
			     "SELECT * FROM (SELECT " COLS " FROM events%s ORDER BY id DESC%s) "
			     "ORDER BY id",
			     w->sql, lim);
	else if (f->order == WFS_AUDIT_BY_ID)
		n = snprintf(sql, len, "SELECT " COLS " FROM events%s ORDER BY id", w->sql);
	else if (f->order == WFS_AUDIT_LATEST && f->limit > 0)
		n = snprintf(sql, len,
			     "SELECT * FROM (SELECT " COLS " FROM events%s ORDER BY %s DESC, id "
			     "DESC%s) ORDER BY time_ns, id",
			     w->sql, t, lim);
	else
		n = snprintf(sql, len, "SELECT " COLS " FROM events%s ORDER BY %s, id%s", w->sql, t,
			     lim);
	return n < (int)len ? 0 : -E2BIG;
}

static const char *col_text(sqlite3_stmt *st, int c)
{
	return (const char *)sqlite3_column_text(st, c);
}

void aud_row_from_stmt(sqlite3_stmt *st, struct wfs_audit_row *r)
{
	r->id = sqlite3_column_int64(st, 0);
	r->time_ns = sqlite3_column_int64(st, 1);
	r->mount = col_text(st, 2);
	r->kind = col_text(st, 3);
	r->path = col_text(st, 4);
	r->flags = sqlite3_column_int(st, 5);
	r->access = col_text(st, 6);
	r->flag_names = col_text(st, 7);
	r->cls = col_text(st, 8);
	r->form = col_text(st, 9);
	r->decision = col_text(st, 10);
	r->err = sqlite3_column_int(st, 11);
	r->rule = col_text(st, 12);
	r->uid = sqlite3_column_int64(st, 13);
	r->gid = sqlite3_column_int64(st, 14);
	r->pid = sqlite3_column_int64(st, 15);
	r->comm = col_text(st, 16);
	r->exe = col_text(st, 17);
	r->detail = col_text(st, 18);
}

static int prep(struct wfs_audit_db *d, const char *sql, sqlite3_stmt **st, char *err,
		size_t errlen)
{
	int rc = sqlite3_prepare_v2(d->db, sql, -1, st, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot query '%s': %s", d->path, sqlite3_errmsg(d->db));
		return aud_sqlite_errno(rc);
	}
	return 0;
}

int64_t wfs_audit_query(struct wfs_audit_db *d, const struct wfs_audit_filter *f,
			wfs_audit_row_cb cb, void *arg, char *err, size_t errlen)
{
	struct aud_where w;
	char sql[2048];
	if (build_query(d, f, &w, sql, sizeof sql)) {
		snprintf(err, errlen, "query too long");
		return -E2BIG;
	}
	sqlite3_stmt *st;
	int r = prep(d, sql, &st, err, errlen);
	if (r)
		return r;
	aud_where_bind(st, &w, 1);
	int64_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct wfs_audit_row row;
		aud_row_from_stmt(st, &row);
		n++;
		if (cb && cb(arg, &row))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot query '%s': %s", d->path, sqlite3_errmsg(d->db));
		n = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return n;
}

int wfs_audit_query_plan(struct wfs_audit_db *d, const struct wfs_audit_filter *f, char *buf,
			 size_t len)
{
	struct aud_where w;
	char sql[2100] = "EXPLAIN QUERY PLAN ";
	char err[256];
	if (build_query(d, f, &w, sql + 19, sizeof sql - 19))
		return -E2BIG;
	sqlite3_stmt *st;
	int r = prep(d, sql, &st, err, sizeof err);
	if (r)
		return r;
	aud_where_bind(st, &w, 1);
	size_t o = 0;
	buf[0] = 0;
	while (sqlite3_step(st) == SQLITE_ROW && o < len)
		o += (size_t)snprintf(buf + o, len - o, "%s\n", col_text(st, 3));
	sqlite3_finalize(st);
	return 0;
}

int64_t wfs_audit_max_id(struct wfs_audit_db *d)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(d->db, "SELECT max(id) FROM events", -1, &st, NULL))
		return -EIO;
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -EIO;
	sqlite3_finalize(st);
	return id;
}

int wfs_audit_top(struct wfs_audit_db *d, enum wfs_audit_stat what,
		  const struct wfs_audit_filter *f, int limit, wfs_audit_stat_cb cb, void *arg,
		  char *err, size_t errlen)
{
	struct wfs_audit_filter g = *f;
	g.limit = 0;
	g.after_id = 0;
	if (what == WFS_STAT_DENIED)
		g.denied_only = true;
	struct aud_where w;
	aud_where_build(&w, &g, d->version, false);
	/* The tops are about files: mounts, unmounts and reloads are rows too,
	 * but their "/" and policy file are not paths anybody opened. */
	if (!g.kind)
		add(&w, "kind IN ('open', 'create')");
	static const char *keys[] = {"path", "exe", "CAST(uid AS TEXT)",
				     "coalesce(path, '') || char(9) || coalesce(exe, '')"};
	static const char *groups[] = {"path", "exe", "uid", "path, exe"};
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "SELECT %s, count(*), sum(decision = 'deny') FROM events%s GROUP BY %s "
		 "ORDER BY 2 DESC, 1 LIMIT %d",
		 keys[what], w.sql, groups[what], limit > 0 ? limit : -1);
	sqlite3_stmt *st;
	int r = prep(d, sql, &st, err, errlen);
	if (r)
		return r;
	aud_where_bind(st, &w, 1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (cb(arg, col_text(st, 0), sqlite3_column_int64(st, 1),
		       sqlite3_column_int64(st, 2)))
			break;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot query '%s': %s", d->path, sqlite3_errmsg(d->db));
		r = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}

int wfs_audit_totals(struct wfs_audit_db *d, const struct wfs_audit_filter *f,
		     struct wfs_audit_totals *t, char *err, size_t errlen)
{
	struct wfs_audit_filter g = *f;
	g.after_id = 0;
	struct aud_where w;
	aud_where_build(&w, &g, d->version, false);
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "SELECT count(*), coalesce(sum(decision = 'deny'), 0), min(time_ns), "
		 "max(time_ns), min(id), max(id), coalesce(sum(kind IN ('open', 'create')), 0), "
		 "coalesce(sum(kind IN ('open', 'create') AND decision = 'deny'), 0) "
		 "FROM events%s",
		 w.sql);
	sqlite3_stmt *st;
	int r = prep(d, sql, &st, err, errlen);
	if (r)
		return r;
	aud_where_bind(st, &w, 1);
	memset(t, 0, sizeof *t);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t *v[] = {&t->rows,     &t->denied,  &t->first_ns, &t->last_ns,
				&t->first_id, &t->last_id, &t->opens,	 &t->opens_denied};
		for (int i = 0; i < 8; i++)
			*v[i] = sqlite3_column_int64(st, i);
	} else {
		snprintf(err, errlen, "cannot query '%s': %s", d->path, sqlite3_errmsg(d->db));
		r = aud_sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}
