/*
 * audit_report.c - `wardfs audit report --html FILE`: one self-contained
 * HTML page for the weekly review of an audit database: totals, the chain's
 * verification, the seal status, integrity errors and chain breaks, opens
 * per hour by class and denials over time (inline SVG), and the top
 * programs, users and paths. The numbers come from audit/ (audit.h); this
 * file only lays them out.
 *
 * The page loads nothing: a Content-Security-Policy in the page forbids
 * every fetch and admits only its own style and script, by hash. Every
 * string a user chose (paths, programs, process names, details) is first
 * made visible text by wfs_audit_escape (controls, newlines and invalid
 * UTF-8 as \xNN), then escaped for HTML, so no file name becomes markup.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "audit_report.h"
#include "usage.h"

#define HOUR_NS (3600LL * 1000000000LL)
#define DAY_NS	(24 * HOUR_NS)
/* a month of hours; a longer period gets days (or more) per bar */
#define MAX_BUCKETS 744
/* integrity and chain-break rows listed (the newest) */
#define LIST_ROWS 50

enum { C_PUBLIC, C_SENSITIVE, C_DENY, C_OTHER, NCLASS };
static const char *const class_names[NCLASS] = {"public", "sensitive", "deny", "other"};

/* No class= or style= attribute of the page needs more than this sheet;
 * the CSP admits it by its hash, so an attribute style would be refused. */
static const char page_style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1000px;"
	"padding:0 1em;color:#222;background:#fff}"
	"h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse}"
	"td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	"td.key,code{font-family:ui-monospace,monospace;word-break:break-all}"
	"svg{width:100%;height:auto}"
	".public{fill:#4e79a7}.sensitive{fill:#f28e2b}.deny{fill:#e15759}.other{fill:#999}"
	".denied{fill:#b22}.axis{stroke:#888}.grid{stroke:#e4e4e4}"
	"text{font-size:11px;fill:#444}"
	".ok{color:#1a7f37}.bad{color:#b22;font-weight:bold}.unknown{color:#9a6700}";

/* Shows a script error in the page (a test looks for #js-error), marks
 * that the script ran under the CSP (data-js), and gives each <time> its
 * local-time tooltip: the page itself is in UTC. */
static const char page_script[] =
	"window.onerror=function(m){var p=document.createElement('p');p.id='js-error';"
	"p.textContent='script error: '+m;document.documentElement.appendChild(p);};"
	"document.addEventListener('DOMContentLoaded',function(){"
	"document.documentElement.setAttribute('data-js','ok');"
	"document.querySelectorAll('time[datetime]').forEach(function(t){"
	"var d=new Date(t.getAttribute('datetime'));"
	"if(!isNaN(d))t.title=d.toLocaleString();});});";

struct report {
	FILE *f;
	struct wfs_audit_db *db;
	const struct wfs_report_opts *o;
	struct wfs_audit_filter flt; /* the period */
	int64_t origin, bucket;	     /* bar i is [origin + i * bucket, + bucket) */
	size_t n;		     /* bars */
	int64_t *opens[NCLASS];	     /* per bar */
	int64_t *denied;
	int64_t class_total[NCLASS];
	const char *section; /* of a top table being written */
	int rank;
	char err[512];
};

/* s as text in HTML (element content or a quoted attribute). */
static void put_text(FILE *f, const char *s)
{
	char *e = wfs_audit_escape(s);
	for (const char *p = e ? e : "(out of memory)"; *p; p++)
		switch (*p) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*p, f);
		}
	free(e);
}

static void put_time(FILE *f, int64_t ns)
{
	char t[48];
	wfs_audit_format_time(ns, t, sizeof t);
	/* to the second: what Date() parses and a reader needs */
	char *dot = strchr(t, '.');
	if (dot)
		strcpy(dot, "Z");
	fprintf(f, "<time datetime=\"%s\">%s</time>", t, t);
}

/* "'sha256-BASE64'" of text, as a CSP source. */
static void csp_hash(const char *text, char *out, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, len, "'sha256-%s'", b64);
}

