/*
 * test_chain.c - tamper evidence: verify passes on an intact chain and
 * names the first edited, deleted or inserted row (tampering done with
 * plain SQL on the db file); prune keeps the chain verifiable; a forged
 * anchor and a loose key file are refused.
 */
#include <errno.h>
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

#include "audit_internal.h"
#include "util.h"

static int setup(void **state)
{
	if (tenv_setup(state))
		return -1;
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	for (int i = 0; i < 100; i++) {
		struct wfs_audit_event e = tevent(i, p, sizeof p);
		assert_int_equal(wfs_audit_record(a, &e), 0);
	}
	wfs_audit_close(a);
	return 0;
}

/* Returns verify's result; r gets the details. */
static int verify(const struct tenv *t, struct wfs_audit_verify_result *r)
{
	struct wfs_audit_db *d;
	char err[256];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	int ret = wfs_audit_verify(d, NULL, r, err, sizeof err);
	wfs_audit_db_close(d);
	return ret;
}

static void expect_bad(const struct tenv *t, int64_t id, const char *word)
{
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(t, &r), 1);
	if (r.bad_id != id || !strstr(r.reason, word))
		fail_msg("expected row %lld '%s', got row %lld: %s", (long long)id, word,
			 (long long)r.bad_id, r.reason);
}

static void test_intact(void **state)
{
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(*state, &r), 0);
	assert_int_equal(r.rows, 100);
	assert_int_equal(r.anchor_id, 0);
}

static void test_edited(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE events SET path = '/innocent' WHERE id = 42"), 0);
	expect_bad(t, 42, "edited");
}

static void test_edited_last(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE events SET uid = 0 WHERE id = 100"), 0);
	expect_bad(t, 100, "edited");
}

/* path_id and the paths table are derived from path, outside the MAC:
 * pointing a row at another path, or editing a path's reversal to hide
 * rows from suffix queries, is still caught. */
static void test_edited_path_id(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE events SET path_id = (SELECT path_id FROM events "
					 "WHERE id = 8) WHERE id = 7"),
			 0);
	expect_bad(t, 7, "path_id");
}

static void test_edited_paths_row(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE paths SET rpath = 'txt.' WHERE path = '/f/6'"), 0);
	expect_bad(t, 7, "rpath");
	assert_int_equal(sql_exec(t->db, "UPDATE paths SET rpath = '6/f/', path = '/g' WHERE "
					 "path = '/f/6'"),
			 0);
	expect_bad(t, 7, "path_id");
}

/* Turns the db made by setup into one written by schema v1 (no rpath, a
 * full denial index) or v2 (rpath in events, no paths table). */
static void make_old_schema(const struct tenv *t, int version)
{
	assert_int_equal(sql_exec(t->db, "DROP INDEX events_path_id; ALTER TABLE events DROP "
					 "COLUMN path_id; DROP TABLE paths; CREATE INDEX "
					 "events_path ON events(path); DROP TABLE meta"),
			 0);
	if (version == 1) {
		assert_int_equal(sql_exec(t->db, "DROP INDEX events_denied; CREATE INDEX "
						 "events_decision ON events(decision, time_ns); "
						 "PRAGMA user_version = 1"),
				 0);
		return;
	}
	assert_int_equal(sql_exec(t->db, "ALTER TABLE events ADD COLUMN rpath TEXT; CREATE "
					 "INDEX events_rpath ON events(rpath); PRAGMA "
					 "user_version = 2"),
			 0);
	for (int i = 0; i < 100; i++) { /* row i+1 has path /f/i */
		char sql[128], path[16], rev[16];
		int n = snprintf(path, sizeof path, "/f/%d", i);
		aud_reverse_bytes(rev, path, (size_t)n);
		rev[n] = 0;
		snprintf(sql, sizeof sql, "UPDATE events SET rpath = '%s' WHERE id = %d", rev,
			 i + 1);
		assert_int_equal(sql_exec(t->db, sql), 0);
	}
}

