/*
 * seal_write.c - the daemon's side of sealing: every N rows or T seconds
 * (and at close) the writer stores a seal of the chain head in the db,
 * evolves the sealing key in the state file and logs a checkpoint line
 * (syslog authpriv, and the daemon's log) so a copy leaves the host.
 *
 * Order, for crashes (docs/audit.md "Sealing"): (1) the seal row commits
 * with synchronous=FULL, so it is on disk before (2) the state file moves
 * on to k_{i+1} (atomically: temp, fsync, rename, fsync of the directory).
 * A crash between them leaves seal i in the db and k_i in the state: the
 * next seal sees that the db already holds epoch i and evolves forward
 * first, so no epoch is skipped and none is sealed twice. The reverse
 * order could lose seal i for good (state at i+1, no key left for i).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_internal.h"

#define RECHECK_MS 5000 /* how often a missing or broken state is looked at again */
/* A seal costs three fsyncs (the seal's commit, the state file and its
 * directory): however small N, at most one seal per MIN_GAP_MS (but at
 * close), so a burst of opens is never paced by seals. */
#define MIN_GAP_MS 250

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Logged once per distinct failure: a state that stays broken is not a
 * line every 5 s. */
static void seal_fail(struct wfs_audit *a, const char *msg)
{
	if (strcmp(a->seal_error, msg))
		fprintf(stderr, "wardfs: audit database '%s': cannot seal: %s\n", a->db_path, msg);
	snprintf(a->seal_error, sizeof a->seal_error, "%s", msg);
}

/* The newest seal in the db: 1 found, 0 none (or no seal table), or
 * -errno (not an SQLite code: SQLITE_ERROR is 1). */
static int last_seal(sqlite3 *db, uint64_t *epoch, int64_t *last_id, unsigned char *tag)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(
		db, "SELECT epoch, last_id, tag FROM seal ORDER BY epoch DESC LIMIT 1", -1, &st,
		NULL);
	if (rc)
		return 0; /* no seal table */
	rc = sqlite3_step(st);
	int r = 0;
	if (rc == SQLITE_ROW) {
		*epoch = (uint64_t)sqlite3_column_int64(st, 0);
		*last_id = sqlite3_column_int64(st, 1);
		memset(tag, 0, AUD_MAC_LEN);
		if (sqlite3_column_bytes(st, 2) == AUD_MAC_LEN)
			memcpy(tag, sqlite3_column_blob(st, 2), AUD_MAC_LEN);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = aud_sqlite_errno(rc);
		r = r ? r : -EIO;
	}
	sqlite3_finalize(st);
	return r;
}

static int64_t first_row(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t id = 1;
	if (sqlite3_prepare_v2(db, "SELECT min(id) FROM events", -1, &st, NULL))
		return id;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

void aud_seal_start(struct wfs_audit *a)
{
	if (!a->seal_path && asprintf(&a->seal_path, "%s.seal", a->db_path) < 0) {
		a->seal_path = NULL;
		return;
	}
	a->seal_ms = mono_ms();
	struct aud_seal_state *s = aud_seal_state_new();
	char err[512];
	uint64_t ep = 0;
	unsigned char tag[AUD_MAC_LEN];
	int64_t last = 0;
	pthread_mutex_lock(&a->db_lock);
	int have = last_seal(a->db, &ep, &last, tag);
	pthread_mutex_unlock(&a->db_lock);
	if (!s)
		return;
	int r = aud_seal_state_read(a->seal_path, s, err, sizeof err);
	if (r == -ENOENT) {
		a->seal_on = false;
		if (have == 1 && !a->seal_noted) {
			/* Sealed before, and the state is gone: the daemon cannot
			 * seal again, and verify will say so too. */
			fprintf(stderr,
				"wardfs: audit database '%s' is sealed up to row %lld (epoch %llu) "
				"but its sealing state '%s' is missing: rows are no longer sealed; "
				"see 'Sealing' in docs/audit.md\n",
				a->db_path, (long long)last, (unsigned long long)ep, a->seal_path);
			a->seal_noted = true;
		}
		if (have == 1)
			snprintf(a->seal_error, sizeof a->seal_error,
				 "sealed up to row %lld, but the sealing state '%s' is missing",
				 (long long)last, a->seal_path);
	} else if (r) {
		a->seal_on = false;
		seal_fail(a, err);
	} else if (strcmp(s->db_id, a->ident.id)) {
		a->seal_on = false;
		snprintf(err, sizeof err,
			 "sealing state '%s' is of another audit database (id %s), not of this one "
			 "(id %s)",
			 a->seal_path, s->db_id, a->ident.id);
		seal_fail(a, err);
	} else {
		a->seal_on = true;
		a->seal_rows = s->rows;
		a->seal_every_ms = (int64_t)s->interval_s * 1000;
		a->sealed_to = have == 1 ? last : 0;
		a->seal_epoch = s->epoch;
		a->seal_error[0] = 0;
	}
	aud_seal_state_free(s);
	aud_seal_publish(a);
}

void aud_seal_publish(struct wfs_audit *a)
{
	struct wfs_audit_seal_counters c = {
		.on = a->seal_on,
		.epoch = a->seal_epoch,
		.sealed_to = a->sealed_to,
		.unsealed = a->committed_id > a->sealed_to ? a->committed_id - a->sealed_to : 0,
		.rows = a->seal_rows,
		.interval_s = (uint64_t)(a->seal_every_ms / 1000),
	};
	snprintf(c.error, sizeof c.error, "%s", a->seal_error);
	pthread_mutex_lock(&a->err_lock);
	a->seal_pub = c;
	pthread_mutex_unlock(&a->err_lock);
}

void wfs_audit_seal_poke(struct wfs_audit *a)
{
	if (a)
		atomic_store(&a->seal_poke, true);
}

void wfs_audit_seal_counters(struct wfs_audit *a, struct wfs_audit_seal_counters *c)
{
	memset(c, 0, sizeof *c);
	if (!a)
		return;
	pthread_mutex_lock(&a->err_lock);
	*c = a->seal_pub;
	pthread_mutex_unlock(&a->err_lock);
}

static void open_syslog(void)
{
	openlog("wardfs", LOG_PID, LOG_AUTHPRIV);
}

/* The checkpoint goes to syslog (authpriv: root-readable logs, and what
 * rsyslog or journald forward off the host) and to the daemon's log. */
static void log_checkpoint(const struct aud_seal *s, const unsigned char *tag)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	char line[512];
	if (aud_checkpoint_format(s, tag, line, sizeof line))
		return;
	pthread_once(&once, open_syslog);
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line);
	fprintf(stderr, "wardfs: %s\n", line);
}