static void page_head(struct report *r)
{
	char sh[80], jh[80];
	csp_hash(page_style, sh, sizeof sh);
	csp_hash(page_script, jh, sizeof jh);
	fprintf(r->f,
		"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"style-src %s; script-src %s; base-uri 'none'; form-action 'none'\">\n"
		"<meta name=\"referrer\" content=\"no-referrer\">\n"
		"<meta name=\"viewport\" content=\"width=device-width\">\n"
		"<title>wardfs audit report</title>\n<style>%s</style>\n<script>%s</script>\n"
		"</head>\n<body>\n<h1>wardfs audit report</h1>\n<p id=\"period\">Database <code>",
		sh, jh, page_style, page_script);
	put_text(r->f, r->o->db);
	fputs("</code>, from ", r->f);
	put_time(r->f, r->flt.since_ns);
	fputs(" to ", r->f);
	put_time(r->f, r->flt.until_ns);
	fputs(" (UTC).</p>\n", r->f);
}

static void summary_row(FILE *f, const char *id, const char *what, int64_t n)
{
	fprintf(f, "<tr><th>%s</th><td class=\"n\" id=\"%s\">%lld</td></tr>\n", what, id,
		(long long)n);
}

static int count_kind(struct report *r, const char *kind, int64_t *n)
{
	struct wfs_audit_filter g = r->flt;
	struct wfs_audit_totals t;
	g.kind = kind;
	int e = wfs_audit_totals(r->db, &g, &t, r->err, sizeof r->err);
	*n = t.rows;
	return e;
}

static int section_summary(struct report *r, int64_t *integrity, int64_t *breaks)
{
	struct wfs_audit_totals t;
	int e = wfs_audit_totals(r->db, &r->flt, &t, r->err, sizeof r->err);
	if (!e)
		e = count_kind(r, "integrity", integrity);
	if (!e)
		e = count_kind(r, "chain-break", breaks);
	if (e)
		return e;
	FILE *f = r->f;
	fputs("<section id=\"summary\">\n<h2>Summary</h2>\n<table>\n", f);
	summary_row(f, "total-opens", "opens and creates", t.opens);
	summary_row(f, "total-opens-denied", "of them denied", t.opens_denied);
	for (int c = 0; c < NCLASS; c++) {
		char id[32], what[64];
		snprintf(id, sizeof id, "opens-%s", class_names[c]);
		snprintf(what, sizeof what, "opens of %s files",
			 c == C_OTHER ? "unclassified" : class_names[c]);
		summary_row(f, id, what, r->class_total[c]);
	}
	summary_row(f, "total-denied", "denied rows of any kind", t.denied);
	summary_row(f, "integrity-count", "integrity errors", *integrity);
	summary_row(f, "chain-break-count", "chain breaks", *breaks);
	summary_row(f, "total-rows", "rows in all", t.rows);
	fputs("</table>\n</section>\n", f);
	return 0;
}

/* The whole chain, whatever the period: a row edited last month breaks
 * this week's evidence too. */
static void section_chain(struct report *r)
{
	struct wfs_audit_verify_result vr;
	char err[512] = "";
	int v = wfs_audit_verify(r->db, r->o->key, &vr, err, sizeof err);
	FILE *f = r->f;
	fputs("<section id=\"chain\">\n<h2>Chain verification</h2>\n", f);
	if (v < 0) {
		warning("cannot verify the chain of '%s': %s", r->o->db, err);
		fputs("<p id=\"chain-status\" class=\"unknown\">not verified: ", f);
		put_text(f, err);
	} else if (v > 0) {
		warning("the chain of '%s' is broken: %s (first bad row %lld)", r->o->db, vr.reason,
			(long long)vr.bad_id);
		fputs("<p id=\"chain-status\" class=\"bad\">broken: ", f);
		put_text(f, vr.reason);
		fprintf(f, "; first bad row %lld", (long long)vr.bad_id);
	} else {
		fprintf(f, "<p id=\"chain-status\" class=\"ok\">ok: %lld rows verified",
			(long long)vr.rows);
		if (vr.anchor_id)
			fprintf(f, " (after the prune anchor at row %lld)",
				(long long)vr.anchor_id);
	}
	fputs("</p>\n</section>\n", f);
}

