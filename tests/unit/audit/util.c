/*
 * util.c - helpers shared by the audit unit tests (see util.h).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "util.h"

void tenv_init(struct tenv *t)
{
	snprintf(t->dir, sizeof t->dir, "/tmp/wfs-audit-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->db, sizeof t->db, "%s/audit.db", t->dir);
}

void tenv_fini(struct tenv *t)
{
	char cmd[320];
	snprintf(cmd, sizeof cmd, "chattr -i '%s'/* 2>/dev/null; rm -rf '%s'", t->dir, t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", t->dir);
}

int tenv_setup(void **state)
{
	struct tenv *t = calloc(1, sizeof *t);
	if (!t)
		return -1;
	tenv_init(t);
	*state = t;
	return 0;
}

int tenv_teardown(void **state)
{
	tenv_fini(*state);
	free(*state);
	return 0;
}

struct wfs_audit *topen(const struct tenv *t, const char *mount, bool fail_open,
			unsigned journal_kib)
{
	struct wfs_audit_opts o = {.db_path = t->db,
				   .mount_id = mount,
				   .fail_open = fail_open,
				   .journal_kib = journal_kib};
	struct wfs_audit *a = NULL;
	char err[256] = "";
	int r = wfs_audit_open(&o, &a, err, sizeof err);
	if (r)
		fail_msg("wfs_audit_open: %d %s", r, err);
	return a;
}

struct wfs_audit_event tevent(int i, char *pathbuf, size_t len)
{
	snprintf(pathbuf, len, "/f/%d", i);
	struct wfs_audit_event e = {
		.time_ns = 1700000000000000000LL + (int64_t)i * 1000,
		.kind = WFS_AUDIT_OPEN,
		.path = pathbuf,
		.flags = O_RDWR | O_CREAT | O_TRUNC,
		.cls = "sensitive",
		.form = "encrypted",
		.allowed = true,
		.err = 0,
		.rule_file = "/etc/wardfs/policy",
		.rule_line = 7,
		.uid = 1000,
		.gid = 1000,
		.pid = 1000 + i,
		.comm = "vim",
		.exe = "/usr/bin/vim.basic",
		.detail = NULL,
	};
	return e;
}

int64_t sql_int(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL))
		fail_msg("%s: %s", sql, sqlite3_errmsg(h));
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

int sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	char *msg = NULL;
	int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
	if (rc)
		fprintf(stderr, "sql_exec(%s): %s\n", sql, msg);
	sqlite3_free(msg);
	sqlite3_close(h);
	return rc;
}

/* Up to 30 s: under ASan on a loaded machine a seal's fsyncs alone took
 * over 5 s; a drained writer returns at once. */
bool drained(struct wfs_audit *a)
{
	for (int i = 0; i < 3000; i++) {
		struct wfs_audit_counters c;
		wfs_audit_counters(a, &c);
		if (c.pending == 0)
			return true;
		usleep(10000);
	}
	return false;
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
