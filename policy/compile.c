/*
 * compile.c - builds the match index of a parsed policy and reports rules
 * that can never decide.
 *
 * Every rule lands in exactly one candidate list:
 *  - anchored rules hang off a trie of their leading literal components
 *    (one hash table keyed by (parent node, component));
 *  - floating rules ("**" first) are keyed by their first real component:
 *    its literal text, its ".ext" tail, or its 1-2 byte literal head;
 *  - the rest go to a general list checked against every path.
 * Lists hold rule indices in descending order, so classify can stop at the
 * first match of each list and keep the highest (last) matching rule.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct builder {
	struct pol_index *ix;
	size_t capnodes;
};

static uint32_t new_node(struct builder *b, uint8_t kind)
{
	struct pol_index *ix = b->ix;
	if (ix->nnodes == b->capnodes) {
		size_t cap = b->capnodes ? b->capnodes * 2 : 64;
		struct ix_node *v = realloc(ix->nodes, cap * sizeof(*v));
		if (!v)
			return IX_NONE;
		ix->nodes = v;
		b->capnodes = cap;
	}
	struct ix_node *n = &ix->nodes[ix->nnodes];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	return (uint32_t)ix->nnodes++;
}

static uint32_t find_or_add(struct builder *b, uint32_t tag, const char *key, size_t klen,
			    uint8_t kind)
{
	struct pol_index *ix = b->ix;
	uint64_t h = pol_hash(key, klen);
	uint32_t node = pol_ix_find(ix, tag, key, klen, h);
	if (node != IX_NONE)
		return node;
	node = new_node(b, kind);
	if (node == IX_NONE)
		return IX_NONE;
	uint64_t m = pol_mixtag(h, tag);
	size_t mask = ix->cap - 1, i = (size_t)m & mask;
	while (ix->tab[i].key)
		i = (i + 1) & mask;
	ix->tab[i] = (struct ix_ent){
		.h = m, .key = key, .klen = (uint32_t)klen, .tag = tag, .node = node};
	ix->used++;
	return node;
}

/* Literal head (before the first wildcard), tail (after the last one) and
 * longest literal run of a glob component, unescaped. */
static void glob_lits(const struct pcomp *pc, char *head, size_t *hl, char *tail, size_t *tl,
		      char *run, size_t *rl)
{
	const char *p = pc->s, *pe = pc->s + pc->len;
	bool seen_special = false;
	*hl = *tl = *rl = 0;
	while (p < pe) {
		if (*p == '*' || *p == '?' || *p == '[') {
			if (*p == '[') {
				bool bad;
				const char *e = pol_bracket_end(p, pe, &bad);
				p = e ? e : pe;
			} else {
				p++;
			}
			seen_special = true;
			*tl = 0;
			continue;
		}
		if (*p == '\\' && p + 1 < pe)
			p++;
		if (!seen_special)
			head[(*hl)++] = *p;
		tail[(*tl)++] = *p;
		if (*tl > *rl) {
			memcpy(run, tail, *tl);
			*rl = *tl;
		}
		p++;
	}
}

static bool all_stars(const struct pcomp *pc)
{
	if (pc->kind != PC_GLOB)
		return false;
	for (uint32_t i = 0; i < pc->len; i++)
		if (pc->s[i] != '*')
			return false;
	return true;
}

static bool is_catch_all(const struct rule *r)
{
	const struct pattern *p = &r->pat;
	return (p->nc == 1 && all_stars(&p->c[0])) ||
	       (p->nc == 2 && p->c[0].kind == PC_DSTAR && all_stars(&p->c[1]));
}

