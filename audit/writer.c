/*
 * writer.c - drains journal records into SQLite in batched transactions,
 * chaining each row's MAC to the previous one, then marks them consumed.
 * Runs on its own thread (and synchronously at open to replay a journal
 * left by a killed daemon). Exactly-once: the db stores each journal's
 * highest drained seq in the same transaction as the rows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit_internal.h"

#define BATCH_MAX   4096
#define INTERVAL_MS 20

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void aud_set_error(struct wfs_audit *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&a->err_lock);
	vsnprintf(a->last_error, sizeof a->last_error, fmt, ap);
	pthread_mutex_unlock(&a->err_lock);
	va_end(ap);
}

#ifndef __GCC_HAVE_SYNC_COMPARE_AND_SWAP_16
pthread_mutex_t aud_head_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

int aud_writer_prepare(struct wfs_audit *a, char *err, size_t errlen)
{
	static const char *sql[] = {
		"SELECT 0, last_id, last_mac, auth FROM chain WHERE k = 1 UNION ALL SELECT 1, * "
		"FROM (SELECT id, mac, NULL FROM events ORDER BY id DESC LIMIT 1) UNION ALL "
		"SELECT 2, * FROM (SELECT pruned_to, mac, NULL FROM anchors ORDER BY pruned_to "
		"DESC LIMIT 1)",
		"SELECT drained_seq FROM journals WHERE id = ?",
		"INSERT INTO events (id," AUD_ROW_COLS ",mac,path_id) VALUES (?1, ?2, ?3, ?4, ?5, "
		"?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
		"INSERT INTO journals (id, mount, path, drained_seq, updated_ns) VALUES (?, ?, ?, "
		"?, ?) ON CONFLICT(id) DO UPDATE SET drained_seq = excluded.drained_seq, "
		"updated_ns = excluded.updated_ns, mount = excluded.mount",
		"INSERT OR REPLACE INTO chain (k, last_id, last_mac, auth) VALUES (1, ?, ?, ?)",
	};
	sqlite3_stmt **st[] = {&a->st_head, &a->st_jget, &a->st_ins, &a->st_jset, &a->st_headset};
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		int rc = sqlite3_prepare_v3(a->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i],
					    NULL);
		if (rc) {
			snprintf(err, errlen, "cannot prepare audit statements on '%s': %s",
				 a->db_path, sqlite3_errmsg(a->db));
			return aud_sqlite_errno(rc);
		}
	}
	int rc = aud_paths_prepare(a);
	if (rc) {
		snprintf(err, errlen, "cannot prepare audit statements on '%s': %s", a->db_path,
			 rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(a->db));
		return aud_sqlite_errno(rc);
	}
	return 0;
}

void aud_writer_finalize(struct wfs_audit *a)
{
	aud_paths_finalize(a);
	sqlite3_stmt **st[] = {&a->st_head, &a->st_jget, &a->st_ins, &a->st_jset, &a->st_headset};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
		sqlite3_finalize(*st[i]);
		*st[i] = NULL;
	}
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

struct tail {
	bool present;
	int64_t id;
	unsigned char mac[AUD_MAC_LEN], auth[AUD_MAC_LEN];
};

/* Reads the chain head (tag 0), the last row (1) and the latest anchor (2). */
static int read_tails(struct wfs_audit *a, struct tail t[3])
{
	memset(t, 0, 3 * sizeof *t);
	int rc;
	while ((rc = sqlite3_step(a->st_head)) == SQLITE_ROW) {
		int tag = sqlite3_column_int(a->st_head, 0);
		if (tag < 0 || tag > 2)
			continue;
		t[tag].present = true;
		t[tag].id = sqlite3_column_int64(a->st_head, 1);
		if (sqlite3_column_bytes(a->st_head, 2) == AUD_MAC_LEN)
			memcpy(t[tag].mac, sqlite3_column_blob(a->st_head, 2), AUD_MAC_LEN);
		if (sqlite3_column_bytes(a->st_head, 3) == AUD_MAC_LEN)
			memcpy(t[tag].auth, sqlite3_column_blob(a->st_head, 3), AUD_MAC_LEN);
	}
	sqlite3_reset(a->st_head);
	return rc == SQLITE_DONE ? 0 : rc;
}

