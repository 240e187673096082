/*
 * test_query.c - the admin read path: each filter selects the expected
 * rows in time order, limits pick the newest (or oldest) rows, a path glob
 * with a literal prefix uses the path index (a literal suffix the
 * reversed-path index), JSON Lines / CSV output is
 * exact, stats count correctly, and time/duration parsing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util.h"

#define T0 1764064800000000000LL /* 2025-11-25T10:00:00Z */

struct spec {
	int64_t t;
	const char *mount, *path, *cls, *exe;
	int uid, pid;
	bool allowed;
};

static const struct spec rows[] = {
	{T0 + 5, "/home/alice", "/.ssh/id_ed25519", "sensitive", "/usr/bin/ssh", 1000, 10, true},
	{T0 + 1, "/home/alice", "/src/main.c", "public", "/usr/bin/vim", 1000, 11, true},
	{T0 + 3, "/home/alice", "/.netrc", "deny", "/usr/bin/curl", 1000, 12, false},
	{T0 + 2, "/home/bob", "/.ssh/config", "sensitive", "/usr/bin/ssh", 1001, 13, true},
	{T0 + 4, "/home/bob", "/.ssh/known_hosts", "sensitive", "/usr/bin/vim", 1001, 14, false},
	{T0 + 6, "/home/bob", "/notes, \"draft\".txt", "public", "/usr/bin/vim", 1001, 15, true},
};
#define NROWS (int)(sizeof rows / sizeof rows[0])

static int setup(void **state)
{
	if (tenv_setup(state))
		return -1;
	struct tenv *t = *state;
	const char *mounts[] = {"/home/alice", "/home/bob"};
	for (int m = 0; m < 2; m++) {
		struct wfs_audit *a = topen(t, mounts[m], false, 0);
		for (int i = 0; i < NROWS; i++) {
			if (strcmp(rows[i].mount, mounts[m]))
				continue;
			struct wfs_audit_event e = {.time_ns = rows[i].t,
						    .kind = WFS_AUDIT_OPEN,
						    .path = rows[i].path,
						    .flags = O_RDONLY,
						    .cls = rows[i].cls,
						    .form = "plain",
						    .allowed = rows[i].allowed,
						    .err = rows[i].allowed ? 0 : EACCES,
						    .rule_file = "/etc/wardfs/policy",
						    .rule_line = 3,
						    .uid = rows[i].uid,
						    .gid = 100,
						    .pid = rows[i].pid,
						    .comm = "c",
						    .exe = rows[i].exe};
			assert_int_equal(wfs_audit_record(a, &e), 0);
		}
		wfs_audit_close(a);
	}
	return 0;
}

struct got {
	int n;
	int pids[16];
};

static int collect(void *arg, const struct wfs_audit_row *r)
{
	struct got *g = arg;
	g->pids[g->n++] = (int)r->pid;
	return 0;
}

/* Runs f and checks the pids of the rows, in order. */
static void expect(const struct tenv *t, const struct wfs_audit_filter *f, const char *want)
{
	struct wfs_audit_db *d;
	char err[256];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct got g = {0};
	int64_t n = wfs_audit_query(d, f, collect, &g, err, sizeof err);
	wfs_audit_db_close(d);
	assert_int_equal(n, g.n);
	char s[128] = "";
	for (int i = 0; i < g.n; i++)
		snprintf(s + strlen(s), sizeof s - strlen(s), "%s%d", i ? "," : "", g.pids[i]);
	assert_string_equal(s, want);
}

