/*
 * parse.c - the policy parser: splits text into lines and each line into
 * tokens, and turns statements (default, include, CLASS PATTERN OPTION...)
 * into rules, with located errors. It sees one line at a time.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_OPT_VALUES 256u

struct tok {
	const char *s;
	size_t len;
	unsigned col;
};

static bool next_tok(const char *line, size_t len, size_t *pos, struct tok *t)
{
	size_t i = *pos;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= len || line[i] == '#') {
		*pos = len;
		return false;
	}
	size_t s = i;
	while (i < len && line[i] != ' ' && line[i] != '\t') {
		if (line[i] == '\\' && i + 1 < len)
			i++;
		i++;
	}
	t->s = line + s;
	t->len = i - s;
	t->col = (unsigned)s + 1;
	*pos = i;
	return true;
}

static bool trailing_backslash(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\\' && ++i == n)
			return true;
	return false;
}

static bool tok_is(const struct tok *t, const char *w)
{
	size_t n = strlen(w);
	return t->len == n && !memcmp(t->s, w, n);
}

/* Quotes a token for a message, shortened so messages stay readable. */
static const char *q(const struct tok *t, char *buf, size_t n)
{
	size_t l = t->len < n - 4 ? t->len : n - 4;
	memcpy(buf, t->s, l);
	if (l < t->len)
		memcpy(buf + l, "...", 4);
	else
		buf[l] = 0;
	return buf;
}

size_t pol_unescape(const char *s, size_t n, char *out)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		out[m++] = s[i];
	}
	out[m] = 0;
	return m;
}

static bool parse_class(const struct tok *t, enum wfs_class *c)
{
	if (tok_is(t, "public"))
		*c = WFS_PUBLIC;
	else if (tok_is(t, "sensitive"))
		*c = WFS_SENSITIVE;
	else if (tok_is(t, "deny"))
		*c = WFS_DENY;
	else
		return false;
	return true;
}

static bool parse_id(const char *s, uint32_t *out)
{
	if (!*s)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= 0xffffffffu)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* 0 found, 1 unknown, -1 lookup failed (errno) */
static int lookup_name(bool group, const char *name, uint32_t *id)
{
	long sz = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
	size_t n = sz > 0 ? (size_t)sz : 16384;
	for (int tries = 0; tries < 8; tries++, n *= 2) {
		char *buf = malloc(n);
		if (!buf)
			return -1;
		int rc;
		if (group) {
			struct group g, *res = NULL;
			rc = getgrnam_r(name, &g, buf, n, &res);
			if (!rc && res)
				*id = (uint32_t)res->gr_gid;
			free(buf);
			if (!rc)
				return res ? 0 : 1;
		} else {
			struct passwd pw, *res = NULL;
			rc = getpwnam_r(name, &pw, buf, n, &res);
			if (!rc && res)
				*id = (uint32_t)res->pw_uid;
			free(buf);
			if (!rc)
				return res ? 0 : 1;
		}
		if (rc != ERANGE) {
			/* ENOENT, ESRCH and friends: "not found" for most NSS modules */
			if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
				return 1;
			errno = rc;
			return -1;
		}
	}
	errno = ERANGE;
	return -1;
}

enum optkind { OPT_EXE, OPT_USER, OPT_GROUP };
static const char *const optname[] = {"allow-exe", "allow-user", "allow-group"};
static const char *const optwant[] = {"allow-exe=PATH[,PATH...]", "allow-user=NAME|UID[,...]",
				      "allow-group=NAME|GID[,...]"};

struct optval {
	enum optkind kind;
	const char *s; /* unescaped, arena */
	uint32_t id;
};

