/*
 * test_decision.c - wfs_decision_same: links and renames need the new
 * name to decide alike, class and allow-* options as sets; and
 * wfs_policy_subtrees_alike, which spares a directory rename its walk.
 */
#include "helpers.h"

static bool same(const struct wfs_policy *p, const char *a, const char *b)
{
	struct wfs_decision x, y;
	wfs_policy_classify(p, a, strlen(a), &x);
	wfs_policy_classify(p, b, strlen(b), &y);
	return wfs_decision_same(&x, &y);
}

static void test_class_and_options(void **state)
{
	(void)state;
	struct wfs_policy *p =
		parse_ok("default public\n"
			 "sensitive /.ssh/**\n"
			 "sensitive /.aws/credentials allow-exe=/usr/bin/aws\n"
			 "sensitive /a allow-exe=/usr/bin/aws,/bin/cat allow-user=0\n"
			 "sensitive /b allow-user=0 allow-exe=/bin/cat,/usr/bin/aws\n"
			 "sensitive /c allow-user=0 allow-exe=/bin/cat\n"
			 "public /d allow-group=0\n"
			 "public /e allow-user=0\n"
			 "deny /f\n");
	assert_true(same(p, "/x", "/y"));		       /* both the default */
	assert_true(same(p, "/.ssh/a", "/.ssh/b/c"));	       /* one rule */
	assert_false(same(p, "/.ssh/a", "/x"));		       /* class */
	assert_false(same(p, "/.aws/credentials", "/.ssh/x")); /* allow-exe shed */
	assert_false(same(p, "/.ssh/x", "/.aws/credentials")); /* and gained */
	assert_true(same(p, "/a", "/b"));		       /* sets, not text */
	assert_false(same(p, "/a", "/c"));		       /* one exe fewer */
	assert_false(same(p, "/d", "/e"));		       /* group vs user */
	assert_false(same(p, "/f", "/x"));		       /* deny */
	wfs_policy_free(p);
}

static const char *const subtree_policy = "default public\n"
					  "sensitive /.ssh/**\n"
					  "public /.ssh/known_hosts\n"
					  "sensitive *.pem\n"
					  "deny **/secret/**\n"
					  "sensitive /a/*/c allow-exe=/bin/cat\n";

static void test_subtrees_alike(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok(subtree_policy);
	assert_true(wfs_policy_subtrees_alike(p, "/src/a", "/src/b"));	 /* no rule below */
	assert_true(wfs_policy_subtrees_alike(p, "/x", "/y/z/w"));	 /* floating rules alike */
	assert_true(wfs_policy_subtrees_alike(p, "/.ssh/a", "/.ssh/b")); /* all below */
	assert_false(wfs_policy_subtrees_alike(p, "/x", "/.ssh"));
	assert_false(wfs_policy_subtrees_alike(p, "/x.pem", "/x"));	 /* a dir named *.pem */
	assert_false(wfs_policy_subtrees_alike(p, "/a/secret", "/a/b")); /* deny below one */
	assert_false(wfs_policy_subtrees_alike(p, "/a/b", "/z/b"));	 /* /a/b/c is a rule */
	assert_false(wfs_policy_subtrees_alike(p, "/.ssh", "/.ssh2"));
	wfs_policy_free(p);
}

/* Whenever the policy says two subtrees are alike, every path below them
 * must decide alike: over all prefixes and suffixes of a small alphabet. */
static void test_subtrees_alike_holds_for_every_file(void **state)
{
	(void)state;
	static const char *const comp[] = {"a", "b", "c", ".ssh", "secret", "k.pem", "known_hosts"};
	enum { NC = sizeof(comp) / sizeof(comp[0]) };
	struct wfs_policy *p = parse_ok(subtree_policy);
	char pre[512][64], a[160], b[160];
	int npre = 0, alike = 0;
	for (int i = 0; i < NC; i++) {
		snprintf(pre[npre++], 64, "/%s", comp[i]);
		for (int j = 0; j < NC; j++) {
			snprintf(pre[npre++], 64, "/%s/%s", comp[i], comp[j]);
			for (int k = 0; k < NC && npre < 512; k += 2)
				snprintf(pre[npre++], 64, "/%s/%s/%s", comp[i], comp[j], comp[k]);
		}
	}
	for (int x = 0; x < npre; x++)
		for (int y = 0; y < npre; y++) {
			if (!wfs_policy_subtrees_alike(p, pre[x], pre[y]))
				continue;
			alike++;
			for (int s = 0; s < npre; s++) {
				strcat(strcpy(a, pre[x]), pre[s]); /* each under 64 bytes */
				strcat(strcpy(b, pre[y]), pre[s]);
				if (!same(p, a, b))
					fail_msg("'%s' and '%s' said alike, but '%s' and '%s' "
						 "differ",
						 pre[x], pre[y], a, b);
			}
		}
	assert_true(alike > npre); /* not only each prefix with itself */
	wfs_policy_free(p);
}

/* A held decision outlives its policy's other owner (a reload in the
 * daemon): its rule's options and file name stay readable until the
 * last reference goes (ASan would report a use after free). */
static void test_held_decision_outlives_the_owner(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("sensitive /a allow-user=0\n");
	struct wfs_decision d;
	wfs_policy_classify(p, "/a", 2, &d);
	assert_ptr_equal(d.policy, p);
	wfs_policy_hold(d.policy);
	wfs_policy_free(p); /* the owner lets go */
	assert_int_equal(d.cls, WFS_SENSITIVE);
	char opts[64];
	wfs_rule_opts_format(d.opts, opts, sizeof(opts));
	assert_string_equal(opts, "allow-user=0");
	assert_string_equal(d.file, "policy");
	wfs_policy_free(d.policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_and_options),
		cmocka_unit_test(test_subtrees_alike),
		cmocka_unit_test(test_subtrees_alike_holds_for_every_file),
		cmocka_unit_test(test_held_decision_outlives_the_owner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
