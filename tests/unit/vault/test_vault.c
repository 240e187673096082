/*
 * test_vault.c - the vault library (vault/vault.c, passphrase.c, walk.c):
 * atomic writes, config, unlocking from a passfile, an external command or
 * a recovery key file, the backing-tree walk (no symlinks, no .wardfs), and
 * the reporter that the library's messages go through (say.c).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"
#include "vault.h"

static char root[64];

static void put(const char *rel, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, 0600); /* secrets in files others can read are refused */
}

static int setup(void **state)
{
	(void)state;
	test_tmpdir_make(root, "vault");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	test_tmpdir_remove(root);
	return 0;
}

static void make_vault(char rec[WFS_RECOVERY_LEN])
{
	struct wfs_kdf_params p = {.opslimit = 1, .memlimit = 8u << 20};
	struct wfs_keys *k;
	uint8_t *kf;
	size_t len;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/.wardfs", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(wfs_keyfile_create("hunter2", 7, &p, &kf, &len, rec, &k), 0);
	assert_false(wfs_vault_exists(root));
	assert_int_equal(wfs_vault_write_config(root, &p), 0);
	assert_int_equal(wfs_vault_write(root, WFS_VAULT_KEYFILE, kf, len, 0600), 0);
	assert_true(wfs_vault_exists(root));
	free(kf);
	wfs_keys_free(k);
}

