/*
 * test_policy.c - the policy in force (daemon/fs_policy.c) without a
 * mount: loading and reloading from a file, decisions that keep their
 * policy across a reload (ASan sees a use after free if they do not), a
 * rejected reload that keeps the policy in force, and an inode's cached
 * decision, recomputed once the generation moves.
 */
#include "helpers.h"

#include "fs_policy.h"

/* Writes the policy file the filesystem reads (root's, 0644: the loader
 * refuses others), replacing it as an editor would. */
static void put_policy(struct tfs *t, const char *text)
{
	char path[128], tmp[136];
	snprintf(path, sizeof(path), "%s/policy", t->dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(rename(tmp, path), 0);
}

static char policy_path[128];

static void setup_policy(struct tfs *t, const char *text)
{
	tfs_setup(t, 0, NULL);
	snprintf(policy_path, sizeof(policy_path), "%s/policy", t->dir);
	t->o.policy_path = policy_path;
	t->o.policy_required = true;
	put_policy(t, text);
	assert_int_equal(wfs_fs_reload_policy(t->fs, true), 0);
}

#define V1 "default public\nsensitive /s/**\n"
#define V2 "default public\npublic /s/**\nsensitive /t/**\n"

/* A decision keeps the policy that made it, readable, until it is put,
 * however many reloads come in between. */
static void test_decision_outlives_reload(void **state)
{
	(void)state;
	struct tfs t;
	setup_policy(&t, V1);
	struct wfs_fs *fs = t.fs;
	unsigned gen = atomic_load(&fs->policy_gen);

	struct wfs_decision d1, dpub;
	wfs_classify_path(fs, "/s/key", &d1);
	wfs_classify_path(fs, "/t/key", &dpub);
	assert_int_equal(d1.cls, WFS_SENSITIVE);
	assert_int_equal(dpub.cls, WFS_PUBLIC);
	assert_non_null(d1.file);
	assert_int_equal(d1.line, 2);
	assert_ptr_equal(d1.policy, fs->policy);
	const struct wfs_policy *v1 = fs->policy;

	put_policy(&t, V2);
	assert_int_equal(wfs_fs_reload_policy(fs, false), 0);
	assert_ptr_not_equal(fs->policy, v1);
	assert_int_equal(atomic_load(&fs->policy_gen), gen + 1);
	assert_int_equal(fs->policy_reloads, 1);

	/* the new policy decides now ... */
	struct wfs_decision d2;
	wfs_classify_path(fs, "/s/key", &d2);
	assert_int_equal(d2.cls, WFS_PUBLIC);
	assert_ptr_equal(d2.policy, fs->policy);
	wfs_decision_put(&d2);
	assert_null(d2.policy);

	/* ... and the old decisions still read the old one: its file name,
	 * its rule count (freed memory here is ASan's to see) */
	assert_ptr_equal(d1.policy, v1);
	assert_string_equal(d1.file, policy_path);
	assert_int_equal(wfs_policy_rule_count(d1.policy), 1);
	wfs_decision_put(&d1);
	assert_int_equal(wfs_policy_rule_count(dpub.policy), 1);

	/* one more reload while dpub still holds v1 */
	put_policy(&t, V1);
	assert_int_equal(wfs_fs_reload_policy(fs, false), 0);
	assert_int_equal(wfs_policy_rule_count(dpub.policy), 1);
	wfs_decision_put(&dpub); /* the last of v1: it goes now */

	/* both paths of a rename are judged by one policy */
	struct wfs_decision da, db;
	wfs_classify_paths(fs, "/s/a", "/t/a", &da, &db);
	assert_int_equal(da.cls, WFS_SENSITIVE);
	assert_int_equal(db.cls, WFS_PUBLIC);
	assert_ptr_equal(da.policy, db.policy);
	wfs_decision_put(&da);
	wfs_decision_put(&db);
	assert_false(wfs_paths_decide_alike(fs, "/s/a", "/t/a"));
	assert_true(wfs_paths_decide_alike(fs, "/s/a", "/s/b"));
	tfs_teardown(&t);
}

/* A reload that fails keeps the policy in force and says why. */
static void test_bad_reload_keeps_policy(void **state)
{
	(void)state;
	struct tfs t;
	setup_policy(&t, V1);
	struct wfs_fs *fs = t.fs;
	const struct wfs_policy *p = fs->policy;
	unsigned gen = atomic_load(&fs->policy_gen);

	put_policy(&t, "default public\nsensitive\n"); /* a rule with no pattern */
	assert_int_equal(wfs_fs_reload_policy(fs, false), -EINVAL);
	assert_ptr_equal(fs->policy, p);
	assert_int_equal(atomic_load(&fs->policy_gen), gen);
	assert_true(fs->policy_error[0] != '\0');
	assert_int_equal(fs->policy_reloads, 1);
	struct wfs_decision d;
	wfs_classify_path(fs, "/s/key", &d);
	assert_int_equal(d.cls, WFS_SENSITIVE);
	wfs_decision_put(&d);

	char status[1024];
	wfs_fs_policy_status(fs, status, sizeof(status));
	assert_non_null(strstr(status, policy_path));

	put_policy(&t, V2); /* fixed: the error goes */
	assert_int_equal(wfs_fs_reload_policy(fs, false), 0);
	assert_int_equal(fs->policy_error[0], '\0');
	tfs_teardown(&t);
}

/* An inode's decision is cached by generation: reused while it holds (the
 * path given is not even looked at), made again once a reload or a rename
 * moves it. The cached decision holds its policy too. */
static void test_inode_decision_follows_generation(void **state)
{
	(void)state;
	struct tfs t;
	setup_policy(&t, V1);
	struct wfs_fs *fs = t.fs;
	tfs_mkdir(&t, "s");
	tfs_write(&t, "s/key", "k");
	struct wfs_inode *s = tfs_lookup(&fs->root, "s", NULL);
	struct wfs_inode *n = tfs_lookup(s, "key", NULL);

	struct wfs_decision d;
	wfs_classify(n, "/s/key", &d);
	assert_int_equal(d.cls, WFS_SENSITIVE);
	assert_int_equal(n->cls_gen, atomic_load(&fs->policy_gen));
	wfs_decision_put(&d);
	wfs_classify(n, "/elsewhere", &d); /* cached: same generation */
	assert_int_equal(d.cls, WFS_SENSITIVE);
	wfs_decision_put(&d);

	const struct wfs_policy *v1 = fs->policy;
	put_policy(&t, V2);
	assert_int_equal(wfs_fs_reload_policy(fs, false), 0);
	/* n's cached decision still holds v1 (freed, ASan would see this) */
	assert_ptr_equal(n->dec.policy, v1);
	assert_int_equal(wfs_policy_rule_count(n->dec.policy), 1);
	wfs_classify(n, "/s/key", &d);
	assert_int_equal(d.cls, WFS_PUBLIC);
	assert_ptr_equal(d.policy, fs->policy);
	assert_ptr_equal(n->dec.policy, fs->policy);
	wfs_decision_put(&d);

	/* a rename moves the generation too */
	tfs_mkdir(&t, "t");
	struct wfs_inode *tt = tfs_lookup(&fs->root, "t", NULL);
	assert_int_equal(renameat(t.bfd, "s/key", t.bfd, "t/key"), 0);
	wfs_inode_rename(n, tt, "key", NULL);
	char *path = NULL;
	assert_int_equal(wfs_inode_path(n, &path), 0);
	wfs_classify(n, path, &d);
	free(path);
	assert_int_equal(d.cls, WFS_SENSITIVE);
	wfs_decision_put(&d);

	wfs_inode_forget(n, 1);
	wfs_inode_forget(s, 1);
	wfs_inode_forget(tt, 1);
	tfs_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decision_outlives_reload),
		cmocka_unit_test(test_bad_reload_keeps_policy),
		cmocka_unit_test(test_inode_decision_follows_generation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
