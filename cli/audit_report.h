/*
 * audit_report.h - `wardfs audit report --html FILE`: the weekly review's
 * self-contained HTML page over an audit database (audit_report.c).
 */
#ifndef WARDFS_AUDIT_REPORT_H
#define WARDFS_AUDIT_REPORT_H

#include <stdint.h>

struct wfs_report_opts {
	const char *db;		    /* the audit database */
	const char *key;	    /* its chain key for verify; NULL: DB.key */
	const char *out;	    /* the page, written atomically, mode 0600 */
	int64_t since_ns, until_ns; /* the period [since, until) */
	int top;		    /* rows of each top table */
};

/* Writes the page: 0, or 1 after an error message (nothing is left at
 * out, and an older page there stays as it was). A broken or uncheckable
 * chain is shown in the page and warned about, not an error. */
int wfs_report_html(const struct wfs_report_opts *o);

#endif