/*
 * The db half of a seal, in one transaction under the writer's lock:
 * reconciles the state with the newest seal (crash between the two halves:
 * evolve forward), then inserts seal s->epoch over the rows after the
 * previous seal up to the authenticated head. 1 sealed, 0 nothing to seal,
 * or -errno with err set. out and tag get what was sealed.
 */
static int seal_db(struct wfs_audit *a, struct aud_seal_state *s, struct aud_seal *out,
		   unsigned char *tag, char *err, size_t errlen)
{
	sqlite3 *db = a->db;
	uint64_t ep = 0;
	int64_t last = 0, head_id = 0;
	char why[200];
	int ret = 0;
	memset(out, 0, sizeof *out);
	sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (!rc)
		rc = sqlite3_exec(db, AUD_SEAL_TABLE, NULL, NULL, NULL);
	int have = rc ? 0 : last_seal(db, &ep, &last, out->prev_tag);
	if (!rc && have < 0)
		rc = SQLITE_IOERR;
	if (!rc)
		rc = aud_read_head(a, &head_id, out->head, why, sizeof why);
	if (rc) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		ret = aud_sqlite_errno(rc);
		ret = ret ? ret : -EIO;
		goto out;
	}
	if (why[0]) /* the next drain records the chain break; seal after it */
		goto out;
	if (have == 1 && ep >= s->epoch) {
		/* A crash after seal ep committed and before the state moved
		 * on (or another daemon sealed): go forward to ep + 1. */
		while (s->epoch <= ep) {
			aud_seal_evolve(s->key, s->epoch, s->next);
			memcpy(s->key, s->next, AUD_SEAL_KEY_LEN);
			s->epoch++;
		}
		sodium_memzero(s->next, sizeof s->next);
	} else if ((have == 1 && ep + 1 < s->epoch) || (have == 0 && s->epoch > 0)) {
		/* Seals the state says were made are not here: deleted (or a
		 * db restored from a backup). Go on; verify names the gap. */
		fprintf(stderr,
			"wardfs: audit database '%s': the seals of epochs %llu..%llu are missing "
			"(the sealing state is at epoch %llu); sealing goes on, and 'wardfs audit "
			"verify' reports the gap\n",
			a->db_path, have ? (unsigned long long)ep + 1 : 0ULL,
			(unsigned long long)s->epoch - 1, (unsigned long long)s->epoch);
	}
	int64_t first = have == 1 ? last + 1 : first_row(db);
	out->last_id = have == 1 ? last : 0; /* what is sealed already */
	if (head_id < first)
		goto out; /* nothing new (another daemon on this db may have sealed) */
	snprintf(out->db_id, sizeof out->db_id, "%s", a->ident.id);
	out->epoch = s->epoch;
	out->first_id = first;
	out->last_id = head_id;
	if (aud_seal_tag(s->key, out, tag)) {
		ret = -EIO;
		snprintf(err, errlen, "cannot compute the seal's tag");
		goto out;
	}
	sqlite3_stmt *st;
	rc = sqlite3_prepare_v2(db, "INSERT INTO seal VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (int64_t)out->epoch);
		sqlite3_bind_int64(st, 2, out->first_id);
		sqlite3_bind_int64(st, 3, out->last_id);
		sqlite3_bind_blob(st, 4, out->head, AUD_MAC_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, out->prev_tag, AUD_MAC_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, tag, AUD_MAC_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, real_ns());
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
		sqlite3_finalize(st);
	}
	if (!rc)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		ret = aud_sqlite_errno(rc);
		ret = ret ? ret : -EIO;
		goto out;
	}
	ret = 1;
