/*
 * schema.c - opens the audit database with wardfs's pragmas and creates or
 * migrates its schema (versioned by PRAGMA user_version). docs/audit.md
 * documents these tables for admins who use sqlite3 directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_internal.h"

static const char schema_v1[] =
	"CREATE TABLE events (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  time_ns INTEGER NOT NULL,\n"
	"  mount TEXT NOT NULL,\n"
	"  kind TEXT NOT NULL,\n"
	"  path TEXT,\n"
	"  flags INTEGER NOT NULL,\n"
	"  access TEXT,\n"
	"  flag_names TEXT,\n"
	"  class TEXT,\n"
	"  form TEXT,\n"
	"  decision TEXT NOT NULL,\n"
	"  errno INTEGER NOT NULL,\n"
	"  rule TEXT,\n"
	"  uid INTEGER NOT NULL,\n"
	"  gid INTEGER NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  comm TEXT,\n"
	"  exe TEXT,\n"
	"  detail TEXT,\n"
	"  mac BLOB\n"
	");\n"
	"CREATE INDEX events_time ON events(time_ns);\n"
	"CREATE INDEX events_path ON events(path);\n"
	"CREATE INDEX events_uid ON events(uid, time_ns);\n"
	"CREATE INDEX events_exe ON events(exe);\n"
	"CREATE INDEX events_decision ON events(decision, time_ns);\n"
	"CREATE TABLE journals (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  mount TEXT NOT NULL,\n"
	"  path TEXT NOT NULL,\n"
	"  drained_seq INTEGER NOT NULL DEFAULT 0,\n"
	"  updated_ns INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE TABLE chain (\n"
	"  k INTEGER PRIMARY KEY CHECK (k = 1),\n"
	"  last_id INTEGER NOT NULL,\n"
	"  last_mac BLOB NOT NULL,\n"
	"  auth BLOB NOT NULL\n"
	");\n"
	"CREATE TABLE anchors (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  time_ns INTEGER NOT NULL,\n"
	"  cutoff_ns INTEGER NOT NULL,\n"
	"  pruned_to INTEGER NOT NULL,\n"
	"  rows_deleted INTEGER NOT NULL,\n"
	"  mac BLOB NOT NULL,\n"
	"  auth BLOB NOT NULL\n"
	");\n"
	"CREATE TABLE errno_names (errno INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
	"CREATE VIEW events_readable AS SELECT e.id AS id,\n"
	"  strftime('%Y-%m-%dT%H:%M:%S', e.time_ns / 1000000000, 'unixepoch')\n"
	"    || printf('.%09dZ', e.time_ns % 1000000000) AS time,\n"
	"  e.mount AS mount, e.kind AS kind, e.path AS path, e.access AS access,\n"
	"  e.flag_names AS flag_names, e.class AS class, e.form AS form,\n"
	"  e.decision AS decision,\n"
	"  CASE WHEN e.errno = 0 THEN '' ELSE coalesce(n.name, 'E' || e.errno) END AS errno,\n"
	"  e.rule AS rule, e.uid AS uid, e.gid AS gid, e.pid AS pid, e.comm AS comm,\n"
	"  e.exe AS exe, e.detail AS detail\n"
	"  FROM events e LEFT JOIN errno_names n ON n.errno = e.errno;\n";

/* v2: suffix globs (`*.pem`, `*_rsa`) get an index through the path
 * reversed byte by byte (the writer fills rpath; verify checks it), and
 * the denial index becomes partial: it was a sixth b-tree updated by every
 * row, for the few rows that are denials. */
static const char schema_v2[] =
	"ALTER TABLE events ADD COLUMN rpath TEXT;\n"
	"UPDATE events SET rpath = wfs_reverse(path) WHERE path IS NOT NULL;\n"
	"CREATE INDEX events_rpath ON events(rpath);\n"
	"DROP INDEX events_decision;\n"
	"CREATE INDEX events_denied ON events(time_ns) WHERE decision = 'deny';\n";

/* v3: each distinct path is stored once, in `paths`, with its reversal;
 * events point at it by path_id (and keep their path text, which the MAC
 * covers). A home has far fewer files than opens, so a glob with wildcards
 * at both ends scans the paths, not the rows, and a row costs one integer
 * index instead of two text ones (path and rpath). */
