/*
 * glob.c - policy patterns: compiling a gitignore-style glob into path
 * components, and matching components and component sequences.
 *
 * A compiled pattern is a list of components, each a literal, a glob
 * (* ? [...] and backslash escapes, never crossing '/') or "**" (zero or more
 * whole components). Floating patterns (no '/' but a trailing one) get a
 * leading "**"; a trailing "**" becomes "*" (one or more components, since a
 * pattern that matches a directory also matches everything beneath it).
 */
#include <string.h>

#include "internal.h"

static bool ascii_class(const char *name, size_t n, uint32_t c, bool *known)
{
	*known = true;
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
	bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
	bool digit = c >= '0' && c <= '9';
	bool print = c >= 0x20 && c < 0x7f;
	if (IS("alpha"))
		return lower || upper;
	if (IS("alnum"))
		return lower || upper || digit;
	if (IS("digit"))
		return digit;
	if (IS("lower"))
		return lower;
	if (IS("upper"))
		return upper;
	if (IS("xdigit"))
		return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	if (IS("space"))
		return c == ' ' || (c >= '\t' && c <= '\r');
	if (IS("blank"))
		return c == ' ' || c == '\t';
	if (IS("cntrl"))
		return c < 0x20 || c == 0x7f;
	if (IS("print"))
		return print;
	if (IS("graph"))
		return print && c != ' ';
	if (IS("punct"))
		return print && c != ' ' && !lower && !upper && !digit;
#undef IS
	*known = false;
	return false;
}

/*
 * Parses the bracket expression at p ('['), testing code point tc. Returns
 * the byte after the closing ']', or NULL when unterminated or when it names
 * an unknown [:class:] (then *bad is set). The one parser serves validation
 * and matching, so both agree on where a class ends.
 */
static const char *bracket(const char *p, const char *pe, uint32_t tc, bool *matched, bool *bad)
{
	const char *q = p + 1;
	bool neg = false, m = false, first = true;
	*bad = false;
	if (q < pe && (*q == '!' || *q == '^')) {
		neg = true;
		q++;
	}
	for (;;) {
		if (q >= pe)
			return NULL;
		if (*q == ']' && !first)
			break;
		first = false;
		if (*q == '[' && q + 1 < pe && q[1] == ':') {
			const char *nm = q + 2, *e = nm;
			while (e < pe && ((*e >= 'a' && *e <= 'z')))
				e++;
			if (e + 1 < pe && e[0] == ':' && e[1] == ']') {
				bool known;
				if (ascii_class(nm, (size_t)(e - nm), tc, &known))
					m = true;
				if (!known) {
					*bad = true;
					return NULL;
				}
				q = e + 2;
				continue;
			}
		}
		if (*q == '\\' && ++q >= pe)
			return NULL;
		size_t n;
		uint32_t lo = pol_utf8_next(q, pe, &n);
		q += n;
		if (q + 1 < pe && *q == '-' && q[1] != ']') {
			q++;
			if (*q == '\\' && ++q >= pe)
				return NULL;
			uint32_t hi = pol_utf8_next(q, pe, &n);
			q += n;
			if (lo <= tc && tc <= hi)
				m = true;
		} else if (lo == tc) {
			m = true;
		}
	}
	*matched = m != neg;
	return q + 1;
}

const char *pol_bracket_end(const char *p, const char *pe, bool *bad_class)
{
	bool m;
	return bracket(p, pe, 0xffffffffu, &m, bad_class);
}

