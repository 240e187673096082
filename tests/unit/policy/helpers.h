/*
 * helpers.h - shared helpers of the policy unit tests: parse a policy from
 * a string (asserting success or failure) and classify paths.
 */
#ifndef WFS_POLICY_TEST_HELPERS_H
#define WFS_POLICY_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

static inline void dump_diags(const struct wfs_policy_diags *d)
{
	char b[1200];
	for (size_t i = 0; i < d->n; i++) {
		wfs_policy_diag_format(&d->v[i], b, sizeof(b));
		fprintf(stderr, "  %s\n", b);
	}
}

/* Parses src (no includes) and asserts it is valid. */
static inline struct wfs_policy *parse_ok(const char *src)
{
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	int rc = wfs_policy_parse_buffer("policy", src, strlen(src), WFS_POLICY_NO_INCLUDE, &p, &d);
	if (rc)
		dump_diags(&d);
	assert_int_equal(rc, 0);
	assert_non_null(p);
	wfs_policy_diags_free(&d);
	return p;
}

/* Parses src, expecting failure; returns the diagnostics. */
static inline struct wfs_policy_diags parse_bad(const char *src, size_t len)
{
	struct wfs_policy *p = (struct wfs_policy *)1;
	struct wfs_policy_diags d = {0};
	int rc = wfs_policy_parse_buffer("policy", src, len, WFS_POLICY_NO_INCLUDE, &p, &d);
	assert_int_equal(rc, -1);
	assert_null(p);
	assert_true(d.nerrors >= 1);
	return d;
}

static inline enum wfs_class cls(const struct wfs_policy *p, const char *path)
{
	struct wfs_decision d;
	wfs_policy_classify(p, path, strlen(path), &d);
	return d.cls;
}

/* Line of the deciding rule, 0 for the default. */
static inline unsigned rule_line(const struct wfs_policy *p, const char *path)
{
	struct wfs_decision d;
	wfs_policy_classify(p, path, strlen(path), &d);
	return d.file ? d.line : 0;
}

/* True when a one-rule policy "sensitive PATTERN" makes path sensitive. */
static inline bool matches(const char *pattern, const char *path)
{
	char src[512];
	snprintf(src, sizeof(src), "sensitive %s\n", pattern);
	struct wfs_policy *p = parse_ok(src);
	bool m = cls(p, path) == WFS_SENSITIVE;
	wfs_policy_free(p);
	return m;
}

/* Asserts there is a diagnostic with this exact formatted text. */
static inline void assert_diag(const struct wfs_policy_diags *d, const char *want)
{
	char b[1200];
	for (size_t i = 0; i < d->n; i++) {
		wfs_policy_diag_format(&d->v[i], b, sizeof(b));
		if (!strcmp(b, want))
			return;
	}
	fprintf(stderr, "wanted: %s\ngot:\n", want);
	dump_diags(d);
	fail();
}

/* Asserts the first diagnostic is an error at line:col containing text. */
static inline void assert_first_error(const struct wfs_policy_diags *d, unsigned line, unsigned col,
				      const char *text)
{
	assert_true(d->n >= 1);
	if (!d->v[0].is_error || d->v[0].line != line || d->v[0].col != col ||
	    !strstr(d->v[0].msg, text)) {
		fprintf(stderr, "wanted error at %u:%u containing '%s', got:\n", line, col, text);
		dump_diags(d);
		fail();
	}
}

#endif