/* A db written by an older schema is migrated by the first writable open:
 * a paths row for each distinct path, path_id filled for old rows, the
 * chain still verifies, suffix globs use the paths' rpath index. A
 * read-only open of an old db (an older daemon still runs) must keep
 * working as it is. */
static void migrate_from(const struct tenv *t, int version)
{
	make_old_schema(t, version);
	struct wfs_audit_db *d;
	char err[256];
	struct wfs_audit_filter f;
	wfs_audit_filter_init(&f);
	f.path_glob = "*/42";
	struct wfs_audit_verify_result r;
	struct wfs_audit_identity id;
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	assert_int_equal(wfs_audit_query(d, &f, NULL, NULL, err, sizeof err), 1);
	assert_int_equal(wfs_audit_verify(d, NULL, &r, err, sizeof err), 0);
	assert_int_equal(wfs_audit_db_identity(d, &id), -ENOENT); /* not migrated */
	wfs_audit_db_close(d);
	if (version == 2) { /* v2's rpath is checked by verify */
		assert_int_equal(sql_exec(t->db, "UPDATE events SET rpath = 'x' WHERE id = 9"), 0);
		expect_bad(t, 9, "rpath");
		assert_int_equal(sql_exec(t->db, "UPDATE events SET rpath = '8/f/' WHERE id = 9"),
				 0);
	}

	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), 0);
	/* An older db gets an identity, created when its first row was. */
	assert_int_equal(wfs_audit_db_identity(d, &id), 0);
	assert_int_equal(strlen(id.id), WFS_AUDIT_ID_LEN);
	assert_true(id.created_ns == sql_int(t->db, "SELECT min(time_ns) FROM events"));
	wfs_audit_db_close(d);
	assert_int_equal(sql_int(t->db, "PRAGMA user_version"), 4);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths"), 100);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events e JOIN paths p ON p.id = "
					"e.path_id WHERE p.path = e.path"),
			 100);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths WHERE path = '/f/42' AND "
					"rpath = '24/f/'"),
			 1);
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 100);

	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	char plan[1024];
	assert_int_equal(wfs_audit_query_plan(d, &f, plan, sizeof plan), 0);
	if (!strstr(plan, "paths_rpath"))
		fail_msg("plan: %s", plan);
	assert_int_equal(wfs_audit_query(d, &f, NULL, NULL, err, sizeof err), 1);
	wfs_audit_db_close(d);

	/* and the writer goes on with the migrated db */
	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(42, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(DISTINCT path_id) FROM events WHERE path = "
					"'/f/42'"),
			 1);
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 101);
}

static void test_migrate_v1(void **state)
{
	migrate_from(*state, 1);
}

static void test_migrate_v2(void **state)
{
	migrate_from(*state, 2);
}

static void test_deleted(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id = 42"), 0);
	expect_bad(t, 42, "deleted");
}

static void test_deleted_tail(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id >= 98"), 0);
	expect_bad(t, 98, "deleted");
}

static void test_inserted(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "INSERT INTO events (time_ns, mount, kind, path, flags, "
					 "decision, errno, uid, gid, pid) VALUES (1, '/m', 'open', "
					 "'/alibi', 0, 'allow', 0, 0, 0, 1)"),
			 0);
	expect_bad(t, 101, "inserted");
}

static void test_inserted_copied_mac(void **state)
{
	struct tenv *t = *state;
	/* a row copied with its MAC, appended after the head */
	assert_int_equal(sql_exec(t->db,
				  "INSERT INTO events SELECT 101, time_ns, mount, kind, "
				  "path, flags, access, flag_names, class, form, decision, "
				  "errno, rule, uid, gid, pid, comm, exe, detail, mac, path_id "
				  "FROM events WHERE id = 100"),
			 0);
	expect_bad(t, 101, "inserted");
}

