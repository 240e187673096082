/*
 * audit.h - the wardfs audit database: schema, durable writer, queries and
 * chain verification. The only module that includes sqlite3.h; no FUSE.
 *
 * Durability: wfs_audit_record() appends the row to a crash-safe journal
 * (a shared file mapping the kernel keeps after a SIGKILL) and returns
 * without an fsync; a writer thread drains the journal into SQLite in batched
 * transactions, and the next open replays whatever was not drained.
 */
#ifndef WARDFS_AUDIT_H
#define WARDFS_AUDIT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum wfs_audit_kind {
	WFS_AUDIT_OPEN = 0,
	WFS_AUDIT_CREATE = 1,
	WFS_AUDIT_INTEGRITY = 2, /* tampered block read: EIO */
	WFS_AUDIT_RELOAD = 3,	 /* policy reload (ok or failed) */
	WFS_AUDIT_MOUNT = 4,
	WFS_AUDIT_UNMOUNT = 5,
	/* changes of sensitive and deny files other than opens */
	WFS_AUDIT_UNLINK = 6,
	WFS_AUDIT_RMDIR = 7,
	WFS_AUDIT_RENAME = 8, /* detail: "to /new/path" */
	WFS_AUDIT_LINK = 9,   /* path: the new name; detail: "of /old/path" */
	WFS_AUDIT_TRUNCATE = 10,
	WFS_AUDIT_CHMOD = 11,
	WFS_AUDIT_CHOWN = 12,
	WFS_AUDIT_UTIMES = 13,
	WFS_AUDIT_SETXATTR = 14, /* detail: the attribute's name */
	WFS_AUDIT_REMOVEXATTR = 15,
	/* Rows that belong before this one are not in this database: verify
	 * reports the first such row (the writer's own, or the daemon's when
	 * the vault's audit db was replaced). detail: why. */
	WFS_AUDIT_CHAIN_BREAK = 16,
	/* An admin's command on the vault outside the mount (passwd,
	 * migrate); path "/", detail: what was done. */
	WFS_AUDIT_VAULT = 17,
};

struct wfs_audit_event {
	int64_t time_ns; /* UTC, CLOCK_REALTIME; 0 = now */
	enum wfs_audit_kind kind;
	const char *path; /* relative to the mount root, starts with "/" */
	int flags;	  /* open(2) flags as given */
	const char *cls;  /* "public" | "sensitive" | "deny" | NULL */
	const char *form; /* "plain" | "encrypted" | "empty" | NULL */
	bool allowed;
	int err; /* errno returned to the caller, 0 if allowed */
	const char *rule_file;
	unsigned rule_line;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *comm;   /* process name */
	const char *exe;    /* executable path */
	const char *detail; /* free text for integrity/reload events */
};

struct wfs_audit_opts {
	const char *db_path;
	const char *mount_id; /* e.g. the mount point; each row says which */
	const char *key_path; /* chain MAC key (root-only); NULL = db_path + ".key" */
	bool fail_open;	      /* --audit-failure=open: serve opens, count lost rows */
	unsigned journal_kib; /* journal ring size; 0 = 65536 (64 MiB) */
	const char *forward;  /* --audit-forward spec (forward.c); NULL = none */
};

struct wfs_audit;

/* Opens (creating/migrating) the db, replays the journal, starts the writer.
 * On error returns -errno and a one-line message in err. */
int wfs_audit_open(const struct wfs_audit_opts *o, struct wfs_audit **out, char *err,
		   size_t errlen);

/* Records one event durably against SIGKILL of the daemon. 0, or -errno when
 * the row cannot be recorded (the caller refuses the open unless fail_open;
 * with fail_open the loss is counted and 0 is returned). Thread-safe.
 * Fails closed (-EIO/-ENOSPC/-EROFS...) as soon as the writer's last COMMIT
 * failed, or when the journal stays full for 1 s. a == NULL is a no-op. */
int wfs_audit_record(struct wfs_audit *a, const struct wfs_audit_event *ev);

