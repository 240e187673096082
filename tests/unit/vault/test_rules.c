/*
 * test_rules.c - the rules the vault library holds once for the CLI (and,
 * later, the daemon): which form a file's class wants, migrate's temp
 * names, the walk's enter() filter and its paths past PATH_MAX, its
 * encrypted names (plaintext paths, wardfs's own files skipped, every
 * name it cannot show reported), and the policy loader's fallback to the
 * built-in default only when no file was named.
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
	return wfs_crypto_init();
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

struct named {
	char paths[8][64];
	int n, issues[8];
	char issue_names[8][64];
	int done;
};

static int named_file(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct named *s = arg;
	(void)dfd, (void)name, (void)st;
	if (s->n < 8)
		snprintf(s->paths[s->n++], 64, "%s", rel);
	return 0;
}

static void named_issue(void *arg, int dfd, const char *dir, const char *bname,
			enum wfs_name_issue what)
{
	struct named *s = arg;
	int i;
	(void)dfd, (void)dir;
	for (i = 0; i < 8 && s->issue_names[i][0]; i++)
		;
	if (i < 8) {
		snprintf(s->issue_names[i], 64, "%.60s", bname);
		s->issues[i] = (int)what + 1;
	}
}

static int named_done(void *arg, int dfd, const char *bname, const char *rel, mode_t type)
{
	struct named *s = arg;
	(void)dfd, (void)bname, (void)rel, (void)type;
	s->done++;
	return 0;
}

/* The issue reported for a name that starts with prefix (0: none). */
static int issue_of(const struct named *s, const char *prefix)
{
	for (int i = 0; i < 8 && s->issue_names[i][0]; i++)
		if (!strncmp(s->issue_names[i], prefix, strlen(prefix)))
			return s->issues[i] - 1;
	return -1;
}

static void test_walk_encrypted_names(void **state)
{
	struct wfs_keys *k = test_keys(7);
	struct wfs_name_enc e;
	uint8_t id[WFS_DIRID_LEN];
	char dir[128];
	(void)state;
	snprintf(dir, sizeof dir, "%s/names", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(wfs_dirid_create(dfd, id), 0);
	/* a short name, a long one with its sidecar, an escaped plain one */
	assert_int_equal(wfs_name_encrypt(k, id, "letter.pdf", 10, &e), 0);
	put(dfd, e.name);
	char longname[200];
	memset(longname, 'L', 199);
	longname[199] = '\0';
	assert_int_equal(wfs_name_encrypt(k, id, longname, 199, &e), 0);
	assert_true(e.is_long);
	assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0);
	put(dfd, e.name);
	put(dfd, "wfs~pplain");
	/* an orphan sidecar, a name of another directory, a leftover temp */
	uint8_t other[WFS_DIRID_LEN] = {1};
	assert_int_equal(wfs_name_encrypt(k, other, "elsewhere", 9, &e), 0);
	put(dfd, e.name);
	assert_int_equal(wfs_name_encrypt(k, id, longname + 1, 198, &e), 0);
	assert_int_equal(wfs_name_sidecar_write(dfd, &e), 0);
	put(dfd, "wfs~t0123456789abcdef");
	close(dfd);

	struct named s = {0};
	struct wfs_walk w = {.file = named_file,
			     .names_keys = k,
			     .name_issue = named_issue,
			     .entry_done = named_done,
			     .arg = &s};
	char top[128];
	snprintf(top, sizeof top, "%s", dir);
	assert_int_equal(wfs_walk(top, &w), 0);
	assert_int_equal(w.errors, 0);
	assert_int_equal(s.n, 3);
	bool letter = false, plain = false, lng = false;
	for (int i = 0; i < s.n; i++) {
		letter |= !strcmp(s.paths[i], "/letter.pdf");
		plain |= !strcmp(s.paths[i], "/wfs~plain");
		lng |= !strncmp(s.paths[i], "/LLLL", 5);
	}
	assert_true(letter && plain && lng);
	assert_int_equal(s.done, 3);
	assert_int_equal(issue_of(&s, "wfs~n"), WFS_NAME_ORPHAN_SIDECAR);
	assert_int_equal(issue_of(&s, "wfs~e"), WFS_NAME_UNREADABLE);
	assert_int_equal(issue_of(&s, "wfs~t"), WFS_NAME_TEMP);
	wfs_keys_free(k);
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
		cmocka_unit_test(test_walk_encrypted_names),
		cmocka_unit_test(test_policy_fallback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
