/*
 * fs_policy.c - the filesystem's policy in force: loading, reloading on
 * SIGHUP or when the file changes, and per-inode classification cached by
 * generation.
 *
 * Classification is computed once per inode and kept until the policy
 * generation moves (a reload, or a rename that changes paths under a
 * directory); it is then recomputed lazily at the next use, never by
 * walking the tree.
 *
 * A decision points into its policy (rule options, file names). Every
 * decision handed out holds its policy (wfs_decision_put lets go), and so
 * does an inode's cached one: a reload drops only the filesystem's own
 * reference, and the old policy goes with the last decision made by it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs_policy.h"
#include "vault.h"
#include "wardfs_status.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void wfs_classify_path(struct wfs_fs *fs, const char *relpath, struct wfs_decision *out)
{
	pthread_rwlock_rdlock(&fs->policy_lock);
	wfs_policy_classify(fs->policy, relpath, strlen(relpath), out);
	wfs_policy_hold(out->policy);
	pthread_rwlock_unlock(&fs->policy_lock);
}

void wfs_decision_put(struct wfs_decision *d)
{
	wfs_policy_free(d->policy);
	d->policy = NULL;
}

bool wfs_subtrees_decide_alike(struct wfs_fs *fs, const char *a, const char *b)
{
	pthread_rwlock_rdlock(&fs->policy_lock);
	bool alike = wfs_policy_subtrees_alike(fs->policy, a, b);
	pthread_rwlock_unlock(&fs->policy_lock);
	return alike;
}

void wfs_classify_paths(struct wfs_fs *fs, const char *a, const char *b, struct wfs_decision *da,
			struct wfs_decision *db)
{
	pthread_rwlock_rdlock(&fs->policy_lock);
	wfs_policy_classify(fs->policy, a, strlen(a), da);
	wfs_policy_classify(fs->policy, b, strlen(b), db);
	wfs_policy_hold(da->policy);
	wfs_policy_hold(db->policy);
	pthread_rwlock_unlock(&fs->policy_lock);
}

bool wfs_paths_decide_alike(struct wfs_fs *fs, const char *a, const char *b)
{
	struct wfs_decision da, db;
	pthread_rwlock_rdlock(&fs->policy_lock);
	wfs_policy_classify(fs->policy, a, strlen(a), &da);
	wfs_policy_classify(fs->policy, b, strlen(b), &db);
	bool alike = wfs_decision_same(&da, &db);
	pthread_rwlock_unlock(&fs->policy_lock);
	return alike;
}

void wfs_classify(struct wfs_inode *n, const char *relpath, struct wfs_decision *out)
{
	struct wfs_fs *fs = n->fs;
	unsigned gen = atomic_load(&fs->policy_gen);
	pthread_mutex_lock(&n->open_lock);
	if (n->cls_gen == gen) {
		*out = n->dec;
		wfs_policy_hold(out->policy); /* n's reference keeps it meanwhile */
		pthread_mutex_unlock(&n->open_lock);
		return;
	}
	pthread_mutex_unlock(&n->open_lock);
	wfs_classify_path(n->fs, relpath, out);
	pthread_mutex_lock(&n->open_lock);
	struct wfs_decision was = n->dec;
	n->dec = *out;
	wfs_policy_hold(n->dec.policy);
	n->cls_gen = gen;
	pthread_mutex_unlock(&n->open_lock);
	wfs_decision_put(&was);
}

static void log_reload(struct wfs_fs *fs, bool ok, const char *detail)
{
	if (!fs->audit)
		return;
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_RELOAD,
		.path = fs->o->policy_path ? fs->o->policy_path : "(built-in)",
		.allowed = ok,
		.err = ok ? 0 : EINVAL,
		.detail = detail,
	};
	wfs_audit_record(fs->audit, &ev);
}

int wfs_fs_reload_policy(struct wfs_fs *fs, bool initial)
{
	struct wfs_policy *p = NULL;
	struct wfs_policy_diags diags = {0};
	const char *path = fs->o->policy_path;
	bool builtin = false;
	/* The loader every command uses (vault/policy_load.c): a policy
	 * named at mount must exist; the default one may be missing at
	 * mount (everything is public then), never at a reload. */
	int r = wfs_vault_open_policy(fs->o->policy_required || fs->policy ? path : NULL,
				      WFS_LOAD_DAEMON, &p, &diags, &builtin);
	if (builtin)
		fprintf(stderr, "wardfs: no policy file at %s; everything is public\n",
			WFS_DEFAULT_POLICY);
	char msg[512] = "";
	for (size_t i = 0; i < diags.n; i++) {
		wfs_policy_diag_format(&diags.v[i], msg, sizeof(msg));
		fprintf(stderr, "wardfs: %s\n", msg);
	}
	if (r || !p) {
		if (diags.nerrors)
			for (size_t i = 0; i < diags.n; i++)
				if (diags.v[i].is_error) {
					wfs_policy_diag_format(&diags.v[i], msg, sizeof(msg));
					break;
				}
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s: %s", path ? path : "policy", strerror(-r));
		pthread_rwlock_wrlock(&fs->policy_lock);
		snprintf(fs->policy_error, sizeof(fs->policy_error), "%s", msg);
		if (!initial)
			fs->policy_reloads++;
		pthread_rwlock_unlock(&fs->policy_lock);
		if (!initial) {
			fprintf(stderr,
				"wardfs: policy reload rejected; keeping the policy in force\n");
			log_reload(fs, false, msg);
		}
		wfs_policy_diags_free(&diags);
		return -EINVAL;
	}
	wfs_policy_diags_free(&diags);
	pthread_rwlock_wrlock(&fs->policy_lock);
	const struct wfs_policy *old = fs->policy;
	fs->policy = p;
	fs->policy_error[0] = '\0';
	fs->policy_loaded_ns = now_ns();
	if (!initial)
		fs->policy_reloads++;
	atomic_fetch_add(&fs->policy_gen, 1);
	pthread_rwlock_unlock(&fs->policy_lock);
	/* Decisions made by the old policy hold it: it goes with the last. */
	wfs_policy_free(old);
	if (!initial) {
		fprintf(stderr, "wardfs: policy reloaded from %s (%zu rules)\n",
			path ? path : "(built-in)", wfs_policy_rule_count(p));
		log_reload(fs, true, wfs_policy_sha256(p));
	}
	return 0;
}

void wfs_fs_policy_status(struct wfs_fs *fs, char *buf, size_t len)
{
	pthread_rwlock_rdlock(&fs->policy_lock);
	const char *path = wfs_policy_path(fs->policy);
	time_t t = (time_t)(fs->policy_loaded_ns / 1000000000);
	struct tm tm;
	char when[64];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, len,
		 WFS_STATUS_POLICY ": %s\n" WFS_STATUS_POLICY_SHA256
				   ": %s\npolicy-loaded: %s\n" WFS_STATUS_POLICY_RULES
				   ": %zu\n" WFS_STATUS_POLICY_ERROR
				   ": %s\n" WFS_STATUS_POLICY_RELOADS ": %u\n",
		 path[0] ? path : "(built-in: everything public)", wfs_policy_sha256(fs->policy),
		 when, wfs_policy_rule_count(fs->policy),
		 fs->policy_error[0] ? fs->policy_error : "none", fs->policy_reloads);
	pthread_rwlock_unlock(&fs->policy_lock);
}
