/*
 * policy_load.c - loading a policy file the one way every command does:
 * with the loader's safety checks for the caller (as root, every file the
 * policy reads must be root's and not writable by group or others, so the
 * CLI refuses exactly what the daemon would), and the built-in default
 * only when no file was named and the default one does not exist. A named
 * file that is missing is an error: a typo must not make everything public.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "say.h"
#include "vault.h"

int wfs_vault_open_policy(const char *path, unsigned how, struct wfs_policy **out,
			  struct wfs_policy_diags *d, bool *builtin)
{
	unsigned flags = wfs_policy_caller_flags();
	int r;

	*out = NULL;
	*builtin = false;
	if (how & (WFS_LOAD_CHECK | WFS_LOAD_DAEMON))
		flags |= WFS_POLICY_CHECK_EXES;
	r = wfs_policy_load(path ? path : WFS_DEFAULT_POLICY, flags, out, d);
	if (r == -ENOENT && path == NULL && !(how & WFS_LOAD_CHECK)) {
		wfs_policy_diags_free(d); /* the missing file is not an error here */
		*builtin = true;
		*out = wfs_policy_default();
		return *out ? 0 : -ENOMEM;
	}
	if (r == 0 && *out == NULL)
		r = -EINVAL;
	if (r != 0) {
		wfs_policy_free(*out);
		*out = NULL;
		return r == -ENOENT ? r : -EINVAL;
	}
	return 0;
}

int wfs_vault_load_policy(const char *path, unsigned how, struct wfs_policy **out)
{
	struct wfs_policy_diags d = {0};
	const char *file = path ? path : WFS_DEFAULT_POLICY;
	char line[1200];
	bool builtin;
	int r = wfs_vault_open_policy(path, how, out, &d, &builtin);

	for (size_t i = 0; i < d.n; i++) {
		if ((how & WFS_LOAD_QUIET) && !d.v[i].is_error)
			continue;
		wfs_policy_diag_format(&d.v[i], line, sizeof(line));
		vault_detail("%s", line);
	}
	wfs_policy_diags_free(&d);
	if (builtin)
		vault_warning(
			"%s does not exist; using the built-in default policy (everything public)",
			file);
	if (r == -ENOMEM)
		vault_error("out of memory");
	else if (r != 0 && !(how & WFS_LOAD_CHECK))
		vault_error("cannot use the policy '%s'", file);
	return r;
}