/*
 * Where the chain goes on: after the authenticated head, as long as it is
 * one. A head that is missing while rows (or a prune anchor) exist, one
 * that is forged, one behind the last row, or one behind what this writer
 * itself committed means someone deleted or rewrote the newest rows (issue
 * 15.10): the writer then never continues silently from whatever row is
 * last. It goes on from the last row that is there and says so in why, and
 * the caller records a chain-break row that verify reports. 0, or an
 * SQLite code.
 */
int aud_read_head(struct wfs_audit *a, int64_t *id, unsigned char *mac, char *why, size_t whylen)
{
	struct tail t[3];
	why[0] = 0;
	int rc = read_tails(a, t);
	if (rc)
		return rc;
	const struct tail *head = &t[0], *last = t[1].present ? &t[1] : &t[2];
	*id = last->present ? last->id : 0;
	memset(mac, 0, AUD_MAC_LEN);
	if (last->present)
		memcpy(mac, last->mac, AUD_MAC_LEN);
	if (!head->present) {
		if (last->present)
			snprintf(why, whylen,
				 "the chain head is missing while rows exist up to row %lld: "
				 "newer rows may have been deleted",
				 (long long)last->id);
		return 0;
	}
	unsigned char auth[AUD_MAC_LEN];
	aud_head_auth(a->key, head->id, head->mac, auth);
	if (memcmp(auth, head->auth, AUD_MAC_LEN))
		snprintf(why, whylen, "the chain head (row %lld) is forged or edited",
			 (long long)head->id);
	else if (head->id < *id)
		snprintf(why, whylen,
			 "the chain head (row %lld) is behind the last row (%lld): rows were "
			 "added outside wardfs, or an old head was put back",
			 (long long)head->id, (long long)*id);
	else if (head->id < a->committed_id)
		snprintf(why, whylen,
			 "the chain head went back from row %lld, which this writer committed, "
			 "to row %lld: rows %lld..%lld were deleted and an old head put back",
			 (long long)a->committed_id, (long long)head->id, (long long)head->id + 1,
			 (long long)a->committed_id);
	if (why[0])
		return 0;
	/* An authentic head ahead of the rows: the rows after the last one
	 * were deleted. Going on from the head keeps the gap, which verify
	 * names ("rows N..M: deleted"). */
	*id = head->id;
	memcpy(mac, head->mac, AUD_MAC_LEN);
	return 0;
}

/*
 * Inserts a row as row id with its MAC. Texts are bound SQLITE_STATIC:
 * they point into the journal's ring (or its scratch copy) or the caller's
 * strings, all of which outlive the step.
 */
static int insert(struct wfs_audit *a, int64_t id, const struct aud_row *row,
		  const unsigned char *mac)
{
	sqlite3_stmt *st = a->st_ins;
	sqlite3_bind_int64(st, 1, id);
	for (int k = 0; k < AUD_ROW_NFIELDS; k++) {
		const struct aud_val *v = &row->v[k];
		if (v->type == AUD_V_INT)
			sqlite3_bind_int64(st, k + 2, v->i);
		else if (v->type == AUD_V_TEXT)
			sqlite3_bind_text(st, k + 2, v->s, (int)v->len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, k + 2);
	}
	sqlite3_bind_blob(st, AUD_ROW_NFIELDS + 2, mac, AUD_MAC_LEN, SQLITE_STATIC);
	const struct aud_val *path = &row->v[AUD_ROW_PATH];
	if (path->type == AUD_V_TEXT) {
		int64_t path_id;
		int rc = aud_paths_id(a, path->s, path->len, &path_id);
		if (rc) {
			sqlite3_clear_bindings(st);
			return rc;
		}
		sqlite3_bind_int64(st, AUD_ROW_NFIELDS + 3, path_id);
	}
	return step_done(st);
}

/*
 * Appends a row the writer itself makes (kind "chain-break" or "lost"),
 * chained like any other: its MAC covers the row's canonical encoding, the
 * bytes verify rebuilds from its columns.
 */
