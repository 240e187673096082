/*
 * decision.c - comparing two decisions, for links and renames.
 *
 * A hard link or rename must never give a file a weaker decision than it
 * had: the daemon allows one only when the new name's decision is the old
 * one's, class and every allow-* option alike. Options are compared as
 * sets (order and repetition as written do not matter); the deciding
 * rule's location does not matter either.
 */
#include <string.h>

#include "internal.h"

static bool has_str(const char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

static bool same_strs(const char **a, size_t na, const char **b, size_t nb)
{
	for (size_t i = 0; i < na; i++)
		if (!has_str(b, nb, a[i]))
			return false;
	for (size_t i = 0; i < nb; i++)
		if (!has_str(a, na, b[i]))
			return false;
	return true;
}

static bool has_id(const unsigned *v, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

static bool same_ids(const unsigned *a, size_t na, const unsigned *b, size_t nb)
{
	for (size_t i = 0; i < na; i++)
		if (!has_id(b, nb, a[i]))
			return false;
	for (size_t i = 0; i < nb; i++)
		if (!has_id(a, na, b[i]))
			return false;
	return true;
}

bool wfs_decision_same(const struct wfs_decision *a, const struct wfs_decision *b)
{
	if (a->cls != b->cls)
		return false;
	const struct wfs_rule_opts *x = a->opts, *y = b->opts;
	if (!x || !y)
		return x == y;
	_Static_assert(sizeof(uid_t) == sizeof(unsigned) && sizeof(gid_t) == sizeof(unsigned),
		       "ids compared as unsigned");
	return same_strs(x->exes, x->nexes, y->exes, y->nexes) &&
	       same_ids((const unsigned *)x->uids, x->nuids, (const unsigned *)y->uids, y->nuids) &&
	       same_ids((const unsigned *)x->gids, x->ngids, (const unsigned *)y->gids, y->ngids);
}
