/* fs_policy.h - the policy in force and the decisions it makes. */
#ifndef WARDFS_FS_POLICY_H
#define WARDFS_FS_POLICY_H

#include "fs.h"

/* fs_policy.c: decisions by the policy in force. Each decision handed out
 * holds its policy until wfs_decision_put: a reload cannot free it under
 * the request. */
void wfs_classify(struct wfs_inode *n, const char *relpath, struct wfs_decision *out);
void wfs_classify_path(struct wfs_fs *fs, const char *relpath, struct wfs_decision *out);
void wfs_decision_put(struct wfs_decision *d);
/* Whether two paths decide alike under one policy: a reload between two
 * classifications must not make a same-directory rename look like a class
 * change. */
bool wfs_paths_decide_alike(struct wfs_fs *fs, const char *a, const char *b);
/* Whether every path below a decides as the same path below b, by the
 * policy alone (wfs_policy_subtrees_alike): no walk needed. */
bool wfs_subtrees_decide_alike(struct wfs_fs *fs, const char *a, const char *b);
void wfs_classify_paths(struct wfs_fs *fs, const char *a, const char *b, struct wfs_decision *da,
			struct wfs_decision *db);
/* Loads the policy (at mount) or reloads it; the old one goes with the
 * last decision made by it. */
int wfs_fs_reload_policy(struct wfs_fs *fs, bool initial);
void wfs_fs_policy_status(struct wfs_fs *fs, char *buf, size_t len);

#endif