static void test_filters(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	expect(t, &f, "11,13,12,14,10,15"); /* time order */
	f.since_ns = T0 + 2;
	f.until_ns = T0 + 5;
	expect(t, &f, "13,12,14");
	wfs_audit_filter_init(&f);
	f.uid = 1001;
	expect(t, &f, "13,14,15");
	wfs_audit_filter_init(&f);
	f.path_glob = "/.ssh/*";
	expect(t, &f, "13,14,10");
	f.path_glob = "/.ssh/config";
	expect(t, &f, "13");
	f.path_glob = "*.c";
	expect(t, &f, "11");
	f.path_glob = "*config"; /* suffix globs: a range on rpath */
	expect(t, &f, "13");
	f.path_glob = "*/[ck]*s";
	expect(t, &f, "14");
	f.path_glob = "*ssh*"; /* wildcards at both ends: a scan */
	expect(t, &f, "13,14,10");
	wfs_audit_filter_init(&f);
	f.cls = "sensitive";
	expect(t, &f, "13,14,10");
	wfs_audit_filter_init(&f);
	f.denied_only = true;
	expect(t, &f, "12,14");
	wfs_audit_filter_init(&f);
	f.exe = "/usr/bin/vim";
	expect(t, &f, "11,14,15");
	wfs_audit_filter_init(&f);
	f.pid = 12;
	expect(t, &f, "12");
	wfs_audit_filter_init(&f);
	f.mount = "/home/bob";
	expect(t, &f, "13,14,15");
	wfs_audit_filter_init(&f);
	f.kind = "create";
	expect(t, &f, "");
	/* combined */
	wfs_audit_filter_init(&f);
	f.exe = "/usr/bin/vim";
	f.uid = 1001;
	f.denied_only = true;
	expect(t, &f, "14");
}

static void test_limits(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.limit = 2;
	expect(t, &f, "10,15"); /* newest two, oldest first */
	f.order = WFS_AUDIT_EARLIEST;
	expect(t, &f, "11,13");
	f.order = WFS_AUDIT_BY_ID; /* ids: alice's 3 rows, then bob's */
	expect(t, &f, "14,15");
	f.limit = 0;
	f.after_id = 4;
	expect(t, &f, "14,15");
}

static void test_path_index(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit_db *d;
	char err[256], plan[1024];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.path_glob = "/home/alice/.ssh/*";
	f.limit = 100;
	assert_int_equal(wfs_audit_query_plan(d, &f, plan, sizeof plan), 0);
	if (!strstr(plan, "sqlite_autoindex_paths_1 (path>? AND path<?)"))
		fail_msg("plan: %s", plan);
	f.path_glob = "*.pem";
	assert_int_equal(wfs_audit_query_plan(d, &f, plan, sizeof plan), 0);
	if (!strstr(plan, "USING INDEX paths_rpath (rpath>? AND rpath<?)"))
		fail_msg("plan: %s", plan);
	f.path_glob = NULL;
	f.denied_only = true;
	assert_int_equal(wfs_audit_query_plan(d, &f, plan, sizeof plan), 0);
	if (!strstr(plan, "events_denied"))
		fail_msg("plan: %s", plan);
	f.denied_only = false;
	f.uid = 5;
	assert_int_equal(wfs_audit_query_plan(d, &f, plan, sizeof plan), 0);
	assert_non_null(strstr(plan, "events_uid"));
	wfs_audit_db_close(d);
}

struct pr {
	FILE *f;
	enum wfs_audit_format fmt;
};

static int print_cb(void *arg, const struct wfs_audit_row *r)
{
	struct pr *p = arg;
	wfs_audit_print_row(p->f, p->fmt, r);
	return 0;
}

static char *print(const struct tenv *t, enum wfs_audit_format fmt, int64_t pid)
{
	struct wfs_audit_db *d;
	char err[256];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.pid = pid;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	wfs_audit_print_header(out, fmt);
	struct pr p = {out, fmt};
	assert_int_equal(wfs_audit_query(d, &f, print_cb, &p, err, sizeof err), 1);
	fclose(out);
	wfs_audit_db_close(d);
	return buf;
}

