/*
 * wardfs_status.h - the status a running daemon gives on its mount root,
 * as the extended attribute WFS_STATUS_XATTR (root only): its format, the
 * keys, and the one parser the CLI (status, umount, reload) reads it with.
 * Header only: the daemon writes the format, the CLI reads it, and neither
 * links the other for it.
 *
 * Format: text of at most WFS_STATUS_MAX bytes, one field a line,
 *
 *     KEY ": " VALUE "\n"
 *
 * KEY is lowercase letters, digits and '-', each at most once; VALUE runs
 * to the end of its line (it holds no newline; paths with one are not
 * supported as backing or mount point) and is "none" for an empty error.
 * Readers look fields up by key and ignore keys they do not know, so the
 * daemon may add fields; the order of lines carries no meaning.
 */
#ifndef WARDFS_STATUS_H
#define WARDFS_STATUS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define WFS_STATUS_XATTR "trusted.wardfs.status"
#define WFS_STATUS_MAX	 4096

/* `wardfs lock` and `unlock` (daemon/keys_lock.c), also on the mount
 * root, also root only (trusted.*: the kernel lets only root in the
 * initial namespace set them). lock: set, any value. unlock: set to the
 * master key, then a note for the audit row (which slot opened it).
 * open-sensitive: read, the paths of the encrypted files open now, one a
 * line, each starting with '/'. */
#define WFS_LOCK_XATTR		 "trusted.wardfs.lock"
#define WFS_UNLOCK_XATTR	 "trusted.wardfs.unlock"
#define WFS_OPEN_SENSITIVE_XATTR "trusted.wardfs.open-sensitive"

/* Keys the CLI relies on (written by daemon/ops_xattr.c and daemon/fs_policy.c). */
#define WFS_STATUS_PID		  "pid"		      /* the daemon's pid, decimal */
#define WFS_STATUS_POLICY	  "policy"	      /* the policy file in force */
#define WFS_STATUS_POLICY_SHA256  "policy-sha256"     /* hex, 64 digits */
#define WFS_STATUS_POLICY_RULES	  "policy-rules"      /* decimal */
#define WFS_STATUS_POLICY_ERROR	  "policy-last-error" /* the last reload's error, or "none" */
#define WFS_STATUS_POLICY_RELOADS "policy-reloads"    /* reloads tried, decimal */

/*
 * Splits the line line[0..n) into its key and value: true with *key,
 * *klen, *value and *vlen set, false for a line not of the format.
 */
static inline bool wfs_status_line(const char *line, size_t n, const char **key, size_t *klen,
				   const char **value, size_t *vlen)
{
	const char *colon = memchr(line, ':', n);

	if (colon == NULL || colon == line || colon + 1 >= line + n || colon[1] != ' ')
		return false;
	*key = line;
	*klen = (size_t)(colon - line);
	*value = colon + 2;
	*vlen = (size_t)(line + n - *value);
	return true;
}

/*
 * The value of key in the status text into buf (cut to len - 1 bytes):
 * true, or false with buf "?" when the status has no such field.
 */
static inline bool wfs_status_get(const char *status, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *l = status; *l;) {
		size_t n = strcspn(l, "\n"), klen, vlen;
		const char *k, *v;

		if (wfs_status_line(l, n, &k, &klen, &v, &vlen) && klen == kl &&
		    !memcmp(k, key, kl)) {
			snprintf(buf, len, "%.*s", (int)(vlen < len ? vlen : len - 1), v);
			return true;
		}
		l += n + (l[n] == '\n');
	}
	snprintf(buf, len, "?");
	return false;
}

#endif
