/*
 * test_parse.c - the policy parser's diagnostics: every kind of bad input
 * with its exact line and column, warnings that are not errors, comments,
 * CRLF, and the SHA-256 fingerprint of the source.
 */
#include "helpers.h"
#include "internal.h"

#include <stdlib.h>

static struct wfs_policy_diags bad(const char *src)
{
	return parse_bad(src, strlen(src));
}

static void test_unterminated_bracket(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("default public\n# keys\nsensitive  /x[ab\n");
	assert_diag(&d, "policy:3:14: error: unterminated '[' in pattern; expected ']'");
	wfs_policy_diags_free(&d);
	d = bad("sensitive [!]\n"); /* "]" right after "[!" is a member */
	assert_first_error(&d, 1, 11, "unterminated '['");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /a[[:nope:]]\n");
	assert_first_error(&d, 1, 13, "unknown character class");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /a[x/y]\n");
	assert_first_error(&d, 1, 15, "'/' inside '[...]'");
	wfs_policy_diags_free(&d);
}

static void test_unknown_class_and_option(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("secret /x\n");
	assert_diag(&d, "policy:1:1: error: unknown class 'secret'; expected public, "
			"sensitive, deny, default or include");
	wfs_policy_diags_free(&d);
	d = bad("public /x allow-exe=/bin/a  allow-all=1\n");
	assert_diag(&d, "policy:1:29: error: unknown option 'allow-all=1'; expected "
			"allow-exe=, allow-user= or allow-group=");
	wfs_policy_diags_free(&d);
	d = bad("public /x /y\n"); /* a second pattern is not an option */
	assert_first_error(&d, 1, 11, "unknown option '/y'");
	wfs_policy_diags_free(&d);
	d = bad("default secret\n");
	assert_diag(&d, "policy:1:9: error: unknown class 'secret'; expected public, "
			"sensitive or deny");
	wfs_policy_diags_free(&d);
	d = bad("Public /x\n"); /* keywords are case-sensitive */
	assert_first_error(&d, 1, 1, "unknown class 'Public'");
	wfs_policy_diags_free(&d);
}

static void test_option_values(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("sensitive /x allow-exe\n");
	assert_diag(&d, "policy:1:14: error: option 'allow-exe' needs a value; expected "
			"allow-exe=PATH[,PATH...]");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-user=\n");
	assert_first_error(&d, 1, 14, "option 'allow-user' needs a value");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-group=\n");
	assert_first_error(&d, 1, 14, "option 'allow-group' needs a value");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-exe=/a,,/b\n");
	assert_first_error(&d, 1, 27, "empty value in 'allow-exe' list");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-exe=/a,\n");
	assert_first_error(&d, 1, 27, "empty value");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-exe=/usr/bin/aws,aws\n");
	assert_diag(&d, "policy:1:37: error: allow-exe path 'aws' is not absolute; expected a "
			"path starting with '/'");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-user=root,no-such-user-wfs\n");
	assert_diag(&d, "policy:1:30: error: unknown user 'no-such-user-wfs'; expected a user "
			"name or a numeric uid");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-group=no-such-group-wfs\n");
	assert_first_error(&d, 1, 26, "unknown group 'no-such-group-wfs'");
	wfs_policy_diags_free(&d);
	d = bad("sensitive /x allow-user=4294967295\n"); /* (uid_t)-1 is not a uid */
	assert_first_error(&d, 1, 25, "unknown user");
	wfs_policy_diags_free(&d);
}

static void test_nul_and_utf8(void **state)
{
	(void)state;
	static const char nul[] = "public /a\nsensitive /b\0c\n";
	struct wfs_policy_diags d = parse_bad(nul, sizeof(nul) - 1);
	assert_diag(&d, "policy:2:13: error: nul byte in line; expected text");
	wfs_policy_diags_free(&d);
	d = bad("public /a\n\npublic /caf\xc3\xa9\nsensitive /b\xc3(\n");
	assert_diag(&d, "policy:4:13: error: invalid utf-8 (byte 0xc3); expected utf-8 text");
	assert_int_equal(d.nerrors, 1); /* the valid é on line 3 is fine */
	wfs_policy_diags_free(&d);
	d = bad("public /\xed\xa0\x80\n"); /* an encoded surrogate */
	assert_first_error(&d, 1, 9, "invalid utf-8");
	wfs_policy_diags_free(&d);
	d = bad("public /\xc0\xaf\n"); /* overlong '/' */
	assert_first_error(&d, 1, 9, "invalid utf-8");
	wfs_policy_diags_free(&d);
}

