/*
 * fuzz_syslog_format.c - libFuzzer target for the RFC 5424 message of a
 * forwarded row (audit/fwd_syslog.c). Paths, program names and details are
 * chosen by users, and the message is parsed by rsyslog and then by
 * whatever the central store feeds: whatever the bytes, the message must be
 * one line of valid UTF-8 whose structured data parses back (RFC 5424
 * section 6.3) into the same parameters, each value being the escaped text
 * wardfs shows (wfs_audit_escape), whole or cut with "...". Input: fields
 * separated by NUL bytes: path, exe, comm, detail, rule, mount, kind.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k = c < 0x80		    ? 1
			   : c >= 0xc2 && c <= 0xdf ? 2
			   : c >= 0xe0 && c <= 0xef ? 3
			   : c >= 0xf0 && c <= 0xf4 ? 4
						    : 0;
		if (!k || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

/* The value as sent, for a parameter given: wfs_audit_escape(s), or its
 * prefix followed by "..." when it was cut. */
static void check_value(const char *sent, size_t n, const char *orig)
{
	if (!orig)
		abort(); /* a parameter for a NULL field */
	char *e = wfs_audit_escape(orig);
	if (!e)
		abort();
	size_t el = strlen(e);
	bool whole = n == el && !memcmp(sent, e, n);
	bool cut =
		n >= 3 && !memcmp(sent + n - 3, "...", 3) && n - 3 < el && !memcmp(sent, e, n - 3);
	free(e);
	if (!whole && !cut)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 8);
	if (!in)
		return 0;
	memcpy(in, data, size);
	memset(in + size, 0, 8);
	/* seven NUL-separated fields; missing ones are NULL */
	const char *f[7] = {0};
	size_t at = 0;
	for (int i = 0; i < 7 && at <= size; i++) {
		f[i] = in + at;
		at += strlen(in + at) + 1;
	}
	struct wfs_audit_row r = {
		.id = 12345,
		.time_ns = 1764916110123456789LL,
		.path = f[0],
		.exe = f[1],
		.comm = f[2],
		.detail = f[3],
		.rule = f[4],
		.mount = f[5],
		.kind = f[6],
		.decision = "allow",
		.uid = 1000,
	};
	struct aud_buf b = {0};
	struct aud_fwd_row row = {.r = &r, .chain = "", .db_id = "d"};
	if (aud_fwd_syslog_format(&b, &row, "host", 1)) {
		aud_buf_free(&b);
		free(in);
		return 0;
	}
	const char *m = (const char *)b.p;
	size_t len = b.len;
	if (strlen(m) != len || memchr(m, '\n', len) || memchr(m, '\r', len) ||
	    !valid_utf8(b.p, len))
		abort();

	/* The structured data: [wardfs@32473 NAME="VALUE" ...] */
	const char *sd = strstr(m, " [" WFS_FWD_SD_ID " ");
	if (!sd)
		abort();
	const char *p = sd + 2 + strlen(WFS_FWD_SD_ID);
	char *val = malloc(len + 1);
	if (!val)
		abort();
	while (*p == ' ') {
		p++;
		const char *eq = strchr(p, '=');
		if (!eq || eq[1] != '"' || eq - p > 32)
			abort();
		char name[40];
		memcpy(name, p, (size_t)(eq - p));
		name[eq - p] = 0;
		for (char *c = name; *c; c++)
			if (*c <= 32 || *c >= 127 || *c == ']' || *c == '"')
				abort();
		p = eq + 2;
		size_t n = 0;
		for (;; p++) {
			if (!*p)
				abort(); /* the value never ended */
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == ']')) {
				val[n++] = *++p;
				continue;
			}
			if (*p == '"')
				break;
			if (*p == ']')
				abort(); /* RFC 5424: must be escaped in a value */
			val[n++] = *p;
		}
		p++;
		val[n] = 0;
		const char *orig = !strcmp(name, "path")     ? r.path
				   : !strcmp(name, "exe")    ? r.exe
				   : !strcmp(name, "comm")   ? r.comm
				   : !strcmp(name, "detail") ? r.detail
				   : !strcmp(name, "rule")   ? r.rule
				   : !strcmp(name, "mount")  ? r.mount
				   : !strcmp(name, "kind")   ? r.kind
							     : NULL;
		if (orig)
			check_value(val, n, orig);
	}
	if (*p != ']' || p[1] != ' ')
		abort(); /* the element ends where wardfs ended it */
	free(val);
	aud_buf_free(&b);
	free(in);
	return 0;
}