/* Parses the option tokens of a rule; returns NULL opts when none, or -1 on error. */
static int parse_opts(struct pol_loader *L, const char *file, unsigned lineno, const char *line,
		      size_t len, size_t pos, const struct wfs_rule_opts **outp)
{
	struct pol_arena *a = &L->p->arena;
	struct optval vals[MAX_OPT_VALUES];
	size_t nv = 0, counts[3] = {0, 0, 0};
	char text[POL_MAX_LINE + 1];
	size_t tl = 0;
	struct tok t;
	char qb[80];

	*outp = NULL;
	while (next_tok(line, len, &pos, &t)) {
		int kind = -1;
		size_t klen = 0;
		for (int k = 0; k < 3; k++) {
			klen = strlen(optname[k]);
			if (t.len >= klen && !memcmp(t.s, optname[k], klen) &&
			    (t.len == klen || t.s[klen] == '=')) {
				kind = k;
				break;
			}
		}
		if (kind < 0) {
			pol_diag(&L->diag, true, file, lineno, t.col,
				 "unknown option '%s'; expected allow-exe=, allow-user= or "
				 "allow-group=",
				 q(&t, qb, sizeof(qb)));
			return -1;
		}
		if (t.len <= klen + 1) {
			pol_diag(&L->diag, true, file, lineno, t.col,
				 "option '%s' needs a value; expected %s", optname[kind],
				 optwant[kind]);
			return -1;
		}
		/* elements, split on unescaped commas */
		size_t i = klen + 1;
		for (;;) {
			size_t s = i;
			while (i < t.len && t.s[i] != ',') {
				if (t.s[i] == '\\' && i + 1 < t.len)
					i++;
				i++;
			}
			unsigned ecol = t.col + (unsigned)s;
			if (i == s) {
				pol_diag(&L->diag, true, file, lineno, ecol,
					 "empty value in '%s' list; expected %s", optname[kind],
					 optwant[kind]);
				return -1;
			}
			if (nv == MAX_OPT_VALUES) {
				pol_diag(&L->diag, true, file, lineno, ecol,
					 "too many option values; expected at most %u per rule",
					 MAX_OPT_VALUES);
				return -1;
			}
			char *v = pol_arena_alloc(a, i - s + 1);
			if (!v) {
				L->oom = true;
				return -1;
			}
			pol_unescape(t.s + s, i - s, v);
			struct optval *ov = &vals[nv];
			ov->kind = (enum optkind)kind;
			ov->s = v;
			if (kind == OPT_EXE) {
				if (v[0] != '/') {
					pol_diag(&L->diag, true, file, lineno, ecol,
						 "allow-exe path '%.200s' is not absolute; "
						 "expected a "
						 "path starting with '/'",
						 v);
					return -1;
				}
				if (L->flags & WFS_POLICY_CHECK_EXES)
					pol_check_exe(L, file, lineno, ecol, v);
			} else if (!parse_id(v, &ov->id)) {
				bool grp = kind == OPT_GROUP;
				int rc = lookup_name(grp, v, &ov->id);
				if (rc) {
					if (rc > 0)
						pol_diag(&L->diag, true, file, lineno, ecol,
							 "unknown %s '%.200s'; expected a %s name "
							 "or a numeric %s",
							 grp ? "group" : "user", v,
							 grp ? "group" : "user",
							 grp ? "gid" : "uid");
					else
						pol_diag(&L->diag, true, file, lineno, ecol,
							 "cannot look up %s '%.200s': %s",
							 grp ? "group" : "user", v,
							 strerror(errno));
					return -1;
				}
			}
			counts[kind]++;
			nv++;
			if (i >= t.len)
				break;
			i++; /* ',' */
			if (i == t.len) {
				pol_diag(&L->diag, true, file, lineno, t.col + (unsigned)i,
					 "empty value in '%s' list; expected %s", optname[kind],
					 optwant[kind]);
				return -1;
			}
		}
		if (tl)
			text[tl++] = ' ';
		tl += pol_unescape(t.s, t.len, text + tl);
	}
	if (!nv)
		return 0;
	struct wfs_rule_opts *o = pol_arena_alloc(a, sizeof(*o));
	if (!o || !(o->text = pol_arena_strndup(a, text, tl)))
		goto oom;
	if (counts[OPT_EXE] && !(o->exes = pol_arena_alloc(a, counts[OPT_EXE] * sizeof(char *))))
		goto oom;
	if (counts[OPT_USER] && !(o->uids = pol_arena_alloc(a, counts[OPT_USER] * sizeof(uid_t))))
		goto oom;
	if (counts[OPT_GROUP] && !(o->gids = pol_arena_alloc(a, counts[OPT_GROUP] * sizeof(gid_t))))
		goto oom;
	for (size_t k = 0; k < nv; k++) {
		if (vals[k].kind == OPT_EXE)
			o->exes[o->nexes++] = vals[k].s;
		else if (vals[k].kind == OPT_USER)
			o->uids[o->nuids++] = (uid_t)vals[k].id;
		else
			o->gids[o->ngids++] = (gid_t)vals[k].id;
	}
	*outp = o;
	return 0;
oom:
	L->oom = true;
	return -1;
}

