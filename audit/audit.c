/*
 * audit.c - the daemon-facing API: open (key, db, journal, replay, writer
 * thread), record (encode, reserve ring space, copy, commit; no fsync),
 * counters and close.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit_internal.h"

#define DEFAULT_JOURNAL_KIB 65536
#define FULL_WAIT_MS	    1000
#define MAX_TEXT	    4096
/* A path has no PATH_MAX through a mount (relative names reach any
 * depth); 64 KiB keeps every real one whole and a row bounded. */
#define MAX_PATH_TEXT 65536
#define MAX_SHORT     256

static __attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static void free_handle(struct wfs_audit *a)
{
	aud_fwd_stop_all(a, 0); /* already stopped, unless open failed */
	aud_writer_finalize(a);
	if (a->db)
		sqlite3_close(a->db);
	if (a->journal_guarded)
		aud_guard_remove(a->j.map);
	if (a->j.map || a->j.fd >= 0)
		aud_journal_close(&a->j);
	aud_buf_free(&a->scratch);
	aud_buf_free(&a->rpath);
	aud_buf_free(&a->macbuf);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->db_lock);
	pthread_mutex_destroy(&a->err_lock);
	pthread_cond_destroy(&a->space_cv);
	pthread_cond_destroy(&a->work_cv);
	explicit_bzero(a->key, sizeof a->key);
	free(a->db_path);
	free(a->mount);
	free(a->journal_path);
	free(a->seal_path);
	free(a);
}

static int open_journal(struct wfs_audit *a, uint64_t cap, char *err, size_t errlen)
{
	/* One journal per live handle; a second handle on the same db (another
	 * mount) takes the next free name. */
	int r = -EBUSY;
	for (int i = 0; i < 16 && r == -EBUSY; i++) {
		free(a->journal_path);
		a->journal_path = i ? NULL : xasprintf("%s%s", a->db_path, "-wardfs-journal");
		if (i && asprintf(&a->journal_path, "%s-wardfs-journal.%d", a->db_path, i) < 0)
			a->journal_path = NULL;
		if (!a->journal_path)
			return -ENOMEM;
		r = aud_journal_open(&a->j, a->journal_path, cap, err, errlen);
	}
	if (!r && err[0])
		aud_set_error(a, "%s", err); /* recreated a damaged journal */
	return r;
}

