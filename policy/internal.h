/*
 * internal.h - private types shared by the files of the policy library:
 * the arena, SHA-256, compiled patterns, rules, the match index and the
 * loader state. Nothing here is part of the public contract (policy.h).
 */
#ifndef WARDFS_POLICY_INTERNAL_H
#define WARDFS_POLICY_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "policy.h"

#define POL_MAX_LINE	      4096u	 /* bytes per line, without the newline */
#define POL_MAX_FILE	      (8u << 20) /* bytes per policy file */
#define POL_MAX_DEPTH	      16u	 /* include nesting */
#define POL_MAX_DIAGS	      200u	 /* diagnostics kept before giving up */
#define POL_MAX_PATTERN_COMPS 512u	 /* components in one pattern */

/* ---- arena: every string and array of a compiled policy ---------------- */

struct pol_arena_chunk;
struct pol_arena {
	struct pol_arena_chunk *head;
};
void *pol_arena_alloc(struct pol_arena *a, size_t n); /* zeroed, NULL on ENOMEM */
char *pol_arena_strndup(struct pol_arena *a, const char *s, size_t n);
void pol_arena_free(struct pol_arena *a);

/* ---- SHA-256 (sha256.c) ------------------------------------------------ */

struct pol_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
};
void pol_sha256_init(struct pol_sha256 *s);
void pol_sha256_update(struct pol_sha256 *s, const void *data, size_t n);
void pol_sha256_final(struct pol_sha256 *s, uint8_t out[32]);
void pol_sha256_hex(const uint8_t d[32], char hex[65]);

/* ---- patterns (glob.c) --------------------------------------------------- */

enum pc_kind {
	PC_LIT,	  /* literal component, unescaped text */
	PC_GLOB,  /* component with * ? [ or escapes, raw glob text */
	PC_DSTAR, /* a whole "**" component: zero or more components */
};

struct pcomp {
	const char *s;
	uint32_t len;
	uint8_t kind;
};

struct pattern {
	struct pcomp *c;
	uint32_t nc;
	bool floating; /* c[0] is PC_DSTAR */
	char *norm;    /* canonical text: equal norms match the same paths */
};

/*
 * Compiles one pattern token (raw text, escapes included). On error returns
 * -1 with *errmsg set (static string) and *erroff the byte offset in raw.
 */
int pol_pattern_compile(struct pol_arena *a, const char *raw, size_t len, struct pattern *out,
			size_t *erroff, const char **errmsg);
/* Scans a bracket expression starting at p ('['); returns the byte after
 * its ']' or NULL if unterminated (or an unknown [:class:], see *bad). */
const char *pol_bracket_end(const char *p, const char *pe, bool *bad_class);
/* One component against one path component (no '/'). */
bool pol_comp_match(const struct pcomp *pc, const char *t, size_t tl);
/* Walking a path's components: past the slashes at t, and the end of the
 * component that starts at t (its '/' or te). */
static inline const char *pol_skip_slashes(const char *t, const char *te)
{
	while (t < te && *t == '/')
		t++;
	return t;
}

static inline const char *pol_comp_end(const char *t, const char *te)
{
	const char *e = memchr(t, '/', (size_t)(te - t));
	return e ? e : te;
}

/* Pattern components against the path starting at t (a component start or
 * '/'): true when they match the path or any of its leading directories. */
bool pol_seq_match(const struct pcomp *pc, size_t np, const char *t, const char *te);

/* ---- rules and the compiled policy -------------------------------------- */

struct wfs_rule_opts {
	const char **exes;
	size_t nexes;
	uid_t *uids;
	size_t nuids;
	gid_t *gids;
	size_t ngids;
	const char *text; /* "allow-exe=/usr/bin/aws allow-user=alice" as written */
};

struct rule {
	enum wfs_class cls;
	const struct wfs_rule_opts *opts;
	const char *file;
	unsigned line, col;
	const char *text; /* pattern as written */
	struct pattern pat;
	bool lit_exact; /* anchored and every component literal */
};

enum ix_kind {
	IXN_TRIE,  /* anchored rules, literal prefix ends here: verify whole path */
	IXN_FLOAT, /* floating rules keyed by their first component: verify from it */
	IXN_GEN,   /* floating rules with no usable key: verify whole path */
};

struct ix_node {
	uint32_t off, n; /* rule indices in lists[off..off+n), descending */
	uint8_t kind;
	bool lit1; /* IXN_FLOAT keyed by the literal basename table */
};

struct ix_ent {
	uint64_t h;
	const char *key;
	uint32_t klen;
	uint32_t tag; /* parent trie node, or one of the IX_TAG_* tables */
	uint32_t node;
};

#define IX_TAG_LIT 0xfffffff0u /* floating, first component literal */
#define IX_TAG_EXT 0xfffffff1u /* floating, first component ends in ".ext" */
#define IX_TAG_P2  0xfffffff2u /* floating, first component has a 2-byte literal head */
#define IX_TAG_P1  0xfffffff3u /* floating, first component has a 1-byte literal head */
#define IX_TAG_TRI 0xfffffff4u /* floating, first component contains a 3-byte literal */
#define IX_NONE	   0xffffffffu