out:
	if (ret != 1)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	return ret;
}

/* One seal: lock and read the state, seal in the db, evolve and write
 * the state, log the checkpoint. 0 (sealed or nothing to seal) or -errno. */
static int seal_now(struct wfs_audit *a)
{
	char err[512] = "", dberr[256] = "";
	struct aud_seal seal;
	unsigned char tag[AUD_MAC_LEN];
	struct aud_seal_state *s = aud_seal_state_new();
	int fd = -1, r;
	memset(&seal, 0, sizeof seal);
	if (!s) {
		r = -ENOMEM;
		snprintf(err, sizeof err, "out of memory");
		goto out;
	}
	fd = aud_seal_state_lock(a->seal_path, LOCK_EX);
	if (fd < 0) {
		r = fd;
		snprintf(err, sizeof err, "cannot open sealing state '%s': %s", a->seal_path,
			 strerror(-fd));
		goto out;
	}
	if ((r = aud_seal_state_read_fd(fd, a->seal_path, s, err, sizeof err)))
		goto out;
	if (strcmp(s->db_id, a->ident.id)) {
		r = -EINVAL;
		snprintf(err, sizeof err, "sealing state '%s' is of another audit database (id %s)",
			 a->seal_path, s->db_id);
		goto out;
	}
	uint64_t epoch_read = s->epoch;
	pthread_mutex_lock(&a->db_lock);
	r = a->db_poisoned ? -EIO : seal_db(a, s, &seal, tag, dberr, sizeof dberr);
	pthread_mutex_unlock(&a->db_lock);
	if (r < 0) {
		snprintf(err, sizeof err, "cannot store a seal: %s",
			 dberr[0] ? dberr : strerror(-r));
		goto out;
	}
	bool sealed = r == 1;
	if (sealed) {
		/* k_i made its seal: only k_{i+1} may stay on the host. */
		aud_seal_evolve(s->key, s->epoch, s->next);
		memcpy(s->key, s->next, AUD_SEAL_KEY_LEN);
		sodium_memzero(s->next, sizeof s->next);
		s->epoch++;
	}
	r = 0;
	if (s->epoch != epoch_read && (r = aud_seal_state_write(a->seal_path, s, err, sizeof err)))
		goto out;
	if (seal.last_id > a->sealed_to)
		a->sealed_to = seal.last_id;
	a->seal_epoch = s->epoch;
	if (sealed)
		log_checkpoint(&seal, tag);
	a->seal_error[0] = 0;
out:
	if (r)
		seal_fail(a, err);
	aud_seal_state_free(s);
	if (fd >= 0)
		close(fd); /* and its lock */
	return r;
}

void aud_seal_tick(struct wfs_audit *a, bool force)
{
	int64_t now = mono_ms();
	if (!a->seal_path)
		return;
	if (!a->seal_on) {
		/* seal-init on a mounted db, or a state made readable again */
		if (force || atomic_exchange(&a->seal_poke, false) ||
		    now - a->seal_ms >= RECHECK_MS)
			aud_seal_start(a);
		if (!a->seal_on)
			return;
	}
	bool rows_due = a->committed_id - a->sealed_to >= (int64_t)a->seal_rows &&
			now - a->seal_ms >= MIN_GAP_MS;
	bool time_due = now - a->seal_ms >= a->seal_every_ms && a->committed_id > a->sealed_to;
	if (!force && !rows_due && !time_due) {
		aud_seal_publish(a); /* the unsealed count status shows */
		return;
	}
	a->seal_ms = now;
	if (seal_now(a))
		a->seal_on = false; /* looked at again after RECHECK_MS */
	aud_seal_publish(a);
}