int wfs_audit_open(const struct wfs_audit_opts *o, struct wfs_audit **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!o || !o->db_path || !o->db_path[0]) {
		snprintf(err, errlen, "no audit database path given");
		return -EINVAL;
	}
	struct wfs_audit *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->j.fd = -1;
	aud_guard_install();
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->db_lock, NULL);
	pthread_mutex_init(&a->err_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->space_cv, &ca);
	pthread_cond_init(&a->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	a->fail_open = o->fail_open;
	a->db_path = strdup(o->db_path);
	a->mount = strdup(o->mount_id ? o->mount_id : "");
	char *key_path = o->key_path ? strdup(o->key_path) : xasprintf("%s%s", o->db_path, ".key");
	int r = -ENOMEM;
	if (!a->db_path || !a->mount || !key_path) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* The key lives beside the db by default: its directory first. */
	if ((r = aud_db_make_dir(a->db_path, err, errlen)))
		goto fail;
	if ((r = aud_key_load(key_path, true, a->key, err, errlen)))
		goto fail;
	if ((r = aud_db_open(a->db_path, AUD_DB_CREATE, &a->db, err, errlen, NULL)))
		goto fail;
	struct stat st;
	if (stat(a->db_path, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot stat audit database '%s': %s", a->db_path,
			 strerror(errno));
		goto fail;
	}
	a->db_dev = st.st_dev;
	a->db_ino = st.st_ino;
	if ((r = aud_db_identity(a->db, &a->ident))) {
		snprintf(err, errlen, "cannot read the identity of audit database '%s': %s",
			 a->db_path, strerror(-r));
		goto fail;
	}
	uint64_t cap = (uint64_t)(o->journal_kib ? o->journal_kib : DEFAULT_JOURNAL_KIB) * 1024;
	if ((r = open_journal(a, cap, err, errlen)))
		goto fail;
	/* A store into the journal's mapping after it was made immutable or
	 * its file system read-only is a SIGBUS: survive it (guard.c). */
	a->journal_guarded = aud_guard_add(a->j.map, a->j.map_len, &a->journal_faults) == 0;
	if ((r = aud_writer_prepare(a, err, errlen)))
		goto fail;

	/* Replay what a killed daemon left in the journal. */
	uint64_t off, seq;
	aud_journal_consumed(&a->j, &off, &seq);
	a->drain_pos = off;
	a->drain_seq = seq;
	int n;
	aud_guard_thread(true); /* SQLite's -shm (guard.c) */
	while ((n = aud_writer_drain(a, true, 4096)) > 0)
		;
	aud_guard_thread(false);
	if (n < 0) {
		r = n;
		snprintf(err, errlen, "cannot replay audit journal '%s': %s", a->journal_path,
			 a->last_error);
		goto fail;
	}
	/* Everything is drained: the whole ring is free, and free space is zero. */
	aud_journal_zero(&a->j, a->drain_pos, a->drain_pos + a->j.cap);
	aud_journal_set_consumed(&a->j, a->drain_pos, a->drain_seq);
	aud_journal_set_consumed(&a->j, a->drain_pos, a->drain_seq);
	a->head = (aud_u128)(a->drain_seq + 1) << 64 | a->drain_pos;
	atomic_store(&a->consumed, a->drain_pos);
	atomic_store(&a->drained_seq, a->drain_seq);

	aud_seal_start(a);
	if (o->forward) {
		struct wfs_audit_forward fo;
		if ((r = wfs_audit_forward_parse(o->forward, &fo, err, errlen)) ||
		    (r = aud_fwd_start_all(a, &fo, err, errlen)))
			goto fail;
	}
	if ((r = -pthread_create(&a->writer, NULL, aud_writer_main, a)) == 0)
		pthread_setname_np(a->writer, "wardfs-audit"); /* for top -H, perf */
	if (r) {
		snprintf(err, errlen, "cannot start the audit writer: %s", strerror(-r));
		goto fail;
	}
	a->writer_started = true;
	free(key_path);
	*out = a;
	return 0;
fail:
	free(key_path);
	free_handle(a);
	return r;
}

/* ---- record: the hot path ------------------------------------------ */

/* A text field, cut to max bytes (NULL stays NULL). */
static struct aud_val capped(const char *s, size_t max)
{
	if (!s)
		return aud_null();
	/* Every field is a C string; strlen (not strnlen with a bound larger
	 * than some of the buffers) keeps -O3's -Wstringop-overread quiet. */
	size_t n = strlen(s);
	return aud_text(s, (uint32_t)(n < max ? n : max));
}

/* By enum wfs_audit_kind, then the kinds only the writer makes. */
const char *const wfs_audit_kind_names[] = {
	"open",	    "create",	   "integrity",	  "reload",   "mount", "unmount", "unlink",
	"rmdir",    "rename",	   "link",	  "truncate", "chmod", "chown",	  "utimes",
	"setxattr", "removexattr", "chain-break", "vault",    "lost",  NULL};

static const char *kind_name(enum wfs_audit_kind k)
{
	return (unsigned)k <= WFS_AUDIT_VAULT ? wfs_audit_kind_names[k] : "other";
}

static void flag_names(int flags, char *buf)
{
	static const struct {
		int f;
		const char *n;
	} t[] = {{O_CREAT, "O_CREAT"},
		 {O_EXCL, "O_EXCL"},
		 {O_TRUNC, "O_TRUNC"},
		 {O_APPEND, "O_APPEND"}};
	buf[0] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (flags & t[i].f) {
			if (buf[0])
				strcat(buf, "|");
			strcat(buf, t[i].n);
		}
}

/* Whether a record of need bytes claimed at pos fits in the ring. */
static bool room_at(struct wfs_audit *a, uint64_t pos, uint32_t need)
{
	return pos + need - atomic_load_explicit(&a->consumed, memory_order_acquire) <= a->j.cap;
}