/* Who a database is: a random id made when it was made, kept when the file
 * is moved, copied or restored. A vault remembers the id of the database it
 * wrote to; a database made afresh (the old one deleted or replaced) has
 * another (issue 22.8). */
#define WFS_AUDIT_ID_LEN 32
struct wfs_audit_identity {
	char id[WFS_AUDIT_ID_LEN + 1]; /* lowercase hex */
	int64_t created_ns;
};
void wfs_audit_identity(struct wfs_audit *a, struct wfs_audit_identity *out);

/* The vault's record of its database: a file of this name in the vault's
 * directory, opened as dfd (lineage.c). Read: 0, -ENOENT when there is
 * none, -EINVAL when it cannot be read. Write: atomic, 0 or -errno. */
#define WFS_AUDIT_LINEAGE_FILE "audit-db"
struct wfs_audit_lineage {
	struct wfs_audit_identity ident;
	char path[PATH_MAX]; /* the database's absolute path when written */
};
int wfs_audit_lineage_read(int dfd, struct wfs_audit_lineage *rec);
int wfs_audit_lineage_write(int dfd, const struct wfs_audit_identity *id, const char *db_path);

struct wfs_audit_counters {
	uint64_t recorded, lost, pending;
	char last_error[256];
};
void wfs_audit_counters(struct wfs_audit *a, struct wfs_audit_counters *c);

/* ---- forwarding (forward.c) ----------------------------------------
 * --audit-forward=journal,syslog[:SOCKET]: every committed row is sent to
 * the system journal and/or as an RFC 5424 message to a unix datagram
 * socket, by a thread per destination that reads the db after a durable
 * cursor (docs/audit.md, "Forwarding"). */
#define WFS_FWD_JOURNAL	       1u
#define WFS_FWD_SYSLOG	       2u
#define WFS_FWD_SYSLOG_DEFAULT "/dev/log"
/* The SD-ID's enterprise number: RFC 5612's number for documentation,
 * until wardfs has a PEN of its own (docs/audit.md says so). */
#define WFS_FWD_SD_ID "wardfs@32473"
struct wfs_audit_forward {
	unsigned dests;	       /* WFS_FWD_* */
	char syslog_path[108]; /* sun_path; WFS_FWD_SYSLOG_DEFAULT unless given */
};
/* Parses "journal", "syslog", "syslog:/path/sock" in a list separated by
 * ',' or '+' (the mount helper's -o form cannot hold a comma). 0, or
 * -EINVAL with a one-line message in err. */
int wfs_audit_forward_parse(const char *spec, struct wfs_audit_forward *out, char *err,
			    size_t errlen);

struct wfs_audit_forward_counters {
	uint64_t sent, failures;
	int64_t cursor; /* the last row id known delivered */
	bool down;	/* the last attempt failed */
};
/* dest: WFS_FWD_JOURNAL or WFS_FWD_SYSLOG; false when it is not forwarded. */
bool wfs_audit_forward_counters(struct wfs_audit *a, unsigned dest,
				struct wfs_audit_forward_counters *c);

/* Drains the journal into SQLite, stops the writer, closes. NULL is fine. */
void wfs_audit_close(struct wfs_audit *a);

/* ---- admin side (used by `wardfs audit ...`) ---------------------- */

/* A db opened for queries (read-only) or prune (writable). */
struct wfs_audit_db;
int wfs_audit_db_open(const char *path, bool writable, struct wfs_audit_db **out, char *err,
		      size_t errlen);
void wfs_audit_db_close(struct wfs_audit_db *db);
/* -ENOENT for a database older than identities (schema 3, read-only). */
int wfs_audit_db_identity(struct wfs_audit_db *db, struct wfs_audit_identity *out);

/* One row as stored (strings may be NULL; valid during the callback). */
struct wfs_audit_row {
	int64_t id, time_ns;
	const char *mount, *kind, *path;
	int flags;
	const char *access, *flag_names, *cls, *form, *decision;
	int err;
	const char *rule;
	int64_t uid, gid, pid;
	const char *comm, *exe, *detail;
};

