/*
 * forward.c - audit forwarding (--audit-forward): a thread per destination
 * reads committed rows from the audit db after a durable cursor and hands
 * them to its sink (fwd_journal.c, fwd_syslog.c), in id order, a batch at
 * a time. The open path never waits for it: the writer only signals it
 * after a commit. When the destination is down nothing is lost: the cursor
 * moves only past rows the destination took, and the thread retries with
 * backoff. The cursor is a small file beside the db, one per destination,
 * so it survives the daemon, and a lock file makes one daemon at a time
 * forward a db that several mounts share.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit_internal.h"

/* Rows per read; also below a unix datagram socket's default queue of
 * 512 (net.unix.max_dgram_qlen), so a batch fits the receiver's queue and
 * the sender waits for it to empty between batches, not for room. */
#define BATCH	       256
#define IDLE_MS	       1000 /* rows another daemon wrote are seen this late */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define LOCK_RETRY_MS  5000
#define SAVE_EVERY_MS  1000 /* the cursor file: at most once a second */

struct aud_fwd {
	unsigned dest; /* WFS_FWD_* */
	const char *name;
	char *db_path, *state_path, *lock_path;
	char db_id[WFS_AUDIT_ID_LEN + 1];
	struct aud_fwd_syslog *sl;

	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool kicked, stop;
	int64_t stop_deadline_ms;

	/* thread-only */
	int lock_fd;
	sqlite3 *db;
	sqlite3_stmt *st_rows, *st_at, *st_max, *st_break;
	bool loaded;
	int64_t cursor; /* the last row delivered */
	char cursor_mac[AUD_MAC_LEN * 2 + 1];
	int64_t saved, saved_ms; /* what the file says, and when it was written */
	bool save_failed;
	int64_t pending; /* sent, not yet known delivered (syslog) */
	char pending_mac[AUD_MAC_LEN * 2 + 1];
	int backoff_ms;
	int64_t retry_ms; /* no attempt before then */