/*
 * The journal is full: wait (bounded, from *deadline on the first call) for
 * a healthy writer to make room. A failing writer (only possible here with
 * fail_open) frees nothing until it recovers, so the row is lost at once
 * rather than the open being held for the whole wait. Returns 0 to claim
 * again, 1 when the row is lost (fail_open), or -errno.
 */
static int wait_for_space(struct wfs_audit *a, uint32_t need, struct timespec *deadline)
{
	int werr = atomic_load(&a->writer_err);
	uint64_t pos, seq;
	pthread_mutex_lock(&a->lock);
	if (!deadline->tv_sec) {
		clock_gettime(CLOCK_MONOTONIC, deadline);
		deadline->tv_nsec += FULL_WAIT_MS * 1000000L;
		deadline->tv_sec += deadline->tv_nsec / 1000000000L;
		deadline->tv_nsec %= 1000000000L;
	}
	bool full = true, timed_out = false;
	while (!a->stop) {
		aud_head(a, &pos, &seq);
		full = !room_at(a, pos, need);
		if (!full || werr || timed_out)
			break;
		pthread_cond_signal(&a->work_cv);
		timed_out = pthread_cond_timedwait(&a->space_cv, &a->lock, deadline) == ETIMEDOUT;
	}
	bool stop = a->stop;
	pthread_mutex_unlock(&a->lock);
	if (!full && !stop)
		return 0;
	if (a->fail_open) {
		atomic_fetch_add(&a->lost, 1);
		return 1;
	}
	werr = atomic_load(&a->writer_err);
	if (!werr)
		aud_set_error(a, "audit journal '%s' is full: the writer is not draining",
			      a->journal_path);
	return werr ? werr : -EIO;
}

/* Appends one encoded row to the journal: claims its place, waiting for
 * room (or counting it lost, as the failure mode says). 0 or -errno. */
static int append_row(struct wfs_audit *a, const unsigned char *buf, size_t plen)
{
	uint32_t need = (uint32_t)((AUD_JREC_HDR + plen + 7) & ~(size_t)7);
	int werr = atomic_load(&a->writer_err);
	if (werr && !a->fail_open)
		return werr;
	if (werr && atomic_load(&a->journal_unsafe)) {
		/* The journal's file system is read-only: a row stored in its
		 * mapping could never be written back, so it is lost now. */
		atomic_fetch_add(&a->lost, 1);
		return 0;
	}
	/* Claim [pos, pos + need) and the next seq in one step. */
	aud_u128 old = aud_head_peek(a);
	struct timespec deadline = {0, 0};
	for (;;) {
		if (room_at(a, (uint64_t)old, need)) {
			if (aud_head_cas(a, &old, old + ((aud_u128)1 << 64) + need))
				break;
			continue;
		}
		int r = wait_for_space(a, need, &deadline);
		if (r)
			return r > 0 ? 0 : r;
		old = aud_head_peek(a);
	}
	uint64_t pos = (uint64_t)old, seq = (uint64_t)(old >> 64);
	aud_jrec_reserve(&a->j, pos, need, seq);
	aud_jrec_commit(&a->j, pos, buf, plen);
	atomic_fetch_add(&a->recorded, 1);
	if ((seq & 511) == 0) /* the writer also wakes every 20 ms */
		pthread_cond_signal(&a->work_cv);
	return 0;
}