enum wfs_audit_order {
	WFS_AUDIT_LATEST = 0, /* with a limit: the newest N matches, printed oldest first */
	WFS_AUDIT_EARLIEST,   /* with a limit: the oldest N matches */
	WFS_AUDIT_BY_ID,      /* id order (tail): after_id, ascending */
};

struct wfs_audit_filter {
	int64_t since_ns, until_ns; /* [since, until); 0 = unbounded */
	int64_t uid, pid;	    /* -1 = any */
	const char *path_glob; /* SQLite GLOB (case-sensitive); literal prefix uses the index */
	const char *cls, *exe, *mount, *kind; /* exact match; NULL = any */
	bool denied_only;
	int64_t after_id; /* id > after_id; 0 = any */
	int64_t limit;	  /* 0 = no limit */
	enum wfs_audit_order order;
};
void wfs_audit_filter_init(struct wfs_audit_filter *f);

/* Calls cb for each matching row, sorted by time (or id for BY_ID). cb
 * returns nonzero to stop. Returns the number of rows, or -errno. */
typedef int (*wfs_audit_row_cb)(void *arg, const struct wfs_audit_row *r);
int64_t wfs_audit_query(struct wfs_audit_db *db, const struct wfs_audit_filter *f,
			wfs_audit_row_cb cb, void *arg, char *err, size_t errlen);
/* EXPLAIN QUERY PLAN of the query f runs, one step a line (for tests/bench). */
int wfs_audit_query_plan(struct wfs_audit_db *db, const struct wfs_audit_filter *f, char *buf,
			 size_t len);
int64_t wfs_audit_max_id(struct wfs_audit_db *db);

/* Stats over the rows f selects (limit/order/after_id ignored). */
enum wfs_audit_stat {
	WFS_STAT_PATHS,	 /* top paths */
	WFS_STAT_EXES,	 /* top executables */
	WFS_STAT_USERS,	 /* top uids (key is the uid in decimal) */
	WFS_STAT_DENIED, /* top denied (path, exe) pairs; key "path\texe" */
};
typedef int (*wfs_audit_stat_cb)(void *arg, const char *key, int64_t count, int64_t denied);
int wfs_audit_top(struct wfs_audit_db *db, enum wfs_audit_stat what,
		  const struct wfs_audit_filter *f, int limit, wfs_audit_stat_cb cb, void *arg,
		  char *err, size_t errlen);
struct wfs_audit_totals {
	int64_t rows, denied, first_ns, last_ns, first_id, last_id;
	int64_t opens, opens_denied; /* of the rows: opens and creates */
};
int wfs_audit_totals(struct wfs_audit_db *db, const struct wfs_audit_filter *f,
		     struct wfs_audit_totals *t, char *err, size_t errlen);

/* The weekly report's series over the rows f selects (since_ns >= origin_ns;
 * limit/order/after_id ignored): for each bucket (time_ns - origin_ns) /
 * bucket_ns and class ("" for rows without one) that has rows, the opens
 * and creates, and the denied rows of any kind. In bucket order. 0 or
 * -errno (err says why). */
typedef int (*wfs_audit_series_cb)(void *arg, int64_t bucket, const char *cls, int64_t opens,
				   int64_t denied);
int wfs_audit_series(struct wfs_audit_db *db, const struct wfs_audit_filter *f, int64_t origin_ns,
		     int64_t bucket_ns, wfs_audit_series_cb cb, void *arg, char *err,
		     size_t errlen);

/* Recomputes the chain with the key (NULL key_path = db path + ".key").
 * Returns 0 if intact, 1 if not (bad_id and reason say where), -errno if
 * it could not check (err says why). */
struct wfs_audit_verify_result {
	int64_t rows;	   /* rows checked */
	int64_t anchor_id; /* chain verified from the row after this id (0 = start) */
	int64_t bad_id;	   /* first edited/inserted row, or first missing id */
	char reason[256];
};
int wfs_audit_verify(struct wfs_audit_db *db, const char *key_path,
		     struct wfs_audit_verify_result *r, char *err, size_t errlen);