/* The forward-secure seal of the database, for the "Seal status" section:
 * what it says and its class (ok, bad, unknown). The sealing (issue 19)
 * fills this in; until then no database is sealed. */
/* What the seal table says; the page cannot check it (the verification
 * key stays off this host), and says so. */
static const char *report_seal_status(struct wfs_audit_db *db, const char **cls)
{
	static char text[256];
	struct wfs_audit_seal_status s;
	char when[64];
	time_t t;
	struct tm tm;

	*cls = "unknown";
	if (wfs_audit_seal_status(db, &s) != 0)
		return "cannot read the seal table";
	if (!s.table)
		return "not sealed";
	if (s.seals == 0) {
		snprintf(text, sizeof(text), "sealing started, no seal yet; %lld rows unsealed",
			 (long long)s.unsealed);
		return text;
	}
	t = (time_t)(s.time_ns / 1000000000);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", gmtime_r(&t, &tm));
	snprintf(text, sizeof(text),
		 "%lld seals; rows up to %lld sealed (epoch %lld, %s); %lld rows unsealed; "
		 "check with 'wardfs audit verify --verify-key'",
		 (long long)s.seals, (long long)s.last_row, (long long)s.epoch, when,
		 (long long)s.unsealed);
	return text;
}

static void section_seal(struct report *r)
{
	const char *cls;
	const char *s = report_seal_status(r->db, &cls);
	fprintf(r->f,
		"<section id=\"seal\">\n<h2>Seal status</h2>\n"
		"<p id=\"seal-status\" class=\"%s\">",
		cls);
	put_text(r->f, s);
	fputs("</p>\n</section>\n", r->f);
}

static int row_cb(void *arg, const struct wfs_audit_row *w)
{
	FILE *f = arg;
	fprintf(f, "<tr><td class=\"n\">%lld</td><td>", (long long)w->id);
	put_time(f, w->time_ns);
	fputs("</td><td class=\"key\">", f);
	put_text(f, w->path);
	fputs("</td><td class=\"key\">", f);
	/* the daemon's own rows may know the process name only */
	put_text(f, w->exe ? w->exe : w->comm);
	fprintf(f, "</td><td class=\"n\">%lld</td><td>", (long long)w->uid);
	put_text(f, w->detail);
	fputs("</td></tr>\n", f);
	return ferror(f) ? 1 : 0;
}

/* The newest rows of one kind in the period. */
static int section_rows(struct report *r, const char *id, const char *title, const char *kind,
			int64_t count)
{
	FILE *f = r->f;
	fprintf(f, "<section id=\"%s\">\n<h2>%s</h2>\n", id, title);
	if (!count) {
		fputs("<p class=\"ok\">none</p>\n</section>\n", f);
		return 0;
	}
	if (count > LIST_ROWS)
		fprintf(f, "<p>the newest %d of %lld</p>\n", LIST_ROWS, (long long)count);
	fputs("<table>\n<tr><th class=\"n\">row</th><th>time</th><th>path</th><th>program</th>"
	      "<th class=\"n\">uid</th><th>detail</th></tr>\n",
	      f);
	struct wfs_audit_filter g = r->flt;
	g.kind = kind;
	g.limit = LIST_ROWS;
	g.order = WFS_AUDIT_LATEST;
	int64_t n = wfs_audit_query(r->db, &g, row_cb, f, r->err, sizeof r->err);
	fputs("</table>\n</section>\n", f);
	return n < 0 ? (int)n : 0;
}

static int series_cb(void *arg, int64_t bucket, const char *cls, int64_t opens, int64_t denied)
{
	struct report *r = arg;
	if (bucket < 0 || (uint64_t)bucket >= r->n)
		return 0;
	int c = C_OTHER;
	for (int i = 0; i < C_OTHER; i++)
		if (cls && !strcmp(cls, class_names[i]))
			c = i;
	r->opens[c][bucket] += opens;
	r->class_total[c] += opens;
	r->denied[bucket] += denied;
	return 0;
}