int wfs_audit_record(struct wfs_audit *a, const struct wfs_audit_event *ev)
{
	if (!a)
		return 0;
	if (!ev)
		return -EINVAL;
	int64_t t = ev->time_ns;
	if (!t) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	bool is_open = ev->kind == WFS_AUDIT_OPEN || ev->kind == WFS_AUDIT_CREATE;
	const char *access = NULL;
	char fnames[64] = "";
	if (is_open) {
		int acc = ev->flags & O_ACCMODE;
		access = acc == O_RDONLY ? "r" : acc == O_WRONLY ? "w" : acc == O_RDWR ? "rw" : "?";
		flag_names(ev->flags, fnames);
	}
	char rule[MAX_SHORT + 16];
	const char *rulep = NULL;
	if (ev->rule_file) {
		snprintf(rule, sizeof rule, "%.*s:%u", MAX_SHORT, ev->rule_file, ev->rule_line);
		rulep = rule;
	}
	struct aud_row row = {{
		aud_int(t),
		capped(a->mount, MAX_TEXT),
		capped(kind_name(ev->kind), MAX_SHORT),
		capped(ev->path, MAX_PATH_TEXT),
		aud_int(ev->flags),
		capped(access, MAX_SHORT),
		capped(is_open ? fnames : NULL, MAX_SHORT),
		capped(ev->cls, MAX_SHORT),
		capped(ev->form, MAX_SHORT),
		capped(ev->allowed ? "allow" : "deny", MAX_SHORT),
		aud_int(ev->allowed ? 0 : ev->err), /* errno */
		capped(rulep, MAX_SHORT + 16),
		aud_int((int64_t)ev->uid),
		aud_int((int64_t)ev->gid),
		aud_int((int64_t)ev->pid),
		capped(ev->comm, MAX_SHORT),
		capped(ev->exe, MAX_TEXT),
		capped(ev->detail, MAX_PATH_TEXT),
	}};
	size_t plen = aud_row_size(&row);

	/* A row fits on the stack but for very long paths (up to 64 KiB). */
	unsigned char small[8192], *buf = plen <= sizeof small ? small : malloc(plen);
	if (!buf)
		return -ENOMEM;
	aud_row_write(&row, buf);

	int r = append_row(a, buf, plen);
	if (buf != small)
		free(buf);
	return r;
}

void wfs_audit_identity(struct wfs_audit *a, struct wfs_audit_identity *out)
{
	*out = a->ident;
}

void wfs_audit_counters(struct wfs_audit *a, struct wfs_audit_counters *c)
{
	memset(c, 0, sizeof *c);
	if (!a)
		return;
	c->recorded = atomic_load(&a->recorded);
	c->lost = atomic_load(&a->lost);
	uint64_t pos, next;
	aud_head(a, &pos, &next);
	uint64_t drained = atomic_load(&a->drained_seq);
	c->pending = next - 1 > drained ? next - 1 - drained : 0;
	pthread_mutex_lock(&a->err_lock);
	snprintf(c->last_error, sizeof c->last_error, "%s", a->last_error);
	pthread_mutex_unlock(&a->err_lock);
}

/*
 * Rows left in a journal that cannot keep them (its file system turned
 * read-only, or its pages were made private after a SIGBUS) will not be
 * there for the next mount to replay: they are lost now, and said so
 * rather than vanishing (issue 22.8).
 */
static void count_stranded(struct wfs_audit *a)
{
	if (!a->writer_started || !atomic_load(&a->journal_unsafe))
		return;
	uint64_t pos, next;
	aud_head(a, &pos, &next);
	uint64_t drained = atomic_load(&a->drained_seq);
	if (next - 1 <= drained)
		return;
	uint64_t n = next - 1 - drained;
	uint64_t all = atomic_fetch_add(&a->lost, n) + n;
	char why[sizeof a->last_error];
	pthread_mutex_lock(&a->err_lock);
	snprintf(why, sizeof why, "%s", a->last_error);
	pthread_mutex_unlock(&a->err_lock);
	fprintf(stderr,
		"wardfs: %llu audit rows still in the journal '%s' could not be written to the "
		"audit database and are lost (%llu lost in all): %s\n",
		(unsigned long long)n, a->journal_path, (unsigned long long)all, why);
}

void wfs_audit_close(struct wfs_audit *a)
{
	if (!a)
		return;
	if (a->writer_started) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_broadcast(&a->work_cv);
		pthread_cond_broadcast(&a->space_cv);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->writer, NULL);
		/* A clean end seals the last rows (the unmount row too). */
		if (!atomic_load(&a->writer_err))
			aud_seal_tick(a, true);
	}
	/* The last rows are in: a short last try to forward them, the rest
	 * at the next mount (the cursor says where). */
	aud_fwd_stop_all(a, 2000);
	count_stranded(a);
	free_handle(a);
}

int aud_test_exec(struct wfs_audit *a, const char *sql)
{
	pthread_mutex_lock(&a->db_lock);
	int rc = sqlite3_exec(a->db, sql, NULL, NULL, NULL);
	pthread_mutex_unlock(&a->db_lock);
	return aud_sqlite_errno(rc);
}