static int insert_note(struct wfs_audit *a, int64_t *last_id, unsigned char *prev, const char *kind,
		       const char *detail)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct aud_row row = {{
		aud_int((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec),
		aud_text(a->mount, (uint32_t)strlen(a->mount)),
		aud_text(kind, (uint32_t)strlen(kind)),
		aud_null(), /* path */
		aud_int(0), /* flags */
		aud_null(), /* access */
		aud_null(), /* flag_names */
		aud_null(), /* class */
		aud_null(), /* form */
		aud_text("allow", 5),
		aud_int(0), /* errno */
		aud_null(), /* rule */
		aud_int(0), /* uid: the daemon's own row */
		aud_int(0), /* gid */
		aud_int(getpid()),
		aud_null(), /* comm */
		aud_null(), /* exe */
		aud_text(detail, (uint32_t)strlen(detail)),
	}};
	struct aud_buf *b = &a->macbuf;
	unsigned char mac[AUD_MAC_LEN];
	b->len = 0;
	if (aud_row_encode(b, &row) || aud_mac_row(a->key, prev, *last_id + 1, b->p, b->len, mac))
		return SQLITE_NOMEM;
	int rc = insert(a, *last_id + 1, &row, mac);
	if (rc)
		return rc;
	++*last_id;
	memcpy(prev, mac, AUD_MAC_LEN);
	return 0;
}

static int check_attrs(struct wfs_audit *a, char *why, size_t len);

static int fail(struct wfs_audit *a, int rc, const char *what)
{
	int e = aud_sqlite_errno(rc);
	if (!e)
		e = -EIO;
	/* A commit that raced a chattr fails as "disk I/O error": the files'
	 * attributes say why, and the refused opens' log line quotes this. */
	char why[4096 + 512];
	if (!a->test_no_attr_check && check_attrs(a, why, sizeof why))
		aud_set_error(a, "%s", why);
	else
		aud_set_error(a, "cannot %s audit database '%s': %s", what, a->db_path,
			      sqlite3_errmsg(a->db));
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	aud_paths_clear(a); /* it may hold ids of paths the rollback removed */
	return e;
}

/* "immutable (chattr +i)" or "append-only (chattr +a)" when the file's
 * attributes refuse the writes SQLite (or the journal) makes, else NULL. */
static const char *refusing_attr(const struct statx *sx)
{
	uint64_t set = sx->stx_attributes & sx->stx_attributes_mask;
	if (set & STATX_ATTR_IMMUTABLE)
		return "immutable (chattr +i)";
	if (set & STATX_ATTR_APPEND)
		return "append-only (chattr +a)";
	return NULL;
}

static int statx_of(const char *path, struct statx *sx)
{
	return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, sx) < 0 ? errno
											  : 0;
}

/*
 * The db's companions: SQLite's -wal and -shm, and the journal. One that is
 * immutable or append-only makes every write fail; for -shm and the journal,
 * which are written through shared mappings, the first store into a page
 * already written back would be a SIGBUS (guard.c survives it; this check
 * says so first, plainly). Fills why and returns -EPERM, or 0.
 */
static int check_companions(struct wfs_audit *a, bool *journal, char *why, size_t len)
{
	const char *suffix[] = {"-wal", "-shm"};
	char path[4096];
	struct statx sx;
	const char *how;
	for (int i = 0; i < 3; i++) {
		if (i < 2)
			snprintf(path, sizeof path, "%s%s", a->db_path, suffix[i]);
		else
			snprintf(path, sizeof path, "%s", a->journal_path);
		if (statx_of(path, &sx) || !(how = refusing_attr(&sx)))
			continue;
		*journal = i == 2;
		snprintf(why, len,
			 "audit %s '%s' is %s: rows cannot be written; make it writable again "
			 "(chattr -i -a)",
			 i == 2 ? "journal" : "database file", path, how);
		return -EPERM;
	}
	return 0;
}

/* The db's or a companion's attributes refuse writes (sx: the db's statx):
 * fills why and returns -EPERM, or 0. */
static int check_attrs_of(struct wfs_audit *a, const struct statx *sx, bool *journal, char *why,
			  size_t len)
{
	const char *how = refusing_attr(sx);
	if (!how)
		return check_companions(a, journal, why, len);
	snprintf(why, len,
		 "audit database '%s' is %s: rows cannot be written; make it writable again "
		 "(chattr -i -a)",
		 a->db_path, how);
	return -EPERM;
}

static int check_attrs(struct wfs_audit *a, char *why, size_t len)
{
	struct statx sx;
	bool journal;
	if (statx_of(a->db_path, &sx))
		return 0;
	return check_attrs_of(a, &sx, &journal, why, len);
}