static void test_formats(void **state)
{
	struct tenv *t = *state;
	char *s = print(t, WFS_FMT_JSON, 12);
	assert_string_equal(
		s, "{\"id\":3,\"time\":\"2025-11-25T10:00:00.000000003Z\",\"time_ns\":"
		   "1764064800000000003,\"mount\":\"/home/alice\",\"kind\":\"open\",\"path\":"
		   "\"/.netrc\",\"access\":\"r\",\"flag_names\":\"\",\"flags\":0,\"class\":"
		   "\"deny\",\"form\":\"plain\",\"decision\":\"deny\",\"errno\":13,\"error\":"
		   "\"EACCES\",\"rule\":\"/etc/wardfs/policy:3\",\"uid\":1000,\"gid\":100,"
		   "\"pid\":12,\"comm\":\"c\",\"exe\":\"/usr/bin/curl\",\"detail\":null}\n");
	free(s);
	s = print(t, WFS_FMT_JSON, 15);
	assert_non_null(strstr(s, "\"path\":\"/notes, \\\"draft\\\".txt\""));
	free(s);
	s = print(t, WFS_FMT_CSV, 15);
	assert_string_equal(s, "id,time,time_ns,mount,kind,path,access,flag_names,flags,class,"
			       "form,decision,errno,error,rule,uid,gid,pid,comm,exe,detail\n"
			       "6,2025-11-25T10:00:00.000000006Z,1764064800000000006,/home/bob,"
			       "open,\"/notes, \"\"draft\"\".txt\",r,,0,public,plain,allow,0,,"
			       "/etc/wardfs/policy:3,1001,100,15,c,/usr/bin/vim,\n");
	free(s);
	s = print(t, WFS_FMT_TABLE, 14);
	assert_non_null(strstr(s, "TIME (UTC)"));
	assert_non_null(strstr(s, "2025-11-25 10:00:00.000 EACCES"));
	assert_non_null(strstr(s, "/.ssh/known_hosts"));
	free(s);
}

static int stat_cb(void *arg, const char *key, int64_t count, int64_t denied)
{
	char *s = arg;
	snprintf(s + strlen(s), 256 - strlen(s), "%s=%lld/%lld;", key, (long long)count,
		 (long long)denied);
	return 0;
}

