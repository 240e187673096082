/*
 * cmd_policy.c - `wardfs policy`: check a policy file, explain how paths
 * are classified, and scan a backing directory for files whose form on
 * disk disagrees with the policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "crypto.h"
#include "policy.h"
#include "usage.h"
#include "vault.h"
#include "vault_args.h" /* crypto_start */

static const char usage[] =
	"usage: wardfs policy <command> [<args>]\n\n"
	"commands:\n"
	"  check FILE                            validate a policy and its includes\n"
	"  explain [--policy FILE] [--root DIR] [-v] PATH...\n"
	"                                        show each path's class and the "
	"deciding rule\n"
	"  scan [--policy FILE] BACKING          count files per class and list files "
	"whose\n"
	"                                        form on disk disagrees with the "
	"policy\n\n"
	"The default policy file is " WFS_DEFAULT_POLICY ". As root, policy files must be\n"
	"owned by root and not writable by group or others, as for the daemon.\n"
	"See wardfs-policy(5) for the language.\n";

/* The policy for explain and scan: warnings are for `check`, so only
 * what stops loading is said. */
static struct wfs_policy *open_policy(const char *file)
{
	struct wfs_policy *p = NULL;

	return wfs_vault_load_policy(file, WFS_LOAD_QUIET, &p) == 0 ? p : NULL;
}

static const char check_usage[] =
	"usage: wardfs policy check FILE\n\n"
	"Parses FILE and its includes and prints every error and warning\n"
	"as FILE:LINE:COL: error|warning|note: MESSAGE. Exits 1 on any\n"
	"error. It also looks at each allow-exe= program on this machine:\n"
	"which file a symbolic link matches, and why a script or a program\n"
	"others can rewrite will not work as meant.\n";

static int cmd_check(int argc, char **argv)
{
	static const struct opt opts[] = {OPT_END()};
	int i, status;

	if ((i = parse_options(argc, argv, opts, check_usage, PARSE_STOP_AT_OPERAND, &status)) < 0)
		return status;
	if (i >= argc)
		return usage_error("missing FILE");
	if (i + 1 < argc)
		return usage_error("expected exactly one FILE");
	const char *file = argv[i];
	struct wfs_policy *p = NULL;
	if (wfs_vault_load_policy(file, WFS_LOAD_CHECK, &p) != 0)
		return 1;
	printf("%s: ok (%zu rule%s)\n", file, wfs_policy_rule_count(p),
	       wfs_policy_rule_count(p) == 1 ? "" : "s");
	wfs_policy_free(p);
	return 0;
}

static void print_decision(const struct wfs_decision *d)
{
	char opts[1024];
	wfs_rule_opts_format(d->opts, opts, sizeof(opts));
	printf("%s%s%s", wfs_class_name(d->cls), opts[0] ? " " : "", opts);
}

struct explain_ctx {
	const struct wfs_policy *p;
};

static void explain_one(void *arg, const struct wfs_decision *d)
{
	struct explain_ctx *c = arg;
	char opts[1024];
	wfs_rule_opts_format(d->opts, opts, sizeof(opts));
	printf("  %s:%u: %s %s%s%s\n", d->file, d->line, wfs_class_name(d->cls),
	       wfs_policy_rule_text(c->p, d->rule_index), opts[0] ? " " : "", opts);
}

/*
 * The path that decides for PATH under root (a backing directory or a mount
 * point): the kernel follows symbolic links before wardfs sees a name, so a
 * file reached through /link (a link to /pub) is /pub/...'s, whatever the
 * rules say about /link (issue 15.7). Resolves inside root, as if it were
 * "/" (RESOLVE_IN_ROOT); the last component only if it exists. 0 with
 * real set ("/..."), or -errno.
 */
