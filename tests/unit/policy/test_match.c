/*
 * test_match.c - pattern semantics of the policy language: anchoring,
 * basenames at any depth, "**", wildcards that do not cross '/', character
 * classes, escapes, trailing slashes, last-match-wins, the default,
 * explain order (each_match), allow-* options and option formatting.
 */
#include "helpers.h"

#include <sys/types.h>

static void test_anchored(void **state)
{
	(void)state;
	assert_true(matches("/foo", "/foo"));
	assert_true(matches("/foo", "/foo/bar")); /* a matched directory covers its contents */
	assert_false(matches("/foo", "/a/foo"));
	assert_false(matches("/foo", "/foobar"));
	assert_false(matches("/foo", "/fo"));
	assert_true(matches("/a/b", "/a/b/c"));
	assert_false(matches("/a/b", "/a"));
}

static void test_middle_slash_anchors(void **state)
{
	(void)state;
	assert_true(matches("a/b", "/a/b"));
	assert_false(matches("a/b", "/x/a/b"));
	assert_true(matches("Documents/*.txt", "/Documents/x.txt"));
	assert_false(matches("Documents/*.txt", "/home/Documents/x.txt"));
}

static void test_basename_any_depth(void **state)
{
	(void)state;
	assert_true(matches("foo", "/foo"));
	assert_true(matches("foo", "/a/b/foo"));
	assert_true(matches("foo", "/a/foo/inner"));
	assert_false(matches("foo", "/a/foobar"));
	assert_false(matches("foo", "/a/xfoo"));
	assert_true(matches("*.pem", "/x.pem"));
	assert_true(matches("*.pem", "/deep/er/key.pem"));
	assert_true(matches("*.pem", "/.pem"));
	assert_false(matches("*.pem", "/x.pem.bak"));
	assert_true(matches("id_*", "/.ssh/id_rsa"));
	assert_false(matches("id_*", "/.ssh/xid_rsa"));
	assert_true(matches("*", "/.hidden")); /* no special case for dot files */
	assert_false(matches("*", "/"));
}

static void test_dstar_start(void **state)
{
	(void)state;
	assert_true(matches("**/x", "/x"));
	assert_true(matches("**/x", "/a/b/x"));
	assert_false(matches("**/x", "/a/bx"));
	assert_true(matches("/**/x", "/a/x"));
	assert_true(matches("**/a/b", "/q/a/b"));
	assert_true(matches("**/a/b", "/a/b"));
	assert_false(matches("**/a/b", "/a/q/b"));
}

static void test_dstar_middle(void **state)
{
	(void)state;
	assert_true(matches("/a/**/b", "/a/b"));
	assert_true(matches("/a/**/b", "/a/x/b"));
	assert_true(matches("/a/**/b", "/a/x/y/b"));
	assert_true(matches("/a/**/b", "/a/x/y/b/c"));
	assert_false(matches("/a/**/b", "/b"));
	assert_false(matches("/a/**/b", "/ab"));
	assert_false(matches("/a/**/b", "/a/xb"));
	assert_true(matches("/a/**/b/**/c", "/a/1/b/2/3/c"));
	assert_false(matches("/a/**/b/**/c", "/a/1/c/2/3/b"));
}

static void test_dstar_end(void **state)
{
	(void)state;
	assert_true(matches("/a/**", "/a/x"));
	assert_true(matches("/a/**", "/a/x/y/z"));
	assert_false(matches("/a/**", "/a")); /* gitignore: inside a, not a itself */
	assert_false(matches("/a/**", "/ab"));
	assert_false(matches("/a/**", "/ab/c"));
	assert_true(matches("/**", "/anything"));
	assert_false(matches("/**", "/"));
	assert_true(matches("**", "/x/y"));
}

static void test_dstar_not_whole_component(void **state)
{
	(void)state;
	/* like gitignore, "**" inside a component is an ordinary "*" */
	assert_true(matches("/a**b", "/axyb"));
	assert_false(matches("/a**b", "/ax/yb"));
}

static void test_star_question_do_not_cross_slash(void **state)
{
	(void)state;
	assert_true(matches("/a*c", "/abbbc"));
	assert_true(matches("/a*c", "/ac"));
	assert_false(matches("/a*c", "/ab/c"));
	assert_true(matches("/a?c", "/abc"));
	assert_false(matches("/a?c", "/a/c"));
	assert_false(matches("/a?c", "/ac"));
	assert_false(matches("/d/*.pem", "/d/e/x.pem"));
	assert_true(matches("/d/*.pem", "/d/x.pem"));
	assert_true(matches("/*/x", "/a/x"));
	assert_false(matches("/*/x", "/a/b/x"));
}