/* Bars of a month at most: hours, else days, else as many days as fit. */
static int load_series(struct report *r)
{
	int64_t since = r->flt.since_ns, span = r->flt.until_ns - since;
	r->bucket = HOUR_NS;
	if (span / HOUR_NS >= MAX_BUCKETS)
		r->bucket = DAY_NS;
	while (span / r->bucket + 2 > MAX_BUCKETS)
		r->bucket += DAY_NS;
	r->origin = since - since % r->bucket;
	r->n = (size_t)((r->flt.until_ns - r->origin + r->bucket - 1) / r->bucket);
	for (int c = 0; c < NCLASS; c++)
		if (!(r->opens[c] = calloc(r->n, sizeof(int64_t))))
			goto oom;
	if (!(r->denied = calloc(r->n, sizeof(int64_t))))
		goto oom;
	return wfs_audit_series(r->db, &r->flt, r->origin, r->bucket, series_cb, r, r->err,
				sizeof r->err);
oom:
	snprintf(r->err, sizeof r->err, "out of memory");
	return -ENOMEM;
}

struct series {
	const char *cls, *label;
	const int64_t *v;
	int64_t total;
};

#define CW 960.0 /* the chart's box, in the viewBox's units */
#define CH 240.0
#define ML 52.0 /* margins: left (y labels), right, top (legend), bottom (x labels) */
#define MR 8.0
#define MT 26.0
#define MB 24.0

static void bucket_label(const struct report *r, size_t i, char *buf, size_t len)
{
	time_t t = (time_t)((r->origin + (int64_t)i * r->bucket) / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, r->bucket < DAY_NS ? "%Y-%m-%d %H:00" : "%Y-%m-%d", &tm);
}

/* Stacked bars of the series, one bar per bucket; each bar's part carries
 * its count (data-n) and a tooltip. */
static void chart(struct report *r, const char *id, const char *title, const struct series *s,
		  size_t ns)
{
	FILE *f = r->f;
	int64_t max = 0;
	for (size_t i = 0; i < r->n; i++) {
		int64_t sum = 0;
		for (size_t k = 0; k < ns; k++)
			sum += s[k].v[i];
		max = sum > max ? sum : max;
	}
	double pw = CW - ML - MR, ph = CH - MT - MB, bw = pw / (double)r->n;
	double gap = bw > 3 ? 1 : 0;
	fprintf(f,
		"<section id=\"%s\">\n<h2>%s</h2>\n"
		"<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s\">\n",
		id, title, CW, CH, title);
	/* legend, with each series' total */
	double lx = ML;
	for (size_t k = 0; k < ns; k++) {
		fprintf(f,
			"<rect class=\"%s\" x=\"%.1f\" y=\"6\" width=\"10\" height=\"10\"/>"
			"<text x=\"%.1f\" y=\"15\">%s: %lld</text>\n",
			s[k].cls, lx, lx + 14, s[k].label, (long long)s[k].total);
		lx += 150;
	}
	/* y: grid lines at 0, the top and a whole number near half of it */
	int64_t ticks[3] = {0, max / 2, max};
	for (int g = 0; g < 3 && max; g++) {
		if (g == 1 && (ticks[1] == 0 || ticks[1] == max))
			continue;
		double y = MT + ph - ph * (double)ticks[g] / (double)max;
		fprintf(f,
			"<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n",
			ML, CW - MR, y, y, ML - 4, y + 4, (long long)ticks[g]);
	}
	if (!max)
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no rows in this "
			"period</text>\n",
			ML + pw / 2, MT + ph / 2);
	for (size_t i = 0; i < r->n && max; i++) {
		double y = MT + ph;
		char when[32];
		bucket_label(r, i, when, sizeof when);
		for (size_t k = 0; k < ns; k++) {
			if (!s[k].v[i])
				continue;
			double h = ph * (double)s[k].v[i] / (double)max;
			y -= h;
			fprintf(f,
				"<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
				"height=\"%.2f\" data-n=\"%lld\"><title>%s UTC: %lld %s</title>"
				"</rect>\n",
				s[k].cls, ML + bw * (double)i, y, bw - gap > 0.5 ? bw - gap : 0.5,
				h, (long long)s[k].v[i], when, (long long)s[k].v[i], s[k].label);
		}
	}
	/* x: the axis, and a date under each day's start (at most ~12) */
	fprintf(f, "<line class=\"axis\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>\n", ML,
		CW - MR, MT + ph, MT + ph);
	int64_t days = (int64_t)r->n * r->bucket / DAY_NS + 1, step = (days + 11) / 12, k = 0;
	for (size_t i = 0; i < r->n; i++) {
		int64_t t = r->origin + (int64_t)i * r->bucket;
		if (t % DAY_NS)
			continue;
		if (k++ % step)
			continue;
		time_t sec = (time_t)(t / 1000000000);
		struct tm tm;
		char d[16];
		gmtime_r(&sec, &tm);
		/* the year too once the period may span two */
		strftime(d, sizeof d, days > 180 ? "%Y-%m-%d" : "%m-%d", &tm);
		double x = ML + bw * (double)i;
		fprintf(f,
			"<line class=\"axis\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			x, x, MT + ph, MT + ph + 4, x, CH - 6, d);
	}
	char per[32];
	if (r->bucket < DAY_NS)
		snprintf(per, sizeof per, "hour");
	else if (r->bucket == DAY_NS)
		snprintf(per, sizeof per, "day");
	else
		snprintf(per, sizeof per, "%lld days", (long long)(r->bucket / DAY_NS));
	fprintf(f, "</svg>\n<p>One bar per %s (UTC).</p>\n</section>\n", per);
}

