/*
 * audit_internal.h - private types shared by the audit/ sources: the canonical
 * row encoding, the journal, the chain key and the live handle. Not part of
 * the public API (unit tests may include it for fault injection).
 *
 * Calls go one way, down: audit.c (the API) -> writer.c -> paths.c,
 * journal.c -> encode.c, chain.c, schema.c, guard.c; on the admin side
 * query.c, prune.c -> verify.c -> the same leaves. Nothing below calls
 * back up, so each layer can be read (and fuzzed) without the ones above.
 */
#ifndef WARDFS_AUDIT_AUDIT_INTERNAL_H
#define WARDFS_AUDIT_AUDIT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "audit.h"

#define AUD_MAC_LEN	   32
#define AUD_KEY_LEN	   32
#define AUD_SCHEMA_VERSION 4

/* ---- canonical encoding (encode.c) --------------------------------
 * A row is a sequence of values, each: 0x00 (NULL) | 0x01 + int64 BE |
 * 0x02 + u32 BE length + bytes. The journal payload is the encoding of the
 * columns after `id` in AUD_ROW_COLS order; the MAC input is
 * prev_mac || enc(id) || payload.
 *
 * One encoder makes those bytes from one representation, struct aud_row:
 * the producer (audit.c) encodes the event's row into the journal, the
 * writer decodes it to bind the columns and MACs the payload, its own rows
 * (chain-break, lost) are encoded by the same function, and verify fills
 * an aud_row from the stored columns and encodes it again. The decoder
 * accepts only what the encoder makes (encode(decode(p)) == p), so the
 * MAC of a payload is the MAC of the row stored from it. */
enum { AUD_V_NULL = 0, AUD_V_INT = 1, AUD_V_TEXT = 2, AUD_V_OTHER = 0xff };

/* Columns after id, in order (the MAC covers them in this order). */
#define AUD_ROW_NFIELDS 18
#define AUD_ROW_COLS                                                                               \
	"time_ns,mount,kind,path,flags,access,flag_names,class,form,decision,errno,rule,uid,"      \
	"gid,pid,comm,exe,detail"
#define AUD_ROW_PATH 3 /* index of path in AUD_ROW_COLS (0 = time_ns) */

/* AUD_V_OTHER: a stored column of a type wardfs never writes (REAL, BLOB);
 * it encodes as the byte 0xff, which no row the writer signed contains
 * and the decoder refuses. */
struct aud_val {
	int type;
	int64_t i;
	const char *s; /* AUD_V_TEXT: len bytes, not terminated */
	uint32_t len;
};

struct aud_row {
	struct aud_val v[AUD_ROW_NFIELDS];
};

static inline struct aud_val aud_int(int64_t i)
{
	return (struct aud_val){.type = AUD_V_INT, .i = i};
}

static inline struct aud_val aud_null(void)
{
	return (struct aud_val){.type = AUD_V_NULL};
}

/* NULL s is a NULL value. */
static inline struct aud_val aud_text(const char *s, uint32_t len)
{
	return s ? (struct aud_val){.type = AUD_V_TEXT, .s = s, .len = len} : aud_null();
}

struct aud_buf {
	unsigned char *p;
	size_t len, cap;
};

int aud_buf_reserve(struct aud_buf *b, size_t more);
void aud_buf_free(struct aud_buf *b);
/* Append-encoders of single values (the chain head and anchor records) into
 * a growable buffer (return -ENOMEM on failure). */
int aud_enc_int(struct aud_buf *b, int64_t v);
int aud_enc_text(struct aud_buf *b, const char *s, size_t len);

/* The row encoder: aud_row_size bytes, written to out (aud_row_write) or
 * appended to b (aud_row_encode, -ENOMEM). */
size_t aud_row_size(const struct aud_row *r);
void aud_row_write(const struct aud_row *r, unsigned char *out);
int aud_row_encode(struct aud_buf *b, const struct aud_row *r);
/* Decodes exactly one row from p[0..len): 0, or -EINVAL when p is not the
 * encoding of a row. Texts point into p. */
int aud_row_decode(const unsigned char *p, size_t len, struct aud_row *r);
/* The row in columns first..first+17 of a stepped statement (texts point
 * into the statement until its next step). */
void aud_row_from_columns(sqlite3_stmt *st, int first, struct aud_row *r);
uint32_t aud_crc32(const void *p, size_t n);

/* ---- chain (chain.c) ------------------------------------------------ */
int aud_key_load(const char *path, bool create, unsigned char key[AUD_KEY_LEN], char *err,
		 size_t errlen);
