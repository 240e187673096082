/*
 * test_load.c - loading policy files: includes (relative, glob, nested,
 * missing, cycles, directories), sshd-style ownership checks, the missing
 * top-level file and the SHA-256 over all loaded sources.
 */
#include "helpers.h"
#include "internal.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/wfs-policy-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static const char *path_of(const char *name)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void put(const char *name, const char *text)
{
	const char *p = path_of(name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, 0644);
}

static struct wfs_policy *load_ok(const char *name, unsigned flags)
{
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	int rc = wfs_policy_load(path_of(name), flags, &p, &d);
	if (rc)
		dump_diags(&d);
	assert_int_equal(rc, 0);
	wfs_policy_diags_free(&d);
	return p;
}

static struct wfs_policy_diags load_bad(const char *name, unsigned flags, int want_rc)
{
	struct wfs_policy *p = (struct wfs_policy *)1;
	struct wfs_policy_diags d = {0};
	int rc = wfs_policy_load(path_of(name), flags, &p, &d);
	assert_int_equal(rc, want_rc);
	assert_null(p);
	assert_true(d.nerrors >= 1);
	return d;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static void sha_of(const char *text, char hex[65])
{
	struct pol_sha256 s;
	uint8_t dg[32];
	pol_sha256_init(&s);
	pol_sha256_update(&s, text, strlen(text));
	pol_sha256_final(&s, dg);
	pol_sha256_hex(dg, hex);
}

static void test_load_basic(void **state)
{
	(void)state;
	put("policy", "default public\nsensitive /.ssh/**\n");
	struct wfs_policy *p = load_ok("policy", 0);
	assert_int_equal(wfs_policy_rule_count(p), 1);
	assert_string_equal(wfs_policy_path(p), path_of("policy"));
	assert_string_equal(wfs_policy_sha256(p),
			    "327eaf119e1712ecbbbb339dc99b2e1d43e7db0ba955cbf85cadb43c527db75c");
	struct wfs_decision d;
	wfs_policy_classify(p, "/.ssh/k", 7, &d);
	assert_string_equal(d.file, path_of("policy"));
	assert_int_equal(d.line, 2);
	wfs_policy_free(p);
}

static void test_missing_and_directory(void **state)
{
	(void)state;
	struct wfs_policy_diags d = load_bad("absent", 0, -ENOENT);
	char want[600];
	snprintf(want, sizeof(want), "%s: error: cannot open policy: no such file or directory",
		 path_of("absent"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);

	mkdir(path_of("adir"), 0755);
	d = load_bad("adir", 0, -1);
	snprintf(want, sizeof(want), "%s: error: '%s' is a directory; expected a policy file",
		 path_of("adir"), path_of("adir"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);
}

static void test_relative_nested_include(void **state)
{
	(void)state;
	const char *main_t = "sensitive /a\ninclude sub/extra.conf\npublic /c\n";
	const char *extra_t = "public /a\nsensitive /c\ninclude more.conf\n";
	const char *more_t = "deny /d\n";
	mkdir(path_of("sub"), 0755);
	put("main", main_t);
	put("sub/extra.conf", extra_t);
	put("sub/more.conf", more_t);
	struct wfs_policy *p = load_ok("main", 0);
	assert_int_equal(wfs_policy_rule_count(p), 5);
	assert_int_equal(cls(p, "/a"), WFS_PUBLIC); /* included rule comes after line 1 */
	assert_int_equal(cls(p, "/c"), WFS_PUBLIC); /* line 3 of main comes after the include */
	assert_int_equal(cls(p, "/d"), WFS_DENY);
	struct wfs_decision d;
	wfs_policy_classify(p, "/d", 2, &d);
	assert_true(ends_with(d.file, "/sub/more.conf"));
	assert_int_equal(d.line, 1);
	wfs_policy_classify(p, "/a", 2, &d);
	assert_true(ends_with(d.file, "/sub/extra.conf"));
	/* hash: all files in load order */
	char all[256], hex[65];
	snprintf(all, sizeof(all), "%s%s%s", main_t, extra_t, more_t);
	sha_of(all, hex);
	assert_string_equal(wfs_policy_sha256(p), hex);
	wfs_policy_free(p);
}

/* What the daemon watches: every file read, and each directory a glob
 * lists (even one that matches nothing yet), each once. */
static void test_sources(void **state)
{
	(void)state;
	mkdir(path_of("conf.d"), 0755);
	mkdir(path_of("sub"), 0755);
	put("conf.d/a.conf", "sensitive /x\n");
	put("conf.d/b.conf", "include ../sub/one.conf\n");
	put("sub/one.conf", "deny /d\n");
	put("main", "include conf.d/*.conf\ninclude empty.d/*.conf\ninclude conf.d/*.conf\n");
	struct wfs_policy *p = load_ok("main", 0);
	const struct wfs_policy_source *src;
	size_t n = wfs_policy_sources(p, &src);
	const char *want[][2] = {
		{"main", "f"},
		{"conf.d", "d"},
		{"conf.d/a.conf", "f"},
		{"conf.d/b.conf", "f"},
		{"conf.d/../sub/one.conf", "f"},
		{"empty.d", "d"},
	};
	assert_int_equal(n, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(src[i].path, path_of(want[i][0]));
		assert_int_equal(src[i].is_dir, want[i][1][0] == 'd');
	}
	wfs_policy_free(p);
}

static void test_glob_include_sorted(void **state)
{
	(void)state;
	mkdir(path_of("conf.d"), 0755);
	put("conf.d/b.conf", "public /x\n");
	put("conf.d/a.conf", "sensitive /x\nsensitive /y\n");
	put("conf.d/c.other", "deny /x\n");
	put("main", "include conf.d/*.conf\ninclude nothing-here/*.conf\n");
	struct wfs_policy *p = load_ok("main", 0);
	assert_int_equal(wfs_policy_rule_count(p), 3);
	assert_int_equal(cls(p, "/x"), WFS_PUBLIC); /* b.conf sorts after a.conf */
	assert_int_equal(cls(p, "/y"), WFS_SENSITIVE);
	struct wfs_decision d;
	wfs_policy_classify(p, "/x", 2, &d);
	assert_true(ends_with(d.file, "/conf.d/b.conf"));
	wfs_policy_free(p);

	/* absolute include */
	char t[600];
	snprintf(t, sizeof(t), "include %s/conf.d/c.other\n", dir);
	put("abs", t);
	p = load_ok("abs", 0);
	assert_int_equal(cls(p, "/x"), WFS_DENY);
	wfs_policy_free(p);
}

static void test_missing_include(void **state)
{
	(void)state;
	put("main", "public /a\ninclude  nope.conf\npublic /b\n");
	struct wfs_policy_diags d = load_bad("main", 0, -1);
	char want[800];
	snprintf(want, sizeof(want),
		 "%s:2:10: error: missing include '%s': no such file; expected an existing "
		 "file or a glob",
		 path_of("main"), path_of("nope.conf"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);
}

static void test_include_cycle(void **state)
{
	(void)state;
	put("a", "public /a\ninclude b\n");
	put("b", "public /b\n\ninclude a\n");
	struct wfs_policy_diags d = load_bad("a", 0, -1);
	char want[1200];
	snprintf(want, sizeof(want),
		 "%s:3:9: error: include cycle: %s -> %s -> %s; expected includes that do "
		 "not lead back to an including file",
		 path_of("b"), path_of("a"), path_of("b"), path_of("a"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);

	put("self", "include self\n");
	d = load_bad("self", 0, -1);
	assert_first_error(&d, 1, 9, "include cycle");
	wfs_policy_diags_free(&d);

	/* the same file twice, not nested, is not a cycle */
	put("leaf", "public /leaf\n");
	put("twice", "include leaf\ninclude leaf\n");
	struct wfs_policy *p = load_ok("twice", 0);
	assert_int_equal(wfs_policy_rule_count(p), 2);
	wfs_policy_free(p);
}

static void test_include_directory(void **state)
{
	(void)state;
	mkdir(path_of("d"), 0755);
	put("main", "include d\n");
	struct wfs_policy_diags d = load_bad("main", 0, -1);
	assert_first_error(&d, 1, 9, "is a directory; expected a policy file");
	wfs_policy_diags_free(&d);
}

static void test_strict_owner(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	put("policy", "sensitive /x\ninclude inc\n");
	put("inc", "public /y\n");
	struct wfs_policy *p = load_ok("policy", WFS_POLICY_STRICT_OWNER);
	wfs_policy_free(p);

	char want[800];
	chmod(path_of("policy"), 0664);
	struct wfs_policy_diags d = load_bad("policy", WFS_POLICY_STRICT_OWNER, -1);
	snprintf(want, sizeof(want),
		 "%s: error: refusing '%s': writable by group (mode 0664); expected a file "
		 "only root can write, such as mode 0644",
		 path_of("policy"), path_of("policy"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);
	/* without the flag the same file loads */
	p = load_ok("policy", 0);
	wfs_policy_free(p);

	chmod(path_of("policy"), 0646);
	d = load_bad("policy", WFS_POLICY_STRICT_OWNER, -1);
	assert_true(strstr(d.v[0].msg, "writable by others (mode 0646)") != NULL);
	wfs_policy_diags_free(&d);

	chmod(path_of("policy"), 0644);
	assert_int_equal(chown(path_of("policy"), 1000, 0), 0);
	d = load_bad("policy", WFS_POLICY_STRICT_OWNER, -1);
	snprintf(want, sizeof(want),
		 "%s: error: refusing '%s': owned by uid 1000; expected a file owned by root",
		 path_of("policy"), path_of("policy"));
	assert_diag(&d, want);
	wfs_policy_diags_free(&d);
	assert_int_equal(chown(path_of("policy"), 0, 0), 0);

	/* an include is checked too, and reported at the include line */
	chmod(path_of("inc"), 0666);
	d = load_bad("policy", WFS_POLICY_STRICT_OWNER, -1);
	assert_first_error(&d, 2, 9, "writable by group and others (mode 0666)");
	assert_true(strstr(d.v[0].msg, path_of("inc")) != NULL);
	wfs_policy_diags_free(&d);
}

/* Finds the diagnostic whose message contains both texts, or NULL. */
static const struct wfs_policy_diag *find_diag(const struct wfs_policy_diags *d, const char *a,
					       const char *b)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, a) && strstr(d->v[i].msg, b))
			return &d->v[i];
	return NULL;
}

static void put_exe(const char *name, const char *text, mode_t mode)
{
	put(name, text);
	chmod(path_of(name), mode);
}

/* WFS_POLICY_CHECK_EXES: what each allow-exe= program is on this machine. */
static void test_check_exes(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* the programs must be root's, as real ones are */
	chmod(dir, 0755);
	put_exe("script", "#!/usr/bin/python3 -E\nprint(1)\n", 0755);
	put_exe("elf", "\177ELF and the rest", 0755);
	put_exe("noexec", "\177ELF", 0644);
	put_exe("text", "echo hi\n", 0755);
	put_exe("theirs", "\177ELF", 0755);
	assert_int_equal(chown(path_of("theirs"), 1000, 0), 0);
	put_exe("grpw", "\177ELF", 0775);
	assert_int_equal(symlink(path_of("elf"), path_of("link")), 0);
	assert_int_equal(symlink(path_of("gone"), path_of("dangling")), 0);
	assert_int_equal(mkdir(path_of("open"), 0777), 0);
	chmod(path_of("open"), 0777);
	put_exe("open/prog", "\177ELF", 0755);

	/* one rule a line; path_of() has four buffers, so one path at a time */
	static const char *const lines[3][4] = {{"script", "elf", "link"},
						{"noexec", "text", "theirs"},
						{"grpw", "dangling", "missing", "open/prog"}};
	char src[4096];
	size_t n = 0;
	for (int l = 0; l < 3; l++) {
		n += (size_t)snprintf(src + n, sizeof(src) - n,
				      "sensitive /%c allow-exe=", 'a' + l);
		for (int k = 0; k < 4 && lines[l][k]; k++)
			n += (size_t)snprintf(src + n, sizeof(src) - n, "%s%s", k ? "," : "",
					      path_of(lines[l][k]));
		n += (size_t)snprintf(src + n, sizeof(src) - n, "\n");
	}
	put("policy", src);
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	assert_int_equal(wfs_policy_load(path_of("policy"), WFS_POLICY_CHECK_EXES, &p, &d), 0);
	assert_int_equal(d.nerrors, 0); /* never an error: the policy loads */

	const struct wfs_policy_diag *x = find_diag(&d, path_of("script"), "is a script run by");
	assert_non_null(x);
	assert_false(x->is_error || x->is_note);
	assert_int_equal(x->line, 1);
	assert_int_equal(x->col, 24); /* at the path in the list */
	assert_non_null(strstr(x->msg, "'/usr/bin/python3'"));
	assert_non_null(strstr(x->msg, "the caller's executable is the interpreter"));

	char want[1200];
	snprintf(want, sizeof(want), "resolves through a symbolic link to '%s'", path_of("elf"));
	x = find_diag(&d, path_of("link"), want);
	assert_non_null(x);
	assert_true(x->is_note);
	char line[1400];
	wfs_policy_diag_format(x, line, sizeof(line));
	assert_non_null(strstr(line, ":1:"));
	assert_non_null(strstr(line, ": note: allow-exe program '"));

	x = find_diag(&d, path_of("noexec"), "is not executable (mode 0644)");
	assert_true(x && !x->is_note);
	x = find_diag(&d, path_of("text"), "is not an ELF binary");
	assert_true(x && !x->is_note);
	x = find_diag(&d, path_of("theirs"), "is writable by its owner, uid 1000");
	assert_true(x && !x->is_note);
	x = find_diag(&d, path_of("grpw"), "is writable by group 0 (root),");
	assert_true(x && !x->is_note);
	x = find_diag(&d, path_of("dangling"), "resolves to nothing here");
	assert_true(x && x->is_note);
	x = find_diag(&d, path_of("missing"), "does not exist here");
	assert_true(x && x->is_note);
	snprintf(want, sizeof(want), "'%s' is writable by everyone", path_of("open"));
	x = find_diag(&d, path_of("open/prog"), want);
	assert_true(x && !x->is_note);
	/* a good program, named directly, says nothing */
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.v[i].msg, path_of("elf")))
			assert_non_null(strstr(d.v[i].msg, path_of("link")));
	wfs_policy_diags_free(&d);
	wfs_policy_free(p);

	/* without the flag nothing is looked at */
	p = NULL;
	assert_int_equal(wfs_policy_load(path_of("policy"), 0, &p, &d), 0);
	assert_int_equal(d.n, 0);
	wfs_policy_diags_free(&d);
	wfs_policy_free(p);
}

static void test_parse_buffer_include(void **state)
{
	(void)state;
	put("extra", "deny /z\n");
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	const char *src = "public /z\ninclude extra\n";
	/* relative includes resolve against the directory of `name` */
	assert_int_equal(wfs_policy_parse_buffer(path_of("virtual"), src, strlen(src), 0, &p, &d),
			 0);
	assert_int_equal(cls(p, "/z"), WFS_DENY);
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_nested_include, setup, teardown),
		cmocka_unit_test_setup_teardown(test_glob_include_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_include, setup, teardown),
		cmocka_unit_test_setup_teardown(test_include_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_include_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_exes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_buffer_include, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
