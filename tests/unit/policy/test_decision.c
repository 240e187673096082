/*
 * test_decision.c - wfs_decision_same: links and renames need the new
 * name to decide alike, class and allow-* options as sets.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_class_and_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
