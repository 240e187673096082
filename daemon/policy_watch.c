/*
 * policy_watch.c - reloads the policy on SIGHUP and whenever anything it
 * was read from changes: the top file, every included file, and every
 * directory an include glob lists (a file added to policy.d, or edited in
 * place there, even while it is still broken and not yet included).
 *
 * Polled once a second rather than with inotify: editors replace files by
 * rename, which a watch on the file misses, and the set of files changes
 * with each load. A poll is a few stat calls.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs_policy.h"
#include "lifecycle.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0x100000001b3ull;
}

static uint64_t mix_stat(uint64_t h, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return mix(h, 0xdeadull); /* missing is a state too */
	h = mix(h, st.st_dev);
	h = mix(h, st.st_ino);
	h = mix(h, (uint64_t)st.st_size);
	h = mix(h, (uint64_t)st.st_mtim.tv_sec);
	h = mix(h, (uint64_t)st.st_mtim.tv_nsec);
	h = mix(h, (uint64_t)st.st_ctim.tv_sec);
	return mix(h, (uint64_t)st.st_ctim.tv_nsec);
}

/* A directory and each entry in it: an added, removed, renamed or edited
 * file changes the signature. Entries come in readdir order, which only
 * changes when the directory does. */
static uint64_t mix_dir(uint64_t h, const char *dir)
{
	h = mix_stat(h, dir);
	DIR *d = opendir(dir);
	if (!d)
		return h;
	char path[PATH_MAX];
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		for (const char *c = e->d_name; *c; c++)
			h = mix(h, (unsigned char)*c);
		h = mix_stat(h, path);
	}
	closedir(d);
	return h;
}

/* The state of everything the policy in force was read from (held: a
 * reload may replace it meanwhile). */
static uint64_t signature(struct wfs_fs *fs)
{
	uint64_t h = 0xcbf29ce484222325ull;
	if (fs->o->policy_path)
		h = mix_stat(h, fs->o->policy_path);
	const struct wfs_policy_source *src;
	pthread_rwlock_rdlock(&fs->policy_lock);
	const struct wfs_policy *p = wfs_policy_hold(fs->policy);
	pthread_rwlock_unlock(&fs->policy_lock);
	size_t n = p ? wfs_policy_sources(p, &src) : 0;
	for (size_t i = 0; i < n; i++)
		h = src[i].is_dir ? mix_dir(h, src[i].path) : mix_stat(h, src[i].path);
	wfs_policy_free(p);
	return h;
}

static void *watch(void *arg)
{
	struct wfs_fs *fs = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	uint64_t last = signature(fs);
	while (!atomic_load(&fs->watcher_stop)) {
		struct timespec ts = {.tv_sec = 1};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (atomic_load(&fs->watcher_stop))
			break;
		uint64_t now = signature(fs);
		if (sig == SIGHUP || now != last) {
			wfs_fs_reload_policy(fs, false);
			/* what the policy now in force (the new one, or the old
			 * one after a rejected reload) was read from */
			last = signature(fs);
		}
	}
	return NULL;
}

void wfs_fs_policy_watch_start(struct wfs_fs *fs)
{
	fs->watching = pthread_create(&fs->watcher, NULL, watch, fs) == 0;
	if (fs->watching)
		pthread_setname_np(fs->watcher, "wardfs-policy");
}

void wfs_fs_policy_watch_stop(struct wfs_fs *fs)
{
	if (!fs->watching)
		return;
	atomic_store(&fs->watcher_stop, true);
	pthread_kill(fs->watcher, SIGHUP);
	pthread_join(fs->watcher, NULL);
	fs->watching = false;
}
