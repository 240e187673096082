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
#include "vault.h"

static void usage(FILE *f)
{
	fprintf(f,
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
		"See wardfs-policy(5) for the language.\n");
}

static bool is_help(const char *a)
{
	return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int bad_usage(const char *sub, const char *msg)
{
	fprintf(stderr, "wardfs policy%s%s: %s; see 'wardfs policy%s%s --help'\n", sub ? " " : "",
		sub ? sub : "", msg, sub ? " " : "", sub ? sub : "");
	return 2;
}

/* The policy for explain and scan: warnings are for `check`, so only
 * what stops loading is said. */
static struct wfs_policy *open_policy(const char *sub, const char *file, bool explicit_file)
{
	struct wfs_policy *p = NULL;
	char prog[64];

	snprintf(prog, sizeof(prog), "wardfs policy %s", sub);
	wfs_vault_set_prog(prog);
	return wfs_vault_load_policy(explicit_file ? file : NULL, WFS_LOAD_QUIET, &p) == 0 ? p
											   : NULL;
}

static int cmd_check(int argc, char **argv)
{
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			printf("usage: wardfs policy check FILE\n\n"
			       "Parses FILE and its includes and prints every error and warning\n"
			       "as FILE:LINE:COL: error|warning|note: MESSAGE. Exits 1 on any\n"
			       "error. It also looks at each allow-exe= program on this machine:\n"
			       "which file a symbolic link matches, and why a script or a program\n"
			       "others can rewrite will not work as meant.\n");
			return 0;
		}
		if (!strcmp(argv[i], "--") && i + 1 < argc && !file) {
			file = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return bad_usage("check", "unknown option");
		} else if (file) {
			return bad_usage("check", "expected exactly one FILE");
		} else {
			file = argv[i];
		}
	}
	if (!file)
		return bad_usage("check", "missing FILE");
	struct wfs_policy *p = NULL;
	wfs_vault_set_prog("wardfs policy check");
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

/* Parses [--policy FILE] [-v]; returns the index of the first operand or
 * -1 after printing a usage error (2) or help (0) into *ret. */
static int common_opts(int argc, char **argv, const char *sub, bool allow_v, const char **file,
		       bool *explicit_file, bool *verbose, const char **root, const char **format,
		       int *ret)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is_help(a)) {
			*ret = 0;
			return -2;
		}
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--policy")) {
			if (i + 1 >= argc) {
				*ret = bad_usage(sub, "--policy needs a FILE");
				return -1;
			}
			*file = argv[++i];
			*explicit_file = true;
		} else if (!strncmp(a, "--policy=", 9)) {
			*file = a + 9;
			*explicit_file = true;
		} else if (format && (!strcmp(a, "--format") || !strncmp(a, "--format=", 9))) {
			if (a[8] == '=')
				*format = a + 9;
			else if (i + 1 < argc)
				*format = argv[++i];
			else {
				*ret = bad_usage(sub, "--format needs text or json");
				return -1;
			}
			if (strcmp(*format, "text") && strcmp(*format, "json")) {
				*ret = bad_usage(sub, "--format is text or json");
				return -1;
			}
		} else if (root && !strcmp(a, "--root")) {
			if (i + 1 >= argc) {
				*ret = bad_usage(sub, "--root needs a DIR");
				return -1;
			}
			*root = argv[++i];
		} else if (root && !strncmp(a, "--root=", 7)) {
			*root = a + 7;
		} else if (allow_v && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) {
			*verbose = true;
		} else if (a[0] == '-' && a[1]) {
			char msg[300];
			snprintf(msg, sizeof(msg), "unknown option '%.200s'", a);
			*ret = bad_usage(sub, msg);
			return -1;
		} else {
			break;
		}
	}
	return i;
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

static int cmd_explain(int argc, char **argv)
{
	const char *file = WFS_DEFAULT_POLICY, *root = NULL;
	bool explicit_file = false, verbose = false;
	int ret = 0, rootfd = -1;
	int i = common_opts(argc, argv, "explain", true, &file, &explicit_file, &verbose, &root,
			    NULL, &ret);
	if (i == -2) {
		printf("usage: wardfs policy explain [--policy FILE] [--root DIR] [-v] PATH...\n\n"
		       "Prints each PATH (relative to the mount root) as\n"
		       "  PATH: CLASS [OPTIONS] (FILE:LINE)   or   PATH: CLASS (default)\n"
		       "With -v, also every rule that matches, in file order (the last wins).\n"
		       "With --root (a backing directory or mount point), a PATH that goes\n"
		       "through a symbolic link is shown with the real path that decides it.\n"
		       "The policy defaults to " WFS_DEFAULT_POLICY
		       ", or the built-in default if that is missing.\n");
		return 0;
	}
	if (i < 0)
		return ret;
	if (i >= argc)
		return bad_usage("explain", "missing PATH");
	if (root && (rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "wardfs policy explain: cannot open '%s': %s\n", root,
			strerror(errno));
		return 1;
	}
	struct wfs_policy *p = open_policy("explain", file, explicit_file);
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
};

