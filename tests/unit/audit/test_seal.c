/*
 * test_seal.c - forward-secure sealing (seal*.c): the key evolution and
 * the seal tag against known answers computed from docs/audit.md
 * "Sealing" (Python's hmac, not this code), the verification key, state
 * file and checkpoint texts (round trips and the refusals), and a sealed
 * db made by the writer checked with the verification key, then with a
 * forged, a deleted and a missing seal.
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

#include "audit_internal.h"
#include "util.h"

static void unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v); // NOLINT(cert-err34-c): fixed test vectors
		out[i] = (unsigned char)v;
	}
}

static void k0_of_test(unsigned char *k)
{
	for (int i = 0; i < AUD_SEAL_KEY_LEN; i++)
		k[i] = (unsigned char)i;
}

/* k1 = HMAC-SHA256(k0, "wardfs seal evolve" || u64be(0)), k2 from k1 with
 * 1; k0 = 00 01 .. 1f. */
static void test_evolve_kat(void **state)
{
	(void)state;
	unsigned char k0[32], k1[32], k2[32], want[32];
	k0_of_test(k0);
	assert_int_equal(aud_seal_evolve(k0, 0, k1), 0);
	unhex("b62fd1fc7d1079dcd8f4b28296c51b1529ccffe2551d76b96d6b09fd21a1353f", want, 32);
	assert_memory_equal(k1, want, 32);
	assert_int_equal(aud_seal_evolve(k1, 1, k2), 0);
	unhex("786c0139cd394e95e8529a0b4003ec785793099c82efe846881d0afff80a589a", want, 32);
	assert_memory_equal(k2, want, 32);
}

/* tag = HMAC-SHA256(k1, "wardfs seal tag" || enc(db_id) || enc(1) ||
 * enc(6) || enc(10) || enc(aa * 32) || enc(00 * 32)). */
static void test_tag_kat(void **state)
{
	(void)state;
	unsigned char k0[32], k1[32], tag[32], want[32];
	k0_of_test(k0);
	aud_seal_evolve(k0, 0, k1);
	struct aud_seal s = {.db_id = "0123456789abcdef0123456789abcdef",
			     .epoch = 1,
			     .first_id = 6,
			     .last_id = 10};
	memset(s.head, 0xaa, sizeof s.head);
	assert_int_equal(aud_seal_tag(k1, &s, tag), 0);
	unhex("ebcbf209ddddca7d2eeb1fa6813f847ce1d19e92993da8b3c1487530361e1c44", want, 32);
	assert_memory_equal(tag, want, 32);
	s.last_id = 11; /* every field counts */
	aud_seal_tag(k1, &s, tag);
	assert_memory_not_equal(tag, want, 32);
}

static const char vk_text[] = "wardfs-vk1-0123456789abcdef0123456789abcdef-"
			      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f-"
			      "9925e8c5";

static void test_vkey(void **state)
{
	(void)state;
	unsigned char k0[32], got[32];
	char out[AUD_VKEY_TEXT_LEN + 1], id[WFS_AUDIT_ID_LEN + 1], why[160];
	k0_of_test(k0);
	assert_int_equal(aud_vkey_format("0123456789abcdef0123456789abcdef", k0, out, sizeof out),
			 0);
	assert_string_equal(out, vk_text);
	assert_int_equal(strlen(vk_text), AUD_VKEY_TEXT_LEN);
	assert_int_equal(aud_vkey_parse(" \t"
					"wardfs-vk1-0123456789abcdef0123456789abcdef-"
					"000102030405060708090a0b0c0d0e0f101112131415161718191a"
					"1b1c1d1e1f-9925e8c5\n",
					AUD_VKEY_TEXT_LEN + 3, id, got, why, sizeof why),
			 0);
	assert_memory_equal(got, k0, 32);
	assert_string_equal(id, "0123456789abcdef0123456789abcdef");

	char bad[sizeof vk_text];
	assert_int_equal(aud_vkey_parse(vk_text, 100, id, got, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "truncated (100 of 117"));
	memcpy(bad, vk_text, sizeof bad);
	bad[60] = bad[60] == '0' ? '1' : '0';
	assert_int_equal(aud_vkey_parse(bad, strlen(bad), id, got, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "checksum"));
	bad[60] = 'g';
	assert_int_equal(aud_vkey_parse(bad, strlen(bad), id, got, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "character 61 is not a hex digit"));
	assert_int_equal(aud_vkey_parse("wardfs-vk2-", 11, id, got, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "not a wardfs verification key"));
}