static struct rule *add_rule(struct pol_loader *L)
{
	struct wfs_policy *p = L->p;
	if (p->nrules == p->caprules) {
		size_t cap = p->caprules ? p->caprules * 2 : 64;
		struct rule *r = realloc(p->rules, cap * sizeof(*r));
		if (!r) {
			L->oom = true;
			return NULL;
		}
		p->rules = r;
		p->caprules = cap;
	}
	struct rule *r = &p->rules[p->nrules++];
	memset(r, 0, sizeof(*r));
	return r;
}

static void stmt_default(struct pol_loader *L, const char *file, unsigned lineno, const char *line,
			 size_t len, size_t pos, const struct tok *kw)
{
	struct tok t, extra;
	char qb[80];
	enum wfs_class c;
	if (!next_tok(line, len, &pos, &t)) {
		pol_diag(&L->diag, true, file, lineno, kw->col + (unsigned)kw->len,
			 "missing class after 'default'; expected public, sensitive or deny");
		return;
	}
	if (!parse_class(&t, &c)) {
		pol_diag(&L->diag, true, file, lineno, t.col,
			 "unknown class '%s'; expected public, sensitive or deny",
			 q(&t, qb, sizeof(qb)));
		return;
	}
	if (next_tok(line, len, &pos, &extra)) {
		pol_diag(&L->diag, true, file, lineno, extra.col,
			 "unexpected '%s' after the default class; expected the end of the line",
			 q(&extra, qb, sizeof(qb)));
		return;
	}
	struct wfs_policy *p = L->p;
	if (p->has_default) {
		pol_diag(&L->diag, true, file, lineno, kw->col,
			 "duplicate 'default'; already set at %s:%u; expected one default per "
			 "policy",
			 p->def_file, p->def_line);
		return;
	}
	p->has_default = true;
	p->def = c;
	p->def_file = file;
	p->def_line = lineno;
}

static void stmt_include(struct pol_loader *L, const char *file, unsigned lineno, const char *line,
			 size_t len, size_t pos, const struct tok *kw)
{
	struct tok t, extra;
	char qb[80];
	if (L->flags & WFS_POLICY_NO_INCLUDE) {
		pol_diag(&L->diag, true, file, lineno, kw->col,
			 "'include' is not allowed here; expected a rule or 'default'");
		return;
	}
	if (!next_tok(line, len, &pos, &t)) {
		pol_diag(&L->diag, true, file, lineno, kw->col + (unsigned)kw->len,
			 "missing file after 'include'; expected a path or a glob");
		return;
	}
	if (next_tok(line, len, &pos, &extra)) {
		pol_diag(&L->diag, true, file, lineno, extra.col,
			 "unexpected '%s' after the include path; expected the end of the line",
			 q(&extra, qb, sizeof(qb)));
		return;
	}
	if (trailing_backslash(t.s, t.len)) {
		pol_diag(&L->diag, true, file, lineno, t.col + (unsigned)t.len - 1,
			 "trailing '\\' in include path; expected a character after it");
		return;
	}
	pol_include(L, file, lineno, t.col, t.s, t.len);
}