static void test_write_and_config(void **state)
{
	char rec[WFS_RECOVERY_LEN], p[256], text[1024];
	struct stat st;
	uint8_t *buf;
	size_t len;
	struct wfs_kdf_params kp = {.opslimit = 4, .memlimit = 64u << 20};
	FILE *f;

	(void)state;
	make_vault(rec);
	snprintf(p, sizeof(p), "%s/.wardfs/keyfile", root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 36 + 100 + 122 + 32); /* docs/format.md, version 2 */
	snprintf(p, sizeof(p), "%s/.wardfs/.keyfile.tmp", root);
	assert_int_equal(access(p, F_OK), -1); /* no temp left behind */
	assert_int_equal(wfs_vault_read_keyfile(root, &buf, &len), 0);
	assert_int_equal(len, (size_t)st.st_size);
	assert_int_equal(wfs_keyfile_check(buf, len, NULL), 0);
	free(buf);

	/* config: rewritten with new cost, same creation time */
	snprintf(p, sizeof(p), "%s/.wardfs/config", root);
	f = fopen(p, "r");
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	char *created = strstr(text, "created ");
	assert_non_null(created);
	assert_non_null(strstr(text, "kdf-memory-mib 8\n"));
	char c1[40];
	memcpy(c1, created, 30);
	sleep(1);
	assert_int_equal(wfs_vault_write_config(root, &kp), 0);
	f = fopen(p, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	assert_non_null(strstr(text, "kdf-ops 4\n"));
	assert_non_null(strstr(text, "kdf-memory-mib 64\n"));
	assert_memory_equal(strstr(text, "created "), c1, 30);
	assert_int_equal(wfs_vault_read_keyfile("/nonexistent", &buf, &len), -ENOENT);
}

static void test_unlock_sources(void **state)
{
	char pf[256], cmd[300];
	struct wfs_keys *k;
	struct wfs_pass_opts po = {0};

	(void)state;
	/* the vault from the previous test */
	assert_true(wfs_vault_exists(root));
	snprintf(pf, sizeof(pf), "%s/pass", root);
	put("pass", "hunter2\n");
	po.passfile = pf;
	assert_int_equal(wfs_vault_unlock(root, &po, &k), 0);
	assert_non_null(k);
	wfs_keys_free(k);
	put("pass", "hunter3\n");
	assert_int_equal(wfs_vault_unlock(root, &po, &k), -EACCES);
	assert_null(k);
	put("pass", "hunter2\r\nsecond line\n");
	assert_int_equal(wfs_vault_unlock(root, &po, &k), 0);
	wfs_keys_free(k);
	put("pass", "\n");
	assert_int_equal(wfs_vault_unlock(root, &po, &k), -EINVAL); /* empty */
	po.passfile = NULL;
	snprintf(cmd, sizeof(cmd), "printf 'hunter2\\nmore'");
	po.extpass = cmd;
	assert_int_equal(wfs_vault_unlock(root, &po, &k), 0);
	wfs_keys_free(k);
	po.extpass = "echo hunter2; exit 3";
	assert_int_equal(wfs_vault_unlock(root, &po, &k), -EIO);
}

/* WARDFS_EXTPASS_TIMEOUT out of int's range is the default 60 s: atoi made
 * 4294967297 (2^32 + 1) a 1 s timeout on glibc (and undefined in C). */
static void test_extpass_timeout_out_of_range(void **state)
{
	struct wfs_keys *k;
	struct wfs_pass_opts po = {.extpass = "sleep 2; echo hunter2"};

	(void)state;
	/* the vault of test_write_and_config, passphrase hunter2 */
	assert_int_equal(setenv("WARDFS_EXTPASS_TIMEOUT", "4294967297", 1), 0);
	assert_int_equal(wfs_vault_unlock(root, &po, &k), 0);
	wfs_keys_free(k);
	unsetenv("WARDFS_EXTPASS_TIMEOUT");
}

static void test_recovery_file(void **state)
{
	char rec[WFS_RECOVERY_LEN], rf[256], text[128];
	struct wfs_keys *k;
	struct wfs_pass_opts po = {0};
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/.wardfs'", root);
	assert_int_equal(system(cmd), 0);
	make_vault(rec);
	snprintf(rf, sizeof(rf), "%s/rec", root);
	snprintf(text, sizeof(text), "%s\n", rec);
	put("rec", text);
	po.recovery_key_file = rf;
	assert_int_equal(wfs_vault_unlock(root, &po, &k), 0);
	wfs_keys_free(k);
	put("rec", "0123\n");
	assert_int_equal(wfs_vault_unlock(root, &po, &k), -EINVAL); /* malformed */
	rec[0] = rec[0] == 'a' ? 'b' : 'a';
	snprintf(text, sizeof(text), "%s\n", rec);
	put("rec", text);
	assert_int_equal(wfs_vault_unlock(root, &po, &k), -EACCES);
}

struct seen {
	char paths[16][64];
	int n;
};

static int collect(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct seen *s = arg;

	assert_true(S_ISREG(st->st_mode));
	assert_true(faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0);
	assert_true(s->n < 16);
	snprintf(s->paths[s->n++], 64, "%s", rel);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_walk(void **state)
{
	char p[256], q[256];
	struct seen s = {0};
	unsigned errors = 0;

	(void)state;
	snprintf(p, sizeof(p), "%s/a", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b", root);
	assert_int_equal(mkdir(p, 0755), 0);
	put("a/b/deep", "x");
	put("top", "y");
	snprintf(p, sizeof(p), "%s/a/link", root);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	snprintf(q, sizeof(q), "%s/a/dirlink", root);
	assert_int_equal(symlink("/etc", q), 0);
	assert_int_equal(wfs_vault_walk(root, collect, &s, &errors), 0);
	assert_int_equal(errors, 0);
	qsort(s.paths, (size_t)s.n, sizeof(s.paths[0]), cmp);
	/* pass and rec from the earlier tests, no .wardfs, no symlinks */
	assert_int_equal(s.n, 4);
	assert_string_equal(s.paths[0], "/a/b/deep");
	assert_string_equal(s.paths[1], "/pass");
	assert_string_equal(s.paths[2], "/rec");
	assert_string_equal(s.paths[3], "/top");
	assert_int_equal(wfs_vault_walk("/nonexistent", collect, &s, &errors), -ENOENT);
}

static struct {
	enum wfs_vault_say kind;
	char line[512];
	int n;
} said;

static void capture(enum wfs_vault_say kind, const char *line)
{
	said.kind = kind;
	snprintf(said.line, sizeof(said.line), "%s", line);
	said.n++;
}

/* A failure is handed to the reporter as one line, without a program name
 * or newline (the CLI adds its own), and nothing else is printed. */
static void test_reporter(void **state)
{
	char dir[128];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/open", root);
	assert_int_equal(mkdir(dir, 0777), 0);
	assert_int_equal(chmod(dir, 0777), 0); /* others may change what is below */
	snprintf(dir, sizeof(dir), "%s/open/backing", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	memset(&said, 0, sizeof(said));
	wfs_vault_set_reporter(capture);
	assert_int_equal(wfs_backing_private(dir, true), -EPERM);
	wfs_vault_set_reporter(NULL);
	assert_int_equal(said.n, 1);
	assert_int_equal(said.kind, WFS_SAY_ERROR);
	assert_non_null(strstr(said.line, "can be changed by users other than root"));
	assert_null(strchr(said.line, '\n'));
	assert_int_not_equal(strncmp(said.line, "wardfs", 6), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_and_config),
		cmocka_unit_test(test_unlock_sources),
		cmocka_unit_test(test_extpass_timeout_out_of_range),
		cmocka_unit_test(test_recovery_file),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_reporter),
	};
	assert_int_equal(wfs_crypto_init(), 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
