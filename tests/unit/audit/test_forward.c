/*
 * test_forward.c - audit forwarding without rsyslog: the --audit-forward
 * list, the RFC 5424 message of a row (header, structured data, escaping
 * of hostile names, cuts that never split a character or an escape), and
 * a forwarder sending to a unix datagram socket the test owns: in order,
 * each row once, the rows of an outage sent when the socket is back, and
 * the cursor file saying where it stopped.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit_internal.h"
#include "util.h"

static void test_parse(void **state)
{
	(void)state;
	struct wfs_audit_forward f;
	char err[256];
	assert_int_equal(wfs_audit_forward_parse("journal", &f, err, sizeof err), 0);
	assert_int_equal(f.dests, WFS_FWD_JOURNAL);
	assert_int_equal(wfs_audit_forward_parse("syslog", &f, err, sizeof err), 0);
	assert_int_equal(f.dests, WFS_FWD_SYSLOG);
	assert_string_equal(f.syslog_path, "/dev/log");
	assert_int_equal(
		wfs_audit_forward_parse("journal+syslog:/run/w/a.sock", &f, err, sizeof err), 0);
	assert_int_equal(f.dests, WFS_FWD_JOURNAL | WFS_FWD_SYSLOG);
	assert_string_equal(f.syslog_path, "/run/w/a.sock");
	assert_int_equal(wfs_audit_forward_parse("syslog:/x,journal", &f, err, sizeof err), 0);
	assert_int_equal(f.dests, WFS_FWD_JOURNAL | WFS_FWD_SYSLOG);

	const char *bad[] = {"", ",", "kafka", "syslog:", "syslog:rel/sock", "journal,jornal"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		assert_int_equal(wfs_audit_forward_parse(bad[i], &f, err, sizeof err), -EINVAL);
		assert_true(err[0] && !strchr(err, '\n'));
	}
	char longp[200] = "syslog:/";
	memset(longp + 8, 'a', 150);
	assert_int_equal(wfs_audit_forward_parse(longp, &f, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "absolute path shorter than"));
}

static struct wfs_audit_row sample(const char *path)
{
	struct wfs_audit_row r = {
		.id = 7,
		.time_ns = 1764916110123456789LL, /* 2025-12-05T06:28:30.123456789Z */
		.mount = "/home/alice",
		.kind = "create",
		.path = path,
		.access = "w",
		.cls = "public",
		.decision = "allow",
		.rule = "/etc/wardfs/policy:3",
		.uid = 1000,
		.gid = 1001,
		.pid = 4242,
		.comm = "vim",
		.exe = "/usr/bin/vim.basic",
	};
	return r;
}

static char *format(const struct wfs_audit_row *r)
{
	struct aud_buf b = {0};
	struct aud_fwd_row row = {.r = r, .chain = "ab", .db_id = "d1"};
	assert_int_equal(aud_fwd_syslog_format(&b, &row, "ws1", 42), 0);
	assert_int_equal(strlen((char *)b.p), b.len); /* no NUL inside */
	return (char *)b.p;
}

static void test_format(void **state)
{
	(void)state;
	struct wfs_audit_row r = sample("/odd\n]\"\\\xff.txt");
	char *m = format(&r);
	/* facility 13 (log audit) * 8 + info */
	const char *head = "<110>1 2025-12-05T06:28:30.123456Z ws1 wardfs 42 create "
			   "[wardfs@32473 row=\"7\" kind=\"create\" "
			   "path=\"/odd\\\\n\\]\\\"\\\\\\\\\\\\xff.txt\" class=\"public\" "
			   "decision=\"allow\" access=\"w\" rule=\"/etc/wardfs/policy:3\" "
			   "exe=\"/usr/bin/vim.basic\" comm=\"vim\" uid=\"1000\" gid=\"1001\" "
			   "pid=\"4242\" mount=\"/home/alice\" chain=\"ab\" db=\"d1\"] "
			   "create /odd\\n]\"\\\\\\xff.txt by /usr/bin/vim.basic uid 1000: allow";
	assert_string_equal(m, head);
	assert_null(strchr(m, '\n'));
	free(m);

	/* a denial: warning, and its errno by name */
	r = sample("/.netrc");
	r.decision = "deny";
	r.err = EACCES;
	m = format(&r);
	assert_true(!strncmp(m, "<108>1 ", 7));
	assert_non_null(strstr(m, " errno=\"EACCES\""));
	free(m);
	r.kind = "integrity";
	m = format(&r);
	assert_true(!strncmp(m, "<107>1 ", 7));
	free(m);
	/* no kind at all (a row read back damaged): "-" where a word goes */
	r.kind = NULL;
	m = format(&r);
	assert_non_null(strstr(m, " wardfs 42 - [wardfs@32473 row=\"7\" path="));
	free(m);
}