/* out = HMAC-SHA256(key, prev || enc(id) || payload) */
int aud_mac_row(const unsigned char *key, const unsigned char *prev, int64_t id,
		const void *payload, size_t plen, unsigned char out[AUD_MAC_LEN]);
/* out = HMAC-SHA256(key, label || data) for chain head / anchor records */
int aud_mac_label(const unsigned char *key, const char *label, const void *data, size_t len,
		  unsigned char out[AUD_MAC_LEN]);
int aud_head_auth(const unsigned char *key, int64_t id, const unsigned char *mac,
		  unsigned char out[AUD_MAC_LEN]);

/* ---- schema (schema.c) --------------------------------------------- */
/* Opens (rw: creating and migrating) a db with the pragmas wardfs uses. */
/* version (may be NULL) gets the schema version the connection sees: a
 * writable open migrates to AUD_SCHEMA_VERSION, a read-only one does not. */
/* READ: an existing audit db, read-only; WRITE: an existing audit db,
 * migrated (prune); CREATE: also makes a missing or empty file one (the
 * daemon). A database that is not empty and not an audit db is refused. */
enum aud_db_mode { AUD_DB_READ, AUD_DB_WRITE, AUD_DB_CREATE };
int aud_db_open(const char *path, enum aud_db_mode mode, sqlite3 **out, char *err, size_t errlen,
		int *version);
/* Creates the directory of the db file path, and its missing parents, each
 * 0700 (docs/audit.md), unless it exists. 0 or -errno with err set. */
int aud_db_make_dir(const char *path, char *err, size_t errlen);
/* dst[i] = src[n-1-i]: the rpath column (schema v2) of a path. */
void aud_reverse_bytes(char *dst, const char *src, size_t n);
int aud_sqlite_errno(int rc); /* SQLITE_* -> -errno */
/* The meta table's identity (schema v4): -ENOENT on an older schema. */
int aud_db_identity(sqlite3 *db, struct wfs_audit_identity *out);

/* ---- journal (journal.c) -------------------------------------------- */
#define AUD_JREC_HDR   24u
#define AUD_JREC_MAGIC 0x57464a31u /* committed */

struct aud_journal {
	int fd;
	unsigned char *map; /* header page + ring */
	size_t map_len;
	unsigned char *ring;
	uint64_t cap;
	int64_t id;
	unsigned next_slot;
};

struct aud_jrec {
	uint64_t pos, seq;
	uint32_t len; /* whole record, 8-aligned */
	bool valid;   /* committed and checksum ok (else torn: skip) */
	bool hole;    /* a hole was skipped to reach it (after a crash) */
	const unsigned char *payload;
	size_t plen;
};

int aud_journal_open(struct aud_journal *j, const char *path, uint64_t cap, char *err,
		     size_t errlen);
void aud_journal_close(struct aud_journal *j);
/* The persisted consumed position and last consumed seq. */
void aud_journal_consumed(struct aud_journal *j, uint64_t *off, uint64_t *seq);
void aud_journal_set_consumed(struct aud_journal *j, uint64_t off, uint64_t seq);
void aud_journal_zero(struct aud_journal *j, uint64_t from, uint64_t to);
void aud_ring_write(struct aud_journal *j, uint64_t pos, const void *src, size_t n);
void aud_ring_read(const struct aud_journal *j, uint64_t pos, void *dst, size_t n);
/* Writes a reserved record's header (not yet committed). */
void aud_jrec_reserve(struct aud_journal *j, uint64_t pos, uint32_t len, uint64_t seq);
/* Fills the payload and crc, then publishes the commit word (release). */
void aud_jrec_commit(struct aud_journal *j, uint64_t pos, const void *payload, size_t plen);
/* Reads the record at pos. Returns 1 if a record with the expected seq is
 * there (r->valid false when torn), 0 if pos is the end (free space, or
 * reserved but not committed when !crashed), -1 on a malformed header.
 * After a crash, a hole (zeros) at pos is skipped: the next record, found
 * before end and at most AUD_JHOLE_SCAN on, is returned with its own pos
 * and seq, and holes is set to 1. The payload points into the ring or into
 * scratch when it wraps. */
int aud_jrec_read(struct aud_journal *j, uint64_t pos, uint64_t expect_seq, uint64_t end,
		  bool crashed, struct aud_buf *scratch, struct aud_jrec *r);

/* ---- live handle (audit.c, writer.c) -------------------------------- */

