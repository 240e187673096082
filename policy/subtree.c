/*
 * subtree.c - does a whole subtree decide alike under two names?
 *
 * Renaming a directory must not change the decision of any file below it
 * (daemon/rename_class.c). Walking the subtree answers that for the files
 * there now, at a cost that grows with the tree. Most renames need no walk,
 * which is decided here from the patterns alone.
 *
 * A rule matches a/X iff its pattern, run over a's components and then X's,
 * ends in a match. Run as a set of pattern positions (an NFA), the part
 * after a depends only on the set a leaves: when a and b leave the same set
 * (or both already matched, a leading directory), the rule matches a/X iff
 * it matches b/X, for every X. When that holds for every rule, every file
 * below keeps its decision, whatever the tree holds.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Adds position i and, past each "**", the positions after it (it may
 * match no component). */
static void reach(const struct pcomp *pc, size_t np, bool *s, size_t i)
{
	for (; i <= np && !s[i]; i++) {
		s[i] = true;
		if (i == np || pc[i].kind != PC_DSTAR)
			break;
	}
}

/*
 * The positions the pattern can be at after the components of [t, te), in
 * s (np + 1 entries; scratch the same size). pol_seq_match's language: "**"
 * is any run of components, and position np (pattern used up) is a match of
 * a leading directory, kept as the only member since every path below
 * matches then.
 */
static void run(const struct pattern *pat, const char *t, const char *te, bool *s, bool *scratch)
{
	size_t np = pat->nc;
	memset(s, 0, np + 1);
	reach(pat->c, np, s, 0);
	while (!s[np]) {
		t = pol_skip_slashes(t, te);
		if (t == te)
			return;
		const char *ce = pol_comp_end(t, te);
		memset(scratch, 0, np + 1);
		for (size_t i = 0; i < np; i++) {
			if (!s[i])
				continue;
			if (pat->c[i].kind == PC_DSTAR)
				reach(pat->c, np, scratch, i);
			else if (pol_comp_match(&pat->c[i], t, (size_t)(ce - t)))
				reach(pat->c, np, scratch, i + 1);
		}
		memcpy(s, scratch, np + 1);
		t = ce;
	}
	memset(s, 0, np);
}

bool wfs_policy_subtrees_alike(const struct wfs_policy *p, const char *a, const char *b)
{
	size_t most = 0;
	for (size_t i = 0; i < p->nrules; i++)
		if (p->rules[i].pat.nc > most)
			most = p->rules[i].pat.nc;
	bool *sa = calloc(3 * (most + 1), 1);
	if (!sa)
		return false; /* cannot tell: the caller looks at the files */
	bool *sb = sa + most + 1, *scratch = sb + most + 1, alike = true;
	for (size_t i = 0; alike && i < p->nrules; i++) {
		const struct pattern *pat = &p->rules[i].pat;
		run(pat, a, a + strlen(a), sa, scratch);
		run(pat, b, b + strlen(b), sb, scratch);
		alike = !memcmp(sa, sb, pat->nc + 1);
	}
	free(sa);
	return alike;
}
