/*
 * format.c - how rows are shown: ISO-8601 UTC times, errno names, and the
 * table / JSON Lines / CSV printers used by `wardfs audit`; plus parsing of
 * the times and durations its options accept.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"

void wfs_audit_format_time(int64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	struct tm tm;
	gmtime_r(&s, &tm);
	char d[32];
	strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%09ldZ", d, frac);
}

const char *wfs_audit_errno_name(int e)
{
	if (!e)
		return "";
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

static const char *user_name(int64_t uid, char *buf, size_t len)
{
	static __thread int64_t cached_uid = -1;
	static __thread char cached[64];
	if (uid != cached_uid) {
		struct passwd pw, *res = NULL;
		char tmp[1024];
		if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
			snprintf(cached, sizeof cached, "%s", res->pw_name);
		else
			snprintf(cached, sizeof cached, "%lld", (long long)uid);
		cached_uid = uid;
	}
	snprintf(buf, len, "%s", cached);
	return buf;
}

/*
 * Escaping of user-controlled text (paths, process names, executables,
 * details): a file name is chosen by whoever creates the file, so printed
 * raw it could move the cursor, rewrite the line (\r, ESC [2K) or set a
 * terminal title (OSC), and show the admin a forged row in place of the
 * real one. Every character that is not plain printable text is escaped,
 * visibly and unambiguously (docs/audit.md, "Output").
 */

/* The length of the valid UTF-8 sequence at p (1..4), its code point in
 * *cp; 0 if the byte at p does not start one (invalid, overlong,
 * surrogate, beyond U+10FFFF, or cut short). */
static int utf8_seq(const unsigned char *p, uint32_t *cp)
{
	unsigned char c = p[0];
	int n;
	uint32_t v, lo = 0x80, hi = 0xbf;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		unsigned char k = p[i]; /* a NUL ends the string: never a continuation */
		if (k < (i == 1 ? lo : 0x80) || k > (i == 1 ? hi : 0xbf))
			return 0;
		v = v << 6 | (k & 0x3f);
	}
	*cp = v;
	return n;
}

/* Characters that change how a terminal shows text rather than being
 * text: C0, DEL, C1, and the bidirectional and line-separator controls
 * that can reorder what an admin reads. */
static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			abort(); /* a few bytes for a printed row: nothing sane to do */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

char *wfs_audit_escape(const char *s)
{
	struct sbuf b = {0};
	sb_add(&b, "", 0);
	if (!s)
		return b.p;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		int n = utf8_seq(p, &cp);
		char e[16];
		if (!n) { /* invalid UTF-8: the byte itself */
			snprintf(e, sizeof e, "\\x%02x", *p);
			sb_add(&b, e, 4);
			p++;
			continue;
		}
		if (cp == '\\') {
			sb_add(&b, "\\\\", 2);
		} else if (cp == '\n' || cp == '\r' || cp == '\t') {
			sb_add(&b, cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : "\\t", 2);
		} else if (cp < 0x80 && is_control(cp)) {
			snprintf(e, sizeof e, "\\x%02x", (unsigned)cp);
			sb_add(&b, e, 4);
		} else if (is_control(cp)) { /* C1 or bidi: by code point, not bytes */
			snprintf(e, sizeof e, "\\u%04x", (unsigned)cp);
			sb_add(&b, e, 6);
		} else {
			sb_add(&b, (const char *)p, (size_t)n);
		}
		p += n;
	}
	return b.p;
}

void wfs_audit_print_json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		uint32_t cp;
		int n = utf8_seq(p, &cp);
		if (!n) {
			/* JSON text must be UTF-8. An invalid byte becomes a lone
			 * low surrogate U+DC80..U+DCFF, the "surrogateescape"
			 * convention (Python decodes it back to the byte), so
			 * the line stays JSON and no byte is lost or confused
			 * with the text "\xNN". */
			fprintf(f, "\\udc%02x", *p);
			p++;
			continue;
		}
		if (cp == '"' || cp == '\\')
			fprintf(f, "\\%c", (int)cp);
		else if (is_control(cp))
			fprintf(f, "\\u%04x", (unsigned)cp);
		else
			fwrite(p, 1, (size_t)n, f);
		p += n;
	}
	putc('"', f);
}

static void json_str(FILE *f, const char *s)
{
	wfs_audit_print_json_str(f, s);
}

/*
 * A CSV cell: escaped like the table (no control character reaches a
 * spreadsheet or a terminal running `cat`), then defused: a cell that a
 * spreadsheet would take for a formula (= + - @, or tab or CR first, as
 * OWASP lists) gets a leading ', and so does one that starts with ' so
 * that removing one leading ' always gives the escaped text back.
 */