static void test_long_line(void **state)
{
	(void)state;
	size_t n = 1u << 20;
	char *src = malloc(n + 64);
	assert_non_null(src);
	strcpy(src, "public /ok\nsensitive /");
	size_t l = strlen(src);
	memset(src + l, 'a', n);
	strcpy(src + l + n, "\npublic /b\n");
	struct wfs_policy_diags d = parse_bad(src, strlen(src));
	assert_first_error(&d, 2, 4097, "line is too long");
	assert_int_equal(d.nerrors, 1); /* line 3 still parsed, no error */
	wfs_policy_diags_free(&d);
	free(src);

	/* exactly at the limit is fine */
	char *ok = malloc(4096 + 2);
	memset(ok, 'b', 4096);
	memcpy(ok, "public /", 8);
	ok[4096] = '\n';
	ok[4097] = 0;
	struct wfs_policy *p = parse_ok(ok);
	wfs_policy_free(p);
	free(ok);
}

static void test_empty_file(void **state)
{
	(void)state;
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	assert_int_equal(wfs_policy_parse_buffer("policy", "", 0, 0, &p, &d), 0);
	assert_non_null(p);
	assert_int_equal(d.nerrors, 0);
	assert_diag(&d, "policy: warning: policy has no rules; every path is public");
	assert_int_equal(wfs_policy_rule_count(p), 0);
	assert_int_equal(cls(p, "/.ssh/id_rsa"), WFS_PUBLIC);
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);

	/* comments and blank lines only: same */
	assert_int_equal(wfs_policy_parse_buffer("policy", "# nothing\n\n  \t\n", 15, 0, &p, &d),
			 0);
	assert_int_equal(d.n, 1);
	assert_false(d.v[0].is_error);
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);

	/* a default alone is a complete policy: no warning */
	p = NULL;
	assert_int_equal(wfs_policy_parse_buffer("policy", "default deny", 12, 0, &p, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(cls(p, "/x"), WFS_DENY);
	wfs_policy_free(p);
}

static void test_empty_and_missing_pattern(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("sensitive /\n");
	assert_diag(&d, "policy:1:11: error: empty pattern; expected a glob such as /.ssh/** or "
			"*.pem");
	wfs_policy_diags_free(&d);
	d = bad("sensitive //   # still empty\n");
	assert_first_error(&d, 1, 11, "empty pattern");
	wfs_policy_diags_free(&d);
	d = bad("sensitive   # no pattern\n");
	assert_diag(&d, "policy:1:10: error: missing pattern after 'sensitive'; expected a glob "
			"such as /.ssh/** or *.pem");
	wfs_policy_diags_free(&d);
	d = bad("deny /a\\\n");
	assert_first_error(&d, 1, 8, "trailing '\\' in pattern");
	wfs_policy_diags_free(&d);
}

static void test_default_errors(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("default public\npublic /x\n  default sensitive\n");
	assert_diag(&d, "policy:3:3: error: duplicate 'default'; already set at policy:1; "
			"expected one default per policy");
	wfs_policy_diags_free(&d);
	d = bad("default\n");
	assert_diag(&d, "policy:1:8: error: missing class after 'default'; expected public, "
			"sensitive or deny");
	wfs_policy_diags_free(&d);
	d = bad("default deny public\n");
	assert_first_error(&d, 1, 14, "unexpected 'public' after the default class");
	wfs_policy_diags_free(&d);
}

static void test_include_forbidden_and_malformed(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("public /x\ninclude /etc/wardfs/policy.d/*.conf\n");
	assert_diag(&d, "policy:2:1: error: 'include' is not allowed here; expected a rule or "
			"'default'");
	wfs_policy_diags_free(&d);
	struct wfs_policy *p;
	d = (struct wfs_policy_diags){0};
	assert_int_equal(wfs_policy_parse_buffer("policy", "include\n", 8, 0, &p, &d), -1);
	assert_first_error(&d, 1, 8, "missing file after 'include'");
	wfs_policy_diags_free(&d);
	assert_int_equal(wfs_policy_parse_buffer("policy", "include a b\n", 12, 0, &p, &d), -1);
	assert_first_error(&d, 1, 11, "unexpected 'b' after the include path");
	wfs_policy_diags_free(&d);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	struct wfs_policy_diags d = bad("bogus\npublic /ok\nsensitive /[\ndeny\n");
	assert_int_equal(d.nerrors, 3);
	assert_int_equal(d.v[0].line, 1);
	assert_int_equal(d.v[1].line, 3);
	assert_int_equal(d.v[2].line, 4);
	wfs_policy_diags_free(&d);

	/* a flood of errors stops at a bounded number of diagnostics */
	size_t n = 5000;
	char *src = malloc(n * 4 + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(src + 4 * i, "xx\n\n", 4);
	src[n * 4] = 0;
	d = parse_bad(src, n * 4);
	assert_true(d.n <= 201);
	assert_string_equal(d.v[d.n - 1].msg, "too many diagnostics; stopping");
	wfs_policy_diags_free(&d);
	free(src);
}

static void test_comments_whitespace_crlf(void **state)
{
	(void)state;
	struct wfs_policy *p = parse_ok("# header\r\n"
					"\tsensitive\t/a   # trailing comment\r\n"
					"public /a#b\r\n"
					"   \r\n"
					"deny /c allow-user=0 # comment after an option\n"
					"sensitive /last");
	assert_int_equal(wfs_policy_rule_count(p), 4);
	assert_int_equal(cls(p, "/a"), WFS_SENSITIVE);
	assert_int_equal(cls(p, "/a#b"), WFS_PUBLIC); /* '#' inside a token is literal */
	assert_int_equal(cls(p, "/c"), WFS_DENY);
	assert_int_equal(cls(p, "/last"), WFS_SENSITIVE); /* no final newline */
	wfs_policy_free(p);
}

static void test_warnings(void **state)
{
	(void)state;
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags d = {0};
	const char *src = "sensitive *.pem\n"  /* 1: repeated at 4 */
			  "sensitive /a/b/c\n" /* 2: covered by 5 */
			  "public /x/y\n"      /* 3: fine */
			  "public *.pem\n"     /* 4 */
			  "deny /a/**\n"       /* 5 */
			  "public id_rsa\n"    /* 6: covered by 7 */
			  "sensitive id_*\n"   /* 7 */
			  "public /x/*/z\n";   /* 8: fine, not a proof */
	assert_int_equal(wfs_policy_parse_buffer("policy", src, strlen(src), 0, &p, &d), 0);
	assert_int_equal(d.nerrors, 0);
	assert_int_equal(d.n, 3);
	assert_diag(&d, "policy:1:11: warning: rule never decides: pattern '*.pem' is repeated "
			"at policy:4 and the last matching rule wins; expected each pattern once");
	assert_diag(&d, "policy:2:11: warning: rule never decides: every path it matches also "
			"matches the later rule '/a/**' at policy:5");
	assert_diag(&d, "policy:6:8: warning: rule never decides: every path it matches also "
			"matches the later rule 'id_*' at policy:7");
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);

	src = "sensitive /.ssh/**\npublic /x\npublic **\nsensitive /y\n";
	assert_int_equal(wfs_policy_parse_buffer("policy", src, strlen(src), 0, &p, &d), 0);
	assert_int_equal(d.n, 2);
	assert_diag(&d, "policy:1:11: warning: rule never decides: the later rule '**' at "
			"policy:3 matches every path");
	assert_diag(&d, "policy:2:8: warning: rule never decides: the later rule '**' at "
			"policy:3 matches every path");
	assert_int_equal(cls(p, "/y"), WFS_SENSITIVE);
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);

	/* an anchored literal is not covered by a floating literal elsewhere */
	src = "sensitive id_rsa\npublic /id_rsa\npublic /a\nsensitive /a/b\n";
	assert_int_equal(wfs_policy_parse_buffer("policy", src, strlen(src), 0, &p, &d), 0);
	assert_int_equal(d.n, 0);
	wfs_policy_free(p);
	wfs_policy_diags_free(&d);
}