static void section_charts(struct report *r)
{
	struct series s[NCLASS];
	int64_t den = 0;
	for (int c = 0; c < NCLASS; c++)
		s[c] = (struct series){class_names[c],
				       c == C_OTHER ? "unclassified" : class_names[c], r->opens[c],
				       r->class_total[c]};
	chart(r, "opens-chart", r->bucket == HOUR_NS ? "Opens per hour by class" : "Opens by class",
	      s, NCLASS);
	for (size_t i = 0; i < r->n; i++)
		den += r->denied[i];
	struct series d = {"denied", "denied", r->denied, den};
	chart(r, "denials-chart", "Denials over time", &d, 1);
}

static int top_cb(void *arg, const char *key, int64_t count, int64_t denied)
{
	struct report *r = arg;
	FILE *f = r->f;
	fprintf(f, "<tr><td class=\"n\">%d</td><td class=\"key\">", ++r->rank);
	if (!strcmp(r->section, "top-users")) {
		struct passwd *pw = getpwuid((uid_t)strtoll(key ? key : "", NULL, 10));
		if (pw) {
			put_text(f, pw->pw_name);
			fputs(" (", f);
		}
		put_text(f, key);
		fputs(pw ? ")" : "", f);
	} else if (!strcmp(r->section, "top-denied")) {
		/* key: "PATH<tab>EXE" */
		const char *tab = key ? strchr(key, '\t') : NULL;
		char *path = tab ? strndup(key, (size_t)(tab - key)) : NULL;
		put_text(f, path ? path : key);
		fputs("</td><td class=\"key\">", f);
		put_text(f, tab ? tab + 1 : "");
		free(path);
	} else {
		put_text(f, key ? key : "(none)");
	}
	fprintf(f, "</td><td class=\"n opens\">%lld</td><td class=\"n denied\">%lld</td></tr>\n",
		(long long)count, (long long)denied);
	return ferror(f) ? 1 : 0;
}

static int section_top(struct report *r, enum wfs_audit_stat what, const char *id,
		       const char *title, const char *head)
{
	FILE *f = r->f;
	fprintf(f,
		"<section id=\"%s\">\n<h2>%s</h2>\n<table>\n<tr><th class=\"n\">#</th>%s"
		"<th class=\"n\">opens</th><th class=\"n\">denied</th></tr>\n",
		id, title, head);
	r->section = id;
	r->rank = 0;
	int e = wfs_audit_top(r->db, what, &r->flt, r->o->top, top_cb, r, r->err, sizeof r->err);
	fputs("</table>\n", f);
	if (!r->rank)
		fputs("<p>none</p>\n", f);
	fputs("</section>\n", f);
	return e;
}

