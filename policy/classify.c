/*
 * classify.c - the hot path: classifying a path against a compiled policy
 * (no allocation, no I/O), explaining every match, checking allow-* options
 * against a caller, and naming classes and options.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *wfs_class_name(enum wfs_class c)
{
	switch (c) {
	case WFS_PUBLIC:
		return "public";
	case WFS_SENSITIVE:
		return "sensitive";
	case WFS_DENY:
		return "deny";
	}
	return "unknown";
}

/* Scans one candidate list (descending) for a match above *best. `t` is the
 * path component the list was found at (IXN_FLOAT) or the path start. */
static inline void scan(const struct wfs_policy *p, uint32_t node, const char *path, const char *t,
			const char *pe, int *best)
{
	const struct pol_index *ix = &p->ix;
	const struct ix_node *nd = &ix->nodes[node];
	const uint32_t *l = ix->lists + nd->off;
	for (uint32_t i = 0; i < nd->n; i++) {
		int r = (int)l[i];
		if (r <= *best)
			return;
		const struct rule *ru = &p->rules[r];
		bool ok;
		switch (nd->kind) {
		case IXN_TRIE:
			/* reaching the node proves a fully literal rule */
			ok = ru->lit_exact || pol_seq_match(ru->pat.c, ru->pat.nc, path, pe);
			break;
		case IXN_FLOAT:
			ok = (nd->lit1 && ru->pat.nc == 2) ||
			     pol_seq_match(ru->pat.c + 1, ru->pat.nc - 1, t, pe);
			break;
		default:
			ok = pol_seq_match(ru->pat.c, ru->pat.nc, path, pe);
			break;
		}
		if (ok) {
			*best = r;
			return;
		}
	}
}

int pol_best(const struct wfs_policy *p, const char *path, size_t len)
{
	const struct pol_index *ix = &p->ix;
	const char *pe = path + len, *t = path;
	int best = -1;
	if (!p->nrules)
		return -1;
	scan(p, ix->gen_node, path, path, pe, &best);
	scan(p, 0, path, path, pe, &best);
	uint32_t node = 0;
	bool trie = ix->has_trie;
	bool floats = ix->n_lit || ix->n_ext || ix->n_p2 || ix->n_p1 || ix->n_tri;
	if (!trie && !floats)
		return best;
	for (;;) {
		t = pol_skip_slashes(t, pe);
		if (t == pe)
			break;
		const char *ce = pol_comp_end(t, pe);
		size_t n = (size_t)(ce - t);
		uint64_t h = pol_hash(t, n);
		uint32_t c;
		if (trie) {
			c = pol_ix_find(ix, node, t, n, h);
			if (c == IX_NONE) {
				trie = false;
			} else {
				node = c;
				scan(p, c, path, t, pe, &best);
			}
		}
		if (ix->n_lit) {
			c = pol_ix_find(ix, IX_TAG_LIT, t, n, h);
			if (c != IX_NONE)
				scan(p, c, path, t, pe, &best);
		}
		if (ix->n_ext) {
			const char *dot = memrchr(t, '.', n);
			if (dot) {
				size_t dl = (size_t)(ce - dot);
				c = pol_ix_find(ix, IX_TAG_EXT, dot, dl, pol_hash(dot, dl));
				if (c != IX_NONE)
					scan(p, c, path, t, pe, &best);
			}
		}
		if (ix->n_p2 && n >= 2) {
			unsigned k = (unsigned char)t[0] << 8 | (unsigned char)t[1];
			if (ix->p2bits[k >> 6] & (1ull << (k & 63))) {
				c = pol_ix_find(ix, IX_TAG_P2, t, 2, pol_hash(t, 2));
				if (c != IX_NONE)
					scan(p, c, path, t, pe, &best);
			}
		}
		if (ix->n_p1) {
			unsigned k = (unsigned char)t[0];
			if (ix->p1bits[k >> 6] & (1ull << (k & 63))) {
				c = pol_ix_find(ix, IX_TAG_P1, t, 1, pol_hash(t, 1));
				if (c != IX_NONE)
					scan(p, c, path, t, pe, &best);
			}
		}
		if (ix->n_tri) {
			for (size_t i = 0; i + 3 <= n; i++) {
				unsigned k = pol_tri_bit(t + i);
				if (!(ix->tribits[k >> 6] & (1ull << (k & 63))))
					continue;
				c = pol_ix_find(ix, IX_TAG_TRI, t + i, 3, pol_hash(t + i, 3));
				if (c != IX_NONE)
					scan(p, c, path, t, pe, &best);
			}
		}
		t = ce;
	}
	return best;
}