static void test_sha256(void **state)
{
	(void)state;
	struct wfs_policy *p = NULL;
	/* value from sha256sum(1) over the same bytes */
	const char *src = "default public\nsensitive /.ssh/**\n";
	assert_int_equal(wfs_policy_parse_buffer("policy", src, strlen(src), 0, &p, NULL), 0);
	assert_string_equal(wfs_policy_sha256(p),
			    "327eaf119e1712ecbbbb339dc99b2e1d43e7db0ba955cbf85cadb43c527db75c");
	wfs_policy_free(p);
	/* 56 bytes: the padding spills into a second block */
	const char *m56 = "#bcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_int_equal(wfs_policy_parse_buffer("policy", m56, 56, 0, &p, NULL), 0);
	assert_string_equal(wfs_policy_sha256(p),
			    "82eccab11e221648849d655fb44f67fd00c927ac837de90e393806b65975c761");
	wfs_policy_free(p);
}

static void sha_hex(const void *data, size_t n, size_t step, char hex[65])
{
	struct pol_sha256 s;
	uint8_t d[32];
	pol_sha256_init(&s);
	for (size_t o = 0; o < n; o += step)
		pol_sha256_update(&s, (const char *)data + o, n - o < step ? n - o : step);
	pol_sha256_final(&s, d);
	pol_sha256_hex(d, hex);
}

static void test_sha256_vectors(void **state)
{
	(void)state;
	char hex[65];
	/* FIPS 180-2 appendix B vectors */
	sha_hex("abc", 3, 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha_hex(m, strlen(m), 7, hex);
	assert_string_equal(hex,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	sha_hex(a, 1000000, 4099, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
	sha_hex("", 0, 1, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unterminated_bracket),
		cmocka_unit_test(test_unknown_class_and_option),
		cmocka_unit_test(test_option_values),
		cmocka_unit_test(test_nul_and_utf8),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_empty_and_missing_pattern),
		cmocka_unit_test(test_default_errors),
		cmocka_unit_test(test_include_forbidden_and_malformed),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_comments_whitespace_crlf),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_sha256_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