struct scan {
	const struct wfs_policy *p;
	const char *root;
	unsigned long count[3], errors, files;
	struct mismatch *mismatch;
	size_t nmis, capmis;
};

static void add_mismatch(struct scan *scan, const char *rel, enum wfs_class c, enum wfs_form f)
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
		scan->mismatch[scan->nmis++] = (struct mismatch){s, c, f};
}

static int scan_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct scan *scan = arg;
	scan->files++;
	struct wfs_decision d;
	wfs_policy_classify(scan->p, rel, strlen(rel), &d);
	scan->count[d.cls]++;
	enum wfs_form f;
	int r = wfs_file_form(dfd, name, st, &f);
	if (r < 0) {
		fprintf(stderr, "wardfs policy scan: cannot read '%s%s': %s\n",
			strcmp(scan->root, "/") ? scan->root : "", rel, strerror(-r));
		scan->errors++;
		return 0;
	}
	if (wfs_form_fix(d.cls, f) != WFS_FIX_NONE)
		add_mismatch(scan, rel, d.cls, f);
	return 0;
}

static int cmp_mismatch(const void *a, const void *b)
{
	return strcmp(((const struct mismatch *)a)->path, ((const struct mismatch *)b)->path);
}

static int cmd_scan(int argc, char **argv)
{
	const char *file = WFS_DEFAULT_POLICY;
	bool explicit_file = false, verbose = false;
	int ret = 0;
	const char *format = "text";
	int i = common_opts(argc, argv, "scan", false, &file, &explicit_file, &verbose, NULL,
			    &format, &ret);
	if (i == -2) {
		printf("usage: wardfs policy scan [--policy FILE] [--format text|json] BACKING\n\n"
		       "Walks the backing directory BACKING (without following symbolic links,\n"
		       "skipping BACKING/.wardfs), classifies every regular file by its path\n"
		       "relative to BACKING, prints the number of files per class, then every\n"
		       "file whose form on disk disagrees with its class: sensitive but stored\n"
		       "plain, or public/deny but stored encrypted ('wardfs migrate' converts\n"
		       "them). Exit status 0 when every file agrees, 1 when one does not or\n"
		       "could not be read: a compliance check for scripts.\n");
		return 0;
	}
	if (i < 0)
		return ret;
	if (i >= argc)
		return bad_usage("scan", "missing BACKING");
	if (i + 1 < argc)
		return bad_usage("scan", "expected exactly one BACKING directory");
	char root[4096];
	snprintf(root, sizeof(root), "%s", argv[i]);
	size_t rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		root[--rl] = 0;
	struct stat st;
	if (stat(root, &st)) {
		fprintf(stderr, "wardfs policy scan: %s: %s\n", root, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "wardfs policy scan: %s: not a directory\n", root);
		return 1;
	}
	struct wfs_policy *p = open_policy("scan", file, explicit_file);
	if (!p)
		return 1;
	struct scan scan = {.p = p, .root = root};
	/* Files on other file systems below BACKING are served too. */
	struct wfs_walk w = {.file = scan_one, .arg = &scan, .flags = WFS_WALK_XDEV};
	int r = wfs_walk(root, &w);
	scan.errors += w.errors;
	if (r < 0) {
		fprintf(stderr, "wardfs policy scan: %s: %s\n", root, strerror(-r));
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
			printf(", \"class\": \"%s\", \"form\": \"%s\"}", wfs_class_name(m->cls),
			       form);
		} else {
			printf("%s: %s but stored %s\n", m->path, wfs_class_name(m->cls), form);
		}
		free(m->path);
	}
	if (json)
		printf("]}\n");
	free(scan.mismatch);
	if (scan.errors)
		fprintf(stderr, "wardfs policy scan: %lu file(s) could not be read\n", scan.errors);
	wfs_policy_free(p);
	return scan.nmis || scan.errors ? 1 : 0;
}

int wfs_cmd_policy(int argc, char **argv)
{
	if (argc < 2)
		return bad_usage(NULL, "missing command (check, explain or scan)");
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "explain"))
		return cmd_explain(argc - 1, argv + 1);
	if (!strcmp(argv[1], "scan"))
		return cmd_scan(argc - 1, argv + 1);
	char msg[300];
	snprintf(msg, sizeof(msg), "'%.200s' is not a policy command (check, explain or scan)",
		 argv[1]);
	return bad_usage(NULL, msg);
}
