/*
 * test_journal.c - the durable writer: a round trip keeps every field,
 * concurrent recorders lose nothing and chain correctly, and a SIGKILLed
 * recorder's rows are replayed exactly once (also after a lost "consumed"
 * mark and with a torn record in the journal).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "audit_internal.h"
#include "test_bytes.h" /* tests/common: test_crc32_ref */
#include "util.h"

static void verify_ok(const struct tenv *t, int64_t rows)
{
	struct wfs_audit_db *d;
	char err[256];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_verify_result vr;
	int r = wfs_audit_verify(d, NULL, &vr, err, sizeof err);
	if (r)
		fail_msg("verify: %d %s %s", r, vr.reason, err);
	assert_int_equal(vr.rows, rows);
	wfs_audit_db_close(d);
}

static void test_roundtrip(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/home/alice", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(1, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	struct wfs_audit_event d = {.time_ns = 1700000000123456789LL,
				    .kind = WFS_AUDIT_OPEN,
				    .path = "/.netrc",
				    .flags = O_WRONLY | O_APPEND | O_EXCL,
				    .cls = "deny",
				    .form = "plain",
				    .allowed = false,
				    .err = EACCES,
				    .rule_file = "/etc/wardfs/policy",
				    .rule_line = 12,
				    .uid = 1001,
				    .gid = 100,
				    .pid = 4242,
				    .comm = "curl",
				    .exe = "/usr/bin/curl"};
	assert_int_equal(wfs_audit_record(a, &d), 0);
	struct wfs_audit_event r = {
		.kind = WFS_AUDIT_RELOAD, .allowed = true, .detail = "policy reloaded: 7 rules"};
	assert_int_equal(wfs_audit_record(a, &r), 0);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_int_equal(c.recorded, 3);
	wfs_audit_close(a);

	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 3);
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), 4);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events e JOIN paths p ON p.id = "
					"e.path_id WHERE e.path = '/f/1' AND p.path = '/f/1' AND "
					"p.rpath = '1/f/'"),
			 1);
	assert_int_equal(
		sql_int(t->db,
			"SELECT count(*) FROM events WHERE id = 1 AND time_ns = "
			"1700000000000001000 AND mount = '/home/alice' AND kind = 'open' "
			"AND path = '/f/1' AND flags = 578 AND access = 'rw' AND flag_names = "
			"'O_CREAT|O_TRUNC' AND class = 'sensitive' AND form = 'encrypted' AND "
			"decision = 'allow' AND errno = 0 AND rule = '/etc/wardfs/policy:7' "
			"AND uid = 1000 AND gid = 1000 AND pid = 1001 AND comm = 'vim' AND exe "
			"= '/usr/bin/vim.basic' AND detail IS NULL AND length(mac) = 32"),
		1);
	assert_int_equal(sql_int(t->db,
				 "SELECT count(*) FROM events_readable WHERE id = 2 AND "
				 "time = '2023-11-14T22:13:20.123456789Z' AND errno = "
				 "'EACCES' AND decision = 'deny' AND access = 'w' AND "
				 "flag_names = 'O_EXCL|O_APPEND' AND uid = 1001 AND gid = 100 "
				 "AND pid = 4242 AND comm = 'curl' AND class = 'deny' AND "
				 "rule = '/etc/wardfs/policy:12'"),
			 1);
	assert_int_equal(sql_int(t->db,
				 "SELECT count(*) FROM events WHERE id = 3 AND kind = "
				 "'reload' AND path IS NULL AND access IS NULL AND detail = "
				 "'policy reloaded: 7 rules' AND time_ns > 1700000000000000000"),
			 1);
	assert_int_equal(sql_int(t->db, "PRAGMA journal_mode"), 0); /* text "wal" */
	verify_ok(t, 3);
	/* Reopen migrates nothing and continues the chain. */
	a = topen(t, "/home/alice", false, 0);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT max(id) FROM events"), 4);
	verify_ok(t, 4);
}

struct thr {
	struct wfs_audit *a;
	int base, n, fails;
};