static void stmt_rule(struct pol_loader *L, const char *file, unsigned lineno, const char *line,
		      size_t len, size_t pos, const struct tok *kw, enum wfs_class c)
{
	struct tok t;
	struct pattern pat;
	size_t erroff;
	const char *errmsg;
	if (!next_tok(line, len, &pos, &t)) {
		pol_diag(&L->diag, true, file, lineno, kw->col + (unsigned)kw->len,
			 "missing pattern after '%s'; expected a glob such as /.ssh/** or *.pem",
			 wfs_class_name(c));
		return;
	}
	if (pol_pattern_compile(&L->p->arena, t.s, t.len, &pat, &erroff, &errmsg)) {
		pol_diag(&L->diag, true, file, lineno, t.col + (unsigned)erroff, "%s", errmsg);
		return;
	}
	const struct wfs_rule_opts *opts;
	if (parse_opts(L, file, lineno, line, len, pos, &opts))
		return;
	const char *text = pol_arena_strndup(&L->p->arena, t.s, t.len);
	struct rule *r = text ? add_rule(L) : NULL;
	if (!r) {
		L->oom = true;
		return;
	}
	r->cls = c;
	r->opts = opts;
	r->file = file;
	r->line = lineno;
	r->col = t.col;
	r->text = text;
	r->pat = pat;
	r->lit_exact = !pat.floating;
	for (uint32_t k = 0; k < pat.nc; k++)
		if (pat.c[k].kind != PC_LIT)
			r->lit_exact = false;
}

void pol_parse_line(struct pol_loader *L, const char *file, const char *line, size_t len,
		    unsigned lineno)
{
	if (L->diag.stopped || L->oom)
		return;
	if (len && line[len - 1] == '\r')
		len--;
	if (len > POL_MAX_LINE) {
		pol_diag(&L->diag, true, file, lineno, POL_MAX_LINE + 1,
			 "line is too long (%zu bytes); expected at most %u bytes per line", len,
			 POL_MAX_LINE);
		return;
	}
	const char *nul = memchr(line, 0, len);
	if (nul) {
		pol_diag(&L->diag, true, file, lineno, (unsigned)(nul - line) + 1,
			 "nul byte in line; expected text");
		return;
	}
	size_t bad = pol_utf8_check(line, len);
	if (bad < len) {
		pol_diag(&L->diag, true, file, lineno, (unsigned)bad + 1,
			 "invalid utf-8 (byte 0x%02x); expected utf-8 text",
			 (unsigned char)line[bad]);
		return;
	}
	size_t pos = 0;
	struct tok kw;
	char qb[80];
	enum wfs_class c;
	if (!next_tok(line, len, &pos, &kw))
		return;
	if (tok_is(&kw, "default"))
		stmt_default(L, file, lineno, line, len, pos, &kw);
	else if (tok_is(&kw, "include"))
		stmt_include(L, file, lineno, line, len, pos, &kw);
	else if (parse_class(&kw, &c))
		stmt_rule(L, file, lineno, line, len, pos, &kw, c);
	else
		pol_diag(&L->diag, true, file, lineno, kw.col,
			 "unknown class '%s'; expected public, sensitive, deny, default or "
			 "include",
			 q(&kw, qb, sizeof(qb)));
}

void pol_parse_text(struct pol_loader *L, const char *file, const char *buf, size_t len)
{
	size_t pos = 0;
	unsigned lineno = 0;
	while (pos < len && !L->diag.stopped && !L->oom) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t e = nl ? (size_t)(nl - buf) : len;
		pol_parse_line(L, file, buf + pos, e - pos, ++lineno);
		pos = e + 1;
	}
}