static void test_state_file(void **state)
{
	struct tenv *t = *state;
	char path[256], err[512], why[128];
	snprintf(path, sizeof path, "%s/x.seal", t->dir);
	struct aud_seal_state *s = aud_seal_state_new(), *r = aud_seal_state_new();
	assert_non_null(s);
	snprintf(s->db_id, sizeof s->db_id, "0123456789abcdef0123456789abcdef");
	s->epoch = 7;
	s->rows = 5;
	s->interval_s = 60;
	k0_of_test(s->key);
	assert_int_equal(aud_seal_state_write(path, s, err, sizeof err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(aud_seal_state_read(path, r, err, sizeof err), 0);
	assert_int_equal(r->epoch, 7);
	assert_int_equal(r->rows, 5);
	assert_int_equal(r->interval_s, 60);
	assert_memory_equal(r->key, s->key, 32);

	/* One step: the old key's text is nowhere in the new file. */
	int old = open(path, O_RDONLY);
	aud_seal_evolve(s->key, s->epoch, s->next);
	memcpy(s->key, s->next, 32);
	s->epoch++;
	assert_int_equal(aud_seal_state_write(path, s, err, sizeof err), 0);
	char buf[1024];
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = 0;
	assert_null(strstr(buf, "000102030405060708090a0b0c0d0e0f"));
	assert_non_null(strstr(buf, "epoch=8\n"));
	/* ... nor in the replaced file's blocks (zeroed through its fd) */
	n = pread(old, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	assert_null(strstr(buf, "0001020304050607"));
	close(old);

	chmod(path, 0644);
	assert_int_equal(aud_seal_state_read(path, r, err, sizeof err), -EPERM);
	assert_non_null(strstr(err, "accessible by group or others"));

	static const char *bad[] = {
		"",
		"wardfs-seal-state 2\n",
		"wardfs-seal-state 1\ndb_id=XYZ\n",
		"wardfs-seal-state 1\ndb_id=0123456789abcdef0123456789abcdef\nepoch=-1\n",
		"wardfs-seal-state 1\ndb_id=0123456789abcdef0123456789abcdef\nepoch=1\nkey=00\n",
		"wardfs-seal-state 1\ndb_id=0123456789abcdef0123456789abcdef\nepoch=1\nkey="
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nrows=0\n"
		"interval=1\n",
		"wardfs-seal-state 1\ndb_id=0123456789abcdef0123456789abcdef\nepoch=1\nkey="
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nrows=1\n"
		"interval=1\nmore\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(aud_seal_state_parse(bad[i], strlen(bad[i]), r, why, sizeof why),
				 -EINVAL);
	aud_seal_state_free(s);
	aud_seal_state_free(r);
}

static void test_checkpoint_line(void **state)
{
	(void)state;
	struct aud_seal s = {.db_id = "0123456789abcdef0123456789abcdef",
			     .epoch = 3,
			     .first_id = 10,
			     .last_id = 20};
	unsigned char tag[32];
	memset(s.head, 0x11, 32);
	memset(tag, 0x22, 32);
	char line[512], logged[600];
	assert_int_equal(aud_checkpoint_format(&s, tag, line, sizeof line), 0);
	snprintf(logged, sizeof logged, "Dec  5 07:00:00 host wardfs[42]: %s\r\n", line);
	struct aud_checkpoint c;
	assert_int_equal(aud_checkpoint_parse(logged, strlen(logged), &c), 1);
	assert_string_equal(c.db_id, s.db_id);
	assert_int_equal(c.epoch, 3);
	assert_int_equal(c.last_id, 20);
	assert_memory_equal(c.head, s.head, 32);
	assert_memory_equal(c.tag, tag, 32);
	assert_int_equal(aud_checkpoint_parse("nothing here", 12, &c), 0);
	line[strlen(line) - 3] = 0; /* a cut tag */
	assert_int_equal(aud_checkpoint_parse(line, strlen(line), &c), -EINVAL);
}

/* A db sealed by the writer (every 3 rows), its verification key in vk. */
static void make_sealed(const struct tenv *t, char *vk, size_t len)
{
	struct wfs_audit *a = topen(t, "/m", false, 0);
	wfs_audit_close(a);
	struct wfs_audit_db *d;
	char err[512];
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), 0);
	snprintf(vk, len, "%s/vk", t->dir);
	int fd = open(vk, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(wfs_audit_seal_init(d, 3, 3600, fd, err, sizeof err), 0);
	close(fd);
	/* a second init is refused */
	assert_int_equal(wfs_audit_seal_init(d, 3, 3600, -1, err, sizeof err), -EEXIST);
	wfs_audit_db_close(d);
	a = topen(t, "/m", false, 0);
	char p[64];
	for (int i = 0; i < 20; i++) {
		struct wfs_audit_event e = tevent(i, p, sizeof p);
		assert_int_equal(wfs_audit_record(a, &e), 0);
		if (i % 5 == 4) {
			assert_true(drained(a));
			usleep(300 * 1000); /* past the minimum gap between seals */
		}
	}
	wfs_audit_close(a);
}

static int seal_verify(const struct tenv *t, const char *vk, struct wfs_audit_seal_result *r)
{
	struct wfs_audit_db *d;
	char err[512];
	assert_int_equal(wfs_audit_db_open(t->db, false, &d, err, sizeof err), 0);
	struct wfs_audit_seal_opts o = {.vkey_path = vk};
	int v = wfs_audit_seal_verify(d, &o, r, err, sizeof err);
	wfs_audit_db_close(d);
	return v;
}

static void test_sealed_db(void **state)
{
	struct tenv *t = *state;
	char vk[256];
	struct wfs_audit_seal_result r;
	make_sealed(t, vk, sizeof vk);
	int64_t seals = sql_int(t->db, "SELECT count(*) FROM seal");
	assert_true(seals >= 3);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_OK);
	assert_int_equal(r.seals, seals);
	assert_int_equal(r.sealed_to, sql_int(t->db, "SELECT max(id) FROM events"));
	assert_int_equal(r.unsealed, 0);

	/* a forged tag */
	assert_int_equal(sql_exec(t->db, "UPDATE seal SET tag = zeroblob(32) WHERE epoch = 1"), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_TAMPERED);
	assert_non_null(strstr(r.reason, "epoch 1"));
	assert_non_null(strstr(r.reason, "forged"));
	/* a seal deleted */
	assert_int_equal(sql_exec(t->db, "DELETE FROM seal WHERE epoch = 1"), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_TAMPERED);
	assert_non_null(strstr(r.reason, "epochs 1..1 are missing"));
	/* all of them, the state kept: it says seals were made */
	assert_int_equal(sql_exec(t->db, "DELETE FROM seal"), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_TAMPERED);
	/* and the state deleted too: not verifiable, never ok */
	char sp[256];
	snprintf(sp, sizeof sp, "%s.seal", t->db);
	assert_int_equal(unlink(sp), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_UNVERIFIABLE);
}

static void test_sealed_rows_edited(void **state)
{
	struct tenv *t = *state;
	char vk[256];
	struct wfs_audit_seal_result r;
	make_sealed(t, vk, sizeof vk);
	/* the stored MAC is not what counts: the rows are */
	assert_int_equal(sql_exec(t->db, "UPDATE events SET uid = 4242 WHERE id = 2"), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_TAMPERED);
	assert_non_null(strstr(r.reason, "sealed in epoch 0, were altered"));
}

/*
 * The crash window: seal i committed, the daemon killed before the state
 * moved on to k_{i+1}. The state then holds epoch i and k_i (made here
 * from k0), verify still says ok, and the next seal evolves forward and
 * seals epoch i + 1: no epoch skipped, none sealed twice.
 */
static void test_crash_between_seal_and_state(void **state)
{
	struct tenv *t = *state;
	char vk[256], text[256], id[WFS_AUDIT_ID_LEN + 1], why[160], err[512], sp[256];
	struct wfs_audit_seal_result r;
	make_sealed(t, vk, sizeof vk);
	int64_t last = sql_int(t->db, "SELECT max(epoch) FROM seal");
	int fd = open(vk, O_RDONLY);
	ssize_t n = read(fd, text, sizeof text);
	close(fd);
	assert_true(n > 0);
	struct aud_seal_state *s = aud_seal_state_new();
	snprintf(sp, sizeof sp, "%s.seal", t->db);
	assert_int_equal(aud_seal_state_read(sp, s, err, sizeof err), 0);
	assert_int_equal(s->epoch, last + 1);
	assert_int_equal(aud_vkey_parse(text, (size_t)n, id, s->key, why, sizeof why), 0);
	for (uint64_t e = 0; e < (uint64_t)last; e++) {
		aud_seal_evolve(s->key, e, s->next);
		memcpy(s->key, s->next, 32);
	}
	s->epoch = (uint64_t)last; /* k_last: the state before the crash's write */
	assert_int_equal(aud_seal_state_write(sp, s, err, sizeof err), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_OK);

	struct wfs_audit *a = topen(t, "/m", false, 0);
	char p[64];
	struct wfs_audit_event e = tevent(99, p, sizeof p);
	assert_int_equal(wfs_audit_record(a, &e), 0);
	wfs_audit_close(a); /* seals: epoch last + 1, not last again */
	assert_int_equal(sql_int(t->db, "SELECT max(epoch) FROM seal"), last + 1);
	assert_int_equal(sql_int(t->db, "SELECT count(*) FROM seal"), last + 2);
	assert_int_equal(aud_seal_state_read(sp, s, err, sizeof err), 0);
	assert_int_equal(s->epoch, last + 2);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_OK);
	assert_int_equal(r.unsealed, 0);
	aud_seal_state_free(s);
}