typedef unsigned __int128 aud_u128;

/* The largest record wfs_audit_record writes (its fields are capped), and
 * how far replay looks past a hole in the journal: a record claimed by a
 * thread killed before it wrote its length. Holes are only as many as the
 * daemon has threads (at most 18: 16 FUSE workers, main, writer). */
#define AUD_JREC_MAX   (32u * 1024)
#define AUD_JHOLE_SCAN (128u * AUD_JREC_MAX)
struct wfs_audit {
	char *db_path, *mount, *journal_path;
	bool fail_open;
	unsigned char key[AUD_KEY_LEN];
	sqlite3 *db;
	pthread_mutex_t db_lock; /* the writer's connection */
	struct aud_journal j;

	/*
	 * The next record's position (low half) and seq (high half), claimed
	 * together by one 16-byte compare-and-swap. With a mutex here, opens
	 * queued behind holders the scheduler had preempted: 8 threads on 2
	 * cores waited ~10 us per open for a lock held ~0.1 us.
	 */
	_Alignas(16) aud_u128 head;
	_Atomic uint64_t consumed; /* ring space before it is free (and zero) */

	pthread_mutex_t lock; /* the condition variables and stop */
	pthread_cond_t space_cv, work_cv;
	bool stop;
	pthread_t writer;
	bool writer_started;

	/* writer-only */
	uint64_t drain_pos, drain_seq;
	struct aud_buf scratch, macbuf, rpath;
	sqlite3_stmt *st_head, *st_jget, *st_ins, *st_jset, *st_headset;
	sqlite3_stmt *st_pget, *st_pins, *st_pgen; /* paths.c */
	int64_t committed_id; /* the last row id this writer committed (head rollback) */
	uint64_t lost_noted;  /* lost rows already told by a "lost" row */
	uint64_t lost_logged; /* ... and by a log line, at lost_log_ms */
	int64_t lost_log_ms;
	/* The db file as opened: the writer checks, before each transaction,
	 * that the path still names it and that its file system is writable
	 * (a deleted db takes every row with it at unmount; issue 22.8). */
	dev_t db_dev;
	ino_t db_ino;
	struct wfs_audit_identity ident; /* the db's, read at open */
	bool db_bad;			 /* the last check failed (logged once) */
	_Atomic bool journal_unsafe;	 /* the journal's file system is read-only too */
	/* SIGBUS taken in the journal's mapping (guard.c): its pages are now
	 * private memory, so rows stored there would not survive a crash. */
	_Atomic unsigned journal_faults;
	bool journal_guarded; /* the journal's range is registered with guard.c */
	/* The writer took a SIGBUS inside SQLite (its -shm mapping): its WAL
	 * index may differ from the readers'; reopen before the next write. */
	bool db_poisoned;
	/* Test hook: skip the writer's check of the files' attributes, so a
	 * unit test reaches the SIGBUS that check would have prevented. */
	bool test_no_attr_check;
	struct aud_path_slot *pcache;
	int64_t pcache_gen; /* the anchor's pruned_to when the cache was filled */

	/* forward.c: one forwarder per destination (NULL: not forwarded);
	 * the writer wakes them after each commit that added rows. */
	struct aud_fwd *fwd[2];

	/* sealing (seal_write.c; writer thread, then close) */
	char *seal_path;       /* DB.seal */
	bool seal_on;	       /* the state file was there and readable */
	bool seal_noted;       /* its absence (with seals in the db) was logged */
	uint64_t seal_rows;    /* seal every so many rows ... */
	int64_t seal_every_ms; /* ... or so long after the last seal */
	int64_t sealed_to;     /* the last row the newest seal covers */
	int64_t seal_ms;       /* when the newest seal (or the check) was made */
	uint64_t seal_epoch;   /* the next seal's epoch, as the state says */
	atomic_bool seal_poke; /* look at the state at the next tick (seal at mount) */
	char seal_error[256];  /* the last failure, logged once */
	/* What `wardfs status` shows: the fields above as the writer last
	 * left them, copied under err_lock (seal_publish). */
	struct wfs_audit_seal_counters seal_pub;

	_Atomic int writer_err; /* -errno of the last failed COMMIT, 0 if fine */
	atomic_uint_fast64_t recorded, lost, drained_seq;
	pthread_mutex_t err_lock;
	char last_error[256];
};

/*
 * The head: the next record's position (low half) and seq (high half).
 * Inline because claiming a record (audit.c) is the hot path of every
 * open; the writer (writer.c) only reads it.
 */