/* The message of a row with path holds, in its path value,
 * kept bytes of 'a', then the cut's "...". */
static void assert_cut(const char *path, size_t kept)
{
	struct wfs_audit_row r = sample(path);
	char *m = format(&r);
	char *v = strstr(m, "path=\"") + 6;
	assert_int_equal(strspn(v, "a"), kept);
	assert_true(!strncmp(v + kept, "...\"", 4));
	free(m);
}

static void test_format_cuts(void **state)
{
	(void)state;
	char *p = malloc(8192);
	assert_non_null(p);
	/* 4095 bytes, then a two-byte character: cut before it, not inside */
	memset(p, 'a', 4095);
	strcpy(p + 4095, "\xc3\xa9tail");
	assert_cut(p, 4095);
	/* an escape (\xff, 4 bytes) across the cut: cut before it */
	memset(p, 'a', 4094);
	strcpy(p + 4094, "\xff"
			 "b");
	assert_cut(p, 4094);
	/* printable ASCII only (format's one-pass copy): cut at the cap */
	memset(p, 'a', 5000);
	p[5000] = 0;
	assert_cut(p, 4096);
	free(p);
	/* ... and its SD-PARAM escapes */
	struct wfs_audit_row r = sample("/a]b\"c d");
	char *m = format(&r);
	assert_non_null(strstr(m, " path=\"/a\\]b\\\"c d\" "));
	assert_non_null(strstr(m, "] create /a]b\"c d by "));
	free(m);
}

/* ---- a forwarder and a socket of the test's own ------------------------ */

static int bind_at(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* The row id of the next message (-1: none within ms). */
static long next_row(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return -1;
	char buf[16384];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	assert_true(n > 0);
	buf[n] = 0;
	const char *k = strstr(buf, "[wardfs@32473 row=\"");
	assert_non_null(k);
	return strtol(k + 19, NULL, 10);
}

static void record(struct wfs_audit *a, int from, int to)
{
	char path[64];
	for (int i = from; i < to; i++) {
		struct wfs_audit_event e = tevent(i, path, sizeof path);
		assert_int_equal(wfs_audit_record(a, &e), 0);
	}
}

static int64_t cursor_in_file(const struct tenv *t)
{
	char path[256], buf[512];
	snprintf(path, sizeof path, "%s-forward-syslog", t->db);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *r = strstr(buf, "\nrow ");
	assert_non_null(r);
	return strtoll(r + 5, NULL, 10);
}

static void test_outage(void **state)
{
	struct tenv *t = *state;
	char sock[256], spec[300];
	snprintf(sock, sizeof sock, "%s/log.sock", t->dir);
	snprintf(spec, sizeof spec, "syslog:%s", sock);
	int fd = bind_at(sock);
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m", .forward = spec};
	struct wfs_audit *a = NULL;
	char err[256] = "";
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);

	record(a, 0, 20);
	for (long want = 1; want <= 20; want++)
		assert_int_equal(next_row(fd, 5000), want);

	/* Delivered: the forwarder saw the queue empty and the receiver
	 * alive. (One that stops right after reading may get the batch again:
	 * not what this test is about.) */
	struct wfs_audit_forward_counters c;
	for (int i = 0; i < 250; i++) {
		wfs_audit_forward_counters(a, WFS_FWD_SYSLOG, &c);
		if (c.cursor == 20)
			break;
		usleep(20000);
	}
	assert_int_equal(c.cursor, 20);
	/* the receiver goes away: its socket closed, the file left stale */
	close(fd);
	record(a, 20, 30);
	assert_true(drained(a));
	for (int i = 0; i < 100; i++) {
		wfs_audit_forward_counters(a, WFS_FWD_SYSLOG, &c);
		if (c.down)
			break;
		usleep(20000);
	}
	assert_true(c.down);
	assert_int_equal(c.cursor, 20);

	/* back (a new socket at the path): the waiting rows, in order, once */
	fd = bind_at(sock);
	for (long want = 21; want <= 30; want++)
		assert_int_equal(next_row(fd, 5000), want);
	assert_int_equal(next_row(fd, 300), -1);
	wfs_audit_close(a);
	assert_int_equal(cursor_in_file(t), 30);

	/* the next open goes on after the cursor: nothing again */
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);
	record(a, 30, 31);
	assert_int_equal(next_row(fd, 5000), 31);
	assert_int_equal(next_row(fd, 300), -1);
	wfs_audit_close(a);
	close(fd);
}

