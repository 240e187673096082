/*
 * test_failure.c - when rows cannot be written: fail closed (record
 * returns -errno, last_error says why) or open (record returns 0, the loss
 * is counted), for a full db (max_page_count), a db turned read-only
 * (query_only) under a running writer, a stalled writer (journal full), and
 * a read-only (immutable) or corrupt db at open.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit_internal.h"
#include "util.h"

/* Records until one fails (up to 5 s); returns that error, counts ok. */
static int record_until_error(struct wfs_audit *a, int *ok)
{
	char p[64];
	for (int i = 0; i < 500; i++) {
		for (int k = 0; k < 50; k++) {
			struct wfs_audit_event e = tevent(i * 50 + k, p, sizeof p);
			int r = wfs_audit_record(a, &e);
			if (r)
				return r;
			(*ok)++;
		}
		usleep(10000);
	}
	return 0;
}

static void fault_closed(const struct tenv *t, const char *fault, const char *repair, int err)
{
	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(0, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	assert_true(drained(a));
	assert_int_equal(aud_test_exec(a, fault), 0);
	int ok = 1;
	assert_int_equal(record_until_error(a, &ok), err);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_true(c.last_error[0]);
	assert_int_equal(c.lost, 0);
	/* stays refused while the writer fails */
	assert_int_equal(wfs_audit_record(a, &e), err);
	/* repaired: the writer catches up and records are accepted again */
	assert_int_equal(aud_test_exec(a, repair), 0);
	int r = -1;
	for (int i = 0; i < 300 && r; i++) {
		usleep(10000);
		r = wfs_audit_record(a, &e);
	}
	assert_int_equal(r, 0);
	ok++;
	wfs_audit_close(a);
	/* every accepted record is in the db */
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), ok);
}

static void fault_open(const struct tenv *t, const char *fault, const char *repair)
{
	struct wfs_audit *a = topen(t, "/m", true, 64);
	char p[64];
	struct wfs_audit_event e = tevent(0, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	assert_true(drained(a));
	assert_int_equal(aud_test_exec(a, fault), 0);
	int n = 0;
	struct wfs_audit_counters c;
	for (int i = 0; i < 3000; i++, n++) {
		e = tevent(i + 1, p, sizeof p);
		assert_int_equal(wfs_audit_record(a, &e), 0);
		wfs_audit_counters(a, &c);
		if (c.lost > 0)
			break;
	}
	wfs_audit_counters(a, &c);
	assert_true(c.lost > 0);
	assert_true(c.last_error[0]);
	assert_int_equal(aud_test_exec(a, repair), 0);
	assert_true(drained(a));
	wfs_audit_counters(a, &c);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE kind = 'open'"),
			 (int64_t)c.recorded);
	assert_int_equal(c.recorded + c.lost, n + 2);
	/* Once rows can be written again, the db says how many were lost
	 * (issue 22.9): one "lost" row, chained like the others. */
	char sql[160];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM events WHERE kind = 'lost' AND detail LIKE '%llu audit "
		 "rows lost (%llu since%%'",
		 (unsigned long long)c.lost, (unsigned long long)c.lost);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE kind = 'lost'"), 1);
	assert_int_equal(sql_int(t->db, sql), 1);
	struct wfs_audit_db *d;
	char err[256];
	struct wfs_audit_verify_result vr;
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	assert_int_equal(wfs_audit_verify(d, NULL, &vr, err, sizeof err), 0);
	wfs_audit_db_close(d);
}

#define FULL   "PRAGMA max_page_count = 1"
#define UNFULL "PRAGMA max_page_count = 1073741823"

static void test_full_closed(void **state)
{
	fault_closed(*state, FULL, UNFULL, -ENOSPC);
}

static void test_full_open(void **state)
{
	fault_open(*state, FULL, UNFULL);
}

static void test_readonly_closed(void **state)
{
	fault_closed(*state, "PRAGMA query_only = 1", "PRAGMA query_only = 0", -EROFS);
}

static void test_readonly_open(void **state)
{
	fault_open(*state, "PRAGMA query_only = 1", "PRAGMA query_only = 0");
}

static void test_stalled_writer_closed(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/m", false, 64);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(t->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	int ok = 0;
	int r = record_until_error(a, &ok);
	assert_int_equal(r, -EIO);
	assert_true(ok > 100);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_non_null(strstr(c.last_error, "full"));
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(h);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), ok);
}

static void test_immutable_at_open(void **state)
{
	struct tenv *t = *state;
	wfs_audit_close(topen(t, "/m", false, 0));
	char cmd[512];
	snprintf(cmd, sizeof cmd, "chattr +i '%s' 2>/dev/null", t->db);
	if (system(cmd) != 0)
		skip(); /* no chattr support on this filesystem */
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m"};
	struct wfs_audit *a = NULL;
	char err[256] = "";
	int r = wfs_audit_open(&o, &a, err, sizeof err);
	snprintf(cmd, sizeof cmd, "chattr -i '%s'", t->db);
	assert_int_equal(system(cmd), 0);
	assert_true(r == -EPERM || r == -EROFS);
	assert_null(a);
	assert_non_null(strstr(err, t->db));
}