static void *recorder(void *arg)
{
	struct thr *th = arg;
	char p[64];
	for (int i = 0; i < th->n; i++) {
		struct wfs_audit_event e = tevent(th->base + i, p, sizeof p);
		e.time_ns = 0;
		if (wfs_audit_record(th->a, &e))
			th->fails++;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/home/alice", false, 0);
	pthread_t tid[8];
	struct thr th[8];
	for (int i = 0; i < 8; i++) {
		th[i] = (struct thr){a, i * 10000, 10000, 0};
		pthread_create(&tid[i], NULL, recorder, &th[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(tid[i], NULL);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	for (int i = 0; i < 8; i++)
		if (th[i].fails)
			fail_msg("thread %d: %d records failed: %s", i, th[i].fails, c.last_error);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 80000);
	assert_int_equal(sql_int(t->db, "SELECT count(DISTINCT path) FROM events"), 80000);
	assert_int_equal(sql_int(t->db, "SELECT max(id) - min(id) + 1 FROM events"), 80000);
	verify_ok(t, 80000);
}

/* Child: records n events and dies by SIGKILL without closing. With
 * block_writer, another connection holds the write lock so every record
 * is still only in the journal when the child dies. */
static void crash_child(const struct tenv *t, int n, bool block_writer, int sleep_ms)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m"};
		struct wfs_audit *a;
		char err[256];
		if (wfs_audit_open(&o, &a, err, sizeof err))
			_exit(3);
		sqlite3 *h = NULL;
		if (block_writer) {
			sqlite3_open(t->db, &h);
			if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL))
				_exit(4);
		}
		char p[64];
		for (int i = 0; i < n; i++) {
			struct wfs_audit_event e = tevent(i, p, sizeof p);
			if (wfs_audit_record(a, &e))
				_exit(5);
			if (sleep_ms && i == n / 2)
				usleep(sleep_ms * 1000);
		}
		raise(SIGKILL);
		_exit(6);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void reopen_close(const struct tenv *t)
{
	struct wfs_audit *a = topen(t, "/m", false, 0);
	wfs_audit_close(a);
}

static void test_crash_replay(void **state)
{
	struct tenv *t = *state;
	/* killed right after the last record returned */
	crash_child(t, 20000, false, 0);
	reopen_close(t);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 20000);
	assert_int_equal(sql_int(t->db, "SELECT count(DISTINCT path) FROM events"), 20000);
	verify_ok(t, 20000);
	/* killed while the writer is busy (records arrive around a pause) */
	crash_child(t, 20000, false, 21);
	reopen_close(t);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 40000);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM (SELECT path FROM events GROUP BY "
					"path HAVING count(*) != 2)"),
			 0);
	verify_ok(t, 40000);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static void test_crash_all_in_journal(void **state)
{
	struct tenv *t = *state;
	char jpath[256], saved[256];
	snprintf(jpath, sizeof jpath, "%s-wardfs-journal", t->db);
	snprintf(saved, sizeof saved, "%s/saved-journal", t->dir);
	crash_child(t, 1000, true, 0);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 0);
	copy_file(jpath, saved);
	reopen_close(t);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 1000);
	/* As if the daemon died between COMMIT and marking the records
	 * consumed: the old journal replays again, and nothing duplicates. */
	copy_file(saved, jpath);
	reopen_close(t);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 1000);
	assert_int_equal(sql_int(t->db, "SELECT count(DISTINCT path) FROM events"), 1000);
	verify_ok(t, 1000);
}

/* The offset in the journal file of record k (0-based) of a fresh journal. */
static off_t record_offset(int fd, int k, uint32_t *len)
{
	off_t pos = 4096;
	for (int i = 0;; i++) {
		uint32_t w[2];
		assert_int_equal(pread(fd, w, 8, pos), 8);
		assert_int_equal(w[0], 0x57464a31u);
		if (i == k) {
			*len = w[1];
			return pos;
		}
		pos += w[1];
	}
}

static void test_crash_torn_record(void **state)
{
	struct tenv *t = *state;
	char jpath[256];
	snprintf(jpath, sizeof jpath, "%s-wardfs-journal", t->db);
	crash_child(t, 100, true, 0);
	/* Un-commit record #5 (0-based) as if the recorder was killed while
	 * copying it: replay must skip it and keep the ones after it. */
	int fd = open(jpath, O_RDWR);
	assert_true(fd >= 0);
	uint32_t len;
	off_t pos = record_offset(fd, 5, &len);
	uint32_t zero = 0;
	assert_int_equal(pwrite(fd, &zero, 4, pos), 4);
	close(fd);
	struct wfs_audit *a = topen(t, "/m", false, 0);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_int_equal(c.lost, 1);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 99);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE path = '/f/5'"), 0);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE path = '/f/99'"), 1);
	verify_ok(t, 99);
}

/* Wipes records [from, to) as a recorder killed at some point of writing
 * them would have left them: keep_len leaves their len words (killed after
 * storing len), otherwise nothing of them is there (killed between claiming
 * the space and storing len). */
static void wipe_records(const char *jpath, int from, int to, bool keep_len)
{
	int fd = open(jpath, O_RDWR);
	assert_true(fd >= 0);
	uint32_t lens[64];
	int n = to - from;
	assert_true(n <= 64);
	off_t a = record_offset(fd, from, &lens[0]), b = a + lens[0];
	for (int i = 1; i < n; i++)
		b = record_offset(fd, from + i, &lens[i]) + lens[i];
	static const char zeros[1 << 16];
	assert_true(b - a <= (off_t)sizeof zeros);
	assert_int_equal(pwrite(fd, zeros, (size_t)(b - a), a), b - a);
	if (keep_len)
		for (off_t p = a, i = 0; i < n; p += lens[i], i++)
			assert_int_equal(pwrite(fd, &lens[i], 4, p + 4), 4);
	close(fd);
}

