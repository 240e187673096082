/*
 * format.c - how rows are shown: ISO-8601 UTC times, errno names, and the
 * table / JSON Lines / CSV printers used by `wardfs audit`; plus parsing of
 * the times and durations its options accept.
 */
#include <ctype.h>
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

static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			putc(*p, f);
	}
	putc('"', f);
}

static void csv_str(FILE *f, const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			putc('"', f);
		putc(*s, f);
	}
	putc('"', f);
}

static const char *str(const char *s)
{
	return s ? s : "";
}

/* One table column of width w: padded, or cut with a '+' where it was cut
 * (at the end, or at the start with keep_tail) so the columns stay aligned. */
static void cell(FILE *f, const char *s, int w, bool keep_tail)
{
	int n = (int)strlen(s);
	if (n <= w)
		fprintf(f, "%-*s ", w, s);
	else if (keep_tail)
		fprintf(f, "+%s ", s + n - (w - 1));
	else
		fprintf(f, "%.*s+ ", w - 1, s);
}

void wfs_audit_print_header(FILE *f, enum wfs_audit_format fmt)
{
	if (fmt == WFS_FMT_CSV)
		fputs("id,time,time_ns,mount,kind,path,access,flag_names,flags,class,form,decision,"
		      "errno,error,rule,uid,gid,pid,comm,exe,detail\n",
		      f);
	else if (fmt == WFS_FMT_TABLE)
		fprintf(f, "%-23s %-7s %-3s %-9s %-10s %-12s %7s %-15s %-20s %s\n", "TIME (UTC)",
			"RESULT", "ACC", "CLASS", "FORM", "USER", "PID", "COMM", "RULE", "PATH");
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
			csv_str(f, a[i]);
			putc(',', f);
		}
		fprintf(f, "%d,", r->flags);
		const char *b[] = {r->cls, r->form, r->decision};
		for (int i = 0; i < 3; i++) {
			csv_str(f, b[i]);
			putc(',', f);
		}
		fprintf(f, "%d,%s,", r->err, wfs_audit_errno_name(r->err));
		csv_str(f, r->rule);
		fprintf(f, ",%lld,%lld,%lld,", (long long)r->uid, (long long)r->gid,
			(long long)r->pid);
		csv_str(f, r->comm);
		putc(',', f);
		csv_str(f, r->exe);
		putc(',', f);
		csv_str(f, r->detail);
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
		cell(f, t, 23, false);
		cell(f, res, 7, false);
		cell(f, str(r->access), 3, false);
		cell(f, str(r->cls), 9, false);
		cell(f, str(r->form), 10, false);
		cell(f, user_name(r->uid, user, sizeof user), 12, false);
		fprintf(f, "%7lld ", (long long)r->pid);
		cell(f, str(r->comm), 15, false);
		cell(f, str(r->rule), 20, true); /* file:line: the line is at the end */
		if (!open)
			fprintf(f, "[%s] ", str(r->kind));
		fputs(str(r->path), f);
		if (r->flag_names && r->flag_names[0])
			fprintf(f, " (%s)", r->flag_names);
		if (r->detail)
			fprintf(f, " %s", r->detail);
		putc('\n', f);
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
	struct tm tm = {0};
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
		return -EINVAL;
	const char *p = s + n;
	long frac = 0;
	if (*p == 'T' || *p == ' ') {
		int k = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &k) != 2 || k != 5)
			return -EINVAL;
		p += 1 + k;
		if (*p == ':') {
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
	if (*p == 'Z')
		p++;
	if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	*out = (int64_t)t * 1000000000 + frac;
	return 0;
}