#ifndef __GCC_HAVE_SYNC_COMPARE_AND_SWAP_16
extern pthread_mutex_t aud_head_lock; /* writer.c */
#endif

/* The head, read in two halves: a torn value only fails the first CAS. */
static inline aud_u128 aud_head_peek(struct wfs_audit *a)
{
	const uint64_t *h = (const uint64_t *)&a->head; /* little-endian: pos, seq */
	uint64_t pos = __atomic_load_n(&h[0], __ATOMIC_RELAXED);
	uint64_t seq = __atomic_load_n(&h[1], __ATOMIC_RELAXED);
	return (aud_u128)seq << 64 | pos;
}

/* Moves the head from *old to nw, or loads the current head into *old. */
static inline bool aud_head_cas(struct wfs_audit *a, aud_u128 *old, aud_u128 nw)
{
#ifdef __GCC_HAVE_SYNC_COMPARE_AND_SWAP_16
	aud_u128 seen = __sync_val_compare_and_swap(&a->head, *old, nw);
#else
	pthread_mutex_lock(&aud_head_lock);
	aud_u128 seen = a->head;
	if (seen == *old)
		a->head = nw;
	pthread_mutex_unlock(&aud_head_lock);
#endif
	if (seen == *old)
		return true;
	*old = seen;
	return false;
}

/* A consistent snapshot of the next record's position and seq. */
static inline void aud_head(struct wfs_audit *a, uint64_t *pos, uint64_t *seq)
{
	aud_u128 h = aud_head_peek(a);
	while (!aud_head_cas(a, &h, h)) /* a CAS to itself: an atomic read */
		;
	*pos = (uint64_t)h;
	*seq = (uint64_t)(h >> 64);
}