/* Deletes the rows older than cutoff_ns (a prefix by id: stops at the first
 * row that is not older) after verifying them, and stores an anchor (last
 * pruned id and mac, authenticated) so verify still works. */
struct wfs_audit_prune_result {
	int64_t rows_deleted, pruned_to;
};
int wfs_audit_prune(struct wfs_audit_db *db, const char *key_path, int64_t cutoff_ns,
		    struct wfs_audit_prune_result *r, char *err, size_t errlen);

/* ---- forward-secure sealing (seal*.c; docs/audit.md "Sealing") ------
 * A seal authenticates the chain head at its last row with the epoch's
 * sealing key; the key evolves one way after each seal and the host keeps
 * only the current one (DB.seal), so seals made before a compromise of the
 * host cannot be forged or redone. The verification key (k0 and the db's
 * id) is given out once, at init, to be kept off the host. */
#define WFS_AUDIT_VKEY_LEN 117 /* "wardfs-vk1-<db id>-<k0 hex>-<check>" */

/* Starts sealing a (writable) db: makes k0, creates the seal table,
 * writes the state DB.seal (0600) at epoch 0 with the settings (seal every
 * rows rows or interval_s seconds; 0: the defaults), and writes the
 * verification key and a newline to out_fd (the key never sits in
 * unlocked memory). Refuses a db already sealed (state or seals present).
 * When the key cannot be written the state is removed again. 0 or -errno
 * with err set. */
int wfs_audit_seal_init(struct wfs_audit_db *db, uint64_t rows, uint64_t interval_s, int out_fd,
			char *err, size_t errlen);
/* The same, the key written to the file out (0600, must not exist; it is
 * removed again when sealing could not be set up). */
int wfs_audit_seal_init_file(struct wfs_audit_db *db, uint64_t rows, uint64_t interval_s,
			     const char *out, char *err, size_t errlen);
/* `mount --audit-seal FILE`: seals db_path (opened by the daemon) with
 * the defaults unless it is or was sealed, the verification key written
 * to FILE (0600, must not exist). 1 sealed now, 0 nothing to do (it was
 * sealed before: the key was given then), or -errno with err set. */
int wfs_audit_seal_at_mount(const char *db_path, const char *vkey_out, char *err, size_t errlen);

struct wfs_audit_seal_opts {
	const char *vkey_path;	 /* the verification key's file; "-": stdin */
	const char *key_path;	 /* the chain key; NULL: DB.key */
	const char *state_path;	 /* NULL: DB.seal */
	const char *checkpoints; /* a file of checkpoint lines, or NULL */
};

/* verdicts (also verify's exit statuses) */
enum {
	WFS_SEAL_OK = 0,	   /* every seal checks, the sealed rows are unaltered */
	WFS_SEAL_TAMPERED = 1,	   /* evidence of tampering: reason says what */
	WFS_SEAL_UNVERIFIABLE = 3, /* cannot vouch: wrong key, no seals, state gone... */
};

struct wfs_audit_seal_result {
	int verdict;
	uint64_t seals;	      /* seals checked */
	int64_t sealed_first; /* rows sealed_first..sealed_to are covered */
	int64_t sealed_to;
	int64_t pruned_to;    /* rows up to here were pruned (0: none) */
	int64_t unsealed;     /* rows after sealed_to */
	int64_t last_row;     /* the newest row */
	uint64_t checkpoints; /* checkpoints of this db matched */
	uint64_t foreign;     /* checkpoints of other dbs (ignored) */
	uint64_t malformed;   /* lines naming wardfs-checkpoint that do not parse */
	char reason[640];     /* the verdict's one line, when not ok */
	char note[256];	      /* what else an auditor should know (may be empty) */
};

/* What the seal table says, without the verification key (nothing here is
 * checked: `verify --verify-key` does that): how many seals, the newest
 * one's epoch, last row and time, and the rows after it. 0 (seals = 0 and
 * no table: not sealed) or -errno. */