	/* counters (wfs_audit_forward_counters) */
	_Atomic uint64_t sent, failures;
	_Atomic int64_t delivered;
	_Atomic bool down;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int aud_fwd_severity(const struct wfs_audit_row *r)
{
	const char *k = r->kind ? r->kind : "";
	if (!strcmp(k, "integrity") || !strcmp(k, "chain-break") || !strcmp(k, "lost"))
		return 3; /* err */
	if (r->decision && !strcmp(r->decision, "deny"))
		return 4; /* warning */
	return 6;	  /* info */
}

int wfs_audit_forward_parse(const char *spec, struct wfs_audit_forward *out, char *err,
			    size_t errlen)
{
	memset(out, 0, sizeof *out);
	snprintf(out->syslog_path, sizeof out->syslog_path, "%s", WFS_FWD_SYSLOG_DEFAULT);
	char *copy = strdup(spec ? spec : "");
	int r = 0;
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char *save = NULL;
	for (char *t = strtok_r(copy, ",+", &save); t && !r; t = strtok_r(NULL, ",+", &save)) {
		if (!strcmp(t, "journal")) {
			out->dests |= WFS_FWD_JOURNAL;
		} else if (!strcmp(t, "syslog")) {
			out->dests |= WFS_FWD_SYSLOG;
		} else if (!strncmp(t, "syslog:", 7)) {
			const char *p = t + 7;
			if (p[0] != '/' || strlen(p) >= sizeof out->syslog_path) {
				snprintf(err, errlen,
					 "audit forward socket '%s' must be an absolute path "
					 "shorter than %zu bytes",
					 p, sizeof out->syslog_path);
				r = -EINVAL;
			} else {
				out->dests |= WFS_FWD_SYSLOG;
				snprintf(out->syslog_path, sizeof out->syslog_path, "%s", p);
			}
		} else {
			snprintf(err, errlen,
				 "unknown audit forward destination '%s' (journal, syslog or "
				 "syslog:/path/to/socket)",
				 t);
			r = -EINVAL;
		}
	}
	if (!r && !out->dests) {
		snprintf(err, errlen, "no audit forward destination in '%s'", spec ? spec : "");
		r = -EINVAL;
	}
	free(copy);
	return r;
}

/* ---- the cursor file ------------------------------------------------- */

/* "wardfs-forward 1\ndb ID\nrow N\nmac HEX\n". A file that is missing,
 * unreadable or of another db: start at the first row (the consumer
 * dedupes by db and row id; nothing is skipped). */
static void load_cursor(struct aud_fwd *f)
{
	f->cursor = 0;
	f->cursor_mac[0] = 0;
	FILE *fp = fopen(f->state_path, "re");
	if (!fp)
		return;
	char db[64] = "", mac[AUD_MAC_LEN * 2 + 1] = "";
	long long row = 0;
	int v = 0;
	// NOLINTNEXTLINE(cert-err34-c): the file is the daemon's own, fields bounded
	int n = fscanf(fp, "wardfs-forward %d\ndb %63s\nrow %lld\nmac %64s", &v, db, &row, mac);
	fclose(fp);
	if (n < 3 || v != 1 || row < 0)
		return;
	if (strcmp(db, f->db_id)) {
		fprintf(stderr,
			"wardfs: audit forward (%s): '%s' is the cursor of another audit database; "
			"forwarding this one from its first row\n",
			f->name, f->state_path);
		return;
	}
	f->cursor = row;
	snprintf(f->cursor_mac, sizeof f->cursor_mac, "%s", n == 4 ? mac : "");
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int e = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return e;
}

/* Atomically: a crash leaves the old cursor or the new one (the old one
 * only means rows sent again, which the consumer dedupes). */
static int save_cursor(struct aud_fwd *f)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", f->state_path) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	char buf[256];
	int n = snprintf(buf, sizeof buf, "wardfs-forward 1\ndb %s\nrow %" PRId64 "\nmac %s\n",
			 f->db_id, f->cursor, f->cursor_mac[0] ? f->cursor_mac : "-");
	int e = 0;
	if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0)
		e = errno ? -errno : -EIO;
	close(fd);
	if (!e && rename(tmp, f->state_path) < 0)
		e = -errno;
	if (!e)
		e = fsync_dir_of(f->state_path);
	if (e) {
		unlink(tmp);
		if (!f->save_failed) /* once, not every second */
			fprintf(stderr,
				"wardfs: audit forward (%s): cannot save cursor '%s': %s; rows "
				"may be sent again after a restart\n",
				f->name, f->state_path, strerror(-e));
		f->save_failed = true;
		f->saved_ms = mono_ms();
		return e;
	}
	f->save_failed = false;
	f->saved = f->cursor;
	f->saved_ms = mono_ms();
	return 0;
}

/* ---- reading the db --------------------------------------------------- */

static void close_db(struct aud_fwd *f)
{
	sqlite3_stmt **st[] = {&f->st_rows, &f->st_at, &f->st_max, &f->st_break};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
		sqlite3_finalize(*st[i]);
		*st[i] = NULL;
	}
	sqlite3_close(f->db);
	f->db = NULL;
}

static int open_db(struct aud_fwd *f)
{
	static const char *sql[] = {
		"SELECT id," AUD_ROW_COLS ",mac FROM events WHERE id > ? ORDER BY id LIMIT ?",
		"SELECT mac FROM events WHERE id = ?",
		"SELECT coalesce(max(id), 0) FROM events",
		"SELECT coalesce(max(id), 0) FROM events WHERE id <= ? AND kind = 'chain-break'",
	};
	sqlite3_stmt **st[] = {&f->st_rows, &f->st_at, &f->st_max, &f->st_break};
	char err[512];
	int r = aud_db_open(f->db_path, AUD_DB_READ, &f->db, err, sizeof err, NULL);
	for (size_t i = 0; !r && i < sizeof sql / sizeof sql[0]; i++)
		if (sqlite3_prepare_v3(f->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL)) {
			snprintf(err, sizeof err, "%s", sqlite3_errmsg(f->db));
			r = -EIO;
		}
	if (r) {
		fprintf(stderr, "wardfs: audit forward (%s): cannot read '%s': %s\n", f->name,
			f->db_path, err);
		close_db(f);
	}
	return r;
}

static void hex(const void *p, int n, char *out)
{
	static const char digit[] = "0123456789abcdef";
	const unsigned char *b = p;
	for (int i = 0; i < n; i++) {
		out[2 * i] = digit[b[i] >> 4];
		out[2 * i + 1] = digit[b[i] & 15];
	}
	out[n > 0 ? 2 * n : 0] = 0;
}