static void test_question_utf8(void **state)
{
	(void)state;
	assert_true(matches("/caf?", "/caf\xc3\xa9"));
	assert_false(matches("/caf??", "/caf\xc3\xa9"));
	assert_true(matches("/[\xc3\xa9\xc3\xa8]t\xc3\xa9", "/\xc3\xa8t\xc3\xa9"));
	/* invalid UTF-8 in a path is one byte per '?' */
	assert_true(matches("/a?b", "/a\xffz"
				    "b") == false);
	assert_true(matches("/a?b", "/a\xff"
				    "b"));
}

static void test_char_classes(void **state)
{
	(void)state;
	assert_true(matches("/[abc]x", "/bx"));
	assert_false(matches("/[abc]x", "/dx"));
	assert_true(matches("/[!abc]x", "/dx"));
	assert_false(matches("/[!abc]x", "/ax"));
	assert_true(matches("/[^abc]x", "/dx"));
	assert_false(matches("/[^abc]x", "/cx"));
	assert_true(matches("/f[0-9]", "/f7"));
	assert_false(matches("/f[0-9]", "/fa"));
	assert_true(matches("/[]x]", "/]"));
	assert_true(matches("/[]x]", "/x"));
	assert_true(matches("/[a-]", "/-"));
	assert_true(matches("/v[[:digit:]][[:alpha:]]", "/v1q"));
	assert_false(matches("/v[[:digit:]]", "/vq"));
	assert_true(matches("/[!a]", "/b"));
	assert_false(matches("/[!a]", "/a"));
}

static void test_escapes(void **state)
{
	(void)state;
	assert_true(matches("/a\\*", "/a*"));
	assert_false(matches("/a\\*", "/ab"));
	assert_true(matches("/\\[x]", "/[x]"));
	assert_false(matches("/\\[x]", "/x"));
	assert_true(matches("/a\\ b", "/a b"));
	assert_true(matches("/\\#notes", "/#notes"));
	assert_true(matches("/a\\?", "/a?"));
	assert_false(matches("/a\\?", "/ab"));
	assert_true(matches("/[\\]]", "/]"));
}

static void test_trailing_slash(void **state)
{
	(void)state;
	/* no file types in classify: "dir/" is the directory and all below it */
	assert_true(matches("cache/", "/x/cache"));
	assert_true(matches("cache/", "/x/cache/y/z"));
	assert_false(matches("cache/", "/x/cachex"));
	assert_true(matches("/build/", "/build"));
	assert_true(matches("/build/", "/build/obj/a.o"));
	assert_false(matches("/build/", "/src/build"));
}