static const char schema_v3[] =
	"CREATE TABLE paths (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  path TEXT NOT NULL UNIQUE,\n"
	"  rpath TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX paths_rpath ON paths(rpath);\n"
	"INSERT INTO paths (path, rpath) SELECT path, wfs_reverse(path) FROM events\n"
	"  WHERE path IS NOT NULL GROUP BY path;\n"
	"ALTER TABLE events ADD COLUMN path_id INTEGER;\n"
	"UPDATE events SET path_id = (SELECT id FROM paths WHERE paths.path = events.path)\n"
	"  WHERE path IS NOT NULL;\n"
	"DROP INDEX events_path;\n"
	"DROP INDEX events_rpath;\n"
	"ALTER TABLE events DROP COLUMN rpath;\n"
	"CREATE INDEX events_path_id ON events(path_id);\n";

/* v4: the database's identity, a random id made once, when the database is
 * made (or, for an older one, migrated), and its creation time (the first
 * row's, for an older one; to the millisecond: a database deleted and made
 * again within a second is younger all the same). It travels with the file (moved, copied,
 * restored from backup); a database made afresh has a new one, which is how
 * a vault tells that its audit db was replaced (issue 22.8). */
static const char schema_v4[] =
	"CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);\n"
	"INSERT INTO meta VALUES ('db_id', lower(hex(randomblob(16))));\n"
	"INSERT INTO meta VALUES ('created_ns', CAST(coalesce((SELECT min(time_ns) FROM events),\n"
	"  CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000000)\n"
	"  AS TEXT));\n";

void aud_reverse_bytes(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[n - 1 - i];
}

static void reverse_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	const char *s = (const char *)sqlite3_value_text(argv[0]);
	int n = sqlite3_value_bytes(argv[0]);
	char *r = s ? sqlite3_malloc(n + 1) : NULL;
	if (!r) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	aud_reverse_bytes(r, s, (size_t)n);
	r[n] = 0;
	sqlite3_result_text(ctx, r, n, sqlite3_free);
}

int aud_sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EPERM;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default: /* IOERR, CORRUPT, NOTADB, ... */
		return -EIO;
	}
}

static int fail(sqlite3 *db, int rc, const char *path, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s '%s': %s", what, path,
		 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return aud_sqlite_errno(rc);
}

static int fill_errno_names(sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "INSERT INTO errno_names VALUES (?, ?)", -1, &st, NULL);
	if (rc)
		return rc;
	for (int e = 1; e < 134 && !rc; e++) {
		const char *n = strerrorname_np(e);
		if (!n)
			continue;
		sqlite3_bind_int(st, 1, e);
		sqlite3_bind_text(st, 2, n, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The number of schema objects (tables, indexes, views, triggers) named
 * like, or (name NULL) of any name: 0 on an empty database. */
static int count_objects(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM sqlite_master WHERE ?1 IS NULL OR name = ?1",
			       -1, &st, NULL))
		return 0;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return r;
}

static int has_events(sqlite3 *db)
{
	return count_objects(db, "events") > 0;
}

int aud_db_identity(sqlite3 *db, struct wfs_audit_identity *out)
{
	sqlite3_stmt *st;
	memset(out, 0, sizeof *out);
	if (!count_objects(db, "meta"))
		return -ENOENT; /* schema v3 or older, opened read-only */
	int rc = sqlite3_prepare_v2(db, "SELECT k, v FROM meta WHERE k IN ('db_id', 'created_ns')",
				    -1, &st, NULL);
	if (rc)
		return aud_sqlite_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);
		if (!k || !v)
			continue;
		if (!strcmp(k, "db_id"))
			snprintf(out->id, sizeof out->id, "%s", v);
		else
			out->created_ns = strtoll(v, NULL, 10);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return aud_sqlite_errno(rc);
	return strlen(out->id) == WFS_AUDIT_ID_LEN ? 0 : -EPROTO;
}

/* Runs the migrations from the stored version up to AUD_SCHEMA_VERSION. */
static int migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc)
		return fail(db, rc, path, "cannot open audit database", err, errlen);
	int v = 0;
	rc = user_version(db, &v);
	if (!rc && v > AUD_SCHEMA_VERSION) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen,
			 "audit database '%s' has schema version %d, newer than this wardfs (%d)",
			 path, v, AUD_SCHEMA_VERSION);
		return -EPROTO;
	}
	/* Only an empty database becomes an audit db: wardfs tables added to
	 * someone else's database (a wrong --audit-db) would mix with, and be
	 * hard to tell from, its own (issue 22.10). */
	if (!rc && v == 0 && count_objects(db, NULL)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, errlen,
			 "'%s' is not a wardfs audit database (it holds other tables); refusing "
			 "to use it",
			 path);
		return -EINVAL;
	}
	if (!rc && v < 1) {
		rc = sqlite3_exec(db, schema_v1, NULL, NULL, NULL);
		if (!rc)
			rc = fill_errno_names(db);
	}
	if (!rc && v < 2)
		rc = sqlite3_exec(db, schema_v2, NULL, NULL, NULL);
	if (!rc && v < 3)
		rc = sqlite3_exec(db, schema_v3, NULL, NULL, NULL);
	if (!rc && v < 4)
		rc = sqlite3_exec(db, schema_v4, NULL, NULL, NULL);
	if (!rc && v < AUD_SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", AUD_SCHEMA_VERSION);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (!rc)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc) {
		int r = fail(db, rc, path, "cannot create the schema of", err, errlen);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	return 0;
}