/*
 * Whether the journal's file system (the db's) refuses writes: ext4 turned
 * read-only by an error (errors=remount-ro) does not say so in statvfs
 * (Linux 6.x keeps it "rw" with an emergency_ro flag), and the writer may
 * not write for seconds during a burst; meanwhile the rows stored in the
 * journal's mapping never reach the disk (issue 22.8). A write of zero bytes
 * changes nothing on a healthy file system and fails on that one. The
 * errno, or 0.
 */
static int refuses_writes(struct wfs_audit *a)
{
	char none = 0;
	if (a->j.fd < 0 || pwrite(a->j.fd, &none, 0, 0) == 0)
		return 0;
	return errno == EROFS || errno == EIO ? errno : 0;
}

/*
 * Is the db at db_path still the file the writer has open, on a writable
 * file system, and are it and its companions writable? SQLite goes on
 * writing to a deleted file without an error (its rows vanish at unmount),
 * a read-only file system may still accept stores into the journal's
 * mapping that can never reach the disk, and an immutable -shm kills the
 * process that stores into it. Each is a write failure: closed mode
 * refuses opens, open mode counts the rows lost. A few statx calls per
 * wake-up cost little.
 */
static int check_db_file(struct wfs_audit *a)
{
	struct statx sx;
	struct statvfs vs;
	int e = 0;
	bool ro = false;
	char why[4096 + 512] = ""; /* set_error truncates it to last_error */
	int we = 0;
	int sr = statx_of(a->db_path, &sx);
	/* Two branches below are empty on purpose, each for its own reason. */
	// NOLINTBEGIN(bugprone-branch-clone)
	if (atomic_load(&a->journal_faults)) {
		/* Sticky: the faulting pages are private memory now (guard.c). */
		e = -EIO;
		ro = true;
		snprintf(why, sizeof why,
			 "audit journal '%s' could not be written through its mapping (made "
			 "immutable, truncated or read-only while in use): rows kept in it would "
			 "not survive a crash of the daemon; remount to use it again",
			 a->journal_path);
	} else if (sr == ENOENT) {
		e = -ENOENT;
		snprintf(why, sizeof why,
			 "audit database '%s' was deleted while in use: rows written to it "
			 "would be lost; remount to start a new one",
			 a->db_path);
	} else if (sr) {
		/* cannot tell (EACCES, EIO...): no verdict from sx's garbage */
	} else if (makedev(sx.stx_dev_major, sx.stx_dev_minor) != a->db_dev ||
		   sx.stx_ino != a->db_ino) {
		e = -ENOENT;
		snprintf(why, sizeof why,
			 "audit database '%s' was replaced by another file while in use; "
			 "remount to use it",
			 a->db_path);
	} else if ((statvfs(a->db_path, &vs) == 0 && (vs.f_flag & ST_RDONLY)) ||
		   (we = refuses_writes(a))) {
		e = -EROFS;
		ro = true;
		snprintf(why, sizeof why, "the file system of audit database '%s' is read-only%s%s",
			 a->db_path, we ? ": " : "", we ? strerror(we) : "");
	} else if (a->test_no_attr_check) {
		/* unit tests: let SQLite meet the immutable files itself */
	} else {
		e = check_attrs_of(a, &sx, &ro, why, sizeof why);
	}
	// NOLINTEND(bugprone-branch-clone)
	atomic_store(&a->journal_unsafe, ro);
	if (e) {
		aud_set_error(a, "%s", why);
		if (!a->db_bad)
			fprintf(stderr, "wardfs: %s\n", why);
	}
	a->db_bad = e != 0;
	return e;
}

/*
 * The writer took a SIGBUS inside SQLite (guard.c made the page private):
 * its view of the WAL index may no longer be the one readers share. The
 * transaction counts as failed whatever SQLite said (the rows stay in the
 * journal; the db's drained seq keeps their replay exactly-once), and the
 * connection is replaced before the next one.
 */
static int poisoned(struct wfs_audit *a)
{
	aud_set_error(a,
		      "cannot write to audit database '%s': a store into its shared memory "
		      "file '%s-shm' failed (SIGBUS: immutable, truncated or read-only?)",
		      a->db_path, a->db_path);
	fprintf(stderr, "wardfs: %s\n", a->last_error);
	sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	aud_paths_clear(a);
	a->db_poisoned = true;
	return -EIO;
}