static int64_t one_int(sqlite3_stmt *st, int64_t arg, bool bind)
{
	int64_t v = -1;
	if (bind)
		sqlite3_bind_int64(st, 1, arg);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

/*
 * The cursor's row should still be the row that was forwarded. It is not
 * when rows at the end were deleted (the writer then goes on from the last
 * row that is left, reusing ids, and records a chain-break row) or the db
 * was rewritten: forward again from before the latest chain-break row at
 * or below the cursor, so the rows that took the old ids are not skipped.
 * A row missing below the last one was pruned: nothing to do.
 */
static void check_cursor(struct aud_fwd *f)
{
	if (f->cursor == 0)
		return;
	int64_t max = one_int(f->st_max, 0, false);
	bool behind = max >= 0 && max < f->cursor, changed = behind;
	if (!behind && f->cursor_mac[0] && f->cursor_mac[0] != '-') {
		sqlite3_bind_int64(f->st_at, 1, f->cursor);
		if (sqlite3_step(f->st_at) == SQLITE_ROW &&
		    sqlite3_column_bytes(f->st_at, 0) == AUD_MAC_LEN) {
			char mac[AUD_MAC_LEN * 2 + 1];
			hex(sqlite3_column_blob(f->st_at, 0), AUD_MAC_LEN, mac);
			changed = strcmp(mac, f->cursor_mac) != 0;
		}
		sqlite3_reset(f->st_at);
	}
	if (!changed)
		return;
	/* Rows up to the cursor may already be new ones (the chain-break
	 * row and those after it): go back to before the chain break; with
	 * none, only rows were deleted (behind) or nothing can be trusted. */
	int64_t brk = one_int(f->st_break, behind ? max : f->cursor, true);
	int64_t to = brk > 0 ? brk - 1 : behind ? max : 0;
	fprintf(stderr,
		"wardfs: audit forward (%s): row %" PRId64 " is not the row that was forwarded "
		"(rows deleted or rewritten); forwarding again after row %" PRId64 "\n",
		f->name, f->cursor, to);
	f->cursor = to;
	f->cursor_mac[0] = 0;
}

static int send_row(struct aud_fwd *f, const struct aud_fwd_row *row)
{
	if (f->dest == WFS_FWD_JOURNAL)
		return aud_fwd_journal_send(row);
	return aud_fwd_syslog_send(f->sl, row);
}

/* Sends the next batch after the cursor: the number of rows sent (0:
 * none waiting) or -errno (a send failed; the rows go again). */
static int send_batch(struct aud_fwd *f)
{
	int n = 0, e = 0;
	sqlite3_stmt *st = f->st_rows;
	sqlite3_bind_int64(st, 1, f->cursor);
	sqlite3_bind_int64(st, 2, BATCH);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct wfs_audit_row r;
		char chain[AUD_MAC_LEN * 2 + 1];
		aud_row_from_stmt(st, &r);
		int ml = sqlite3_column_bytes(st, 19);
		hex(sqlite3_column_blob(st, 19), ml == AUD_MAC_LEN ? ml : 0, chain);
		struct aud_fwd_row row = {.r = &r, .chain = chain, .db_id = f->db_id};
		if ((e = send_row(f, &row)))
			break;
		f->pending = r.id;
		snprintf(f->pending_mac, sizeof f->pending_mac, "%s", chain);
		atomic_fetch_add(&f->sent, 1);
		n++;
	}
	if (!e && rc != SQLITE_ROW && rc != SQLITE_DONE)
		e = aud_sqlite_errno(rc) ? aud_sqlite_errno(rc) : -EIO;
	sqlite3_reset(st);
	return e ? e : n;
}

static void delivered(struct aud_fwd *f)
{
	if (f->pending <= f->cursor)
		return;
	f->cursor = f->pending;
	memcpy(f->cursor_mac, f->pending_mac, sizeof f->cursor_mac);
	atomic_store(&f->delivered, f->cursor);
}