int aud_db_make_dir(const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;
	size_t n;

	if (!slash || slash == path)
		return 0; /* in the current directory, or in "/" */
	n = (size_t)(slash - path);
	if (n >= sizeof dir) {
		snprintf(err, errlen, "audit database path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(dir, path, n);
	dir[n] = 0;
	if (stat(dir, &st) == 0)
		return 0;
	/* mkdir -p, each missing directory 0700 */
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen,
				 "cannot create the audit database's directory '%s': %s", dir,
				 strerror(e));
			return -e;
		}
		*p = c;
		if (!c)
			break;
	}
	return 0;
}

/* The db's directory is created 0700 (with missing parents) if it does not
 * exist. The db file itself is created 0600 (SQLite gives -wal/-shm the
 * same mode). */
static int prepare_path(const char *path, char *err, size_t errlen)
{
	int r = aud_db_make_dir(path, err, errlen);
	if (r)
		return r;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open audit database '%s': %s", path, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* Every connection is used by one thread at a time (the daemon's under
 * its db_lock), so SQLite's own mutexes and memory statistics are pure
 * cost: they were a tenth of the writer thread's time. */
static void configure_sqlite(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int aud_db_open(const char *path, enum aud_db_mode mode, sqlite3 **out, char *err, size_t errlen,
		int *version)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, configure_sqlite);
	*out = NULL;
	bool writable = mode != AUD_DB_READ;
	if (mode == AUD_DB_CREATE) {
		int r = prepare_path(path, err, errlen);
		if (r)
			return r;
	} else if (access(path, writable ? R_OK | W_OK : R_OK) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open audit database '%s': %s", path, strerror(e));
		return -e;
	}
	sqlite3 *db = NULL;
	int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
		    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc) {
		int r = fail(db, rc, path, "cannot open audit database", err, errlen);
		sqlite3_close(db);
		return r;
	}
	sqlite3_extended_result_codes(db, 0);
	sqlite3_busy_timeout(db, 5000);
	sqlite3_create_function(db, "wfs_reverse", 1,
				SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				reverse_fn, NULL, NULL);
	int r = 0;
	if (writable && sqlite3_db_readonly(db, "main") == 1) {
		snprintf(err, errlen, "audit database '%s' is read-only", path);
		r = -EROFS;
		goto out;
	}
	/* Reading the version is the first access: catches NOTADB early. */
	int v = 0;
	rc = user_version(db, &v);
	if (rc) {
		r = fail(db, rc, path, "cannot open audit database", err, errlen);
		goto out;
	}
	/* Decide before anything is written (even the journal mode): wardfs
	 * tables added to someone else's database (a wrong --audit-db) would
	 * mix with its own; the admin side (prune, query) never makes a
	 * database, so an empty file there is a wrong --db (issue 22.10). */
	if (v == 0 && count_objects(db, NULL)) {
		snprintf(err, errlen,
			 "'%s' is not a wardfs audit database (it holds other tables); refusing "
			 "to use it",
			 path);
		r = -EINVAL;
		goto out;
	}
	if ((v == 0 && mode != AUD_DB_CREATE) ||
	    (v > 0 && v <= AUD_SCHEMA_VERSION && !has_events(db))) {
		snprintf(err, errlen, "'%s' is not a wardfs audit database%s", path,
			 v == 0 ? " (it is empty)" : "");
		r = -EINVAL;
		goto out;
	}
	if (v > AUD_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "audit database '%s' has schema version %d, newer than this wardfs (%d)",
			 path, v, AUD_SCHEMA_VERSION);
		r = -EPROTO;
		goto out;
	}
	if (writable) {
		rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
				  NULL, NULL, NULL);
		if (rc) {
			r = fail(db, rc, path, "cannot open audit database", err, errlen);
			goto out;
		}
		r = migrate(db, path, err, errlen);
		v = AUD_SCHEMA_VERSION;
	}
out:
	if (r) {
		sqlite3_close(db);
		return r;
	}
	if (version)
		*version = v;
	*out = db;
	return 0;
}