static void test_replaced_row(void **state)
{
	struct tenv *t = *state;
	/* delete row 50 and put a different row (with row 49's MAC) in its place */
	assert_int_equal(sql_exec(t->db,
				  "DELETE FROM events WHERE id = 50; INSERT INTO events "
				  "SELECT 50, time_ns, mount, kind, '/x', flags, access, "
				  "flag_names, class, form, decision, errno, rule, uid, gid, "
				  "pid, comm, exe, detail, mac, NULL FROM events WHERE id = 49"),
			 0);
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(t, &r), 1);
	assert_int_equal(r.bad_id, 50);
}

static int64_t prune(const struct tenv *t, int64_t cutoff, int expect_ret)
{
	struct wfs_audit_db *d;
	char err[256] = "";
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), 0);
	struct wfs_audit_prune_result pr;
	int r = wfs_audit_prune(d, NULL, cutoff, &pr, err, sizeof err);
	wfs_audit_db_close(d);
	if (r != expect_ret)
		fail_msg("prune: %d (%s)", r, err);
	return pr.rows_deleted;
}

static void test_prune(void **state)
{
	struct tenv *t = *state;
	/* rows 1..100 have time 1700000000000000000 + i*1000 (i = id-1) */
	assert_int_equal(prune(t, 1700000000000000000LL + 30 * 1000, 0), 30);
	assert_int_equal(sql_int(t->db, "SELECT min(id) FROM events"), 31);
	assert_int_equal(sql_int(t->db, "SELECT pruned_to FROM anchors"), 30);
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 70);
	assert_int_equal(r.anchor_id, 30);
	/* the chain continues after a prune */
	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(1000, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	wfs_audit_close(a);
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 71);
	/* nothing older: no-op */
	assert_int_equal(prune(t, 1, 0), 0);
	/* prune everything, then record again */
	assert_int_equal(prune(t, INT64_MAX, 0), 71);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 0);
	assert_int_equal(verify(t, &r), 0);
	a = topen(t, "/m", false, 0);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT id FROM events"), 102);
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 1);
	/* deleting before the anchor is still caught */
	assert_int_equal(sql_exec(t->db, "DELETE FROM events"), 0);
	expect_bad(t, 102, "deleted");
}

static void wait_for_row(const struct tenv *t, int64_t id)
{
	char sql[64];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE id = %lld", (long long)id);
	for (int i = 0; i < 500 && !sql_int(t->db, sql); i++)
		usleep(10000);
	assert_int_equal(sql_int(t->db, sql), 1);
}

/* Prune deletes the paths no remaining row uses, and a running writer,
 * which caches path ids, must not go on using the ids it deleted. */
static void test_prune_paths(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(99, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0); /* row 101: /f/99 again */
	wait_for_row(t, 101);
	assert_int_equal(prune(t, 1700000000000000000LL + 30 * 1000, 0), 30);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths"), 70);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths WHERE path = '/f/29'"), 0);
	int64_t before = sql_int(t->db, "SELECT id FROM paths WHERE path = '/f/99'");

	assert_int_equal(prune(t, INT64_MAX, 0), 71);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM paths"), 0);
	assert_int_equal(wfs_audit_record(a, &e), 0); /* row 102: /f/99, id now gone */
	wait_for_row(t, 102);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events e JOIN paths p ON p.id = "
					"e.path_id AND p.path = '/f/99'"),
			 1);
	assert_true(sql_int(t->db, "SELECT path_id FROM events WHERE id = 102") != before);
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(t, &r), 0);
	assert_int_equal(r.rows, 1);
}

static void test_prune_refuses_tampered(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE events SET exe = '/bin/true' WHERE id = 10"), 0);
	prune(t, 1700000000000000000LL + 50 * 1000, -EBADMSG);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events"), 100);
}

static void test_forged_anchor(void **state)
{
	struct tenv *t = *state;
	/* someone deletes old rows and writes an anchor with the real MAC */
	assert_int_equal(sql_exec(t->db, "INSERT INTO anchors (time_ns, cutoff_ns, pruned_to, "
					 "rows_deleted, mac, auth) SELECT 1, 1, 20, 20, mac, mac "
					 "FROM events WHERE id = 20; DELETE FROM events WHERE id "
					 "<= 20"),
			 0);
	expect_bad(t, 20, "anchor");
}