/* The handle's last error (writer.c, whose failures set it most). */
void aud_set_error(struct wfs_audit *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int aud_writer_prepare(struct wfs_audit *a, char *err, size_t errlen);
void aud_writer_finalize(struct wfs_audit *a);
/* Drains committed records from drain_pos into SQLite in one transaction.
 * crashed: replay mode at open (skip torn records). Returns the number of
 * records consumed (>= 0) or -errno. */
int aud_writer_drain(struct wfs_audit *a, bool crashed, unsigned max);
void *aud_writer_main(void *arg);

/* ---- paths (paths.c): path -> paths.id, for the writer -------------
 * SQLITE_* codes. begin: at the start of each batch's transaction (drops
 * the cache if a prune removed paths); clear: after a rollback. */
int aud_paths_prepare(struct wfs_audit *a);
void aud_paths_finalize(struct wfs_audit *a);
int aud_paths_begin(struct wfs_audit *a);
void aud_paths_clear(struct wfs_audit *a);
int aud_paths_id(struct wfs_audit *a, const char *path, uint32_t len, int64_t *id);

/* ---- admin side (query.c, verify.c, prune.c) ------------------------ */
struct wfs_audit_db {
	sqlite3 *db;
	char *path;
	int version; /* schema version: 2 has events.rpath, 3 the paths table */
};

struct aud_where {
	char sql[1024]; /* " WHERE ..." or "" */
	struct {
		bool is_text;
		int64_t i;
		const char *s;
	} b[16];
	int nb;
	bool selective;	   /* a path/exe filter narrow enough to drive the plan */
	bool path_by_time; /* in: keep the path filter off the index (query.c) */
	char lo[1024], hi[1024];
	char exe_glob[4096]; /* --exe NAME: "* /NAME" (a basename) */
};
/* version: the db's schema version (v2 has rpath, v3 the paths table).
 * path_by_time: so many rows match the path that the time order should
 * drive the plan (v3). */
void aud_where_build(struct aud_where *w, const struct wfs_audit_filter *f, int version,
		     bool path_by_time);
int aud_where_bind(sqlite3_stmt *st, const struct aud_where *w, int first);
/* Maps "id," AUD_ROW_COLS columns 0..18 of a stepped statement. */
void aud_row_from_stmt(sqlite3_stmt *st, struct wfs_audit_row *r);

int aud_anchor_auth(const unsigned char *key, int64_t pruned_to, const unsigned char *mac,
		    int64_t time_ns, int64_t cutoff_ns, int64_t rows,
		    unsigned char out[AUD_MAC_LEN]);
/* 0 intact (last_mac, if given, gets the MAC of the last row checked), 1
 * broken (r says where), -errno. upto > 0 checks only rows with id <= upto. */
int aud_chain_verify(sqlite3 *db, const unsigned char *key, int64_t upto,
		     struct wfs_audit_verify_result *r, unsigned char *last_mac);
int aud_key_for_db(const char *db_path, const char *key_path, unsigned char key[AUD_KEY_LEN],
		   char *err, size_t errlen);

/* ---- sealing (seal.c: keys, tags, texts; seal_write.c: the writer's
 * seals; seal_verify.c: checking them; seal_init.c) -------------------
 * docs/audit.md "Sealing". */
#define AUD_SEAL_KEY_LEN    32
#define AUD_VKEY_TEXT_LEN   117 /* "wardfs-vk1-" id "-" key "-" check */
#define AUD_CHECKPOINT_WORD "wardfs-checkpoint"
#define AUD_SEAL_ROWS	    1000 /* defaults: seal every 1000 rows ... */
#define AUD_SEAL_INTERVAL_S 900	 /* ... or 15 minutes (journald's default) */
#define AUD_SEAL_TABLE                                                                             \
	"CREATE TABLE IF NOT EXISTS seal (epoch INTEGER PRIMARY KEY, first_id INTEGER NOT "        \
	"NULL, last_id INTEGER NOT NULL, head BLOB NOT NULL, prev_tag BLOB NOT NULL, tag BLOB "    \
	"NOT NULL, time_ns INTEGER NOT NULL)"

/* What a seal's tag covers. */
struct aud_seal {
	char db_id[WFS_AUDIT_ID_LEN + 1];
	uint64_t epoch;
	int64_t first_id, last_id;
	unsigned char head[AUD_MAC_LEN];     /* the chain's MAC at last_id */
	unsigned char prev_tag[AUD_MAC_LEN]; /* the previous seal's tag; zeros for the first */
};

/* The host's state file (DB.seal): the next seal's epoch and key. Always
 * in sodium_malloc'd memory (aud_seal_state_new), wiped when freed. */
struct aud_seal_state {
	char db_id[WFS_AUDIT_ID_LEN + 1];
	uint64_t epoch;
	unsigned char key[AUD_SEAL_KEY_LEN];
	unsigned char next[AUD_SEAL_KEY_LEN]; /* scratch for the evolution */
	uint64_t rows, interval_s;
};

struct aud_checkpoint {
	char db_id[WFS_AUDIT_ID_LEN + 1];
	uint64_t epoch;
	int64_t last_id;
	unsigned char head[AUD_MAC_LEN], tag[AUD_MAC_LEN];
};

/* k_{i+1} = HMAC-SHA256(k_i, "wardfs seal evolve" || u64be(i)). */
int aud_seal_evolve(const unsigned char k[AUD_SEAL_KEY_LEN], uint64_t epoch,
		    unsigned char out[AUD_SEAL_KEY_LEN]);
/* HMAC-SHA256(k, "wardfs seal tag" || enc(db_id) || enc(epoch) ||
 * enc(first_id) || enc(last_id) || enc(head) || enc(prev_tag)). */
int aud_seal_tag(const unsigned char k[AUD_SEAL_KEY_LEN], const struct aud_seal *s,
		 unsigned char out[AUD_MAC_LEN]);
void aud_hex(const unsigned char *p, size_t n, char *out); /* out: 2n + 1 bytes */
int aud_vkey_format(const char *db_id, const unsigned char k0[AUD_SEAL_KEY_LEN], char *out,
		    size_t len);
/* 0, or -EINVAL with why set (not a key, truncated, a typo...). */
int aud_vkey_parse(const char *s, size_t len, char db_id[WFS_AUDIT_ID_LEN + 1],
		   unsigned char k0[AUD_SEAL_KEY_LEN], char *why, size_t whylen);
struct aud_seal_state *aud_seal_state_new(void);
void aud_seal_state_free(struct aud_seal_state *s);
int aud_seal_state_parse(const char *buf, size_t len, struct aud_seal_state *s, char *why,
			 size_t whylen);
/* Read: checks it is a root-only regular file. Write: atomic (temp,
 * fsync, rename, fsync of the directory), and the replaced file's bytes
 * overwritten. 0 or -errno with err set. */
int aud_seal_state_read(const char *path, struct aud_seal_state *s, char *err, size_t errlen);
int aud_seal_state_read_fd(int fd, const char *path, struct aud_seal_state *s, char *err,
			   size_t errlen);
int aud_seal_state_write(const char *path, const struct aud_seal_state *s, char *err,
			 size_t errlen);
/* Opens the state file with its lock taken (flock op: LOCK_EX to seal,
 * LOCK_SH to read the state and the seals as of one moment): the fd, or
 * -errno. */
int aud_seal_state_lock(const char *path, int op);
int aud_checkpoint_format(const struct aud_seal *s, const unsigned char tag[AUD_MAC_LEN], char *out,
			  size_t len);
/* 1 and c filled when the line holds a checkpoint, 0 when it holds none,
 * -EINVAL when it holds a malformed one. */
int aud_checkpoint_parse(const char *line, size_t len, struct aud_checkpoint *c);

/* The writer's side (seal_write.c): start reads the state's settings at
 * open; tick seals when N rows or T seconds are due (force: at close,
 * whenever a row is unsealed). Sealing failures are logged, never fail
 * an open. */
void aud_seal_start(struct wfs_audit *a);
void aud_seal_tick(struct wfs_audit *a, bool force);
/* Copies the writer's sealing fields to seal_pub (wfs_audit_seal_counters). */
void aud_seal_publish(struct wfs_audit *a);
/* The authenticated chain head (writer.c's read_head): why set when the
 * head cannot be continued from. */
int aud_read_head(struct wfs_audit *a, int64_t *id, unsigned char *mac, char *why, size_t whylen);

/* ---- guard (guard.c): surviving SIGBUS in the audit's file mappings ---
 * install: once per process (add does it too). thread(true): a SIGBUS in
 * this thread is the caller's (the page becomes private memory, and
 * thread_faults counts it). add: a SIGBUS in [p, p + len) from any thread
 * is handled the same way and counted in *faults. */
void aud_guard_install(void);
void aud_guard_thread(bool on);
unsigned aud_guard_thread_faults(void);
int aud_guard_add(const void *p, size_t len, _Atomic unsigned *faults);
void aud_guard_remove(const void *p);

/* ---- forwarding (forward.c, fwd_syslog.c, fwd_journal.c) -----------
 * A forwarder reads rows after its cursor on a read-only connection of its
 * own and hands each to its sink; nothing here is on the open path. */
struct aud_fwd;
/* Starts the forwarders f asks for (none: 0). 0 or -errno with err. */
int aud_fwd_start_all(struct wfs_audit *a, const struct wfs_audit_forward *f, char *err,
		      size_t errlen);
/* After the writer's last drain: a last try (at most grace_ms), the
 * cursor saved, the threads joined. */
void aud_fwd_stop_all(struct wfs_audit *a, int grace_ms);
void aud_fwd_kick_all(struct wfs_audit *a);

/* A row as a sink sends it: the stored row, its MAC (the chain head after
 * it) in hex and the db's identity. */
struct aud_fwd_row {
	const struct wfs_audit_row *r;
	const char *chain; /* 64 hex digits, or "" */
	const char *db_id;
};
/* The syslog severity (0..7) of a row: err for integrity and chain
 * trouble, warning for a denial, info otherwise. */
int aud_fwd_severity(const struct wfs_audit_row *r);

/* fwd_syslog.c: RFC 5424 over a unix datagram socket. */
struct aud_fwd_syslog;
int aud_fwd_syslog_new(const char *path, struct aud_fwd_syslog **out);
void aud_fwd_syslog_free(struct aud_fwd_syslog *s);
/* 0, or -errno (connect or send failed: the receiver is not there). */
int aud_fwd_syslog_send(struct aud_fwd_syslog *s, const struct aud_fwd_row *row);
/* After a batch: 0 when the receiver took every message sent so far and
 * is still the one they were sent to; -EAGAIN while some are still in its
 * socket's queue; another -errno when it went away (resend from the
 * cursor). */
int aud_fwd_syslog_settle(struct aud_fwd_syslog *s);
void aud_fwd_syslog_reset(struct aud_fwd_syslog *s);
/* The message of a row (no trailing newline) into b: for the sink and its
 * unit test. host and procid as the header shows them. -ENOMEM. */
int aud_fwd_syslog_format(struct aud_buf *b, const struct aud_fwd_row *row, const char *host,
			  long procid);

/* fwd_journal.c: sd_journal_sendv. 0, -errno, or -ENOTSUP in a build
 * without libsystemd. */
int aud_fwd_journal_send(const struct aud_fwd_row *row);
/* The MESSAGE_ID of a kind name (32 hex digits; a fixed one for unknown kinds). */
const char *aud_fwd_message_id(const char *kind);

/* Test hook: runs SQL on the writer's connection (fault injection). */
int aud_test_exec(struct wfs_audit *a, const char *sql);

#endif
