/*
 * test_diff.c - differential test: a naive reference matcher, written
 * here from the documented semantics on top of fnmatch(3), against the
 * compiled classifier, over many generated rules and paths (fixed seed).
 *
 * Reference semantics: strip a trailing '/'; a leading '/' or a '/' in the
 * middle anchors, otherwise the pattern is "**" + "/" + pattern; split into
 * components; "**" matches zero or more components (one or more when it is
 * last); other components match one path component with fnmatch(3), flags
 * 0; a rule matches a path when it matches the path or one of its leading
 * directories. The last matching rule decides.
 */
#include "helpers.h"

#include <fnmatch.h>
#include <stdlib.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

#define MAXC 16

struct ref_rule {
	char comps[MAXC][32];
	int n;
};

static void ref_compile(const char *pat, struct ref_rule *r)
{
	char buf[256];
	size_t l = strnlen(pat, sizeof(buf) - 1);
	memcpy(buf, pat, l);
	buf[l] = '\0';
	while (l && buf[l - 1] == '/')
		buf[--l] = 0;
	bool anchored = buf[0] == '/' || strchr(buf, '/') != NULL;
	r->n = 0;
	if (!anchored)
		strcpy(r->comps[r->n++], "**");
	for (char *save, *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
		snprintf(r->comps[r->n++], sizeof(r->comps[0]), "%s", tok);
}

static bool ref_exact(char (*pc)[32], int np, char **tc, int nt)
{
	if (np == 0)
		return nt == 0;
	if (!strcmp(pc[0], "**")) {
		if (np == 1)
			return nt >= 1;
		for (int k = 0; k <= nt; k++)
			if (ref_exact(pc + 1, np - 1, tc + k, nt - k))
				return true;
		return false;
	}
	return nt > 0 && fnmatch(pc[0], tc[0], 0) == 0 && ref_exact(pc + 1, np - 1, tc + 1, nt - 1);
}

static bool ref_match(struct ref_rule *r, const char *path)
{
	char buf[256], *tc[MAXC];
	int nt = 0;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save, *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
		tc[nt++] = tok;
	for (int l = 1; l <= nt; l++)
		if (ref_exact(r->comps, r->n, tc, l))
			return true;
	return false;
}

static const char *const pool[] = {
	"a",	"b",   "ab",	"ba",	  "abc", "*",	 "?",	 "a*",	 "*b",	  "[ab]", "[!a]",
	"[^b]", "**",  "**",	"*.x",	  "a.x", "a*.x", "*a.x", "ab*",	 "a?c",	  "\\*",  "x*y",
	".x",	"*c*", "[a-c]", "[a-c]*", "?.x", "b**",	 "c",	 "[]a]", "*abc*", "?bca", "*ab?c",
};

static void gen_pattern(char *out, size_t n)
{
	size_t o = 0;
	int nc = 1 + (int)rnd(3);
	if (rnd(2))
		out[o++] = '/';
	for (int i = 0; i < nc; i++) {
		o += (size_t)snprintf(out + o, n - o, "%s%s", i ? "/" : "",
				      pool[rnd(sizeof(pool) / sizeof(pool[0]))]);
	}
	if (rnd(5) == 0)
		out[o++] = '/';
	out[o] = 0;
}

static void gen_path(char *out, size_t n)
{
	static const char alpha[] = "abcx.*]";
	size_t o = 0;
	int depth = 1 + (int)rnd(5);
	for (int i = 0; i < depth && o + 6 < n; i++) {
		out[o++] = '/';
		int l = 1 + (int)rnd(4);
		for (int k = 0; k < l; k++)
			out[o++] = alpha[rnd(sizeof(alpha) - 1)];
	}
	out[o] = 0;
}

struct hits {
	int idx[64];
	int n;
};

static void on_match(void *arg, const struct wfs_decision *d)
{
	struct hits *h = arg;
	h->idx[h->n++] = d->rule_index;
}

static void test_differential(void **state)
{
	(void)state;
	enum { POLICIES = 300, RULES = 40, PATHS = 400 };
	char src[RULES * 64], pats[RULES][64], path[128];
	struct ref_rule ref[RULES];
	long checked = 0, decided = 0;
	for (int pi = 0; pi < POLICIES; pi++) {
		size_t o = 0;
		int nr = 1 + (int)rnd(RULES);
		for (int i = 0; i < nr; i++) {
			gen_pattern(pats[i], sizeof(pats[i]));
			ref_compile(pats[i], &ref[i]);
			o += (size_t)snprintf(src + o, sizeof(src) - o, "%s %s\n",
					      rnd(2) ? "public" : "sensitive", pats[i]);
		}
		struct wfs_policy *p = parse_ok(src);
		for (int k = 0; k < PATHS; k++) {
			gen_path(path, sizeof(path));
			int want = -1;
			struct hits h = {.n = 0};
			for (int i = 0; i < nr; i++)
				if (ref_match(&ref[i], path))
					want = i;
			struct wfs_decision d;
			wfs_policy_classify(p, path, strlen(path), &d);
			if (d.rule_index != want) {
				fprintf(stderr, "path %s: classify says rule %d, reference %d\n%s",
					path, d.rule_index, want, src);
				fail();
			}
			wfs_policy_each_match(p, path, on_match, &h);
			int n = 0;
			for (int i = 0; i < nr; i++) {
				if (!ref_match(&ref[i], path))
					continue;
				if (n >= h.n || h.idx[n] != i) {
					fprintf(stderr,
						"path %s: each_match differs at rule %d (%s)\n",
						path, i, pats[i]);
					fail();
				}
				n++;
			}
			assert_int_equal(n, h.n);
			checked++;
			decided += want >= 0;
		}
		wfs_policy_free(p);
	}
	/* the generator must exercise both outcomes, or the test proves nothing */
	assert_true(decided > checked / 10);
	assert_true(decided < checked - checked / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