static void test_stats(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit_db *d;
	char err[256], s[256] = "";
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	assert_int_equal(wfs_audit_top(d, WFS_STAT_EXES, &f, 2, stat_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "/usr/bin/vim=3/1;/usr/bin/ssh=2/0;");
	s[0] = 0;
	assert_int_equal(wfs_audit_top(d, WFS_STAT_USERS, &f, 5, stat_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "1000=3/1;1001=3/1;");
	s[0] = 0;
	assert_int_equal(wfs_audit_top(d, WFS_STAT_DENIED, &f, 5, stat_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "/.netrc\t/usr/bin/curl=1/1;/.ssh/known_hosts\t/usr/bin/vim=1/1;");
	s[0] = 0;
	f.since_ns = T0 + 4;
	assert_int_equal(wfs_audit_top(d, WFS_STAT_PATHS, &f, 1, stat_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "/.ssh/id_ed25519=1/0;");
	struct wfs_audit_totals tot;
	wfs_audit_filter_init(&f);
	assert_int_equal(wfs_audit_totals(d, &f, &tot, err, sizeof err), 0);
	assert_int_equal(tot.rows, 6);
	assert_int_equal(tot.denied, 2);
	assert_int_equal(tot.first_ns, T0 + 1);
	assert_int_equal(tot.last_ns, T0 + 6);
	assert_int_equal(wfs_audit_max_id(d), 6);
	wfs_audit_db_close(d);
}

static int series_cb(void *arg, int64_t bucket, const char *cls, int64_t opens, int64_t denied)
{
	char *s = arg;
	snprintf(s + strlen(s), 256 - strlen(s), "%lld:%s=%lld/%lld;", (long long)bucket, cls,
		 (long long)opens, (long long)denied);
	return 0;
}

/* The report's series: buckets from the origin, per class, with the
 * filter's own parameters bound after the origin and width. */
static void test_series(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit_db *d;
	char err[256], s[256] = "";
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.since_ns = T0 + 2;
	f.until_ns = T0 + 6;
	assert_int_equal(wfs_audit_series(d, &f, T0, 2, series_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "1:deny=1/1;1:sensitive=1/0;2:sensitive=2/1;");
	s[0] = 0;
	f.mount = "/home/bob";
	assert_int_equal(wfs_audit_series(d, &f, T0, 2, series_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "1:sensitive=1/0;2:sensitive=1/1;");
	s[0] = 0;
	wfs_audit_filter_init(&f);
	f.since_ns = T0;
	assert_int_equal(
		wfs_audit_series(d, &f, T0, 3600000000000LL, series_cb, s, err, sizeof err), 0);
	assert_string_equal(s, "0:deny=1/1;0:public=2/0;0:sensitive=3/1;");
	assert_int_equal(wfs_audit_series(d, &f, T0, 0, series_cb, s, err, sizeof err), -EINVAL);
	assert_int_equal(wfs_audit_series(d, &f, T0 + 1, 2, series_cb, s, err, sizeof err),
			 -EINVAL);
	wfs_audit_db_close(d);
}

static void test_parse(void **state)
{
	(void)state;
	int64_t v, now = 2000000000000000000LL;
	assert_int_equal(wfs_audit_parse_time("2025-11-25", now, &v), 0);
	assert_int_equal(v, 1764028800000000000LL);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10:00:00", now, &v), 0);
	assert_int_equal(v, T0);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10:00:00Z", now, &v), 0);
	assert_int_equal(v, T0);
	assert_int_equal(wfs_audit_parse_time("2025-11-25 10:00", now, &v), 0);
	assert_int_equal(v, T0);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10:00:00.5Z", now, &v), 0);
	assert_int_equal(v, T0 + 500000000);
	assert_int_equal(wfs_audit_parse_time("15m", now, &v), 0);
	assert_int_equal(v, now - 900000000000LL);
	assert_int_equal(wfs_audit_parse_time("7d", now, &v), 0);
	assert_int_equal(v, now - 7 * 86400000000000LL);
	/* offsets (issue 16): the same instant, said in another zone */
	assert_int_equal(wfs_audit_parse_time("2025-11-25T11:00:00+01:00", now, &v), 0);
	assert_int_equal(v, T0);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T05:00-0500", now, &v), 0);
	assert_int_equal(v, T0);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10:00:00+25:00", now, &v), -EINVAL);
	/* Beyond what int64 ns hold (1677..2262): refused, not overflowed
	 * (UBSan, fuzz_parse_time). */
	assert_int_equal(wfs_audit_parse_time("2520-11-25T10:00:00.123456789Z", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_time("9999-12-31", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_time("1000-01-01", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_time("2262-01-01", now, &v), 0);
	assert_int_equal(v, 9214646400LL * 1000000000);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10:00:00+1", now, &v), -EINVAL);
	/* today and yesterday: local midnights, a day apart (in this test's
	 * zone, UTC+2 without summer time) */
	setenv("TZ", "EET-2", 1);
	tzset();
	int64_t today, yesterday;
	assert_int_equal(wfs_audit_parse_time("today", now, &today), 0);
	assert_int_equal(wfs_audit_parse_time("yesterday", now, &yesterday), 0);
	assert_int_equal(today - yesterday, 86400000000000LL);
	assert_int_equal((today / 1000000000 + 2 * 3600) % 86400, 0);
	assert_true(today <= now && now - today < 86400000000000LL);
	assert_int_equal(wfs_audit_parse_time("now", now, &v), 0);
	assert_int_equal(v, now);
	unsetenv("TZ");
	tzset();
	assert_int_equal(wfs_audit_parse_time("tomorrow", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_time("2025-13-01", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_time("2025-11-25T10", now, &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_duration("90d", &v), 0);
	assert_int_equal(v, 90 * 86400000000000LL);
	assert_int_equal(wfs_audit_parse_duration("90", &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_duration("2x", &v), -EINVAL);
	assert_int_equal(wfs_audit_parse_duration("-1d", &v), -EINVAL);
}

/* The printer's output of one row (no db needed). */
static char *print_one(enum wfs_audit_format fmt, const struct wfs_audit_row *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	wfs_audit_print_row(out, fmt, r);
	fclose(out);
	return buf;
}

/* No byte of s is a terminal control: only printable ASCII, the final
 * newline, and valid non-control UTF-8 (here: none at all). */
static void assert_inert(const char *s)
{
	size_t n = strlen(s);
	assert_true(n > 0 && s[n - 1] == '\n');
	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			fail_msg("byte 0x%02x at %zu in: %s", (unsigned char)s[i], i, s);
}

/*
 * A user names a file so that, printed raw, it erases the line and draws a
 * forged row (issue 15.9): every user-controlled column is escaped in the
 * table and CSV, and stays valid JSON with every byte recoverable.
 */
static void test_escaping(void **state)
{
	(void)state;
	struct wfs_audit_row r = {
		.id = 7,
		.time_ns = T0,
		.mount = "/home/alice",
		.kind = "open",
		.path = "/x\r\x1b[2K2026-11-25 10:00:00.000 allow r sensitive \x1b]0;pwn\x07"
			"\\z\xc2\x9b\xff\xe2\x80\xae\x7f\n.ssh/id_rsa",
		.flags = 0,
		.access = "r",
		.flag_names = "",
		.cls = "public",
		.form = "plain",
		.decision = "allow",
		.rule = "/etc/wardfs/po\x1blicy:3",
		.uid = 0,
		.gid = 0,
		.pid = 12,
		.comm = "=cmd|\x1b[31m",
		.exe = "-\x1b[0m/bin/sh,\"x\"",
		.detail = "d\tx\x9b",
	};
	const char *esc_path = "/x\\r\\x1b[2K2026-11-25 10:00:00.000 allow r sensitive "
			       "\\x1b]0;pwn\\x07\\\\z\\u009b\\xff\\u202e\\x7f\\n.ssh/id_rsa";
	char *s = print_one(WFS_FMT_TABLE, &r);
	assert_inert(s);
	assert_non_null(strstr(s, esc_path));
	assert_non_null(strstr(s, "=cmd|\\x1b[31m")); /* comm, 15 wide: cut */
	assert_non_null(strstr(s, "licy:3"));
	assert_non_null(strstr(s, " d\\tx\\x9b\n")); /* an invalid byte, not U+009B */
	free(s);

	s = print_one(WFS_FMT_CSV, &r);
	assert_inert(s);
	char want[1024];
	snprintf(want, sizeof want, ",%s,r,", esc_path);
	assert_non_null(strstr(s, want));
	/* formulas are defused, quotes doubled, controls escaped */
	assert_non_null(strstr(s, ",12,\"'=cmd|\\x1b[31m\",\"'-\\x1b[0m/bin/sh,\"\"x\"\"\","));
	assert_non_null(strstr(s, ",/etc/wardfs/po\\x1blicy:3,"));
	free(s);

	s = print_one(WFS_FMT_JSON, &r);
	assert_inert(s);
	assert_non_null(strstr(s, "\"path\":\"/x\\u000d\\u001b[2K2026-11-25 10:00:00.000 allow r "
				  "sensitive \\u001b]0;pwn\\u0007\\\\z\\u009b\\udcff\\u202e"
				  "\\u007f\\u000a.ssh/id_rsa\""));
	assert_non_null(strstr(s, "\"exe\":\"-\\u001b[0m/bin/sh,\\\"x\\\"\""));
	assert_non_null(strstr(s, "\"detail\":\"d\\u0009x\\udc9b\""));
	free(s);

	/* Text that needs nothing stays as it is; valid UTF-8 too. */
	char *e = wfs_audit_escape("/home/zoë/ファイル.txt");
	assert_string_equal(e, "/home/zoë/ファイル.txt");
	free(e);
	/* overlong, surrogate and cut-short sequences are invalid bytes */
	e = wfs_audit_escape("\xc0\xaf|\xed\xa0\x80|\xe2\x80");
	assert_string_equal(e, "\\xc0\\xaf|\\xed\\xa0\\x80|\\xe2\\x80");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_escaping),
	};
	const struct CMUnitTest db_tests[] = {
		cmocka_unit_test(test_filters),	   cmocka_unit_test(test_limits),
		cmocka_unit_test(test_path_index), cmocka_unit_test(test_formats),
		cmocka_unit_test(test_stats),	   cmocka_unit_test(test_series),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	return r + cmocka_run_group_tests_name("db", db_tests, setup, tenv_teardown);
}