void wfs_audit_print_csv_str(FILE *f, const char *s)
{
	if (!s)
		return;
	char *e = wfs_audit_escape(s);
	bool formula = strchr("=+-@\t\r'", s[0]) && s[0];
	if (!strpbrk(e, ",\"") && !formula) {
		fputs(e, f);
		free(e);
		return;
	}
	putc('"', f);
	if (formula)
		putc('\'', f);
	for (const char *c = e; *c; c++) {
		if (*c == '"')
			putc('"', f);
		putc(*c, f);
	}
	putc('"', f);
	free(e);
}

/* One table column of width w: padded, or cut with a '+' where it was cut
 * (at the end, or at the start with keep_tail) so the columns stay aligned;
 * w < 0: never cut (padded to -w). */
static void cell(FILE *f, const char *s, int w, bool keep_tail)
{
	int n = (int)strlen(s);
	if (w < 0)
		fprintf(f, "%-*s ", -w, s);
	else if (n <= w)
		fprintf(f, "%-*s ", w, s);
	else if (keep_tail)
		fprintf(f, "+%s ", s + n - (w - 1));
	else
		fprintf(f, "%.*s+ ", w - 1, s);
}

/* The table's columns, in the order shown; on a terminal too narrow for
 * all of them, the least needed go (priority: 0 first kept), so that PATH
 * keeps at least PATH_MIN columns; a line still longer is cut there. */
enum {
	C_TIME,
	C_RESULT,
	C_ACC,
	C_CLASS,
	C_FORM,
	C_USER,
	C_PID,
	C_COMM,
	C_EXE,
	C_RULE,
	C_MOUNT,
	NCOL
};
static struct {
	const char *name;
	int width, priority;
} cols[NCOL] = {
	[C_TIME] = {"TIME (UTC)", 23, 0}, [C_RESULT] = {"RESULT", 7, 1}, [C_ACC] = {"ACC", 3, 4},
	[C_CLASS] = {"CLASS", 9, 5},	  [C_FORM] = {"FORM", 9, 8},	 [C_USER] = {"USER", 12, 2},
	[C_PID] = {"PID", 7, 9},	  [C_COMM] = {"COMM", 15, 10},	 [C_EXE] = {"EXE", 20, 3},
	[C_RULE] = {"RULE", 18, 6},	  [C_MOUNT] = {"MOUNT", 14, 7},
};
#define PATH_MIN 30
static bool col_on[NCOL] = {true, true, true, true, true, true, true, true, true, true, true};
static int table_width;

/* USER is as wide as the longest name in the user database (within the
 * 32 bytes useradd allows), and a longer one (from a directory service)
 * is shown whole: a user name is never cut. */
static int user_width(void)
{
	int w = 4;
	setpwent();
	for (struct passwd *pw; (pw = getpwent()) != NULL;) {
		int n = (int)strlen(pw->pw_name);
		if (n > w)
			w = n > 32 ? 32 : n;
	}
	endpwent();
	return w;
}

void wfs_audit_table_width(int columns)
{
	table_width = columns;
	cols[C_USER].width = user_width();
	for (int c = 0; c < NCOL; c++)
		col_on[c] = true;
	if (columns <= 0)
		return;
	int used = 0;
	for (int c = 0; c < NCOL; c++)
		used += cols[c].width + 1;
	/* drop the least needed until PATH has room */
	for (int p = NCOL - 1; p > 1 && used + PATH_MIN > columns; p--)
		for (int c = 0; c < NCOL; c++)
			if (cols[c].priority == p && col_on[c]) {
				col_on[c] = false;
				used -= cols[c].width + 1;
			}
}

/* Writes line (no newline) to f, cut to table_width. */
static void table_line(FILE *f, const char *line)
{
	size_t n = strlen(line);
	if (table_width > 1 && n > (size_t)table_width) {
		/* cut on a character boundary (UTF-8 from the escaper) */
		size_t k = (size_t)table_width - 1;
		while (k > 0 && ((unsigned char)line[k] & 0xc0) == 0x80)
			k--;
		fprintf(f, "%.*s>\n", (int)k, line);
	} else {
		fprintf(f, "%s\n", line);
	}
}

/* The rule's file by its last component: "policy:12", "10-keys.conf:3",
 * with the line, never cut (the file is the admin's: readable as is). */
static const char *short_rule(const char *rule)
{
	if (!rule)
		return NULL;
	const char *colon = strrchr(rule, ':');
	const char *slash = NULL;
	for (const char *c = rule; *c && (!colon || c < colon); c++)
		if (*c == '/')
			slash = c;
	return slash ? slash + 1 : rule;
}

