/*
 * bench_query.c - fills an audit db with N synthetic rows (opens of the
 * files of a large home; fast: bulk insert with the indexes built
 * afterwards, dummy MACs) and
 * times path-glob queries through wfs_audit_query(). Built, not a test.
 *   bench_audit_query N [DB]     (DB default /tmp/wfs-bench-audit.db;
 *                                 N = 0 queries the DB a previous run made)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit.h"
#include "audit_internal.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_cb(void *arg, const struct wfs_audit_row *r)
{
	(void)r;
	(*(int64_t *)arg)++;
	return 0;
}

static void run(struct wfs_audit_db *d, const char *glob, int64_t limit)
{
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.path_glob = glob;
	f.limit = limit;
	char err[256], plan[1024];
	wfs_audit_query_plan(d, &f, plan, sizeof plan);
	int64_t n = 0;
	double t = now_s();
	int64_t r = wfs_audit_query(d, &f, count_cb, &n, err, sizeof err);
	t = now_s() - t;
	if (r < 0) {
		fprintf(stderr, "query: %s\n", err);
		exit(1);
	}
	printf("--path '%s' --limit %lld: %lld rows in %.3f s\n  plan: ", glob, (long long)limit,
	       (long long)n, t);
	for (char *p = plan; *p; p++)
		putchar(*p == '\n' ? ';' : *p);
	putchar('\n');
}

/* A large home: a million files that the N opens draw from. */
#define PROJECTS 1000
#define DIRS	 10
#define FILES	 100
#define NPATHS	 (PROJECTS * DIRS * FILES)

static void path_of(long long k, char *p, size_t len)
{
	if (k >= NPATHS)
		snprintf(p, len, "/.ssh/id_%lld", k - NPATHS);
	else
		snprintf(p, len, "/src/proj%lld/dir%lld/file%lld.c", k / (DIRS * FILES),
			 k / FILES % DIRS, k % FILES);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_audit_query N [DB]\n");
		return 2;
	}
	long long n = strtoll(argv[1], NULL, 10);
	const char *path = argc > 2 ? argv[2] : "/tmp/wfs-bench-audit.db";
	char err[256];
	struct wfs_audit_db *d;
	if (n == 0)
		goto query;
	unlink(path);
	/* The daemon's open creates the db (the admin side never does). */
	struct wfs_audit_opts o = {.db_path = path, .mount_id = "/home/bench", .journal_kib = 64};
	struct wfs_audit *a;
	if (wfs_audit_open(&o, &a, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	wfs_audit_close(a);

	double t = now_s();
	sqlite3 *db;
	sqlite3_open(path, &db);
	if (sqlite3_exec(db,
			 "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = "
			 "-262144; DROP INDEX events_path_id; DROP INDEX events_time; DROP INDEX "
			 "events_uid; DROP INDEX events_exe; DROP INDEX events_denied; DROP INDEX "
			 "paths_rpath; BEGIN",
			 NULL, NULL, NULL)) {
		fprintf(stderr, "set-up: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	/* The home: PROJECTS x DIRS x FILES source files (id = 1 + their
	 * number) and 8 ssh keys after them. */
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT INTO paths (id, path, rpath) VALUES (?, ?, ?)", -1, &st,
			   NULL);
	for (long long k = 0; k < NPATHS + 8; k++) {
		char p[128], rp[128];
		path_of(k, p, sizeof p);
		size_t plen = strlen(p);
		aud_reverse_bytes(rp, p, plen);
		sqlite3_bind_int64(st, 1, k + 1);
		sqlite3_bind_text(st, 2, p, (int)plen, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, rp, (int)plen, SQLITE_TRANSIENT);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_prepare_v2(
		db,
		"INSERT INTO events (id, time_ns, mount, kind, path, flags, access, "
		"flag_names, class, form, decision, errno, rule, uid, gid, pid, comm, "
		"exe, detail, mac, path_id) VALUES (?1, ?2, '/home/u' || (?3 % 50), 'open', ?4, "
		"0, 'r', '', ?5, 'plain', ?6, ?7, '/etc/wardfs/policy:3', 1000 + ?3 % 50, "
		"100, ?8, 'cc1', ?9, NULL, randomblob(32), ?10)",
		-1, &st, NULL);
	static const char *exes[] = {"/usr/bin/vim", "/usr/bin/git", "/usr/lib/gcc/cc1",
				     "/usr/bin/ssh", "/usr/bin/bash"};
	unsigned long long x = 88172645463325252ull;
	int64_t t0 = 1764064800000000000LL;
	for (long long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int sens = x % 1000 == 0;
		long long k = sens ? NPATHS + (long long)((x >> 20) % 8)
				   : (long long)((x >> 10) % NPATHS);
		char p[128];
		path_of(k, p, sizeof p);
		int deny = x % 997 == 0;
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_int64(st, 2, t0 + i * 1000000);
		sqlite3_bind_int64(st, 3, (int64_t)(x >> 40));
		sqlite3_bind_text(st, 4, p, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, sens ? "sensitive" : "public", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, deny ? "deny" : "allow", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, deny ? EACCES : 0);
		sqlite3_bind_int64(st, 8, (int64_t)(x % 30000));
		sqlite3_bind_text(st, 9, exes[(x >> 50) % 5], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, k + 1);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
			return 1;
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	printf("inserted %lld rows in %.1f s\n", n, now_s() - t);
	t = now_s();
	if (sqlite3_exec(db,
			 "COMMIT; CREATE INDEX events_time ON events(time_ns); CREATE INDEX "
			 "events_path_id ON events(path_id); CREATE INDEX paths_rpath ON "
			 "paths(rpath); CREATE INDEX events_uid ON events(uid, time_ns); CREATE "
			 "INDEX events_exe ON events(exe); CREATE INDEX events_denied ON "
			 "events(time_ns) WHERE decision = 'deny'; PRAGMA journal_mode = "
			 "WAL",
			 NULL, NULL, NULL)) {
		fprintf(stderr, "index: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_close(db);
	printf("indexed in %.1f s\n", now_s() - t);
query:
	if (wfs_audit_db_open(path, false, &d, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (int cold = 0; cold < 2; cold++) {
		printf(cold ? "second run:\n" : "first run:\n");
		run(d, "/.ssh/*", 100);
		run(d, "/.ssh/*", 0);
		run(d, "/src/proj7/*", 100);
		run(d, "/src/proj7/*", 0);
		run(d, "/src/proj7/dir3/file12.c", 0);
		run(d, "*/id_3", 0); /* suffix globs: the rpath index */
		run(d, "*/file12.c", 100);
		run(d, "*/file12.c", 0);
		run(d, "*.pem", 0);
		run(d, "*proj77/*", 100); /* wildcards at both ends: a scan of paths */
		run(d, "*proj77/*", 0);
		run(d, "*proj7*", 100);
		run(d, "*proj7*", 0); /* 1.1 M rows: the answer itself is the cost */
		run(d, "*dir3/file12*", 0);
		run(d, "*id_3*", 0);
	}
	wfs_audit_db_close(d);
	return 0;
}