static int real_path(int rootfd, const char *path, char *real, size_t len)
{
	char dir[8192], fdpath[64], got[PATH_MAX + 1];
	const char *name = NULL;
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
	int fd = (int)syscall(SYS_openat2, rootfd, path + 1, &how, sizeof how);
	if (fd < 0 && errno == ENOENT) { /* a file to be: its directory */
		snprintf(dir, sizeof dir, "%s", path);
		char *slash = strrchr(dir, '/');
		name = path + (slash - dir) + 1;
		*slash = '\0';
		fd = (int)syscall(SYS_openat2, rootfd, dir[0] ? dir + 1 : ".", &how, sizeof how);
	}
	if (fd < 0)
		return -errno;
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(fdpath, got, sizeof got - 1);
	close(fd);
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", rootfd);
	char rootp[PATH_MAX + 1];
	ssize_t rn = readlink(fdpath, rootp, sizeof rootp - 1);
	if (n < 0 || rn < 0)
		return -errno;
	got[n] = rootp[rn] = '\0';
	if (strncmp(got, rootp, (size_t)rn) || (got[rn] && got[rn] != '/'))
		return -EXDEV; /* cannot happen with RESOLVE_IN_ROOT */
	const char *rel = got + rn;
	if (!strcmp(rootp, "/"))
		rel = got;
	snprintf(real, len, "%s%s%s", rel[0] ? rel : "", name ? "/" : "", name ? name : "");
	if (!real[0])
		snprintf(real, len, "/");
	return 0;
}

static const char explain_usage[] =
	"usage: wardfs policy explain [--policy FILE] [--root DIR] [-v] PATH...\n\n"
	"Prints each PATH (relative to the mount root) as\n"
	"  PATH: CLASS [OPTIONS] (FILE:LINE)   or   PATH: CLASS (default)\n"
	"With -v, also every rule that matches, in file order (the last wins).\n"
	"With --root (a backing directory or mount point), a PATH that goes\n"
	"through a symbolic link is shown with the real path that decides it.\n"
	"The policy defaults to " WFS_DEFAULT_POLICY
	", or the built-in default if that is missing.\n";