void wfs_audit_print_header(FILE *f, enum wfs_audit_format fmt)
{
	if (fmt == WFS_FMT_CSV)
		fputs("id,time,time_ns,mount,kind,path,access,flag_names,flags,class,form,decision,"
		      "errno,error,rule,uid,gid,pid,comm,exe,detail\n",
		      f);
	else if (fmt == WFS_FMT_TABLE) {
		char line[512];
		size_t o = 0;
		for (int c = 0; c < NCOL; c++)
			if (col_on[c])
				o += (size_t)snprintf(line + o, sizeof line - o,
						      c == C_PID ? "%*s " : "%-*s ", cols[c].width,
						      cols[c].name);
		snprintf(line + o, sizeof line - o, "PATH");
		table_line(f, line);
	}
}

void wfs_audit_print_row(FILE *f, enum wfs_audit_format fmt, const struct wfs_audit_row *r)
{
	char t[48];
	wfs_audit_format_time(r->time_ns, t, sizeof t);
	if (fmt == WFS_FMT_JSON) {
		fprintf(f, "{\"id\":%lld,\"time\":\"%s\",\"time_ns\":%lld,\"mount\":",
			(long long)r->id, t, (long long)r->time_ns);
		json_str(f, r->mount);
		fputs(",\"kind\":", f);
		json_str(f, r->kind);
		fputs(",\"path\":", f);
		json_str(f, r->path);
		fputs(",\"access\":", f);
		json_str(f, r->access);
		fputs(",\"flag_names\":", f);
		json_str(f, r->flag_names);
		fprintf(f, ",\"flags\":%d,\"class\":", r->flags);
		json_str(f, r->cls);
		fputs(",\"form\":", f);
		json_str(f, r->form);
		fputs(",\"decision\":", f);
		json_str(f, r->decision);
		fprintf(f, ",\"errno\":%d,\"error\":", r->err);
		json_str(f, r->err ? wfs_audit_errno_name(r->err) : NULL);
		fputs(",\"rule\":", f);
		json_str(f, r->rule);
		fprintf(f, ",\"uid\":%lld,\"gid\":%lld,\"pid\":%lld,\"comm\":", (long long)r->uid,
			(long long)r->gid, (long long)r->pid);
		json_str(f, r->comm);
		fputs(",\"exe\":", f);
		json_str(f, r->exe);
		fputs(",\"detail\":", f);
		json_str(f, r->detail);
		fputs("}\n", f);
	} else if (fmt == WFS_FMT_CSV) {
		fprintf(f, "%lld,%s,%lld,", (long long)r->id, t, (long long)r->time_ns);
		const char *a[] = {r->mount, r->kind, r->path, r->access, r->flag_names};
		for (int i = 0; i < 5; i++) {
			wfs_audit_print_csv_str(f, a[i]);
			putc(',', f);
		}
		fprintf(f, "%d,", r->flags);
		const char *b[] = {r->cls, r->form, r->decision};
		for (int i = 0; i < 3; i++) {
			wfs_audit_print_csv_str(f, b[i]);
			putc(',', f);
		}
		fprintf(f, "%d,%s,", r->err, wfs_audit_errno_name(r->err));
		wfs_audit_print_csv_str(f, r->rule);
		fprintf(f, ",%lld,%lld,%lld,", (long long)r->uid, (long long)r->gid,
			(long long)r->pid);
		wfs_audit_print_csv_str(f, r->comm);
		putc(',', f);
		wfs_audit_print_csv_str(f, r->exe);
		putc(',', f);
		wfs_audit_print_csv_str(f, r->detail);
		putc('\n', f);
	} else {
		/* "2026-11-25T10:00:00.123" (ms) */
		t[10] = ' ';
		t[23] = 0;
		const char *res = r->decision && !strcmp(r->decision, "allow")
					  ? "allow"
					  : (r->err ? wfs_audit_errno_name(r->err) : "deny");
		char user[64];
		bool open = r->kind && (!strcmp(r->kind, "open") || !strcmp(r->kind, "create"));
		/* Every column that can hold text someone other than the admin
		 * chose is escaped (see wfs_audit_escape). */
		char *acc = wfs_audit_escape(r->access), *cls = wfs_audit_escape(r->cls),
		     *form = wfs_audit_escape(r->form),
		     *usr = wfs_audit_escape(user_name(r->uid, user, sizeof user)),
		     *comm = wfs_audit_escape(r->comm), *exe = wfs_audit_escape(r->exe),
		     *rule = wfs_audit_escape(short_rule(r->rule)),
		     *mnt = wfs_audit_escape(r->mount), *kind = wfs_audit_escape(r->kind),
		     *path = wfs_audit_escape(r->path), *fl = wfs_audit_escape(r->flag_names),
		     *detail = wfs_audit_escape(r->detail);
		char *line = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);
		if (m) {
			/* a program's name, a rule's line and a mount's last
			 * name are at their ends: those keep their tails */
			const char *val[NCOL] = {t,    res,  acc, cls,	form, usr,
						 NULL, comm, exe, rule, mnt};
			for (int c = 0; c < NCOL; c++) {
				if (!col_on[c])
					continue;
				if (c == C_PID)
					fprintf(m, "%7lld ", (long long)r->pid);
				else
					cell(m, val[c],
					     c == C_USER ? -cols[c].width : cols[c].width,
					     c == C_EXE || c == C_RULE || c == C_MOUNT);
			}
			if (!open)
				fprintf(m, "[%s] ", kind);
			fputs(path, m);
			if (fl[0])
				fprintf(m, " (%s)", fl);
			if (r->detail)
				fprintf(m, " %s", detail);
			fclose(m);
			table_line(f, line);
			free(line);
		}
		char *all[] = {acc, cls, form, usr, comm, exe, rule, mnt, kind, path, fl, detail};
		for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
			free(all[k]);
	}
}