static void crash_with_wiped(const struct tenv *t, int from, int to, bool keep_len, uint64_t lost)
{
	char jpath[256];
	snprintf(jpath, sizeof jpath, "%s-wardfs-journal", t->db);
	crash_child(t, 100, true, 0);
	wipe_records(jpath, from, to, keep_len);
	struct wfs_audit *a = topen(t, "/m", false, 0);
	struct wfs_audit_counters c;
	wfs_audit_counters(a, &c);
	assert_int_equal(c.lost, lost);
	wfs_audit_close(a);
	int kept = 100 - (to - from);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), kept);
	for (int i = from; i < to; i++) {
		char q[128];
		snprintf(q, sizeof q, "SELECT count(*) FROM events WHERE path = '/f/%d'", i);
		assert_int_equal(sql_int(t->db, q), 0);
	}
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE path = '/f/99'"), 1);
	verify_ok(t, kept);
}

/* Producers claim space without a lock and write len after: a kill in
 * between leaves a hole, and the records claimed after it must replay. */
static void test_crash_hole(void **state)
{
	crash_with_wiped(*state, 5, 6, false, 1);
}

static void test_crash_adjacent_holes(void **state)
{
	crash_with_wiped(*state, 5, 8, false, 1); /* one hole, three records */
}

static void test_crash_len_without_seq(void **state)
{
	crash_with_wiped(*state, 5, 7, true, 2); /* two torn, stepped over by len */
}

static void test_two_mounts_one_db(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/home/alice", false, 0);
	struct wfs_audit *b = topen(t, "/home/bob", false, 0);
	char p[64];
	for (int i = 0; i < 500; i++) {
		struct wfs_audit_event e = tevent(i, p, sizeof p);
		assert_int_equal(wfs_audit_record(a, &e), 0);
		assert_int_equal(wfs_audit_record(b, &e), 0);
	}
	wfs_audit_close(a);
	wfs_audit_close(b);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE mount = '/home/bob'"),
			 500);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM journals"), 2);
	verify_ok(t, 1000);
}

/* A database's identity is made once, with it: reopening (the writer or
 * the admin side) or moving the file keeps it; a database made afresh at
 * the same path has another (issue 22.8). */
static void test_identity(void **state)
{
	struct tenv *t = *state;
	int64_t before = now_ns();
	struct wfs_audit *a = topen(t, "/m", false, 0);
	struct wfs_audit_identity first, again, moved, fresh;
	wfs_audit_identity(a, &first);
	wfs_audit_close(a);
	assert_int_equal(strlen(first.id), WFS_AUDIT_ID_LEN);
	assert_true(strspn(first.id, "0123456789abcdef") == WFS_AUDIT_ID_LEN);
	/* whole seconds: SQLite's clock */
	assert_true(first.created_ns >= before - 1000000000 && first.created_ns <= now_ns());

	a = topen(t, "/m", false, 0);
	wfs_audit_identity(a, &again);
	wfs_audit_close(a);
	assert_string_equal(again.id, first.id);
	assert_true(again.created_ns == first.created_ns);

	char other[256];
	snprintf(other, sizeof other, "%s.moved", t->db);
	assert_int_equal(rename(t->db, other), 0);
	struct wfs_audit_db *d;
	char err[256];
	assert_int_equal(wfs_audit_db_open(other, false, &d, err, sizeof err), 0);
	assert_int_equal(wfs_audit_db_identity(d, &moved), 0);
	wfs_audit_db_close(d);
	assert_string_equal(moved.id, first.id);

	a = topen(t, "/m", false, 0); /* a new database where the old one was */
	wfs_audit_identity(a, &fresh);
	wfs_audit_close(a);
	assert_string_not_equal(fresh.id, first.id);
	unlink(other);
}

/* The journal's CRC-32 is zlib's (IEEE): the standard check value, and a
 * bit-at-a-time reference (tests/common) at every length and alignment the
 * fast path splits into words and a tail. */
static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(aud_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(aud_crc32("", 0), 0);
	unsigned char buf[80];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; off + n <= sizeof buf; n++)
			assert_int_equal(aud_crc32(buf + off, n), test_crc32_ref(buf + off, n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test_setup_teardown(test_roundtrip, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_replay, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_all_in_journal, tenv_setup,
						tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_torn_record, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_hole, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_adjacent_holes, tenv_setup,
						tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_len_without_seq, tenv_setup,
						tenv_teardown),
		cmocka_unit_test_setup_teardown(test_two_mounts_one_db, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_identity, tenv_setup, tenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