struct pol_index {
	struct ix_ent *tab;
	size_t cap, used;
	struct ix_node *nodes;
	size_t nnodes;
	uint32_t *lists;
	uint32_t gen_node;
	bool has_trie;
	size_t n_lit, n_ext, n_p2, n_p1, n_tri;
	uint64_t p2bits[1024];
	uint64_t tribits[1024]; /* by pol_tri_bit() */
	uint64_t p1bits[4];
};

struct wfs_policy {
	/* references (wfs_policy_hold); mutable through a const policy */
	atomic_uint refs;
	struct pol_arena arena;
	struct rule *rules;
	size_t nrules, caprules;
	enum wfs_class def;
	bool has_default;
	const char *def_file;
	unsigned def_line;
	const char *path;
	char sha_hex[65];
	struct pol_index ix;
	/* what the policy was read from (wfs_policy_sources), arena strings */
	struct wfs_policy_source *sources;
	size_t nsources, capsources;
};

/* ---- diagnostics (diag.c) ------------------------------------------------ */

struct pol_diagsink {
	struct wfs_policy_diags *d; /* may be NULL */
	size_t nerrors, ntotal;
	bool stopped; /* too many diagnostics: parsing gives up */
};
void pol_diag(struct pol_diagsink *s, bool is_error, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Information that is neither an error nor a warning. */
void pol_note(struct pol_diagsink *s, const char *file, unsigned line, unsigned col,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- loader (load.c, parse.c) --------------------------------------------- */

struct pol_chain {
	dev_t dev;
	ino_t ino;
	const char *name;
};

struct pol_loader {
	struct wfs_policy *p;
	unsigned flags;
	struct pol_diagsink diag;
	struct pol_sha256 sha;
	struct pol_chain chain[POL_MAX_DEPTH + 1];
	unsigned depth;
	bool oom;
};

/* Parses a whole file's text one line at a time; `file` lives in the arena. */
void pol_parse_text(struct pol_loader *L, const char *file, const char *buf, size_t len);
/* One line, without its newline; lineno is 1-based. */
void pol_parse_line(struct pol_loader *L, const char *file, const char *line, size_t len,
		    unsigned lineno);
/* Resolves and loads `include ARG` (load.c); `raw` keeps its escapes. */
void pol_include(struct pol_loader *L, const char *file, unsigned line, unsigned col,
		 const char *raw, size_t rawlen);
/* Removes backslash escapes; out must hold n + 1 bytes. Returns the length. */
size_t pol_unescape(const char *s, size_t n, char *out);
/* Loads one file: reads, hashes, parses. where_* locate the include line
 * (NULL file for the top level). Returns 0, -ENOENT or -1. */
int pol_load_file(struct pol_loader *L, const char *path, const char *where_file,
		  unsigned where_line, unsigned where_col);

static inline uint64_t pol_mixtag(uint64_t h, uint32_t tag)
{
	h ^= (uint64_t)tag * 0x9e3779b97f4a7c15ull;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return h;
}

/* Finds the node for (tag, key) whose plain pol_hash is h, or IX_NONE. */
static inline uint32_t pol_ix_find(const struct pol_index *ix, uint32_t tag, const char *key,
				   size_t klen, uint64_t h)
{
	uint64_t m = pol_mixtag(h, tag);
	size_t mask = ix->cap - 1;
	for (size_t i = (size_t)m & mask;; i = (i + 1) & mask) {
		const struct ix_ent *e = &ix->tab[i];
		if (!e->key)
			return IX_NONE;
		if (e->h == m && e->tag == tag && e->klen == klen && !memcmp(e->key, key, klen))
			return e->node;
	}
}

static inline unsigned pol_tri_bit(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	return ((unsigned)u[0] << 10 ^ (unsigned)u[1] << 5 ^ u[2]) & 0xffffu;
}

/* Index of the last rule matching path, or -1 (classify.c). */
int pol_best(const struct wfs_policy *p, const char *path, size_t len);

/* Builds the index and emits shadowing warnings (compile.c). 0 or -ENOMEM. */
int pol_compile(struct wfs_policy *p, struct pol_diagsink *diag);
void pol_index_free(struct pol_index *ix);

/* Diagnoses allow-exe= program `path` as it is on this machine (exe.c);
 * for WFS_POLICY_CHECK_EXES. Warnings and notes only. */
void pol_check_exe(struct pol_loader *L, const char *file, unsigned line, unsigned col,
		   const char *path);

/* Utilities (util.c). */
uint64_t pol_hash(const char *s, size_t n);
/* Decodes one UTF-8 sequence of text; invalid bytes decode to 0x110000+byte. */
uint32_t pol_utf8_next(const char *t, const char *te, size_t *n);
/* Offset of the first invalid UTF-8 byte, or len if the text is valid. */
size_t pol_utf8_check(const char *s, size_t len);

#endif