/* Waits until the forwarder says it delivered up to row id. */
static bool delivered_to(struct wfs_audit *a, int64_t id)
{
	struct wfs_audit_forward_counters c = {0};
	for (int i = 0; i < 250; i++) {
		wfs_audit_forward_counters(a, WFS_FWD_SYSLOG, &c);
		if (c.cursor == id)
			return true;
		usleep(20000);
	}
	return false;
}

/*
 * The cursor's row is no longer the row that was forwarded: the newest
 * rows and the chain head were deleted, so the writer goes on from the
 * last row left (a chain-break row) and reuses ids. The forwarder must not
 * skip the rows that took the old ids. And a database made afresh (another
 * identity) is forwarded from its first row.
 */
static void test_rewritten_rows(void **state)
{
	struct tenv *t = *state;
	char sock[256], spec[300];
	snprintf(sock, sizeof sock, "%s/log.sock", t->dir);
	snprintf(spec, sizeof spec, "syslog:%s", sock);
	int fd = bind_at(sock);
	struct wfs_audit_opts o = {.db_path = t->db, .mount_id = "/m", .forward = spec};
	struct wfs_audit *a = NULL;
	char err[256] = "";
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);
	record(a, 0, 20);
	for (long want = 1; want <= 20; want++)
		assert_int_equal(next_row(fd, 5000), want);
	assert_true(delivered_to(a, 20));
	wfs_audit_close(a);
	assert_int_equal(cursor_in_file(t), 20);

	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id >= 15; DELETE FROM chain"),
			 0);
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);
	record(a, 20, 30); /* row 15: the chain break; 16..25 these */
	for (long want = 15; want <= 25; want++)
		assert_int_equal(next_row(fd, 5000), want);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM events WHERE id = 15 AND kind = "
					"'chain-break'"),
			 1);
	assert_true(delivered_to(a, 25));
	wfs_audit_close(a);
	assert_int_equal(next_row(fd, 300), -1);

	/* The same, seen by the forwarder before any new row: the db ends
	 * before the cursor (its first look is within a second of opening).
	 * It goes back to the latest chain break it finds, the old one at 15
	 * here: rows 15..19 again (the consumer dedupes), none skipped. */
	assert_int_equal(sql_exec(t->db, "DELETE FROM events WHERE id >= 20; DELETE FROM chain"),
			 0);
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);
	usleep(1500000);
	record(a, 30, 35); /* row 20: the chain break; 21..25 these */
	/* (from 20 when a loaded machine delayed that first look until the
	 * new rows were in: then the cursor's row differs, as above) */
	long first = next_row(fd, 5000);
	assert_true(first == 15 || first == 20);
	for (long want = first + 1; want <= 25; want++)
		assert_int_equal(next_row(fd, 5000), want);
	assert_true(delivered_to(a, 25));
	wfs_audit_close(a);
	assert_int_equal(next_row(fd, 300), -1);

	/* a database made afresh: from its first row */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm' '%s-wardfs-journal'", t->db, t->db,
		 t->db, t->db);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(wfs_audit_open(&o, &a, err, sizeof err), 0);
	record(a, 0, 3);
	for (long want = 1; want <= 3; want++)
		assert_int_equal(next_row(fd, 5000), want);
	assert_true(delivered_to(a, 3));
	wfs_audit_close(a);
	assert_int_equal(cursor_in_file(t), 3);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_cuts),
		cmocka_unit_test_setup_teardown(test_outage, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_rewritten_rows, tenv_setup, tenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
