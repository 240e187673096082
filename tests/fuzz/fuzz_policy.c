/*
 * fuzz_policy.c - libFuzzer target for the policy parser and classifier:
 * parses the input as a policy (includes off) and, when it is valid,
 * classifies paths derived from the input and cross-checks classify
 * against each_match (the deciding rule must be the last match).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct last {
	int idx;
	int n;
};

static void on_match(void *arg, const struct wfs_decision *d)
{
	struct last *l = arg;
	l->idx = d->rule_index;
	l->n++;
}

static void check(const struct wfs_policy *p, const char *path)
{
	struct wfs_decision d;
	wfs_policy_classify(p, path, strlen(path), &d);
	struct last l = {.idx = -1, .n = 0};
	wfs_policy_each_match(p, path, on_match, &l);
	if (l.idx != d.rule_index)
		abort(); /* the index and the plain matcher disagree */
	struct wfs_caller c = {.uid = 1000, .gid = 1000, .exe = "/usr/bin/x"};
	(void)wfs_policy_allows(&d, &c);
	char buf[256];
	wfs_rule_opts_format(d.opts, buf, sizeof(buf));
}

/* libFuzzer calls it; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags diags = {0};
	int rc = wfs_policy_parse_buffer("fuzz", (const char *)data, size, WFS_POLICY_NO_INCLUDE,
					 &p, &diags);
	char line[1200];
	for (size_t i = 0; i < diags.n; i++)
		wfs_policy_diag_format(&diags.v[i], line, sizeof(line));
	wfs_policy_diags_free(&diags);
	if (rc)
		return 0;

	static const char *const fixed[] = {"/", "/.ssh/id_ed25519", "/a/b/c.pem", "/a", ""};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check(p, fixed[i]);
	/* each input line, and each token after the first, as a path */
	char path[512];
	size_t n = 0;
	for (size_t i = 0; i <= size && n < 64; i++) {
		size_t s = i;
		while (i < size && data[i] != '\n' && data[i] != ' ' && data[i] != '\t')
			i++;
		size_t l = i - s;
		if (!l || l >= sizeof(path) - 1)
			continue;
		path[0] = '/';
		memcpy(path + 1, data + s, l);
		path[l + 1] = 0;
		if (memchr(path, 0, l + 1))
			continue;
		check(p, path + (data[s] == '/'));
		n++;
	}
	wfs_policy_free(p);
	return 0;
}