static int build_index(struct wfs_policy *p)
{
	struct pol_index *ix = &p->ix;
	struct builder b = {.ix = ix};
	size_t n = p->nrules, slots = 16;
	for (size_t i = 0; i < n; i++)
		slots += p->rules[i].pat.nc + 1;
	ix->cap = 16;
	while (ix->cap < 2 * slots)
		ix->cap *= 2;
	ix->tab = calloc(ix->cap, sizeof(*ix->tab));
	uint32_t *rnode = malloc((n ? n : 1) * sizeof(*rnode));
	if (!ix->tab || !rnode)
		goto oom;
	if (new_node(&b, IXN_TRIE) != 0)
		goto oom;
	ix->gen_node = new_node(&b, IXN_GEN);
	if (ix->gen_node == IX_NONE)
		goto oom;

	for (size_t i = 0; i < n; i++) {
		const struct pattern *pat = &p->rules[i].pat;
		uint32_t node = 0;
		if (pat->floating) {
			const struct pcomp *c1 = &pat->c[1];
			uint32_t tag = IX_NONE;
			const char *key = NULL;
			size_t klen = 0;
			if (c1->kind == PC_LIT) {
				tag = IX_TAG_LIT;
				key = c1->s;
				klen = c1->len;
				ix->n_lit++;
			} else {
				char *head = pol_arena_alloc(&p->arena, c1->len + 1);
				char *tail = pol_arena_alloc(&p->arena, c1->len + 1);
				char *run = pol_arena_alloc(&p->arena, c1->len + 1);
				size_t hl, tl, rl;
				if (!head || !tail || !run)
					goto oom;
				glob_lits(c1, head, &hl, tail, &tl, run, &rl);
				const char *dot = tl ? memrchr(tail, '.', tl) : NULL;
				if (dot) {
					tag = IX_TAG_EXT;
					key = dot;
					klen = tl - (size_t)(dot - tail);
					ix->n_ext++;
				} else if (hl >= 2) {
					tag = IX_TAG_P2;
					key = head;
					klen = 2;
					unsigned k = (unsigned char)head[0] << 8 |
						     (unsigned char)head[1];
					ix->p2bits[k >> 6] |= 1ull << (k & 63);
					ix->n_p2++;
				} else if (rl >= 3) {
					tag = IX_TAG_TRI;
					key = run + rl - 3;
					klen = 3;
					unsigned k = pol_tri_bit(key);
					ix->tribits[k >> 6] |= 1ull << (k & 63);
					ix->n_tri++;
				} else if (hl == 1) {
					tag = IX_TAG_P1;
					key = head;
					klen = 1;
					unsigned k = (unsigned char)head[0];
					ix->p1bits[k >> 6] |= 1ull << (k & 63);
					ix->n_p1++;
				}
			}
			if (tag == IX_NONE) {
				node = ix->gen_node;
			} else {
				node = find_or_add(&b, tag, key, klen, IXN_FLOAT);
				if (node == IX_NONE)
					goto oom;
				ix->nodes[node].lit1 = tag == IX_TAG_LIT;
			}
		} else {
			for (uint32_t k = 0; k < pat->nc && pat->c[k].kind == PC_LIT; k++) {
				node = find_or_add(&b, node, pat->c[k].s, pat->c[k].len, IXN_TRIE);
				if (node == IX_NONE)
					goto oom;
				ix->has_trie = true;
			}
		}
		rnode[i] = node;
		ix->nodes[node].n++;
	}
	uint32_t off = 0;
	for (size_t k = 0; k < ix->nnodes; k++) {
		ix->nodes[k].off = off;
		off += ix->nodes[k].n;
		ix->nodes[k].n = 0;
	}
	ix->lists = malloc((off ? off : 1) * sizeof(uint32_t));
	if (!ix->lists)
		goto oom;
	for (size_t i = n; i-- > 0;) {
		struct ix_node *nd = &ix->nodes[rnode[i]];
		ix->lists[nd->off + nd->n++] = (uint32_t)i;
	}
	free(rnode);
	return 0;
oom:
	free(rnode);
	return -1;
}