/* A new connection for a poisoned one. It is closed without a checkpoint:
 * its WAL index may be private memory that disagrees with the file. */
static int reopen_db(struct wfs_audit *a)
{
	char err[sizeof a->last_error];
	if (a->db)
		sqlite3_db_config(a->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	aud_writer_finalize(a);
	sqlite3_close(a->db);
	a->db = NULL;
	int r = aud_db_open(a->db_path, AUD_DB_WRITE, &a->db, err, sizeof err, NULL);
	if (!r)
		r = aud_writer_prepare(a, err, sizeof err);
	if (r) {
		aud_set_error(a, "%s", err);
		return r;
	}
	a->db_poisoned = false;
	return 0;
}

int aud_writer_drain(struct wfs_audit *a, bool crashed, unsigned max)
{
	struct aud_jrec r;
	uint64_t pos = a->drain_pos, seq = a->drain_seq + 1;
	uint64_t end = pos + a->j.cap; /* the ring before pos is free (zero) */
	int rc = aud_jrec_read(&a->j, pos, seq, end, crashed, &a->scratch, &r);
	if (rc == 0 || (rc < 0 && crashed))
		return 0;
	if (rc < 0) {
		aud_set_error(a, "audit journal '%s' is damaged at offset %llu", a->journal_path,
			      (unsigned long long)pos);
		return -EIO;
	}

	pthread_mutex_lock(&a->db_lock);
	if (a->db_poisoned && (rc = reopen_db(a))) {
		pthread_mutex_unlock(&a->db_lock);
		return rc;
	}
	unsigned faults = aud_guard_thread_faults();
	rc = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc || aud_guard_thread_faults() != faults) {
		int e = aud_guard_thread_faults() != faults ? poisoned(a) : fail(a, rc, "write to");
		pthread_mutex_unlock(&a->db_lock);
		return e;
	}
	int64_t last_id;
	unsigned char prev[AUD_MAC_LEN];
	char why[200];
	bool inserted = false;
	rc = aud_paths_begin(a);
	if (!rc)
		rc = aud_read_head(a, &last_id, prev, why, sizeof why);
	if (!rc && why[0]) {
		rc = insert_note(a, &last_id, prev, "chain-break", why);
		inserted = !rc;
	}
	/* Rows lost since the last "lost" row (open mode with the journal full
	 * while the db could not be written, or torn records after a crash):
	 * the db itself says how many, once it can be written again. */
	uint64_t lost = atomic_load(&a->lost);
	if (!rc && lost > a->lost_noted) {
		char detail[400];
		pthread_mutex_lock(&a->err_lock);
		snprintf(detail, sizeof detail,
			 "%llu audit rows lost (%llu since the database was opened); last writer "
			 "error: %s",
			 (unsigned long long)(lost - a->lost_noted), (unsigned long long)lost,
			 a->last_error[0] ? a->last_error : "none");
		pthread_mutex_unlock(&a->err_lock);
		rc = insert_note(a, &last_id, prev, "lost", detail);
		inserted |= !rc;
	}
	int64_t drained = 0;
	if (!rc) {
		sqlite3_bind_int64(a->st_jget, 1, a->j.id);
		rc = sqlite3_step(a->st_jget);
		if (rc == SQLITE_ROW)
			drained = sqlite3_column_int64(a->st_jget, 0);
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
		sqlite3_reset(a->st_jget);
	}
	unsigned n = 0;
	uint64_t skipped = 0;
	while (!rc && n < max) {
		if (n > 0) {
			int k = aud_jrec_read(&a->j, pos, seq, end, crashed, &a->scratch, &r);
			if (k <= 0)
				break;
		}
		struct aud_row row;
		/* The payload is the row's canonical encoding (audit.c made it
		 * with aud_row_write, and the decoder takes nothing else), so
		 * its MAC is the one verify recomputes from the stored row. */
		if (r.valid && (int64_t)r.seq > drained &&
		    aud_row_decode(r.payload, r.plen, &row) == 0) {
			unsigned char mac[AUD_MAC_LEN];
			if (aud_mac_row(a->key, prev, last_id + 1, r.payload, r.plen, mac)) {
				rc = SQLITE_ERROR;
				break;
			}
			rc = insert(a, last_id + 1, &row, mac);
			if (rc)
				break;
			last_id++;
			memcpy(prev, mac, AUD_MAC_LEN);
			inserted = true;
		} else if (!r.valid || (int64_t)r.seq > drained) {
			skipped++; /* torn after a crash, or undecodable */
		}
		if (r.hole)
			skipped++; /* at least one claimed record never written */
		pos = r.pos + r.len;
		seq = r.seq + 1;
		n++;
	}
	if (!rc) {
		sqlite3_stmt *st = a->st_jset;
		sqlite3_bind_int64(st, 1, a->j.id);
		sqlite3_bind_text(st, 2, a->mount, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, a->journal_path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, (int64_t)(seq - 1));
		sqlite3_bind_int64(st, 5, now_ns());
		rc = step_done(st);
	}
	if (!rc && inserted) {
		unsigned char auth[AUD_MAC_LEN];
		aud_head_auth(a->key, last_id, prev, auth);
		sqlite3_bind_int64(a->st_headset, 1, last_id);
		sqlite3_bind_blob(a->st_headset, 2, prev, AUD_MAC_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(a->st_headset, 3, auth, AUD_MAC_LEN, SQLITE_STATIC);
		rc = step_done(a->st_headset);
	}
	if (!rc)
		rc = sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	bool bus = aud_guard_thread_faults() != faults;
	if (rc || bus) {
		sqlite3_reset(a->st_ins);
		int e = bus ? poisoned(a) : fail(a, rc, "write to");
		pthread_mutex_unlock(&a->db_lock);
		return e;
	}
	pthread_mutex_unlock(&a->db_lock);
	if (inserted) {
		a->committed_id = last_id;
		aud_fwd_kick_all(a); /* a signal: the forwarders read on their own */
	}
	if (lost > a->lost_noted)
		a->lost_noted = lost;
	if (why[0])
		fprintf(stderr, "wardfs: audit database '%s': %s; recorded a chain-break row\n",
			a->db_path, why);

	/* Committed: persist the consumed position, then free the space. */
	aud_journal_set_consumed(&a->j, pos, seq - 1);
	aud_journal_zero(&a->j, a->drain_pos, pos);
	a->drain_pos = pos;
	a->drain_seq = seq - 1;
	atomic_store(&a->drained_seq, seq - 1);
	if (skipped)
		atomic_fetch_add(&a->lost, skipped);
	pthread_mutex_lock(&a->lock);
	atomic_store_explicit(&a->consumed, pos, memory_order_release);
	pthread_cond_broadcast(&a->space_cv);
	pthread_mutex_unlock(&a->lock);
	return (int)n;
}

static void deadline_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * When to drain. Inserting a row into SQLite (five b-trees and a MAC) costs
 * several times what the open it records costs the daemon, and on a small
 * machine a burst of opens (git status, a build) is CPU-bound: draining
 * during the burst slows the opens themselves. The rows are already safe
 * in the journal, so during a burst (more than BURST_RATE records/s) the
 * writer waits, and drains when the burst ends, when the journal is half
 * full, or when the oldest waiting row is DEFER_MAX_MS old, whichever
 * comes first. Below the burst rate it drains at every wake-up, so rows
 * reach the database within INTERVAL_MS on a quiet mount.
 */
#define BURST_RATE   2000
#define DEFER_MAX_MS 5000

struct pace {
	uint64_t seen_seq;
	int64_t seen_ms, oldest_ms; /* oldest_ms: 0 = nothing waiting */
};

static bool should_drain(struct wfs_audit *a, struct pace *p, bool stopping, int fails)
{
	uint64_t head_pos, next;
	aud_head(a, &head_pos, &next);
	uint64_t used = head_pos - atomic_load(&a->consumed);
	int64_t now = mono_ms();
	uint64_t arrived = next - p->seen_seq;
	int64_t span = now - p->seen_ms;
	p->seen_seq = next;
	p->seen_ms = now;
	if (used == 0) {
		p->oldest_ms = 0;
		return false;
	}
	if (!p->oldest_ms)
		p->oldest_ms = now;
	bool burst = arrived * 1000 > (uint64_t)BURST_RATE * (uint64_t)(span > 0 ? span : 1);
	return stopping || fails || !burst || used * 2 > a->j.cap ||
	       now - p->oldest_ms >= DEFER_MAX_MS;
}

/*
 * Open mode serves every open even when its row is lost: say so in the log,
 * at most once a second with the count since the last line (like the
 * daemon's refusals), or a full disk would lose rows by the million with
 * nothing but a counter in `wardfs status` to show for it (issue 22.9).
 */
static void log_lost(struct wfs_audit *a)
{
	uint64_t lost = atomic_load(&a->lost);
	int64_t now = mono_ms();
	if (lost <= a->lost_logged || (a->lost_log_ms && now - a->lost_log_ms < 1000))
		return;
	char why[256];
	pthread_mutex_lock(&a->err_lock);
	snprintf(why, sizeof why, "%s", a->last_error[0] ? a->last_error : "no detail");
	pthread_mutex_unlock(&a->err_lock);
	fprintf(stderr,
		"wardfs: %llu audit rows lost since the last message (%llu in all), opens served "
		"without them (--audit-failure=open): %s\n",
		(unsigned long long)(lost - a->lost_logged), (unsigned long long)lost, why);
	a->lost_logged = lost;
	a->lost_log_ms = now;
}

void *aud_writer_main(void *arg)
{
	struct wfs_audit *a = arg;
	int fails = 0;
	bool check_bad = false, sql_bad = false;
	/* A SIGBUS in this thread comes from SQLite's -shm mapping (or the
	 * journal's): survive it and fail the transaction (guard.c). */
	aud_guard_thread(true);
	struct pace pace = {0, mono_ms(), 0};
	uint64_t head_pos;
	aud_head(a, &head_pos, &pace.seen_seq);
	for (;;) {
		pthread_mutex_lock(&a->lock);
		bool stopping = a->stop;
		if (!stopping) {
			struct timespec ts;
			deadline_ms(&ts, fails ? 100 : INTERVAL_MS);
			pthread_cond_timedwait(&a->work_cv, &a->lock, &ts);
			stopping = a->stop;
		}
		pthread_mutex_unlock(&a->lock);
		log_lost(a);
		/* Checked at every wake-up, not only before a drain: during a
		 * burst the writer defers draining for up to 5 s, and opens
		 * served meanwhile must not go to a db or a journal that can no
		 * longer be written (issue 22.8: a file system turned read-only
		 * mid-burst served 129,000 opens whose rows were then lost). */
		int ce = check_db_file(a);
		if (ce) {
			atomic_store(&a->writer_err, ce);
			fails += fails < 12;
			check_bad = true;
			if (stopping)
				return NULL; /* the rest is for the next open (or lost: close) */
			continue;
		}
		if (check_bad) {
			/* Only the check failed: writable again, serve again. */
			check_bad = false;
			if (!sql_bad) {
				atomic_store(&a->writer_err, 0);
				fails = 0;
			}
		}
		/* Every N rows or T seconds; at a stop, close seals once all
		 * rows are in. */
		if (!stopping && !fails)
			aud_seal_tick(a, false);
		if (!should_drain(a, &pace, stopping, fails) && !stopping)
			continue;

		/* After a failure (disk full, say) retry with ever smaller
		 * batches: a little freed space must be enough to make
		 * progress, not the room a 4,096-row transaction needs. */
		unsigned batch = BATCH_MAX >> (fails < 12 ? fails : 12);
		int n;
		for (;;) {
			n = aud_writer_drain(a, false, batch);
			if (n > 0 && fails) {
				/* Recovered: serve opens again at once, not after
				 * the backlog went through in tiny batches. */
				atomic_store(&a->writer_err, 0);
				fails = 0;
			}
			if (n < (int)batch)
				break;
			batch = BATCH_MAX;
		}
		if (n > 0)
			sql_bad = false;
		if (n < 0) {
			atomic_store(&a->writer_err, n);
			fails++;
			sql_bad = true;
		} else {
			pace.oldest_ms = 0;
		}
		if (stopping) {
			uint64_t next;
			aud_head(a, &head_pos, &next);
			bool empty = atomic_load(&a->consumed) == head_pos;
			/* Stop when drained; on errors leave the rest to the next open. */
			if (empty || n < 0)
				return NULL;
			if (n == 0) {
				struct timespec ts = {0, 1000000};
				nanosleep(&ts, NULL);
			}
		}
	}
}