static int cmd_explain(int argc, char **argv)
{
	const char *file = NULL, *root = NULL;
	bool verbose = false;
	const struct opt opts[] = {
		OPT_STRING("policy", 0, &file),
		OPT_STRING("root", 0, &root),
		OPT_BOOL("verbose", 'v', &verbose),
		OPT_END(),
	};
	int i, status, rootfd = -1;

	if ((i = parse_options(argc, argv, opts, explain_usage, PARSE_STOP_AT_OPERAND, &status)) <
	    0)
		return status;
	if (i >= argc)
		return usage_error("missing PATH");
	if (root && (rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return error_errno("cannot open '%s'", root);
	struct wfs_policy *p = open_policy(file);
	if (!p) {
		if (rootfd >= 0)
			close(rootfd);
		return 1;
	}
	for (; i < argc; i++) {
		char path[8192], real[8192];
		const char *a = argv[i];
		snprintf(path, sizeof(path), "%s%s", a[0] == '/' ? "" : "/", a);
		if (rootfd >= 0 && real_path(rootfd, path, real, sizeof real) == 0 &&
		    strcmp(real, path)) {
			printf("%s: through a symbolic link, this is %s, which decides:\n", path,
			       real);
			snprintf(path, sizeof(path), "%s", real);
		}
		struct wfs_decision d;
		wfs_policy_classify(p, path, strlen(path), &d);
		printf("%s: ", path);
		print_decision(&d);
		if (d.file)
			printf(" (%s:%u)\n", d.file, d.line);
		else
			printf(" (default)\n");
		if (verbose) {
			struct explain_ctx c = {.p = p};
			wfs_policy_each_match(p, path, explain_one, &c);
		}
	}
	wfs_policy_free(p);
	if (rootfd >= 0)
		close(rootfd);
	return 0;
}

/* ---- scan ---------------------------------------------------------- */

struct mismatch {
	char *path;
	enum wfs_class cls;
	enum wfs_form form;
	bool name; /* its name's form disagrees, not its content's */
};

struct scan {
	const struct wfs_policy *p;
	const char *root;
	unsigned long count[3], errors, files, bad_names;
	struct mismatch *mismatch;
	size_t nmis, capmis;
};

static void add_mismatch(struct scan *scan, const char *rel, enum wfs_class c, enum wfs_form f,
			 bool name)
{
	if (scan->nmis == scan->capmis) {
		size_t cap = scan->capmis ? scan->capmis * 2 : 64;
		struct mismatch *v = realloc(scan->mismatch, cap * sizeof(*v));
		if (!v)
			return;
		scan->mismatch = v;
		scan->capmis = cap;
	}
	char *s = strdup(rel);
	if (s)
		scan->mismatch[scan->nmis++] = (struct mismatch){s, c, f, name};
}

static int scan_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct scan *scan = arg;
	scan->files++;
	struct wfs_decision d;
	wfs_policy_classify(scan->p, rel, strlen(rel), &d);
	scan->count[d.cls]++;
	enum wfs_form f;
	int r = wfs_vault_file_form(dfd, name, st, &f);
	if (r < 0) {
		error("cannot read '%s%s': %s", strcmp(scan->root, "/") ? scan->root : "", rel,
		      strerror(-r));
		scan->errors++;
		return 0;
	}
	if (wfs_vault_form_fix(d.cls, f) != WFS_FIX_NONE)
		add_mismatch(scan, rel, d.cls, f, false);
	return 0;
}

/* A vault with encrypted names: each entry's name is stored encrypted
 * exactly when its path is sensitive (migrate moves the others). */
static int scan_name(void *arg, int dfd, const char *bname, const char *rel, mode_t type)
{
	struct scan *scan = arg;
	enum wfs_class cls;
	(void)dfd, (void)type;
	if (wfs_vault_name_disagrees(scan->p, bname, rel, &cls))
		add_mismatch(scan, rel, cls,
			     cls == WFS_SENSITIVE ? WFS_FORM_PLAIN : WFS_FORM_ENCRYPTED, true);
	return 0;
}

static void scan_name_issue(void *arg, int dfd, const char *dir, const char *bname,
			    enum wfs_name_issue what)
{
	struct scan *scan = arg;
	(void)dfd, (void)bname;
	if (what != WFS_NAME_TEMP && what != WFS_NAME_ORPHAN_SIDECAR)
		scan->bad_names++; /* fsck says which */
	(void)dir;
}

static int cmp_mismatch(const void *a, const void *b)
{
	return strcmp(((const struct mismatch *)a)->path, ((const struct mismatch *)b)->path);
}

static const char scan_usage[] =
	"usage: wardfs policy scan [--policy FILE] [--format text|json] [unlock options]\n"
	"                          BACKING\n\n"
	"Walks the backing directory BACKING (without following symbolic links,\n"
	"skipping BACKING/.wardfs), classifies every regular file by its path\n"
	"relative to BACKING, prints the number of files per class, then every\n"
	"file whose form on disk disagrees with its class: sensitive but stored\n"
	"plain, or public/deny but stored encrypted ('wardfs migrate' converts\n"
	"them). Exit status 0 when every file agrees, 1 when one does not or\n"
	"could not be read: a compliance check for scripts.\n"
	"\n"
	"A vault with encrypted names (init --encrypt-names) is unlocked first, to\n"
	"show its paths, with the sources of 'wardfs mount' (--passfile FILE,\n"
	"--extpass CMD, --recovery-key[-file], --escrow-key FILE; else asked):\n"
	"every entry whose name is stored in the other form than its class asks\n"
	"for is listed too.\n";

static int set_format(void *value, const char *arg)
{
	if (strcmp(arg, "text") && strcmp(arg, "json"))
		return usage_error("--format is text or json");
	*(const char **)value = arg;
	return 0;
}

static int cmd_scan(int argc, char **argv)
{
	const char *file = NULL, *format = "text";
	struct wfs_pass_opts po = {0};
	const struct opt opts[] = {
		OPT_STRING("policy", 0, &file),
		OPT_FN("format", 0, &format, set_format),
		OPT_PASS_SOURCES(&po),
		OPT_END(),
	};
	int i, status;

	if ((i = parse_options(argc, argv, opts, scan_usage, PARSE_STOP_AT_OPERAND, &status)) < 0)
		return status;
	if (i >= argc)
		return usage_error("missing BACKING");
	if (i + 1 < argc)
		return usage_error("expected exactly one BACKING directory");
	char root[4096];
	snprintf(root, sizeof(root), "%s", argv[i]);
	size_t rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		root[--rl] = 0;
	struct stat st;
	if (stat(root, &st)) {
		error("%s: %s", root, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("%s: not a directory", root);
		return 1;
	}
	struct wfs_policy *p = open_policy(file);
	if (!p)
		return 1;
	struct scan scan = {.p = p, .root = root};
	/* Files on other file systems below BACKING are served too. */
	struct wfs_walk w = {.file = scan_one, .arg = &scan, .flags = WFS_WALK_XDEV};
	struct wfs_keys *keys = NULL;
	if (wfs_vault_flags(root) & WFS_VAULT_ENCRYPT_NAMES) {
		if (crypto_start() != 0 || wfs_vault_unlock(root, &po, &keys) != 0) {
			wfs_policy_free(p);
			return 1;
		}
		w.names_keys = keys;
		w.name_issue = scan_name_issue;
		w.entry_done = scan_name;
	}
	int r = wfs_walk(root, &w);
	wfs_keys_free(keys);
	scan.errors += w.errors;
	if (r < 0) {
		error("%s: %s", root, strerror(-r));
		wfs_policy_free(p);
		return 1;
	}
	if (scan.nmis) /* qsort wants a real array, even of none */
		qsort(scan.mismatch, scan.nmis, sizeof(*scan.mismatch), cmp_mismatch);
	bool json = !strcmp(format, "json");
	if (json) {
		printf("{\"backing\": ");
		wfs_audit_print_json_str(stdout, root);
		printf(", \"policy\": ");
		wfs_audit_print_json_str(stdout,
					 wfs_policy_path(p)[0] ? wfs_policy_path(p) : "(built-in)");
		printf(", \"files\": %lu, \"public\": %lu, \"sensitive\": %lu, \"deny\": %lu, "
		       "\"unreadable\": %lu, \"mismatch\": [",
		       scan.files, scan.count[WFS_PUBLIC], scan.count[WFS_SENSITIVE],
		       scan.count[WFS_DENY], scan.errors);
	} else {
		printf("files      %lu\n", scan.files);
		for (int c = WFS_PUBLIC; c <= WFS_DENY; c++)
			printf("%-10s %lu\n", wfs_class_name((enum wfs_class)c), scan.count[c]);
		printf("mismatch   %zu\n", scan.nmis);
	}
	for (size_t k = 0; k < scan.nmis; k++) {
		const struct mismatch *m = &scan.mismatch[k];
		const char *form = m->form == WFS_FORM_ENCRYPTED ? "encrypted" : "plain";
		if (json) {
			printf("%s{\"path\": ", k ? ", " : "");
			wfs_audit_print_json_str(stdout, m->path);
			printf(", \"class\": \"%s\", \"form\": \"%s\", \"of\": \"%s\"}",
			       wfs_class_name(m->cls), form, m->name ? "name" : "content");
		} else {
			printf("%s: %s but %s %s\n", m->path, wfs_class_name(m->cls),
			       m->name ? "its name is stored" : "stored", form);
		}
		free(m->path);
	}
	if (json)
		printf("]}\n");
	free(scan.mismatch);
	if (scan.errors)
		error("%lu file(s) could not be read", scan.errors);
	if (scan.bad_names)
		error("%lu name(s) cannot be shown (see 'wardfs fsck')", scan.bad_names);
	wfs_policy_free(p);
	return scan.nmis || scan.errors || scan.bad_names ? 1 : 0;
}

int wfs_cmd_policy(int argc, char **argv)
{
	static const struct subcommand cmds[] = {
		{"check", cmd_check}, {"explain", cmd_explain}, {"scan", cmd_scan}};

	return run_subcommand(cmds, sizeof(cmds) / sizeof(cmds[0]), argc, argv, usage);
}