static void test_last_match_wins_and_default(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("default sensitive\n"
					"public /src/**\n"
					"sensitive /src/**/*.key\n"
					"deny /src/secret.key\n"
					"public /src/**/*.key   # overrides line 3 only\n");
	assert_int_equal(cls(p, "/other"), WFS_SENSITIVE);
	assert_int_equal(rule_line(p, "/other"), 0);
	assert_int_equal(cls(p, "/"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/src/a.c"), WFS_PUBLIC);
	assert_int_equal(rule_line(p, "/src/a.c"), 2);
	assert_int_equal(cls(p, "/src/x/a.key"), WFS_PUBLIC);
	assert_int_equal(rule_line(p, "/src/x/a.key"), 5);
	assert_int_equal(cls(p, "/src/secret.key"), WFS_PUBLIC);
	assert_int_equal(rule_line(p, "/src/secret.key"), 5);
	wfs_policy_free(p);

	p = parse_ok("sensitive *.pem\npublic /certs/**\n");
	assert_int_equal(cls(p, "/certs/ca.pem"), WFS_PUBLIC);
	assert_int_equal(cls(p, "/x/ca.pem"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/nothing"), WFS_PUBLIC); /* default default */
	wfs_policy_free(p);

	/* the default may come anywhere; it only decides when nothing matches */
	p = parse_ok("public /a\ndefault deny\n");
	assert_int_equal(cls(p, "/a"), WFS_PUBLIC);
	assert_int_equal(cls(p, "/b"), WFS_DENY);
	wfs_policy_free(p);
}

static void test_design_example(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("default public\n"
					"sensitive  /.ssh/**\n"
					"public     /.ssh/*.pub          # later rules win\n"
					"sensitive  *.pem\n"
					"sensitive  /Documents/private/**\n"
					"sensitive  /.aws/credentials    allow-exe=/usr/bin/aws\n"
					"deny       /.netrc\n");
	assert_int_equal(cls(p, "/.ssh/id_ed25519"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/.ssh/id_ed25519.pub"), WFS_PUBLIC);
	assert_int_equal(cls(p, "/.ssh"), WFS_PUBLIC);
	assert_int_equal(cls(p, "/work/tls/server.pem"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/Documents/private/a/b.txt"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/Documents/public.txt"), WFS_PUBLIC);
	assert_int_equal(cls(p, "/.netrc"), WFS_DENY);
	assert_int_equal(cls(p, "/x/.netrc"), WFS_PUBLIC);
	struct wfs_decision d;
	wfs_policy_classify(p, "/.aws/credentials", strlen("/.aws/credentials"), &d);
	assert_int_equal(d.cls, WFS_SENSITIVE);
	assert_non_null(d.opts);
	assert_int_equal(d.line, 6);
	assert_string_equal(d.file, "policy");
	assert_int_equal(d.rule_index, 4);
	char buf[128];
	wfs_rule_opts_format(d.opts, buf, sizeof(buf));
	assert_string_equal(buf, "allow-exe=/usr/bin/aws");
	wfs_policy_classify(p, "/.ssh/id_rsa", strlen("/.ssh/id_rsa"), &d);
	assert_null(d.opts);
	wfs_rule_opts_format(d.opts, buf, sizeof(buf));
	assert_string_equal(buf, "");
	wfs_policy_classify(p, "/tmp/x", 6, &d);
	assert_int_equal(d.rule_index, -1);
	assert_null(d.file);
	wfs_policy_free(p);
}

static void test_classify_uses_len(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("sensitive /a\n");
	struct wfs_decision d;
	/* "/a" is a prefix of the buffer; only len bytes count */
	wfs_policy_classify(p, "/ab", 2, &d);
	assert_int_equal(d.cls, WFS_SENSITIVE);
	wfs_policy_classify(p, "/ab", 3, &d);
	assert_int_equal(d.cls, WFS_PUBLIC);
	wfs_policy_free(p);
}

struct seen {
	unsigned lines[16];
	int n;
};

static void collect(void *arg, const struct wfs_decision *d)
{
	struct seen *s = arg;
	s->lines[s->n++] = d->line;
}

static void test_each_match_order(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("sensitive /.ssh/**\n"
					"public *.pub\n"
					"deny /tmp/**\n"
					"sensitive id_*\n"
					"public /.ssh/id_rsa.pub\n");
	struct seen s = {.n = 0};
	wfs_policy_each_match(p, "/.ssh/id_rsa.pub", collect, &s);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.lines[0], 1);
	assert_int_equal(s.lines[1], 2);
	assert_int_equal(s.lines[2], 4);
	assert_int_equal(s.lines[3], 5);
	s.n = 0;
	wfs_policy_each_match(p, "/nothing", collect, &s);
	assert_int_equal(s.n, 0);
	wfs_policy_free(p);
}

static void test_allows(void **state)
{
	(void)state;
	struct wfs_policy *p =
		parse_ok("sensitive /a allow-exe=/usr/bin/aws,/usr/bin/env\n"
			 "sensitive /u allow-user=root,1000\n"
			 "sensitive /g allow-group=root,4242\n"
			 "sensitive /all allow-exe=/bin/cat allow-user=1000 allow-group=50\n"
			 "public /open\n");
	struct wfs_decision d;
	gid_t sup[] = {7, 4242};
	struct wfs_caller c = {.uid = 1000, .gid = 100, .exe = "/usr/bin/aws"};

	wfs_policy_classify(p, "/a", 2, &d);
	assert_true(wfs_policy_allows(&d, &c));
	c.exe = "/usr/bin/awsx";
	assert_false(wfs_policy_allows(&d, &c));
	c.exe = NULL;
	assert_false(wfs_policy_allows(&d, &c)); /* unknown exe never passes a list */
	c.exe = "/usr/bin/env";
	assert_true(wfs_policy_allows(&d, &c));

	wfs_policy_classify(p, "/u", 2, &d);
	assert_true(wfs_policy_allows(&d, &c));
	c.uid = 0;
	assert_true(wfs_policy_allows(&d, &c)); /* "root" resolved at load time */
	c.uid = 1001;
	assert_false(wfs_policy_allows(&d, &c));

	wfs_policy_classify(p, "/g", 2, &d);
	c.gid = 100;
	assert_false(wfs_policy_allows(&d, &c));
	c.gid = 0;
	assert_true(wfs_policy_allows(&d, &c));
	c.gid = 100;
	c.groups = sup;
	c.ngroups = 2;
	assert_true(wfs_policy_allows(&d, &c)); /* supplementary group */
	c.ngroups = 1;
	assert_false(wfs_policy_allows(&d, &c));

	/* several kinds: every one must hold */
	wfs_policy_classify(p, "/all", 4, &d);
	struct wfs_caller ok = {.uid = 1000, .gid = 50, .exe = "/bin/cat"};
	assert_true(wfs_policy_allows(&d, &ok));
	struct wfs_caller bad = ok;
	bad.exe = "/bin/dd";
	assert_false(wfs_policy_allows(&d, &bad));
	bad = ok;
	bad.uid = 1;
	assert_false(wfs_policy_allows(&d, &bad));
	bad = ok;
	bad.gid = 51;
	assert_false(wfs_policy_allows(&d, &bad));
	char buf[200];
	wfs_rule_opts_format(d.opts, buf, sizeof(buf));
	assert_string_equal(buf, "allow-exe=/bin/cat allow-user=1000 allow-group=50");
	char small[8];
	wfs_rule_opts_format(d.opts, small, sizeof(small));
	assert_string_equal(small, "allow-e");

	wfs_policy_classify(p, "/open", 5, &d);
	assert_null(d.opts);
	assert_true(wfs_policy_allows(&d, &bad));
	wfs_policy_free(p);
}

/* exe_is decides allow-exe= alone; the exe text is not looked at. */
struct exe_probe {
	const char *is; /* the allowed path that names the caller's program */
	int calls;
};

static bool probe_is(void *arg, const char *allowed)
{
	struct exe_probe *e = arg;
	e->calls++;
	return e->is && !strcmp(e->is, allowed);
}

static void test_allows_exe_is(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("sensitive /a allow-exe=/usr/bin/aws,/usr/bin/env\n"
					"sensitive /b allow-exe=/bin/cat allow-user=1000\n"
					"sensitive /u allow-user=1000\n");
	struct wfs_decision d;
	struct exe_probe e = {0};
	/* the text says aws (a bind mount over /usr/bin/aws says so too) */
	struct wfs_caller c = {
		.uid = 1000, .gid = 100, .exe = "/usr/bin/aws", .exe_is = probe_is, .exe_arg = &e};

	wfs_policy_classify(p, "/a", 2, &d);
	assert_false(wfs_policy_allows(&d, &c));
	assert_int_equal(e.calls, 2); /* asked about each allowed path */
	e = (struct exe_probe){.is = "/usr/bin/env"};
	assert_true(wfs_policy_allows(&d, &c));
	c.exe = NULL; /* no text at all: the inode still decides */
	assert_true(wfs_policy_allows(&d, &c));

	wfs_policy_classify(p, "/b", 2, &d);
	e = (struct exe_probe){.is = "/bin/cat"};
	assert_true(wfs_policy_allows(&d, &c));
	c.uid = 1001; /* the program matches, the user does not */
	assert_false(wfs_policy_allows(&d, &c));

	/* a rule without allow-exe never asks */
	wfs_policy_classify(p, "/u", 2, &d);
	c.uid = 1000;
	e = (struct exe_probe){0};
	assert_true(wfs_policy_allows(&d, &c));
	assert_int_equal(e.calls, 0);
	wfs_policy_free(p);
}

static void test_default_policy(void **state)
{
	(void)state;
	struct wfs_policy *p = wfs_policy_default();
	assert_non_null(p);
	assert_int_equal(wfs_policy_rule_count(p), 0);
	assert_string_equal(wfs_policy_path(p), "");
	assert_int_equal(cls(p, "/.ssh/id_rsa"), WFS_PUBLIC);
	assert_string_equal(wfs_policy_sha256(p),
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	wfs_policy_free(p);
	assert_string_equal(wfs_class_name(WFS_PUBLIC), "public");
	assert_string_equal(wfs_class_name(WFS_SENSITIVE), "sensitive");
	assert_string_equal(wfs_class_name(WFS_DENY), "deny");
}

static void test_path_edge_cases(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("sensitive /a/b\nsensitive c\n");
	assert_int_equal(cls(p, "//a//b"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/a/b/"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "a/b"), WFS_SENSITIVE);
	assert_int_equal(cls(p, ""), WFS_PUBLIC);
	assert_int_equal(cls(p, "/x//c"), WFS_SENSITIVE);
	wfs_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anchored),
		cmocka_unit_test(test_middle_slash_anchors),
		cmocka_unit_test(test_basename_any_depth),
		cmocka_unit_test(test_dstar_start),
		cmocka_unit_test(test_dstar_middle),
		cmocka_unit_test(test_dstar_end),
		cmocka_unit_test(test_dstar_not_whole_component),
		cmocka_unit_test(test_star_question_do_not_cross_slash),
		cmocka_unit_test(test_question_utf8),
		cmocka_unit_test(test_char_classes),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_trailing_slash),
		cmocka_unit_test(test_last_match_wins_and_default),
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_classify_uses_len),
		cmocka_unit_test(test_each_match_order),
		cmocka_unit_test(test_allows),
		cmocka_unit_test(test_allows_exe_is),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_path_edge_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
