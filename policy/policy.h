/*
 * policy.h - the wardfs policy language: parse, validate, compile and
 * classify paths as public, sensitive or deny.
 *
 * Pure library: no FUSE, and no I/O in the matcher. The loader reads files
 * (and includes) and resolves user/group names once, at load time.
 */
#ifndef WARDFS_POLICY_H
#define WARDFS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum wfs_class {
	WFS_PUBLIC = 0,
	WFS_SENSITIVE = 1,
	WFS_DENY = 2,
};

const char *wfs_class_name(enum wfs_class c);

/* One diagnostic: error, warning or note, always located. */
struct wfs_policy_diag {
	bool is_error;
	bool is_note; /* information only (is_error is false) */
	char file[512];
	unsigned line, col;
	char msg[512]; /* lowercase, says what is wrong and what was expected */
};

/* Collected diagnostics; the loader appends, the caller prints and frees. */
struct wfs_policy_diags {
	struct wfs_policy_diag *v;
	size_t n, cap;
	size_t nerrors;
};
void wfs_policy_diags_free(struct wfs_policy_diags *d);
/* "FILE:LINE:COL: error: MSG" (or warning:, note:) */
void wfs_policy_diag_format(const struct wfs_policy_diag *d, char *buf, size_t len);

struct wfs_policy; /* compiled, immutable once built; safe to share across threads */

/* Load flags. */
#define WFS_POLICY_STRICT_OWNER 0x1 /* refuse files not owned by root or group/other-writable */
/* Looks at every allow-exe= program as it is on this machine: a note names
 * the target of a symbolic link (the file that will be matched) and a
 * missing program; a warning says why a script, a non-executable or a
 * program others can replace will never work as meant. Never an error:
 * the policy may be written for another machine. */
#define WFS_POLICY_CHECK_EXES 0x4
/* The flags every wardfs command loads with: WFS_POLICY_STRICT_OWNER when
 * running as root, so that the CLI (check, scan, migrate, setup-home)
 * refuses exactly the files the daemon would. */
unsigned wfs_policy_caller_flags(void);

/*
 * Loads and compiles a policy file and its includes. On success returns 0
 * and *out; on failure returns -1 with at least one error in diags (which may
 * also hold warnings either way). A missing top-level file gives -ENOENT
 * with an error diag so callers can choose a built-in default.
 */
int wfs_policy_load(const char *path, unsigned flags, struct wfs_policy **out,
		    struct wfs_policy_diags *diags);

/*
 * Parses a policy from memory (used by tests and the fuzzer). `name` is the
 * file name used in diagnostics; `include` directives are resolved relative
 * to the file system as in wfs_policy_load unless flags has
 * WFS_POLICY_NO_INCLUDE, in which case they are an error.
 */
#define WFS_POLICY_NO_INCLUDE 0x2
int wfs_policy_parse_buffer(const char *name, const char *buf, size_t len, unsigned flags,
			    struct wfs_policy **out, struct wfs_policy_diags *diags);

/* Built-in policy used when no file exists: everything public. */
struct wfs_policy *wfs_policy_default(void);

/*
 * A policy is counted: load and default return one reference, hold takes
 * another (a thread or a cached decision that outlives a reload), and free
 * drops one and frees the policy with the last. Thread-safe.
 */
const struct wfs_policy *wfs_policy_hold(const struct wfs_policy *p);
void wfs_policy_free(const struct wfs_policy *p);

/* Facts about a compiled policy for `wardfs status`. */
size_t wfs_policy_rule_count(const struct wfs_policy *p);
const char *wfs_policy_path(const struct wfs_policy *p); /* "" for built-in */
/* What a change of would change the policy: every file it was read from,
 * and every directory an include glob looked in (a file added there is
 * included by the next load). For the daemon's watcher; valid while p is. */
struct wfs_policy_source {
	const char *path;
	bool is_dir;
};
size_t wfs_policy_sources(const struct wfs_policy *p, const struct wfs_policy_source **out);
const char *wfs_policy_sha256(const struct wfs_policy *p); /* hex of all source bytes */

/* Access options of a rule (all lists empty = anyone may open). */
struct wfs_rule_opts;

struct wfs_decision {
	enum wfs_class cls;
	const struct wfs_rule_opts *opts; /* NULL when no option narrows access */
	const char *file;		  /* deciding rule; NULL if the default decided */
	unsigned line;
	int rule_index; /* -1 for the default */
	/* The policy the decision points into (opts, file): a decision kept
	 * while the policy may be replaced holds it (wfs_policy_hold). */
	const struct wfs_policy *policy;
};

/*
 * Classifies `relpath`, the path relative to the mount root, beginning with
 * "/" ("/" itself is the root). No allocation, no I/O; thread-safe.
 */
void wfs_policy_classify(const struct wfs_policy *p, const char *relpath, size_t len,
			 struct wfs_decision *out);

/* Whether a and b decide alike: the same class and the same allow-* sets
 * (not necessarily the same rule). Links and renames require it. */
bool wfs_decision_same(const struct wfs_decision *a, const struct wfs_decision *b);

/*
 * True when no rule can tell a/X from b/X, for any X: every path below a
 * decides as the same path below b, whatever the tree holds (renaming a
 * directory from a to b changes no file's decision). False means perhaps
 * not: the caller looks at the files. Paths as for wfs_policy_classify.
 */
bool wfs_policy_subtrees_alike(const struct wfs_policy *p, const char *a, const char *b);

/*
 * Calls fn for every rule matching relpath, in file order (for `explain -v`).
 */
void wfs_policy_each_match(const struct wfs_policy *p, const char *relpath,
			   void (*fn)(void *arg, const struct wfs_decision *d), void *arg);

/* The pattern of rule `rule_index` as written (for `explain -v`); NULL when
 * out of range. */
const char *wfs_policy_rule_text(const struct wfs_policy *p, int rule_index);

/* Who is opening: for allow-exe=, allow-user=, allow-group=. */
struct wfs_caller {
	uid_t uid;
	gid_t gid;
	const gid_t *groups; /* supplementary groups */
	int ngroups;
	const char *exe; /* resolved executable path, or NULL if unknown */
	/*
	 * When set, decides allow-exe=: called with each allowed path until
	 * it returns true. The daemon compares inodes there, because the
	 * path text of /proc/PID/exe is relative to the caller's mount
	 * namespace and a user namespace lets anyone bind-mount any program
	 * over an allowed path. When NULL, exe is compared as text (tests).
	 */
	bool (*exe_is)(void *arg, const char *allowed);
	void *exe_arg;
};

/* True when the decision's options let this caller open the file. */
bool wfs_policy_allows(const struct wfs_decision *d, const struct wfs_caller *c);

/* Renders a decision's options as "allow-exe=/usr/bin/aws" etc. ("" if none). */
void wfs_rule_opts_format(const struct wfs_rule_opts *o, char *buf, size_t len);

#endif
