/*
 * cmd_audit.c - `wardfs audit query|tail|stats|verify|prune|report|seal-init`:
 * option parsing and output; the queries themselves are in audit/
 * (audit.h), the seal commands' output in audit_seal.c, the report's HTML
 * in audit_report.c.
 * Exit status: 0 ok, 1 error (or a broken chain for verify), 2 bad usage,
 * 3 (verify --verify-key) the seals cannot be vouched for.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "audit_report.h"
#include "audit_seal.h"
#include "commands.h"
#include "usage.h"
#include "wardfs_paths.h"

#define TTY_DEFAULT_LIMIT 100

static const char usage_main[] =
	"usage: wardfs audit <command> [<options>]\n\n"
	"  query    list recorded opens matching filters\n"
	"  tail     show the latest rows; -f follows new ones\n"
	"  stats    top paths, programs, users and denials\n"
	"  verify   check the tamper-evident chain of rows\n"
	"  prune    delete old rows, keeping the chain verifiable\n"
	"  report   write an HTML page for the weekly review\n"
	"  seal-init  start forward-secure sealing; prints the verification key\n\n"
	"Every command takes --db FILE (default $WARDFS_AUDIT_DB or " WFS_DEFAULT_AUDIT_DB
	")\nand --help.\n";

static const char *help_query =
	"usage: wardfs audit query [--db FILE] [--since T] [--until T] [--user NAME] [--uid N]\n"
	"                          [--path GLOB] [--class C] [--denied] [--exe PATH] [--pid N]\n"
	"                          [--mount M] [--kind K] [--format table|json|csv] [--limit N]\n"
	"                          [--after-id N]\n\n"
	"T is a time: UTC (2026-11-25, 2026-11-25T10:00:00[Z]), with an offset\n"
	"(2026-11-25T11:00+01:00), today or yesterday (local midnight), or an age (30s, 15m,\n"
	"2h, 7d, 1w). --after-id N: only rows after row N (incremental export: pass the\n"
	"last id of the previous export).\n"
	"GLOB is matched against the path relative to the mount, case-sensitively (* ? [..]);\n"
	"a literal prefix such as '/.ssh/*' is answered from the path index.\n"
	"Rows are sorted by time. With --limit N the newest N matching rows are shown; the\n"
	"default is 100 on a terminal and no limit otherwise (--limit 0: no limit).\n"
	"Output is a table on a terminal and JSON Lines otherwise, unless --format says.\n";
static const char *help_tail =
	"usage: wardfs audit tail [--db FILE] [-f] [-n N] [--format table|json|csv]\n"
	"                         [query's filters: --since, --user, --path, --denied, ...]\n\n"
	"Shows the last N matching rows (default 10) in id order; -f keeps polling for\n"
	"new ones.\n";
static const char *help_stats =
	"usage: wardfs audit stats [--db FILE] [--since T] [--until T] [--mount M] [--top N]\n"
	"                          [--format table|json|csv]\n\n"
	"Totals (opens and creates, denied ones, all rows), then the top N (default 10)\n"
	"paths, programs, users and denied opens. JSON and CSV name each field (path,\n"
	"exe, uid, user, count, denied).\n";
static const char *help_verify =
	"usage: wardfs audit verify [--db FILE] [--key FILE] [--verify-key FILE\n"
	"                           [--checkpoints FILE]]\n\n"
	"Recomputes the HMAC chain (key default: DB.key). Exit 0 if intact, 1 with the\n"
	"first edited, inserted or deleted row otherwise.\n"
	"--verify-key FILE (the key seal-init gave; '-' reads stdin) also checks the\n"
	"seals: each seal's tag, that none is missing, and the chain recomputed from the\n"
	"rows at each sealed row, so sealed rows changed by someone holding this host's\n"
	"keys are found. Rows after the last seal are reported as unsealed.\n"
	"--checkpoints FILE: lines 'wardfs-checkpoint db=... epoch=...' as logged (a\n"
	"syslog or journalctl prefix is fine; '-' reads stdin, e.g. from 'journalctl -t\n"
	"wardfs -o cat'): also finds deleted newest seals and rows\n"
	"and a replaced database. Exit 3 when the seals cannot be vouched for (wrong,\n"
	"mistyped or truncated key, key or checkpoints of another database, no seals,\n"
	"sealing state missing).\n";
static const char *help_seal_init =
	"usage: wardfs audit seal-init [--db FILE] [--verify-key-out FILE] [--seal-rows N]\n"
	"                              [--seal-every AGE]\n\n"
	"Starts forward-secure sealing of the database: the daemon seals the rows every\n"
	"N rows (default 1000) or AGE (default 15m) and at unmount, then evolves its\n"
	"sealing key (kept in DB.seal) and erases the old one. The verification key is\n"
	"printed on stdout (or written 0600 to FILE, which must not exist) once: keep it\n"
	"off this host, for 'wardfs audit verify --verify-key'. A running daemon starts\n"
	"sealing within 5 s.\n";
static const char *help_report =
	"usage: wardfs audit report --html FILE [--db FILE] [--since T] [--until T]\n"
	"                           [--key FILE] [--top N]\n\n"
	"Writes one self-contained HTML page (no network, no external assets) for\n"
	"the weekly review: totals, the chain's verification (key default: DB.key),\n"
	"the seal status, integrity errors and chain-break rows, opens per hour by\n"
	"class, denials over time, and the top N (default 10) programs, users, paths\n"
	"and denied opens. The period is --since (default 7d, the last week) to\n"
	"--until (default now); T as for 'wardfs audit query'. FILE is replaced\n"
	"atomically and made mode 0600: it names paths and programs.\n";
static const char *help_prune =
	"usage: wardfs audit prune --older-than AGE [--db FILE] [--key FILE]\n\n"
	"Deletes rows older than AGE (90d, 12w, 24h...) after verifying them, and stores\n"
	"an anchor so 'wardfs audit verify' still checks the remaining rows.\n";

static bool known_kind(const char *k)
{
	for (const char *const *n = wfs_audit_kind_names; *n; n++)
		if (!strcmp(*n, k))
			return true;
	return false;
}

/* Edit distance (insertions, deletions, substitutions), capped at 9. */
static int distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 30 || lb > 30)
		return 9;
	int d[31][31];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	return d[la][lb];
}