int wfs_audit_parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (end == s || errno || n < 0 || !*end || end[1])
		return -EINVAL;
	int64_t unit;
	switch (*end) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	default:
		return -EINVAL;
	}
	if (n > INT64_MAX / 1000000000 / unit)
		return -ERANGE;
	*out = (int64_t)n * unit * 1000000000;
	return 0;
}

int wfs_audit_parse_time(const char *s, int64_t now_ns, int64_t *out)
{
	int64_t d;
	if (isdigit((unsigned char)s[0]) && wfs_audit_parse_duration(s, &d) == 0) {
		*out = now_ns - d;
		return 0;
	}
	/* today, yesterday: local midnight, as a person means them */
	if (!strcmp(s, "today") || !strcmp(s, "yesterday") || !strcmp(s, "now")) {
		if (!strcmp(s, "now")) {
			*out = now_ns;
			return 0;
		}
		time_t now = (time_t)(now_ns / 1000000000);
		struct tm lt;
		localtime_r(&now, &lt);
		lt.tm_hour = lt.tm_min = lt.tm_sec = 0;
		if (s[0] == 'y')
			lt.tm_mday -= 1; /* mktime normalizes the 0th */
		lt.tm_isdst = -1;
		*out = (int64_t)mktime(&lt) * 1000000000;
		return 0;
	}
	struct tm tm = {0};
	int n = 0;
	/* sscanf's field widths (4 and 2 digits) keep every number in an int */
	// NOLINTNEXTLINE(cert-err34-c): at most 4 digits, cannot overflow
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return -EINVAL;
	const char *p = s + n;
	long frac = 0;
	if (*p == 'T' || *p == ' ') {
		int k = 0;
		// NOLINTNEXTLINE(cert-err34-c): 2 digits each, cannot overflow
		if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &k) != 2 || k != 5)
			return -EINVAL;
		p += 1 + k;
		if (*p == ':') {
			// NOLINTNEXTLINE(cert-err34-c): 2 digits, cannot overflow
			if (sscanf(p + 1, "%2d%n", &tm.tm_sec, &k) != 1 || k != 2)
				return -EINVAL;
			p += 3;
			if (*p == '.') {
				long scale = 100000000;
				for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
					frac += (*p - '0') * scale;
			}
		}
	}
	/* Z (UTC, as without a zone) or an offset: +01:00, -0500 */
	long offset = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, k = 0;
		// NOLINTNEXTLINE(cert-err34-c): 2 digits each, cannot overflow
		bool colon = sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) == 2 && k == 5;
		// NOLINTNEXTLINE(cert-err34-c): 2 digits each, cannot overflow
		if (!colon && !(sscanf(p + 1, "%2d%2d%n", &hh, &mm, &k) == 2 && k == 4))
			return -EINVAL;
		if (hh > 23 || mm > 59)
			return -EINVAL;
		offset = (*p == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
		p += 1 + k;
	}
	if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm) - offset;
	/* Nanoseconds since 1970 in an int64 reach from 1677 to 2262: a
	 * year outside (say 9999-12-31 for "forever") overflowed into some
	 * other time; refuse it. */
	if (t < INT64_MIN / 1000000000 || t >= INT64_MAX / 1000000000)
		return -EINVAL;
	*out = (int64_t)t * 1000000000 + frac;
	return 0;
}
