/*
 * diag.c - policy diagnostics: collecting located errors, warnings and notes,
 * formatting them git/gcc style ("FILE:LINE:COL: error: MSG").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void push(struct wfs_policy_diags *d, const struct wfs_policy_diag *x)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct wfs_policy_diag *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = *x;
	if (x->is_error)
		d->nerrors++;
}

static void vdiag(struct pol_diagsink *s, bool is_error, bool is_note, const char *file,
		  unsigned line, unsigned col, const char *fmt, va_list ap)
	__attribute__((format(printf, 7, 0)));
static void vdiag(struct pol_diagsink *s, bool is_error, bool is_note, const char *file,
		  unsigned line, unsigned col, const char *fmt, va_list ap)
{
	if (is_error)
		s->nerrors++;
	if (s->stopped)
		return;
	struct wfs_policy_diag x;
	memset(&x, 0, sizeof(x));
	x.is_error = is_error;
	x.is_note = is_note;
	snprintf(x.file, sizeof(x.file), "%s", file ? file : "");
	x.line = line;
	x.col = col;
	if (++s->ntotal > POL_MAX_DIAGS) {
		s->stopped = true;
		x.is_error = true;
		x.is_note = false;
		snprintf(x.msg, sizeof(x.msg), "too many diagnostics; stopping");
	} else {
		vsnprintf(x.msg, sizeof(x.msg), fmt, ap);
	}
	if (s->d)
		push(s->d, &x);
}

void pol_diag(struct pol_diagsink *s, bool is_error, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(s, is_error, false, file, line, col, fmt, ap);
	va_end(ap);
}

void pol_note(struct pol_diagsink *s, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdiag(s, false, true, file, line, col, fmt, ap);
	va_end(ap);
}

void wfs_policy_diags_free(struct wfs_policy_diags *d)
{
	if (!d)
		return;
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void wfs_policy_diag_format(const struct wfs_policy_diag *d, char *buf, size_t len)
{
	const char *kind = d->is_error ? "error" : d->is_note ? "note" : "warning";
	if (d->line)
		snprintf(buf, len, "%s:%u:%u: %s: %s", d->file, d->line, d->col, kind, d->msg);
	else
		snprintf(buf, len, "%s: %s: %s", d->file, kind, d->msg);
}