/* The kind a typo most likely meant (at most 2 edits away), or NULL. */
static const char *nearest_kind(const char *k)
{
	const char *best = NULL;
	int bd = 3;
	for (const char *const *n = wfs_audit_kind_names; *n; n++) {
		int d = distance(k, *n);
		if (d < bd) {
			bd = d;
			best = *n;
		}
	}
	return best;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *default_db(void)
{
	const char *e = getenv("WARDFS_AUDIT_DB");
	return e && *e ? e : WFS_DEFAULT_AUDIT_DB;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int parse_format(const char *s, enum wfs_audit_format *f)
{
	if (!strcmp(s, "table"))
		*f = WFS_FMT_TABLE;
	else if (!strcmp(s, "json") || !strcmp(s, "jsonl"))
		*f = WFS_FMT_JSON;
	else if (!strcmp(s, "csv"))
		*f = WFS_FMT_CSV;
	else
		return -1;
	return 0;
}

static struct wfs_audit_db *open_db(const char *path, bool writable)
{
	struct wfs_audit_db *d;
	char err[512];
	if (wfs_audit_db_open(path, writable, &d, err, sizeof err)) {
		error("%s", err);
		return NULL;
	}
	return d;
}

struct printer {
	FILE *f;
	enum wfs_audit_format fmt;
	int64_t last_id;
};

static int print_cb(void *arg, const struct wfs_audit_row *r)
{
	struct printer *p = arg;
	wfs_audit_print_row(p->f, p->fmt, r);
	p->last_id = r->id;
	return ferror(p->f) ? 1 : 0;
}

enum {
	O_DB = 256,
	O_SINCE,
	O_UNTIL,
	O_USER,
	O_UID,
	O_PATH,
	O_CLASS,
	O_DENIED,
	O_EXE,
	O_PID,
	O_MOUNT,
	O_KIND,
	O_FORMAT,
	O_LIMIT,
	O_AFTER,
	O_KEY,
	O_OLDER,
	O_TOP,
	O_HTML,
	O_VKEY,
	O_CHECKPOINTS,
	O_VKEY_OUT,
	O_SEAL_ROWS,
	O_SEAL_EVERY,
};

static const struct option all_opts[] = {
	{"db", required_argument, NULL, O_DB},
	{"since", required_argument, NULL, O_SINCE},
	{"until", required_argument, NULL, O_UNTIL},
	{"user", required_argument, NULL, O_USER},
	{"uid", required_argument, NULL, O_UID},
	{"path", required_argument, NULL, O_PATH},
	{"class", required_argument, NULL, O_CLASS},
	{"denied", no_argument, NULL, O_DENIED},
	{"exe", required_argument, NULL, O_EXE},
	{"pid", required_argument, NULL, O_PID},
	{"mount", required_argument, NULL, O_MOUNT},
	{"kind", required_argument, NULL, O_KIND},
	{"format", required_argument, NULL, O_FORMAT},
	{"limit", required_argument, NULL, O_LIMIT},
	{"after-id", required_argument, NULL, O_AFTER},
	{"key", required_argument, NULL, O_KEY},
	{"older-than", required_argument, NULL, O_OLDER},
	{"top", required_argument, NULL, O_TOP},
	{"html", required_argument, NULL, O_HTML},
	{"verify-key", required_argument, NULL, O_VKEY},
	{"checkpoints", required_argument, NULL, O_CHECKPOINTS},
	{"verify-key-out", required_argument, NULL, O_VKEY_OUT},
	{"seal-rows", required_argument, NULL, O_SEAL_ROWS},
	{"seal-every", required_argument, NULL, O_SEAL_EVERY},
	{"follow", no_argument, NULL, 'f'},
	{"lines", required_argument, NULL, 'n'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct args {
	const char *db, *key, *html;
	struct wfs_audit_filter f;
	enum wfs_audit_format fmt;
	bool fmt_set, limit_set, follow;
	int64_t older_ns, lines, top;
	const char *vkey, *checkpoints, *vkey_out;
	int64_t seal_rows, seal_every_ns;
};

/* One option of one subcommand: which, and where its value goes. */
struct cell {
	struct args *a;
	int code; /* all_opts' val */
	int64_t now;
};

static int audit_opt(void *value, const char *arg)
{
	const struct cell *cell = value;
	struct args *a = cell->a;
	int64_t now = cell->now;

	switch (cell->code) {
	case O_DB:
		a->db = arg;
		break;
	case O_KEY:
		a->key = arg;
		break;
	case O_HTML:
		if (!*arg)
			return usage_error("empty file name for --html");
		a->html = arg;
		break;
	case O_SINCE:
	case O_UNTIL:
		if (wfs_audit_parse_time(arg, now,
					 cell->code == O_SINCE ? &a->f.since_ns : &a->f.until_ns))
			return usage_error("bad time '%s' (try 2026-11-25T10:00:00, "
					   "2026-11-25T11:00+01:00, today or 2h)",
					   arg);
		break;
	case O_USER: {
		struct passwd *pw = getpwnam(arg);
		if (!pw)
			return usage_error("unknown user '%s'", arg);
		a->f.uid = pw->pw_uid;
		break;
	}
	case O_UID:
		if (parse_i64(arg, &a->f.uid))
			return usage_error("bad uid '%s'", arg);
		break;
	case O_PID:
		if (parse_i64(arg, &a->f.pid))
			return usage_error("bad pid '%s'", arg);
		break;
	case O_CLASS:
		if (strcmp(arg, "public") && strcmp(arg, "sensitive") && strcmp(arg, "deny"))
			return usage_error("unknown class '%s' (public, sensitive or deny)", arg);
		a->f.cls = arg;
		break;
	case O_DENIED:
		a->f.denied_only = true;
		break;
	case O_EXE:
		a->f.exe = arg;
		break;
	case O_MOUNT: {
		/* rows name the mount point as mounted: no trailing '/' (the
		 * argument is argv's, ours to change) */
		char *m = (char *)arg;
		size_t n = strlen(m);
		while (n > 1 && m[n - 1] == '/')
			m[--n] = '\0';
		a->f.mount = m;
		break;
	}
	case O_KIND:
		if (!known_kind(arg)) {
			char msg[512];
			const char *near = nearest_kind(arg);
			if (near)
				snprintf(msg, sizeof msg, "unknown kind '%s'; did you mean '%s'?",
					 arg, near);
			else {
				size_t o = (size_t)snprintf(msg, sizeof msg, "unknown kind '%s' (",
							    arg);
				for (const char *const *n = wfs_audit_kind_names;
				     *n && o < sizeof msg; n++)
					o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", *n,
							      n[1] ? ", " : ")");
			}
			return usage_error("%s", msg);
		}
		a->f.kind = arg;
		break;
	case O_PATH:
		if (arg[0] != '/' && arg[0] != '*') {
			char msg[PATH_MAX + 200];
			snprintf(msg, sizeof msg,
				 "path '%s' must start with '/' or '*': paths are relative "
				 "to "
				 "the mount root (did you mean '/%s'?)",
				 arg, arg);
			return usage_error("%s", msg);
		}
		a->f.path_glob = arg;
		break;
	case O_FORMAT:
		if (parse_format(arg, &a->fmt))
			return usage_error("bad format '%s' (table, json or csv)", arg);
		a->fmt_set = true;
		break;
	case O_AFTER:
		if (parse_i64(arg, &a->f.after_id) || a->f.after_id < 0)
			return usage_error("bad row id '%s'", arg);
		break;
	case O_LIMIT:
		if (parse_i64(arg, &a->f.limit))
			return usage_error("bad limit '%s'", arg);
		a->limit_set = true;
		break;
	case O_OLDER:
		if (wfs_audit_parse_duration(arg, &a->older_ns))
			return usage_error("bad age '%s' (try 90d)", arg);
		break;
	case O_TOP:
		if (parse_i64(arg, &a->top))
			return usage_error("bad count '%s'", arg);
		break;
	case O_VKEY:
		a->vkey = arg;
		break;
	case O_CHECKPOINTS:
		a->checkpoints = arg;
		break;
	case O_VKEY_OUT:
		a->vkey_out = arg;
		break;
	case O_SEAL_ROWS:
		if (parse_i64(arg, &a->seal_rows) || a->seal_rows < 1 || a->seal_rows > UINT32_MAX)
			return usage_error("bad row count '%s' (1 to 4294967295)", arg);
		break;
	case O_SEAL_EVERY:
		if (wfs_audit_parse_duration(arg, &a->seal_every_ns) ||
		    a->seal_every_ns < 1000000000LL ||
		    a->seal_every_ns > 365LL * 86400 * 1000000000)
			return usage_error("bad interval '%s' (1s to 365d, e.g. 15m)", arg);
		break;
	case 'f':
		a->follow = true;
		break;
	case 'n':
		if (parse_i64(arg, &a->lines))
			return usage_error("bad line count '%s'", arg);
		break;
	}
	return 0;
}

/* Parses the options `allowed` (a list of option codes ending in 0) lets
 * this subcommand take. Returns 0, 1 for --help printed, or 2. */
static int parse(int argc, char **argv, const int *allowed, const char *help, struct args *a)
{
	struct cell cells[sizeof(all_opts) / sizeof(all_opts[0])];
	struct opt opts[sizeof(all_opts) / sizeof(all_opts[0])];
	size_t n = 0;
	int i, status;

	memset(a, 0, sizeof *a);
	a->db = default_db();
	wfs_audit_filter_init(&a->f);
	a->lines = 10;
	a->top = 10;
	for (const struct option *o = all_opts; o->name; o++)
		for (const int *p = allowed; *p; p++)
			if (*p == o->val) {
				cells[n] = (struct cell){a, o->val, now_ns()};
				opts[n] = (struct opt){
					OPT_FN,	   o->name,   o->val < 256 ? o->val : 0,
					&cells[n], audit_opt, o->has_arg == required_argument};
				n++;
			}
	opts[n] = (struct opt)OPT_END();
	if ((i = parse_options(argc, argv, opts, help, 0, &status)) < 0)
		return status == 0 ? 1 : status;
	if (i < argc)
		return usage_error("unexpected argument '%s'", argv[i]);
	if (!a->fmt_set)
		a->fmt = isatty(STDOUT_FILENO) ? WFS_FMT_TABLE : WFS_FMT_JSON;
	/* a table on a terminal fits it: no wrapped rows */
	struct winsize ws;
	if (a->fmt == WFS_FMT_TABLE)
		wfs_audit_table_width(ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0);
	return 0;
}

static int cmd_query(int argc, char **argv)
{
	static const int ok[] = {O_DB,	   O_SINCE,  O_UNTIL, O_USER, O_UID,   O_PATH,
				 O_CLASS,  O_DENIED, O_EXE,   O_PID,  O_MOUNT, O_KIND,
				 O_FORMAT, O_LIMIT,  O_AFTER, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_query, &a);
	if (r)
		return r == 1 ? 0 : r;
	bool tty = isatty(STDOUT_FILENO);
	if (!a.limit_set && tty)
		a.f.limit = TTY_DEFAULT_LIMIT;
	struct wfs_audit_db *d = open_db(a.db, false);
	if (!d)
		return 1;
	struct printer p = {stdout, a.fmt, 0};
	wfs_audit_print_header(stdout, a.fmt);
	char err[512];
	int64_t n = wfs_audit_query(d, &a.f, print_cb, &p, err, sizeof err);
	wfs_audit_db_close(d);
	if (n < 0) {
		error("%s", err);
		return 1;
	}
	if (fflush(stdout) || ferror(stdout))
		return 1;
	if (tty && a.f.limit && n == a.f.limit)
		fprintf(stderr, "(the newest %lld rows; --limit N or --limit 0 shows more)\n",
			(long long)n);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_tail(int argc, char **argv)
{
	/* the same filters as query (issue 16) */
	static const int ok[] = {O_DB,	   O_SINCE,  O_UNTIL, O_USER, O_UID,   O_PATH,
				 O_CLASS,  O_DENIED, O_EXE,   O_PID,  O_MOUNT, O_KIND,
				 O_FORMAT, 'f',	     'n',     0};
	struct args a;
	int r = parse(argc, argv, ok, help_tail, &a);
	if (r)
		return r == 1 ? 0 : r;
	struct wfs_audit_db *d = open_db(a.db, false);
	if (!d)
		return 1;
	struct printer p = {stdout, a.fmt, 0};
	a.f.order = WFS_AUDIT_BY_ID;
	a.f.limit = a.lines;
	char err[512];
	wfs_audit_print_header(stdout, a.fmt);
	int64_t n = a.lines ? wfs_audit_query(d, &a.f, print_cb, &p, err, sizeof err) : 0;
	if (n >= 0 && !p.last_id) {
		int64_t m = wfs_audit_max_id(d);
		p.last_id = m > 0 ? m : 0;
	}
	fflush(stdout);
	if (a.follow && n >= 0) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		a.f.limit = 0;
		while (!stop && n >= 0 && !ferror(stdout)) {
			usleep(250000);
			a.f.after_id = p.last_id;
			n = wfs_audit_query(d, &a.f, print_cb, &p, err, sizeof err);
			fflush(stdout);
		}
	}
	wfs_audit_db_close(d);
	if (n < 0) {
		error("%s", err);
		return 1;
	}
	return 0;
}

struct stat_out {
	enum wfs_audit_format fmt;
	const char *section;
};

/* The named fields of a stats entry: path, exe, uid and user, as the
 * section has them (the key of "denied" is "PATH<tab>EXE"). */
static void stat_fields(const struct stat_out *s, const char *key, char **path, char **exe,
			char *uid, size_t uidlen, const char **user)
{
	*path = *exe = NULL;
	uid[0] = '\0';
	*user = NULL;
	key = key ? key : "";
	if (!strcmp(s->section, "paths")) {
		*path = strdup(key);
	} else if (!strcmp(s->section, "programs")) {
		*exe = strdup(key);
	} else if (!strcmp(s->section, "users")) {
		snprintf(uid, uidlen, "%s", key);
		struct passwd *pw = getpwuid((uid_t)strtoll(key, NULL, 10));
		*user = pw ? pw->pw_name : NULL;
	} else {
		const char *tab = strchr(key, '\t');
		*path = tab ? strndup(key, (size_t)(tab - key)) : strdup(key);
		*exe = strdup(tab ? tab + 1 : "");
	}
}

static int stat_cb(void *arg, const char *key, int64_t count, int64_t denied)
{
	struct stat_out *s = arg;
	if (s->fmt == WFS_FMT_JSON || s->fmt == WFS_FMT_CSV) {
		char *path, *exe, uid[32];
		const char *user;
		stat_fields(s, key, &path, &exe, uid, sizeof uid, &user);
		if (s->fmt == WFS_FMT_CSV) {
			printf("%s,", s->section);
			wfs_audit_print_csv_str(stdout, path);
			putchar(',');
			wfs_audit_print_csv_str(stdout, exe);
			printf(",%s,", uid);
			wfs_audit_print_csv_str(stdout, user);
			printf(",%lld,%lld\n", (long long)count, (long long)denied);
		} else {
			printf("{\"section\":\"%s\",\"key\":", s->section);
			wfs_audit_print_json_str(stdout, key ? key : "");
			if (path) {
				printf(",\"path\":");
				wfs_audit_print_json_str(stdout, path);
			}
			if (exe) {
				printf(",\"exe\":");
				wfs_audit_print_json_str(stdout, exe);
			}
			if (uid[0]) {
				printf(",\"uid\":%s,\"user\":", uid);
				if (user)
					wfs_audit_print_json_str(stdout, user);
				else
					printf("null");
			}
			printf(",\"count\":%lld,\"denied\":%lld}\n", (long long)count,
			       (long long)denied);
		}
		free(path);
		free(exe);
	} else {
		/* Paths and programs are user-controlled: escaped, like the
		 * query table (a file name must not rewrite the admin's screen). */
		char *k = wfs_audit_escape(key ? key : "(none)");
		const char *tabp = key ? strchr(key, '\t') : NULL;
		char *by = NULL;
		if (tabp) {
			char *raw = strndup(key, (size_t)(tabp - key));
			free(k);
			k = wfs_audit_escape(raw ? raw : "");
			free(raw);
			by = wfs_audit_escape(tabp + 1);
		}
		char name[128] = "";
		if (!strcmp(s->section, "users")) {
			struct passwd *pw = getpwuid((uid_t)strtoll(key ? key : "", NULL, 10));
			if (pw) {
				char *e = wfs_audit_escape(pw->pw_name);
				snprintf(name, sizeof name, " (%s)", e);
				free(e);
			}
		}
		printf("  %10lld %8lld  %s%s%s%s\n", (long long)count, (long long)denied, k, name,
		       by ? "  by " : "", by ? by : "");
		free(k);
		free(by);
	}
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	static const int ok[] = {O_DB, O_SINCE, O_UNTIL, O_MOUNT, O_TOP, O_FORMAT, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_stats, &a);
	if (r)
		return r == 1 ? 0 : r;
	struct wfs_audit_db *d = open_db(a.db, false);
	if (!d)
		return 1;
	char err[512];
	struct wfs_audit_totals t;
	r = wfs_audit_totals(d, &a.f, &t, err, sizeof err);
	if (!r) {
		char t1[48] = "-", t2[48] = "-";
		if (t.rows) {
			wfs_audit_format_time(t.first_ns, t1, sizeof t1);
			wfs_audit_format_time(t.last_ns, t2, sizeof t2);
		}
		/* opens are what an auditor counts; rows include mounts,
		 * reloads and changes */
		if (a.fmt == WFS_FMT_JSON)
			printf("{\"section\":\"totals\",\"rows\":%lld,\"denied\":%lld,\"first\":"
			       "\"%s\",\"last\":\"%s\",\"opens\":%lld,\"opens_denied\":%lld}\n",
			       (long long)t.rows, (long long)t.denied, t1, t2, (long long)t.opens,
			       (long long)t.opens_denied);
		else if (a.fmt == WFS_FMT_CSV)
			printf("section,path,exe,uid,user,count,denied\n"
			       "totals,,,,,%lld,%lld\n",
			       (long long)t.opens, (long long)t.opens_denied);
		else
			printf("%lld opens and creates (%lld denied) from %s to %s; %lld rows in "
			       "all\n",
			       (long long)t.opens, (long long)t.opens_denied, t1, t2,
			       (long long)t.rows);
	}
	static const struct {
		enum wfs_audit_stat what;
		const char *section, *title;
	} sec[] = {
		{WFS_STAT_PATHS, "paths", "top paths"},
		{WFS_STAT_EXES, "programs", "top programs"},
		{WFS_STAT_USERS, "users", "top users"},
		{WFS_STAT_DENIED, "denied", "top denied opens"},
	};
	for (size_t i = 0; i < sizeof sec / sizeof sec[0] && !r; i++) {
		struct stat_out s = {a.fmt, sec[i].section};
		if (a.fmt == WFS_FMT_TABLE)
			printf("\n%s:\n  %10s %8s  %s\n", sec[i].title, "OPENS", "DENIED",
			       i == 3	? "PATH  by PROGRAM"
			       : i == 2 ? "UID"
					: "NAME");
		r = wfs_audit_top(d, sec[i].what, &a.f, (int)a.top, stat_cb, &s, err, sizeof err);
	}
	wfs_audit_db_close(d);
	if (r) {
		error("%s", err);
		return 1;
	}
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	static const int ok[] = {O_DB, O_KEY, O_VKEY, O_CHECKPOINTS, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_verify, &a);
	if (r)
		return r == 1 ? 0 : r;
	if (a.checkpoints && !a.vkey)
		return usage_error("%s needs %s", "--checkpoints", "--verify-key");
	if (a.checkpoints && a.vkey && !strcmp(a.checkpoints, "-") && !strcmp(a.vkey, "-"))
		return usage_error("--verify-key and --checkpoints cannot both read stdin ('-')");
	struct wfs_audit_db *d = open_db(a.db, false);
	if (!d)
		return 1;
	char err[512];
	struct wfs_audit_verify_result vr;
	r = wfs_audit_verify(d, a.key, &vr, err, sizeof err);
	if (r < 0) {
		wfs_audit_db_close(d);
		error("%s", err);
		return 1;
	}
	if (r > 0) {
		error("'%s': %s", a.db, vr.reason);
		printf("first bad row: %lld\n", (long long)vr.bad_id);
	}
	if (a.vkey) {
		/* the seals' verdict, whatever the chain's: an attacker with
		 * DB.key leaves an intact chain, a clumsy one a broken chain
		 * and the seals tell which rows */
		r = wfs_audit_seal_verify_cmd(d, a.db, a.key, a.vkey, a.checkpoints, r, vr.rows);
		wfs_audit_db_close(d);
		return r;
	}
	wfs_audit_db_close(d);
	if (r > 0)
		return 1;
	if (vr.anchor_id)
		printf("ok: %lld rows verified (after the prune anchor at row %lld)\n",
		       (long long)vr.rows, (long long)vr.anchor_id);
	else
		printf("ok: %lld rows verified\n", (long long)vr.rows);
	return 0;
}

static int cmd_seal_init(int argc, char **argv)
{
	static const int ok[] = {O_DB, O_VKEY_OUT, O_SEAL_ROWS, O_SEAL_EVERY, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_seal_init, &a);
	if (r)
		return r == 1 ? 0 : r;
	struct wfs_audit_db *d = open_db(a.db, true);
	if (!d)
		return 1;
	r = wfs_audit_seal_init_cmd(d, a.db, a.vkey_out, (uint64_t)a.seal_rows,
				    (uint64_t)(a.seal_every_ns / 1000000000));
	wfs_audit_db_close(d);
	return r;
}

static int cmd_prune(int argc, char **argv)
{
	static const int ok[] = {O_DB, O_KEY, O_OLDER, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_prune, &a);
	if (r)
		return r == 1 ? 0 : r;
	if (!a.older_ns)
		return usage_error("%s is required", "--older-than AGE");
	struct wfs_audit_db *d = open_db(a.db, true);
	if (!d)
		return 1;
	char err[512];
	struct wfs_audit_prune_result pr;
	r = wfs_audit_prune(d, a.key, now_ns() - a.older_ns, &pr, err, sizeof err);
	wfs_audit_db_close(d);
	if (r) {
		error("%s", err);
		return 1;
	}
	if (pr.rows_deleted)
		printf("pruned %lld rows; the chain is anchored at row %lld\n",
		       (long long)pr.rows_deleted, (long long)pr.pruned_to);
	else
		printf("nothing to prune\n");
	return 0;
}

static int cmd_report(int argc, char **argv)
{
	static const int ok[] = {O_DB, O_SINCE, O_UNTIL, O_KEY, O_TOP, O_HTML, 0};
	struct args a;
	int r = parse(argc, argv, ok, help_report, &a);
	if (r)
		return r == 1 ? 0 : r;
	if (!a.html)
		return usage_error("%s is required", "--html FILE");
	if (a.top < 1 || a.top > INT_MAX)
		return usage_error("bad count '%lld' for --top", (long long)a.top);
	int64_t now = now_ns();
	/* a week: the review this page is for */
	struct wfs_report_opts o = {a.db,
				    a.key,
				    a.html,
				    a.f.since_ns ? a.f.since_ns : now - 7 * 86400LL * 1000000000LL,
				    a.f.until_ns ? a.f.until_ns : now,
				    (int)a.top};
	return wfs_report_html(&o);
}

int wfs_cmd_audit(int argc, char **argv)
{
	static const struct subcommand cmds[] = {
		{"query", cmd_query},	     {"tail", cmd_tail},   {"stats", cmd_stats},
		{"verify", cmd_verify},	     {"prune", cmd_prune}, {"report", cmd_report},
		{"seal-init", cmd_seal_init}};

	return run_subcommand(cmds, sizeof(cmds) / sizeof(cmds[0]), argc, argv, usage_main);
}