static void test_key_mode(void **state)
{
	struct tenv *t = *state;
	char key[256];
	snprintf(key, sizeof key, "%s.key", t->db);
	struct stat st;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(chmod(key, 0644), 0);
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m"};
	struct wfs_audit *a;
	char err[256];
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), -EPERM);
	assert_non_null(strstr(err, "group or others"));
}

static void record_one(struct wfs_audit *a, int i)
{
	char p[64];
	struct wfs_audit_event e = tevent(i, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	assert_true(drained(a));
}

/* The newest rows deleted together with the chain head (issue 15.10):
 * verify fails, and the next writer records a chain break instead of
 * continuing quietly from the last remaining row. */
static void test_deleted_tail_and_head(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id >= 98; DELETE FROM chain"),
			 0);
	expect_bad(t, 98, "chain head is missing");
	struct wfs_audit *a = topen(t, "/m", false, 0);
	record_one(a, 500);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE id = 98 AND kind = "
					"'chain-break' AND detail LIKE '%missing%row 97%'"),
			 1);
	assert_int_equal(sql_int(t->db, "SELECT max(id) FROM events"), 99);
	expect_bad(t, 98, "chain break");
	/* the rows before and after the break are intact: only the break is reported */
	struct wfs_audit_verify_result r;
	assert_int_equal(verify(t, &r), 1);
	assert_int_equal(r.rows, 99);
}

/* With no rows left at all but a prune anchor, the head is still required. */
static void test_deleted_all_and_head_after_prune(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(prune(t, 1700000000000000000LL + 30 * 1000, 0), 30);
	assert_int_equal(sql_exec(t->db, "DELETE FROM events; DELETE FROM chain"), 0);
	expect_bad(t, 31, "chain head is missing");
}

/* A running writer that finds an older (authentic) head put back, the rows
 * after it deleted, does not re-chain from there silently. */
static void test_head_rolled_back_under_writer(void **state)
{
	struct tenv *t = *state;
	struct wfs_audit *a = topen(t, "/m", false, 0);
	record_one(a, 101);
	assert_int_equal(sql_exec(t->db, "CREATE TABLE saved AS SELECT * FROM chain"), 0);
	for (int i = 102; i <= 105; i++)
		record_one(a, i);
	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id > 101; DELETE FROM chain; "
					 "INSERT INTO chain SELECT * FROM saved; DROP TABLE saved"),
			 0);
	record_one(a, 106);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT id FROM events WHERE kind = 'chain-break' AND "
					"detail LIKE '%went back from row 105%'"),
			 102);
	expect_bad(t, 102, "chain break");
}

/* A forged head: the writer does not chain from it either. */
static void test_forged_head_under_writer(void **state)
{
	struct tenv *t = *state;
	assert_int_equal(sql_exec(t->db, "UPDATE chain SET auth = zeroblob(32)"), 0);
	struct wfs_audit *a = topen(t, "/m", false, 0);
	record_one(a, 101);
	wfs_audit_close(a);
	assert_int_equal(sql_int(t->db, "SELECT id FROM events WHERE kind = 'chain-break' AND "
					"detail LIKE '%forged%'"),
			 101);
	expect_bad(t, 101, "chain break");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, tenv_teardown)
	const struct CMUnitTest tests[] = {
		T(test_intact),
		T(test_edited),
		T(test_edited_last),
		T(test_edited_path_id),
		T(test_edited_paths_row),
		T(test_migrate_v1),
		T(test_migrate_v2),
		T(test_deleted),
		T(test_deleted_tail),
		T(test_inserted),
		T(test_inserted_copied_mac),
		T(test_replaced_row),
		T(test_prune),
		T(test_prune_paths),
		T(test_prune_refuses_tampered),
		T(test_forged_anchor),
		T(test_key_mode),
		T(test_deleted_tail_and_head),
		T(test_deleted_all_and_head_after_prune),
		T(test_head_rolled_back_under_writer),
		T(test_forged_head_under_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