static int chattr_all(const struct tenv *t, char op)
{
	char cmd[800];
	snprintf(cmd, sizeof cmd, "chattr %ci '%s' '%s-wal' '%s-shm' 2>/dev/null", op, t->db, t->db,
		 t->db);
	return system(cmd);
}

/*
 * The db, its WAL and its -shm made immutable under a running writer
 * (issue 22.7). The writer's check of the files' attributes is switched
 * off, so SQLite stores into the -shm page that sync wrote back: a SIGBUS,
 * which killed the daemon. It must be survived as a write failure (closed:
 * refused), and rows must flow again once the files are mutable.
 */
static void test_sigbus_in_shm_is_a_write_failure(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/m", false, 1024);
	a->test_no_attr_check = true;
	char p[64];
	int ok = 0;
	for (int i = 0; i < 200; i++, ok++) {
		struct wfs_audit_event e = tevent(i, p, sizeof p);
		assert_int_equal(wfs_audit_record(a, &e), 0);
	}
	assert_true(drained(a));
	sync(); /* the -shm pages are clean: the next store into one faults */
	if (chattr_all(t, '+') != 0) {
		chattr_all(t, '-');
		wfs_audit_close(a);
		skip(); /* no chattr support on this filesystem */
	}
	sync();
	int r = record_until_error(a, &ok);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_int_equal(chattr_all(t, '-'), 0);
	assert_true(r == -EIO || r == -EPERM);
	assert_non_null(strstr(c.last_error, t->db));
	/* mutable again: the writer reopens the db and catches up */
	struct wfs_audit_event e = tevent(0, p, sizeof p);
	r = -1;
	for (int i = 0; i < 500 && r; i++) {
		usleep(10000);
		r = wfs_audit_record(a, &e);
	}
	assert_int_equal(r, 0);
	ok++;
	assert_true(drained(a));
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), ok);
	struct wfs_audit_db *d;
	char err[256];
	struct wfs_audit_verify_result vr;
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	assert_int_equal(wfs_audit_verify(d, NULL, &vr, err, sizeof err), 0);
	wfs_audit_db_close(d);
}

static void test_corrupt_at_open(void **state)
{
	struct tenv *t = *state;
	wfs_audit_close(topen(t, "/m", false, 0));
	int fd = open(t->db, O_WRONLY);
	assert_true(fd >= 0);
	char junk[100];
	memset(junk, 'x', sizeof junk);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	close(fd);
	char wal[256];
	snprintf(wal, sizeof wal, "%s-wal", t->db);
	unlink(wal);
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m"};
	struct wfs_audit *a = NULL;
	char err[256] = "";
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), -EIO);
	assert_null(a);
	assert_non_null(strstr(err, "not a database"));
}

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

/* A wrong --audit-db (someone else's SQLite database) or a wrong --db for
 * prune is refused with the file's name, and left exactly as it was; only
 * the daemon makes an empty or missing file an audit db (issue 22.10). */
static void test_foreign_db(void **state)
{
	struct tenv *t = *state;
	int fd = open(t->db, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(sql_exec(t->db, "PRAGMA journal_mode = DELETE; CREATE TABLE accounts "
					 "(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO "
					 "accounts VALUES (1, 'x')"),
			 0);
	int64_t size = file_size(t->db);
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m"};
	struct wfs_audit *a = NULL;
	char err[512] = "";
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), -EINVAL);
	assert_null(a);
	if (!strstr(err, t->db) || !strstr(err, "not a wardfs audit database"))
		fail_msg("%s", err);
	struct wfs_audit_db *d = NULL;
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), -EINVAL);
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), -EINVAL);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM sqlite_master"), 1);
	assert_int_equal(file_size(t->db), size);
	/* not even switched to WAL: header byte 18 is 1 (rollback journal), not 2 */
	unsigned char hdr[20];
	fd = open(t->db, O_RDONLY);
	assert_int_equal(pread(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
	close(fd);
	assert_int_equal(hdr[18], 1);

	/* a user_version of its own is no better */
	assert_int_equal(sql_exec(t->db, "PRAGMA user_version = 2"), 0);
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), -EINVAL);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM sqlite_master"), 1);

	/* prune on an empty file, or on none, makes no database */
	assert_int_equal(unlink(t->db), 0);
	fd = open(t->db, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), -EINVAL);
	if (!strstr(err, t->db) || !strstr(err, "empty"))
		fail_msg("%s", err);
	assert_int_equal(file_size(t->db), 0);
	assert_int_equal(unlink(t->db), 0);
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), -ENOENT);
	assert_int_equal(file_size(t->db), -1);
	/* the daemon still creates one in an empty file */
	fd = open(t->db, O_WRONLY | O_CREAT, 0600);
	close(fd);
	wfs_audit_close(topen(t, "/m", false, 0));
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), 4);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tenv_setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_full_closed),
		T(test_full_open),
		T(test_readonly_closed),
		T(test_readonly_open),
		T(test_stalled_writer_closed),
		T(test_immutable_at_open),
		T(test_corrupt_at_open),
		T(test_foreign_db),
		T(test_sigbus_in_shm_is_a_write_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