struct wfs_audit_seal_status {
	bool table; /* a seal table exists (seal-init ran) */
	int64_t seals;
	int64_t epoch;	  /* of the newest seal */
	int64_t last_row; /* ... the last row it covers */
	int64_t time_ns;  /* ... when it was made */
	int64_t unsealed; /* rows after it */
};
int wfs_audit_seal_status(struct wfs_audit_db *db, struct wfs_audit_seal_status *s);

/* The running daemon's sealing, as its writer last left it (`wardfs
 * status`): on, or off with why (error empty: never set up). */
struct wfs_audit_seal_counters {
	bool on;	     /* the state is there and of this db: rows get sealed */
	uint64_t epoch;	     /* the next seal's epoch: seals made so far */
	int64_t sealed_to;   /* the last row the newest seal covers (0: none) */
	int64_t unsealed;    /* rows committed after it */
	uint64_t rows;	     /* seal every so many rows ... */
	uint64_t interval_s; /* ... or so many seconds */
	char error[256];     /* why it is off, when something is wrong */
};
void wfs_audit_seal_counters(struct wfs_audit *a, struct wfs_audit_seal_counters *c);
/* Sealing was set up under a running writer: it starts at its next row,
 * not after its periodic look (5 s). */
void wfs_audit_seal_poke(struct wfs_audit *a);

/* Checks the seals with the verification key: each seal's tag, their
 * sequence (epochs without gaps, adjacent row ranges, each linked to the
 * previous tag), the chain recomputed from the rows up to each sealed row,
 * the host's state, and (checkpoints) the seals against checkpoint lines
 * logged off the host. Returns the verdict (>= 0), or -errno when it
 * could not check (err says why). */
int wfs_audit_seal_verify(struct wfs_audit_db *db, const struct wfs_audit_seal_opts *o,
			  struct wfs_audit_seal_result *r, char *err, size_t errlen);

/* ---- formatting (format.c) ----------------------------------------- */
enum wfs_audit_format { WFS_FMT_TABLE, WFS_FMT_JSON, WFS_FMT_CSV };
/* "2026-11-25T10:00:00.123456789Z" */
void wfs_audit_format_time(int64_t ns, char *buf, size_t len);
/* The names of row kinds (events.kind), NULL-terminated. */
extern const char *const wfs_audit_kind_names[];
/* "EACCES", or "" for 0 */
const char *wfs_audit_errno_name(int e);
/* Prints the header line of the format (CSV and table; none for JSON). */
void wfs_audit_print_header(FILE *f, enum wfs_audit_format fmt);
/* Sets the table up: rows longer than columns are cut there (a terminal's
 * width; 0: not), and USER is as wide as the longest local user name. */
void wfs_audit_table_width(int columns);
void wfs_audit_print_row(FILE *f, enum wfs_audit_format fmt, const struct wfs_audit_row *r);
/* Text for a terminal, table or CSV cell (malloc'd; NULL gives ""): C0,
 * DEL, C1 and bidi controls and invalid UTF-8 escaped as \xNN, \r, \n,
 * \t, \uNNNN, and a backslash as \\. */
char *wfs_audit_escape(const char *s);
/* A JSON string (or null): controls as \u00NN, an invalid UTF-8 byte NN as
 * the lone surrogate \udcNN, so every line stays valid JSON. */
void wfs_audit_print_json_str(FILE *f, const char *s);
/* A CSV cell (NULL: empty): escaped as above, quoted when it must be, and a
 * cell a spreadsheet would take for a formula gets a leading '. */
void wfs_audit_print_csv_str(FILE *f, const char *s);
/* Parses "2026-11-25", "2026-11-25T10:00:00[.frac][Z]" (UTC) or a relative
 * "30s", "15m", "2h", "7d", "1w" (that long before now_ns). 0 or -EINVAL. */
int wfs_audit_parse_time(const char *s, int64_t now_ns, int64_t *out);
/* Parses a duration "90d", "12h", "30m", "45s", "2w" into ns. */
int wfs_audit_parse_duration(const char *s, int64_t *out);

#endif