static void failed(struct aud_fwd *f, int e)
{
	if (f->sl)
		aud_fwd_syslog_reset(f->sl);
	f->pending = f->cursor; /* what was in flight goes again */
	atomic_fetch_add(&f->failures, 1);
	if (!atomic_exchange(&f->down, true))
		fprintf(stderr,
			"wardfs: audit forward (%s): destination unavailable (%s); rows after "
			"row %" PRId64 " wait in the audit database and are retried\n",
			f->name, strerror(-e), f->cursor);
	f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (f->backoff_ms > BACKOFF_MAX_MS)
		f->backoff_ms = BACKOFF_MAX_MS;
	f->retry_ms = mono_ms() + f->backoff_ms;
}

/*
 * One round: send what waits after the cursor and learn whether it was
 * delivered. true when there may be more to send at once.
 */
static bool round_once(struct aud_fwd *f)
{
	if (f->lock_fd < 0) {
		int fd = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
			f->lock_fd = fd;
		} else {
			if (fd >= 0)
				close(fd);
			f->retry_ms = mono_ms() + LOCK_RETRY_MS; /* another daemon forwards */
			return false;
		}
	}
	if (!f->db && open_db(f)) {
		failed(f, -EIO);
		return false;
	}
	if (!f->loaded) {
		load_cursor(f);
		f->loaded = true;
		f->saved = f->cursor;
		f->pending = f->cursor;
		atomic_store(&f->delivered, f->cursor);
	}
	int e;
	if (f->pending > f->cursor && f->dest == WFS_FWD_SYSLOG) {
		e = aud_fwd_syslog_settle(f->sl);
		if (e == -EAGAIN) {
			f->retry_ms = mono_ms() + 5; /* read slowly, but read */
			return false;
		}
		if (e) {
			failed(f, e);
			return false;
		}
		delivered(f);
	}
	check_cursor(f);
	int n = send_batch(f);
	if (n < 0) {
		failed(f, n);
		return false;
	}
	if (n > 0 && f->dest == WFS_FWD_SYSLOG) {
		e = aud_fwd_syslog_settle(f->sl);
		if (e == -EAGAIN) {
			f->retry_ms = mono_ms() + 5;
			return false;
		}
		if (e) {
			failed(f, e);
			return false;
		}
	}
	delivered(f);
	if (atomic_exchange(&f->down, false))
		fprintf(stderr,
			"wardfs: audit forward (%s): destination back; sent up to row %" PRId64
			"\n",
			f->name, f->cursor);
	f->backoff_ms = 0;
	f->retry_ms = 0;
	return n == BATCH;
}