static void fill(const struct wfs_policy *p, int r, struct wfs_decision *out)
{
	out->policy = p;
	if (r < 0) {
		out->cls = p->def;
		out->opts = NULL;
		out->file = NULL;
		out->line = 0;
		out->rule_index = -1;
		return;
	}
	const struct rule *ru = &p->rules[r];
	out->cls = ru->cls;
	out->opts = ru->opts;
	out->file = ru->file;
	out->line = ru->line;
	out->rule_index = r;
}

void wfs_policy_classify(const struct wfs_policy *p, const char *relpath, size_t len,
			 struct wfs_decision *out)
{
	fill(p, pol_best(p, relpath, len), out);
}

void wfs_policy_each_match(const struct wfs_policy *p, const char *relpath,
			   void (*fn)(void *arg, const struct wfs_decision *d), void *arg)
{
	size_t len = strlen(relpath);
	for (size_t i = 0; i < p->nrules; i++) {
		const struct rule *r = &p->rules[i];
		if (!pol_seq_match(r->pat.c, r->pat.nc, relpath, relpath + len))
			continue;
		struct wfs_decision d;
		fill(p, (int)i, &d);
		fn(arg, &d);
	}
}

static bool in_gids(gid_t g, const struct wfs_rule_opts *o)
{
	for (size_t i = 0; i < o->ngids; i++)
		if (o->gids[i] == g)
			return true;
	return false;
}

bool wfs_policy_allows(const struct wfs_decision *d, const struct wfs_caller *c)
{
	const struct wfs_rule_opts *o = d->opts;
	if (!o)
		return true;
	if (o->nexes) {
		bool ok = false;
		for (size_t i = 0; i < o->nexes && !ok; i++) {
			if (c->exe_is)
				ok = c->exe_is(c->exe_arg, o->exes[i]);
			else
				ok = c->exe && !strcmp(o->exes[i], c->exe);
		}
		if (!ok)
			return false;
	}
	if (o->nuids) {
		bool ok = false;
		for (size_t i = 0; i < o->nuids && !ok; i++)
			ok = o->uids[i] == c->uid;
		if (!ok)
			return false;
	}
	if (o->ngids) {
		bool ok = in_gids(c->gid, o);
		for (int i = 0; !ok && c->groups && i < c->ngroups; i++)
			ok = in_gids(c->groups[i], o);
		if (!ok)
			return false;
	}
	return true;
}

void wfs_rule_opts_format(const struct wfs_rule_opts *o, char *buf, size_t len)
{
	if (!len)
		return;
	snprintf(buf, len, "%s", o && o->text ? o->text : "");
}

size_t wfs_policy_rule_count(const struct wfs_policy *p)
{
	return p->nrules;
}

const char *wfs_policy_path(const struct wfs_policy *p)
{
	return p->path ? p->path : "";
}

size_t wfs_policy_sources(const struct wfs_policy *p, const struct wfs_policy_source **out)
{
	*out = p->sources;
	return p->nsources;
}

const char *wfs_policy_sha256(const struct wfs_policy *p)
{
	return p->sha_hex;
}

const char *wfs_policy_rule_text(const struct wfs_policy *p, int rule_index)
{
	if (rule_index < 0 || (size_t)rule_index >= p->nrules)
		return NULL;
	return p->rules[rule_index].text;
}