/* Pruned rows: their seals are still checked, the chain is recomputed from
 * the prune anchor, and a seal straddling it still checks. */
static void test_pruned_sealed_rows(void **state)
{
	struct tenv *t = *state;
	char vk[256], err[512];
	struct wfs_audit_seal_result r;
	make_sealed(t, vk, sizeof vk);
	int64_t cutoff = sql_int(t->db, "SELECT time_ns FROM events WHERE id = 7");
	struct wfs_audit_db *d;
	struct wfs_audit_prune_result pr;
	assert_int_equal(wfs_audit_db_open(t->db, true, &d, err, sizeof err), 0);
	assert_int_equal(wfs_audit_prune(d, NULL, cutoff, &pr, err, sizeof err), 0);
	wfs_audit_db_close(d);
	assert_int_equal(pr.pruned_to, 6);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_OK);
	assert_int_equal(r.pruned_to, 6);
	assert_non_null(strstr(r.note, "rows up to 6 were pruned"));
	/* a row after the anchor edited: still found */
	assert_int_equal(sql_exec(t->db, "UPDATE events SET uid = 4242 WHERE id = 8"), 0);
	assert_int_equal(seal_verify(t, vk, &r), WFS_SEAL_TAMPERED);
	assert_non_null(strstr(r.reason, "were altered"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evolve_kat),
		cmocka_unit_test(test_tag_kat),
		cmocka_unit_test(test_vkey),
		cmocka_unit_test_setup_teardown(test_state_file, tenv_setup, tenv_teardown),
		cmocka_unit_test(test_checkpoint_line),
		cmocka_unit_test_setup_teardown(test_sealed_db, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_sealed_rows_edited, tenv_setup, tenv_teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_seal_and_state, tenv_setup,
						tenv_teardown),
		cmocka_unit_test_setup_teardown(test_pruned_sealed_rows, tenv_setup, tenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
