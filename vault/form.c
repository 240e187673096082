/*
 * form.c - does a file's form on disk (plain or encrypted) agree with its
 * policy class? One rule, so that migrate converts exactly the files that
 * policy scan reports and that the daemon counts as disagreeing.
 */
#include <string.h>

#include "vault.h"

enum wfs_form_fix wfs_vault_form_fix(enum wfs_class cls, enum wfs_form form)
{
	if (cls == WFS_SENSITIVE && form == WFS_FORM_PLAIN)
		return WFS_FIX_ENCRYPT;
	if (cls != WFS_SENSITIVE && form == WFS_FORM_ENCRYPTED)
		return WFS_FIX_DECRYPT;
	return WFS_FIX_NONE; /* agrees, or empty: fine in either class */
}

int wfs_vault_file_form(int dirfd, const char *name, const struct stat *st, enum wfs_form *form)
{
	*form = WFS_FORM_PLAIN; /* unused on failure */
	int r = wfs_form_of_at(dirfd, name, st->st_size, form);
	return r < 0 ? r : 0;
}

bool wfs_vault_name_disagrees(const struct wfs_policy *pol, const char *bname, const char *rel,
			      enum wfs_class *cls)
{
	struct wfs_decision d;

	wfs_policy_classify(pol, rel, strlen(rel), &d);
	*cls = d.cls;
	return (d.cls == WFS_SENSITIVE) != wfs_name_is_encrypted(bname, strlen(bname));
}

bool wfs_is_migrate_temp(const char *name)
{
	size_t n = strlen(name), s = strlen(WFS_MIGRATE_SUFFIX);

	return name[0] == '.' && n > s + 1 && !strcmp(name + n - s, WFS_MIGRATE_SUFFIX);
}