/* Classic one-star-backtrack glob over a single component. */
static bool glob_comp(const char *p, const char *pe, const char *t, const char *te)
{
	const char *sp = NULL, *st = NULL;
	while (t < te) {
		if (p < pe && *p == '*') {
			while (p < pe && *p == '*')
				p++;
			if (p == pe)
				return true;
			sp = p;
			st = t;
			continue;
		}
		if (p < pe) {
			size_t tn;
			uint32_t tc = (unsigned char)*t < 0x80 ? (tn = 1, (unsigned char)*t)
							       : pol_utf8_next(t, te, &tn);
			const char *np = NULL;
			bool ok;
			if (*p == '?') {
				ok = true;
				np = p + 1;
			} else if (*p == '[') {
				bool bad;
				np = bracket(p, pe, tc, &ok, &bad);
				if (!np)
					return false; /* not reached: validated at compile */
			} else {
				const char *q = p;
				if (*q == '\\')
					q++;
				size_t pn;
				uint32_t pc = pol_utf8_next(q, pe, &pn);
				ok = pc == tc;
				np = q + pn;
			}
			if (ok) {
				p = np;
				t += tn;
				continue;
			}
		}
		if (!sp)
			return false;
		size_t n;
		pol_utf8_next(st, te, &n);
		st += n;
		t = st;
		p = sp;
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

bool pol_comp_match(const struct pcomp *pc, const char *t, size_t tl)
{
	if (pc->kind == PC_LIT)
		return pc->len == tl && !memcmp(pc->s, t, tl);
	return glob_comp(pc->s, pc->s + pc->len, t, t + tl);
}

/* The same one-star-backtrack scheme one level up: "**" is the star and
 * components are the symbols. Running out of pattern is a match (the
 * pattern matched a leading directory of the path). */
bool pol_seq_match(const struct pcomp *pc, size_t np, const char *t, const char *te)
{
	size_t p = 0, sp = (size_t)-1;
	const char *st = NULL;
	for (;;) {
		if (p == np)
			return true;
		t = pol_skip_slashes(t, te);
		if (pc[p].kind == PC_DSTAR) {
			sp = ++p;
			st = t;
			continue;
		}
		if (t < te) {
			const char *ce = pol_comp_end(t, te);
			if (pol_comp_match(&pc[p], t, (size_t)(ce - t))) {
				p++;
				t = ce;
				continue;
			}
		}
		if (sp == (size_t)-1 || st >= te)
			return false;
		st = pol_skip_slashes(pol_comp_end(st, te), te);
		p = sp;
		t = st;
	}
}

/* ---- compiling ------------------------------------------------------------- */

struct range {
	size_t s, e;
};

static bool is_sep(const char *raw, size_t len, size_t i, size_t *w)
{
	if (raw[i] == '/') {
		*w = 1;
		return true;
	}
	if (raw[i] == '\\' && i + 1 < len && raw[i + 1] == '/') {
		*w = 2;
		return true;
	}
	return false;
}

int pol_pattern_compile(struct pol_arena *a, const char *raw, size_t len, struct pattern *out,
			size_t *erroff, const char **errmsg)
{
	struct range comps[POL_MAX_PATTERN_COMPS];
	size_t nc = 0, i = 0, cs = 0, w;
	bool leading = false;
	memset(out, 0, sizeof(*out));

	if (len && is_sep(raw, len, 0, &w))
		leading = true;
	while (i <= len) {
		if (i == len || is_sep(raw, len, i, &w)) {
			if (i > cs) {
				if (nc == POL_MAX_PATTERN_COMPS) {
					*erroff = i;
					*errmsg = "too many components in pattern; expected at "
						  "most 512";
					return -1;
				}
				comps[nc].s = cs;
				comps[nc].e = i;
				nc++;
			}
			if (i == len)
				break;
			i += w;
			cs = i;
			continue;
		}
		if (raw[i] == '\\') {
			if (i + 1 == len) {
				*erroff = i;
				*errmsg = "trailing '\\' in pattern; expected a character after it";
				return -1;
			}
			i += 2;
			continue;
		}
		if (raw[i] == '[') {
			bool bad;
			const char *e = pol_bracket_end(raw + i, raw + len, &bad);
			if (!e) {
				*erroff = i;
				*errmsg = bad ? "unknown character class in '[...]'; expected one "
						"of [:alnum:], [:alpha:], [:digit:], [:lower:], "
						"[:upper:], [:space:], [:punct:] and the like"
					      : "unterminated '[' in pattern; expected ']'";
				return -1;
			}
			const char *sl = memchr(raw + i, '/', (size_t)(e - (raw + i)));
			if (sl) {
				*erroff = (size_t)(sl - raw);
				*errmsg = "'/' inside '[...]' never matches; expected '/' only "
					  "between components";
				return -1;
			}
			i = (size_t)(e - raw);
			continue;
		}
		i++;
	}
	if (nc == 0) {
		*erroff = 0;
		*errmsg = "empty pattern; expected a glob such as /.ssh/** or *.pem";
		return -1;
	}
	bool floating = !leading && nc == 1;

	struct pcomp *pc = pol_arena_alloc(a, (nc + 1) * sizeof(*pc));
	if (!pc)
		goto oom;
	size_t n = 0;
	if (floating)
		pc[n++] = (struct pcomp){.s = "**", .len = 2, .kind = PC_DSTAR};
	for (size_t k = 0; k < nc; k++) {
		const char *s = raw + comps[k].s;
		size_t l = comps[k].e - comps[k].s;
		if (l == 2 && s[0] == '*' && s[1] == '*') {
			if (n && pc[n - 1].kind == PC_DSTAR)
				continue; /* "**" / "**" is one "**" */
			pc[n++] = (struct pcomp){.s = "**", .len = 2, .kind = PC_DSTAR};
			continue;
		}
		bool special = false;
		size_t ul = 0;
		for (size_t j = 0; j < l; j++) {
			if (s[j] == '\\') {
				j++;
			} else if (s[j] == '*' || s[j] == '?' || s[j] == '[') {
				special = true;
				break;
			}
			ul++;
		}
		if (special) {
			pc[n++] = (struct pcomp){.s = s, .len = (uint32_t)l, .kind = PC_GLOB};
			continue;
		}
		char *u = pol_arena_alloc(a, ul + 1);
		if (!u)
			goto oom;
		size_t m = 0;
		for (size_t j = 0; j < l; j++) {
			if (s[j] == '\\')
				j++;
			u[m++] = s[j];
		}
		pc[n++] = (struct pcomp){.s = u, .len = (uint32_t)m, .kind = PC_LIT};
	}
	/* a trailing "**" means one or more components; beneath-matching makes
	 * that the same as one component of any name */
	if (pc[n - 1].kind == PC_DSTAR)
		pc[n - 1] = (struct pcomp){.s = "*", .len = 1, .kind = PC_GLOB};
	/* copy glob texts into the arena (raw belongs to the caller) */
	size_t normlen = 1;
	for (size_t k = 0; k < n; k++) {
		if (pc[k].kind == PC_GLOB && pc[k].s >= raw && pc[k].s < raw + len) {
			pc[k].s = pol_arena_strndup(a, pc[k].s, pc[k].len);
			if (!pc[k].s)
				goto oom;
		}
		normlen += pc[k].len + 2;
	}
	char *norm = pol_arena_alloc(a, normlen);
	if (!norm)
		goto oom;
	char *q = norm;
	for (size_t k = 0; k < n; k++) {
		*q++ = "LGD"[pc[k].kind];
		memcpy(q, pc[k].s, pc[k].len);
		q += pc[k].len;
		*q++ = '/';
	}
	*q = 0;
	out->c = pc;
	out->nc = (uint32_t)n;
	out->floating = pc[0].kind == PC_DSTAR;
	out->norm = norm;
	return 0;
oom:
	*erroff = 0;
	*errmsg = "out of memory";
	return -1;
}