static const char *shorten(const char *s, char *buf, size_t n)
{
	size_t l = strlen(s);
	if (l < n)
		return s;
	memcpy(buf, s, n - 4);
	memcpy(buf + n - 4, "...", 4);
	return buf;
}

/* Warns about rules whose every match is also matched by a later rule:
 * exact duplicates, rules before a catch-all, and literal rules a later
 * rule covers. Never guesses: each warning is a proof. */
static int shadow_warnings(const struct wfs_policy *p, struct pol_diagsink *diag)
{
	size_t n = p->nrules;
	if (!n)
		return 0;
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	int32_t *seen = malloc(cap * sizeof(*seen));
	bool *dead = calloc(n, sizeof(*dead));
	if (!seen || !dead) {
		free(seen);
		free(dead);
		return -1;
	}
	memset(seen, 0xff, cap * sizeof(*seen));
	char qa[64], qb[64];
	for (size_t i = n; i-- > 0;) {
		const struct rule *r = &p->rules[i];
		uint64_t h = pol_hash(r->pat.norm, strlen(r->pat.norm));
		size_t k = (size_t)h & (cap - 1);
		for (; seen[k] >= 0; k = (k + 1) & (cap - 1)) {
			const struct rule *o = &p->rules[seen[k]];
			if (!strcmp(o->pat.norm, r->pat.norm))
				break;
		}
		if (seen[k] < 0) {
			seen[k] = (int32_t)i;
			continue;
		}
		const struct rule *o = &p->rules[seen[k]];
		dead[i] = true;
		pol_diag(diag, false, r->file, r->line, r->col,
			 "rule never decides: pattern '%s' is repeated at %s:%u and the last "
			 "matching rule wins; expected each pattern once",
			 shorten(r->text, qa, sizeof(qa)), o->file, o->line);
	}
	size_t ca = n;
	for (size_t i = n; i-- > 0;)
		if (is_catch_all(&p->rules[i])) {
			ca = i;
			break;
		}
	char path[POL_MAX_LINE + 8];
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = &p->rules[i];
		if (dead[i])
			continue;
		if (ca < n && i < ca) {
			const struct rule *o = &p->rules[ca];
			pol_diag(diag, false, r->file, r->line, r->col,
				 "rule never decides: the later rule '%s' at %s:%u matches every "
				 "path",
				 shorten(o->text, qb, sizeof(qb)), o->file, o->line);
			continue;
		}
		const struct pattern *pat = &r->pat;
		bool float1 = pat->floating && pat->nc == 2 && pat->c[1].kind == PC_LIT;
		if (!r->lit_exact && !float1)
			continue;
		size_t l = 0;
		for (uint32_t k = pat->floating ? 1 : 0; k < pat->nc; k++) {
			if (l + 1 + pat->c[k].len >= sizeof(path))
				goto next;
			path[l++] = '/';
			memcpy(path + l, pat->c[k].s, pat->c[k].len);
			l += pat->c[k].len;
		}
		int j = pol_best(p, path, l);
		if (j > (int)i) {
			const struct rule *o = &p->rules[j];
			/* a floating literal is only covered by another floating
			 * one-component rule; an anchored literal by any rule */
			if (float1 && !(o->pat.floating && o->pat.nc == 2))
				goto next;
			pol_diag(diag, false, r->file, r->line, r->col,
				 "rule never decides: every path it matches also matches the "
				 "later rule '%s' at %s:%u",
				 shorten(o->text, qb, sizeof(qb)), o->file, o->line);
		}
	next:;
	}
	free(seen);
	free(dead);
	return 0;
}

int pol_compile(struct wfs_policy *p, struct pol_diagsink *diag)
{
	if (build_index(p))
		return -1;
	if (diag && shadow_warnings(p, diag))
		return -1;
	return 0;
}

void pol_index_free(struct pol_index *ix)
{
	free(ix->tab);
	free(ix->nodes);
	free(ix->lists);
	memset(ix, 0, sizeof(*ix));
}
