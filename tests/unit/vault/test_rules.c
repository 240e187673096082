/*
 * test_rules.c - the rules the vault library holds once for the CLI (and,
 * later, the daemon): which form a file's class wants, migrate's temp
 * names, the walk's enter() filter and its paths past PATH_MAX, and the
 * policy loader's fallback to the built-in default only when no file was
 * named.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "helpers.h"
#include "vault.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	test_tmpdir_make(root, "rules");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_tmpdir_remove(root);
	return 0;
}

static void test_form_fix(void **state)
{
	(void)state;
	assert_int_equal(wfs_vault_form_fix(WFS_SENSITIVE, WFS_FORM_PLAIN), WFS_FIX_ENCRYPT);
	assert_int_equal(wfs_vault_form_fix(WFS_SENSITIVE, WFS_FORM_ENCRYPTED), WFS_FIX_NONE);
	assert_int_equal(wfs_vault_form_fix(WFS_SENSITIVE, WFS_FORM_EMPTY), WFS_FIX_NONE);
	assert_int_equal(wfs_vault_form_fix(WFS_PUBLIC, WFS_FORM_ENCRYPTED), WFS_FIX_DECRYPT);
	assert_int_equal(wfs_vault_form_fix(WFS_DENY, WFS_FORM_ENCRYPTED), WFS_FIX_DECRYPT);
	assert_int_equal(wfs_vault_form_fix(WFS_PUBLIC, WFS_FORM_PLAIN), WFS_FIX_NONE);
	assert_int_equal(wfs_vault_form_fix(WFS_DENY, WFS_FORM_EMPTY), WFS_FIX_NONE);
}

static void test_migrate_temp(void **state)
{
	(void)state;
	assert_true(wfs_is_migrate_temp(".a.wardfs-migrate"));
	assert_false(wfs_is_migrate_temp(".wardfs-migrate"));
	assert_false(wfs_is_migrate_temp("a.wardfs-migrate"));
	assert_false(wfs_is_migrate_temp(".a.wardfs-migrate.x"));
}

struct seen {
	unsigned files, entered;
	size_t longest;
};

static int count(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct seen *s = arg;

	(void)dfd, (void)name, (void)st;
	s->files++;
	if (strlen(rel) > s->longest)
		s->longest = strlen(rel);
	return 0;
}

static bool not_skip(void *arg, const char *rel)
{
	struct seen *s = arg;

	s->entered++;
	return strcmp(rel, "/skip") != 0;
}

static void put(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	close(fd);
}

static void test_walk_enter_and_depth(void **state)
{
	char name[201];
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	assert_true(dfd >= 0);
	assert_int_equal(mkdirat(dfd, "skip", 0700), 0);
	int sub = openat(dfd, "skip", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	put(sub, "hidden");
	close(sub);
	/* a tree deeper than PATH_MAX, reached by relative names */
	memset(name, 'd', 200);
	name[200] = '\0';
	int cur = dup(dfd);
	for (int i = 0; i < 25; i++) {
		assert_int_equal(mkdirat(cur, name, 0700), 0);
		int next = openat(cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		close(cur);
		cur = next;
	}
	put(cur, "deep");
	close(cur);
	close(dfd);

	struct seen s = {0};
	struct wfs_walk w = {.file = count, .enter = not_skip, .arg = &s};
	assert_int_equal(wfs_walk(root, &w), 0);
	assert_int_equal(w.errors, 0);
	assert_int_equal(s.files, 1); /* deep, not skip/hidden */
	assert_int_equal(s.entered, 26);
	assert_true(s.longest > PATH_MAX);
}

static void test_policy_fallback(void **state)
{
	char path[128];
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	bool builtin = true;

	(void)state;
	/* a named file that is missing is an error, never "everything public" */
	snprintf(path, sizeof(path), "%s/no-such-policy", root);
	assert_int_equal(wfs_vault_open_policy(path, 0, &p, &d, &builtin), -ENOENT);
	assert_null(p);
	assert_false(builtin);
	assert_true(d.nerrors > 0);
	wfs_policy_diags_free(&d);
	/* a file with errors */
	snprintf(path, sizeof(path), "%s/bad", root);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("default public\nsecret /x\n", f);
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(wfs_vault_open_policy(path, 0, &p, &d, &builtin), -EINVAL);
	assert_null(p);
	wfs_policy_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_fix),
		cmocka_unit_test(test_migrate_temp),
		cmocka_unit_test(test_walk_enter_and_depth),
		cmocka_unit_test(test_policy_fallback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