static int write_page(struct report *r)
{
	int64_t integrity = 0, breaks = 0;
	int e = load_series(r);
	if (e)
		return e;
	page_head(r);
	e = section_summary(r, &integrity, &breaks);
	if (e)
		return e;
	section_chain(r);
	section_seal(r);
	e = section_rows(r, "integrity", "Integrity errors", "integrity", integrity);
	if (!e)
		e = section_rows(r, "chain-breaks", "Chain-break rows", "chain-break", breaks);
	if (e)
		return e;
	section_charts(r);
	e = section_top(r, WFS_STAT_EXES, "top-programs", "Top programs", "<th>program</th>");
	if (!e)
		e = section_top(r, WFS_STAT_USERS, "top-users", "Top users", "<th>user</th>");
	if (!e)
		e = section_top(r, WFS_STAT_PATHS, "top-paths", "Top paths", "<th>path</th>");
	if (!e)
		e = section_top(r, WFS_STAT_DENIED, "top-denied", "Top denied opens",
				"<th>path</th><th>program</th>");
	if (!e) {
		char now[48];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		wfs_audit_format_time((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, now,
				      sizeof now);
		fprintf(r->f,
			"<footer><p>Made by <code>wardfs audit report</code> at %s.</p>"
			"</footer>\n</body>\n</html>\n",
			now);
	}
	return e;
}

/* fsync of the directory out is in, so that the rename is durable. */
static int sync_dir_of(const char *out)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == out)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int e = fsync(fd);
	close(fd);
	return e;
}

int wfs_report_html(const struct wfs_report_opts *o)
{
	struct report r = {0};
	char tmp[PATH_MAX];
	int status = 1, fd = -1;
	bool made = false;

	if (sodium_init() < 0) {
		error("cannot initialise libsodium");
		return 1;
	}
	r.o = o;
	wfs_audit_filter_init(&r.flt);
	r.flt.since_ns = o->since_ns;
	r.flt.until_ns = o->until_ns;
	if (r.flt.until_ns <= r.flt.since_ns) {
		char t1[48], t2[48];
		wfs_audit_format_time(r.flt.since_ns, t1, sizeof t1);
		wfs_audit_format_time(r.flt.until_ns, t2, sizeof t2);
		error("empty period: from '%s' to '%s'", t1, t2);
		return 1;
	}
	if (wfs_audit_db_open(o->db, false, &r.db, r.err, sizeof r.err)) {
		error("%s", r.err);
		return 1;
	}
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX", o->out) >= sizeof tmp) {
		error("path too long '%s'", o->out);
		goto out;
	}
	/* mkostemp's file is 0600 whatever the umask: the page names paths */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		error_errno("cannot write report '%s'", o->out);
		goto out;
	}
	made = true;
	if (!(r.f = fdopen(fd, "w"))) {
		error_errno("cannot write report '%s'", o->out);
		goto out;
	}
	fd = -1;
	if (write_page(&r)) {
		error("%s", r.err);
		goto out;
	}
	if (fflush(r.f) || ferror(r.f) || fsync(fileno(r.f))) {
		error_errno("cannot write report '%s'", o->out);
		goto out;
	}
	if (fclose(r.f)) {
		r.f = NULL;
		error_errno("cannot write report '%s'", o->out);
		goto out;
	}
	r.f = NULL;
	if (rename(tmp, o->out)) {
		error_errno("cannot write report '%s'", o->out);
		goto out;
	}
	made = false;
	if (sync_dir_of(o->out))
		warning("cannot sync the directory of '%s': %s", o->out, strerror(errno));
	status = 0;
out:
	if (r.f)
		fclose(r.f);
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	for (int c = 0; c < NCLASS; c++)
		free(r.opens[c]);
	free(r.denied);
	wfs_audit_db_close(r.db);
	return status;
}