static void *fwd_main(void *arg)
{
	struct aud_fwd *f = arg;
	/* Its reads store into SQLite's -shm too (read marks): a SIGBUS
	 * there (made immutable, truncated) is this thread's to survive and
	 * answer with a new connection (guard.c), not the daemon's death. */
	aud_guard_thread(true);
	/* Background work: on a busy machine the opens come first and the
	 * rows wait in the db (nothing is lost, the cursor says what was
	 * sent); the thread catches up when the CPUs are free again. At nice
	 * 19 it still gets a share under full load: it lags, never stops. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	for (;;) {
		pthread_mutex_lock(&f->lock);
		int64_t now = mono_ms();
		int64_t wake = f->retry_ms > now ? f->retry_ms : now + IDLE_MS;
		while (!f->kicked && !f->stop && now < wake) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t ms = wake - now;
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&f->cv, &f->lock, &ts);
			now = mono_ms();
		}
		f->kicked = false;
		bool stop = f->stop;
		int64_t deadline = f->stop_deadline_ms;
		pthread_mutex_unlock(&f->lock);

		bool more = false;
		/* A kick during backoff does not shorten it: a dead
		 * destination is not hammered at the rate of commits. */
		if (mono_ms() >= f->retry_ms || stop) {
			unsigned faults = aud_guard_thread_faults();
			more = round_once(f);
			if (aud_guard_thread_faults() != faults) {
				/* its view of the WAL index is private memory now */
				if (f->db)
					sqlite3_db_config(f->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
							  1, NULL);
				close_db(f);
				failed(f, -EIO);
				more = false;
			}
		}
		if (f->cursor != f->saved &&
		    (stop || more == false || mono_ms() - f->saved_ms >= SAVE_EVERY_MS))
			save_cursor(f);
		if (stop) {
			/* Down at unmount: one try, not the whole grace period
			 * of retries; the next mount sends the rest. */
			bool done = f->lock_fd < 0 || atomic_load(&f->down) ||
				    (!more && f->pending <= f->cursor);
			if (done || mono_ms() >= deadline)
				break;
			if (!more) {
				struct timespec ts = {0, 20000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		if (more) {
			pthread_mutex_lock(&f->lock);
			f->kicked = true;
			pthread_mutex_unlock(&f->lock);
		}
	}
	if (f->loaded && f->cursor != f->saved)
		save_cursor(f);
	return NULL;
}

static void fwd_free(struct aud_fwd *f)
{
	if (!f)
		return;
	close_db(f);
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	aud_fwd_syslog_free(f->sl);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cv);
	free(f->db_path);
	free(f->state_path);
	free(f->lock_path);
	free(f);
}

static int fwd_start(struct wfs_audit *a, unsigned dest, const char *sock, struct aud_fwd **out,
		     char *err, size_t errlen)
{
	struct aud_fwd *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->dest = dest;
	f->name = dest == WFS_FWD_JOURNAL ? "journal" : "syslog";
	f->lock_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(f->db_id, sizeof f->db_id, "%s", a->ident.id);
	int r = -ENOMEM;
	f->db_path = strdup(a->db_path);
	if (asprintf(&f->state_path, "%s-forward-%s", a->db_path, f->name) < 0)
		f->state_path = NULL;
	if (asprintf(&f->lock_path, "%s-forward-%s.lock", a->db_path, f->name) < 0)
		f->lock_path = NULL;
	if (!f->db_path || !f->state_path || !f->lock_path)
		goto fail;
	if (dest == WFS_FWD_SYSLOG && (r = aud_fwd_syslog_new(sock, &f->sl)))
		goto fail;
	if ((r = -pthread_create(&f->th, NULL, fwd_main, f)) == 0)
		pthread_setname_np(f->th, f->dest == WFS_FWD_JOURNAL ? "wardfs-fwd-jrnl"
								     : "wardfs-fwd-sysl");
	if (r)
		goto fail;
	*out = f;
	return 0;
fail:
	snprintf(err, errlen, "cannot start audit forwarding to %s: %s", f->name, strerror(-r));
	fwd_free(f);
	return r;
}

int aud_fwd_start_all(struct wfs_audit *a, const struct wfs_audit_forward *fo, char *err,
		      size_t errlen)
{
	int r = 0;
	if (fo->dests & WFS_FWD_JOURNAL)
		r = fwd_start(a, WFS_FWD_JOURNAL, NULL, &a->fwd[0], err, errlen);
	if (!r && (fo->dests & WFS_FWD_SYSLOG))
		r = fwd_start(a, WFS_FWD_SYSLOG, fo->syslog_path, &a->fwd[1], err, errlen);
	return r;
}

/* The writer calls it holding no lock; f->lock is a leaf (the forwarder
 * takes no lock of the writer's). */
void aud_fwd_kick_all(struct wfs_audit *a)
{
	for (int i = 0; i < 2; i++) {
		struct aud_fwd *f = a->fwd[i];
		if (!f)
			continue;
		pthread_mutex_lock(&f->lock);
		f->kicked = true;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->lock);
	}
}

void aud_fwd_stop_all(struct wfs_audit *a, int grace_ms)
{
	for (int i = 0; i < 2; i++) {
		struct aud_fwd *f = a->fwd[i];
		if (!f)
			continue;
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		f->stop_deadline_ms = mono_ms() + grace_ms;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->lock);
	}
	for (int i = 0; i < 2; i++) {
		if (!a->fwd[i])
			continue;
		pthread_join(a->fwd[i]->th, NULL);
		fwd_free(a->fwd[i]);
		a->fwd[i] = NULL;
	}
}

bool wfs_audit_forward_counters(struct wfs_audit *a, unsigned dest,
				struct wfs_audit_forward_counters *c)
{
	memset(c, 0, sizeof *c);
	struct aud_fwd *f = !a ? NULL : dest == WFS_FWD_JOURNAL ? a->fwd[0] : a->fwd[1];
	if (!f)
		return false;
	c->sent = atomic_load(&f->sent);
	c->failures = atomic_load(&f->failures);
	c->cursor = atomic_load(&f->delivered);
	c->down = atomic_load(&f->down);
	return true;
}
