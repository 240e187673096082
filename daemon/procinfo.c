/*
 * procinfo.c - who is calling: the executable and process name (comm) of
 * the pid in a FUSE request.
 *
 * The executable is read from /proc/PID/exe at every open (never from
 * argv, never cached): a cache keyed by pid, or by (pid, start time),
 * survives execve, so a forked shell that opened a file before exec'ing
 * `cat` would be judged by allow-exe= (and audited) as the shell.
 *
 * What is cached is an O_PATH fd on the /proc/PID/exe link itself:
 * readlinkat(fd, "") asks the kernel for the task's current executable
 * without walking "/proc/PID/exe" again (the walk was most of the cost, and
 * the audit's largest per-open cost). The link belongs to the struct pid it
 * was opened for, not to the number: once that process is gone it answers
 * ENOENT even if the number was reused, and we reopen. An execve keeps the
 * struct pid, so the link then shows the new executable.
 *
 * comm only labels audit rows, and reading /proc/PID/comm costs 1.75 us
 * more: it is cached per (pid, executable). An execve changes the
 * executable and so refreshes it; a process renaming itself (PR_SET_NAME)
 * keeps its old comm in the audit until it execs. The caller is blocked in
 * its open while we read, so its pid cannot be reused unless it is killed
 * meanwhile.
 *
 * For opens of files whose rule has allow-exe= (few), the program is also
 * identified by inode and its process looked at for ways to run other code
 * inside it (wfs_procinfo_exe_id, wfs_procinfo_suspect): a few /proc reads,
 * never on other opens.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procinfo.h"

/* A slot per pid % SLOTS, each holding one fd: at most SLOTS fds. */
#define SLOTS 256

struct slot {
	pthread_mutex_t lock; /* held across the readlink: slots are per pid */
	pid_t pid;
	int exe_fd; /* O_PATH on /proc/PID/exe, or -1 */
	uint64_t exe_hash;
	char comm[sizeof(((struct wfs_procinfo *)0)->comm)];
};

struct wfs_procinfo_cache {
	struct slot slots[SLOTS];
};

struct wfs_procinfo_cache *wfs_procinfo_cache_new(void)
{
	struct wfs_procinfo_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	for (int i = 0; i < SLOTS; i++) {
		pthread_mutex_init(&c->slots[i].lock, NULL);
		c->slots[i].exe_fd = -1;
	}
	return c;
}

void wfs_procinfo_cache_free(struct wfs_procinfo_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < SLOTS; i++) {
		if (c->slots[i].exe_fd >= 0)
			close(c->slots[i].exe_fd);
		pthread_mutex_destroy(&c->slots[i].lock);
	}
	free(c);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int read_comm(pid_t pid, char *comm, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, comm, len - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	if (comm[n - 1] == '\n')
		n--;
	comm[n] = '\0';
	return 0;
}

/* Points s at pid's exe link; caller holds s->lock. 0 or -errno. */
static int open_exe_link(struct slot *s, pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (s->exe_fd >= 0)
		close(s->exe_fd); /* a proc link: closing it does no I/O */
	s->pid = pid;
	s->exe_fd = fd;
	s->exe_hash = 0;
	s->comm[0] = '\0';
	return 0;
}

/* The executable of pid into exe; caller holds s->lock. Its length, or
 * -errno (-ENOENT for a kernel thread or a process that is gone). */
static ssize_t read_exe(struct slot *s, pid_t pid, char *exe, size_t len)
{
	bool fresh = false;
	if (s->pid != pid || s->exe_fd < 0) {
		int r = open_exe_link(s, pid);
		if (r)
			return r;
		fresh = true;
	}
	ssize_t n = readlinkat(s->exe_fd, "", exe, len - 1);
	if (n < 0 && errno == ENOENT && !fresh) {
		/* The process we had the link of is gone; pid may be another. */
		int r = open_exe_link(s, pid);
		if (r)
			return r;
		n = readlinkat(s->exe_fd, "", exe, len - 1);
	}
	return n < 0 ? -errno : n;
}

int wfs_procinfo_get(struct wfs_procinfo_cache *c, pid_t pid, struct wfs_procinfo *out)
{
	struct slot *s = &c->slots[(unsigned)pid % SLOTS];
	pthread_mutex_lock(&s->lock);
	ssize_t n = read_exe(s, pid, out->exe, sizeof(out->exe));
	if (n < 0 && n != -ENOENT) {
		pthread_mutex_unlock(&s->lock);
		snprintf(out->comm, sizeof(out->comm), "?");
		out->exe[0] = '\0';
		return (int)n;
	}
	out->exe[n > 0 ? n : 0] = '\0';

	uint64_t h = fnv1a(out->exe);
	int r = 0;
	if (s->pid == pid && s->exe_hash == h && s->comm[0]) {
		memcpy(out->comm, s->comm, sizeof(out->comm));
	} else {
		r = read_comm(pid, out->comm, sizeof(out->comm));
		if (r) {
			snprintf(out->comm, sizeof(out->comm), "?");
		} else if (s->pid == pid) {
			s->exe_hash = h;
			memcpy(s->comm, out->comm, sizeof(s->comm));
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int wfs_procinfo_exe_id(pid_t pid, dev_t *dev, ino_t *ino)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* The daemon's own user namespace, once: it does not change. */
static struct stat own_userns;
static int own_userns_err;
static pthread_once_t userns_once = PTHREAD_ONCE_INIT;

static void userns_init(void)
{
	if (stat("/proc/self/ns/user", &own_userns) < 0)
		own_userns_err = errno;
}

/*
 * A user namespace makes its creator root over the mounts of the mount
 * namespaces it owns: bind mounts over the libraries an allowed program
 * loads, /etc/ld.so.preload or the program itself. Its processes are not
 * running the program the admin allowed, whatever inode it has. Mount
 * namespaces made by root (systemd's PrivateTmp=) stay in the daemon's
 * user namespace and are fine. pfd: /proc/PID.
 */
static int check_userns(int pfd, char *why, size_t len)
{
	struct stat st;
	pthread_once(&userns_once, userns_init);
	if (own_userns_err || fstatat(pfd, "ns/user", &st, 0) < 0) {
		snprintf(why, len, "cannot tell its user namespace: %s",
			 strerror(own_userns_err ? own_userns_err : errno));
		return 1;
	}
	if (st.st_dev != own_userns.st_dev || st.st_ino != own_userns.st_ino) {
		snprintf(why, len, "runs in another user namespace (user:[%lu])",
			 (unsigned long)st.st_ino);
		return 1;
	}
	return 0;
}

/* A "Name:\tNUMBER" field of a status file, or -1. */
static long status_field(const char *buf, const char *name)
{
	const char *t = strstr(buf, name);
	return t ? strtol(t + strlen(name), NULL, 10) : -1;
}

/* TracerPid of the thread whose status file is `path` under dirfd, and
 * its process's thread count if threads is not NULL; -errno. */
static long tracer_of(int dirfd, const char *path, long *threads)
{
	char buf[2048];
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* TracerPid is the 8th line, Threads about the 37th: both well
	 * inside the first 2 KiB of the 1.4 KiB file */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = '\0';
	long t = status_field(buf, "\nTracerPid:");
	if (t < 0)
		return -EIO;
	if (threads)
		*threads = status_field(buf, "\nThreads:");
	return t;
}

/*
 * A tracer can read and write the memory of every thread of the process
 * and make it do anything. ptrace attaches to threads one by one, and the
 * memory is shared, so every thread is looked at, not only the caller;
 * listing them is skipped for a process of one thread (most). pfd:
 * /proc/TID of the caller.
 */
static int check_traced(int pfd, char *why, size_t len)
{
	long threads = -1;
	long t = tracer_of(pfd, "status", &threads);
	if (t < 0) {
		snprintf(why, len, "cannot read its status: %s", strerror((int)-t));
		return 1;
	}
	if (t > 0) {
		snprintf(why, len, "traced by pid %ld", t);
		return 1;
	}
	if (threads == 1)
		return 0;

	int r = 1;
	int tfd = openat(pfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = tfd < 0 ? NULL : fdopendir(tfd);
	if (!d) {
		snprintf(why, len, "cannot list its threads: %s", strerror(errno));
		if (tfd >= 0)
			close(tfd);
		return 1;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		char path[sizeof(e->d_name) + 8];
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/status", e->d_name);
		t = tracer_of(dirfd(d), path, NULL);
		if (t == -ENOENT || t == -ESRCH)
			continue; /* the thread ended meanwhile */
		if (t < 0) {
			snprintf(why, len, "cannot read the status of its thread %s: %s", e->d_name,
				 strerror((int)-t));
			goto out;
		}
		if (t > 0) {
			snprintf(why, len, "traced by pid %ld (its thread %s)", t, e->d_name);
			goto out;
		}
		errno = 0;
	}
	if (errno) {
		snprintf(why, len, "cannot list its threads: %s", strerror(errno));
		goto out;
	}
	r = 0;
out:
	closedir(d);
	return r;
}

/* Variables that make the dynamic loader (or glibc's iconv) load code the
 * program does not name: the ones glibc itself drops for setuid programs
 * that load code. Set but empty, the loader ignores them. */
enum { V_PRELOAD, V_LIBPATH, V_AUDIT, V_GCONV, NVARS };
static const char *const loader_vars[NVARS] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
					       "GCONV_PATH"};
#define MAX_VALUE 4096 /* longer values are refused, not looked at */

/*
 * Whether `dir`, a directory LD_LIBRARY_PATH names, is one only root can
 * change: it and every directory above it are root's and not writable by
 * group or others (above it, a sticky directory is fine: others can add
 * names there but not replace root's). Such a path cannot substitute a
 * library the user chose; PyInstaller programs (AWS CLI v2) re-exec
 * themselves with their own root-owned directory in LD_LIBRARY_PATH.
 * Resolved now, in the daemon's namespace: what only root can change now
 * only root could change when the program started.
 */
static int root_only_dir(const char *dir, char *why, size_t len)
{
	char real[PATH_MAX];
	if (dir[0] != '/' || strchr(dir, '$')) {
		snprintf(why, len, "LD_LIBRARY_PATH has a relative entry '%.60s'", dir);
		return 1;
	}
	if (!realpath(dir, real)) {
		snprintf(why, len, "LD_LIBRARY_PATH names '%.60s': %s", dir, strerror(errno));
		return 1;
	}
	for (bool first = true;; first = false) {
		struct stat st;
		if (stat(real, &st) < 0) {
			snprintf(why, len, "LD_LIBRARY_PATH names '%.60s': %s", real,
				 strerror(errno));
			return 1;
		}
		bool others =
			(st.st_mode & (S_IWGRP | S_IWOTH)) && (first || !(st.st_mode & S_ISVTX));
		if (st.st_uid != 0 || others) {
			snprintf(why, len,
				 "LD_LIBRARY_PATH names '%.60s', which someone other than root "
				 "can change",
				 real);
			return 1;
		}
		char *slash = strrchr(real, '/');
		if (slash == real && !real[1])
			return 0;
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/* Judges one loader variable of the environment; 1 with why when it
 * refuses. vl > MAX_VALUE: the value did not fit. */
static int judge(int var, const char *val, size_t vl, char *why, size_t len)
{
	if (!vl)
		return 0;
	if (var != V_LIBPATH) {
		snprintf(why, len, "%s is set in its environment", loader_vars[var]);
		return 1;
	}
	if (vl > MAX_VALUE) {
		snprintf(why, len, "LD_LIBRARY_PATH is too long to check");
		return 1;
	}
	/* glibc splits on ':' and ';'; an empty entry is the working directory */
	char dir[MAX_VALUE + 1];
	for (size_t s = 0, i = 0; i <= vl; i++) {
		if (i < vl && val[i] != ':' && val[i] != ';')
			continue;
		if (i == s) {
			snprintf(why, len,
				 "LD_LIBRARY_PATH has an empty entry (the working directory)");
			return 1;
		}
		memcpy(dir, val + s, i - s);
		dir[i - s] = '\0';
		if (root_only_dir(dir, why, len))
			return 1;
		s = i + 1;
	}
	return 0;
}

/*
 * /proc/PID/environ is the environment the process was started with, as
 * it is now in its memory: the strings execve copied, which the process
 * may since have overwritten (a preloaded library could erase itself).
 * It is what the loader saw at start unless the process changed it. Every
 * occurrence of a variable is judged (the loader takes the last). pfd:
 * /proc/PID.
 */
static int check_environ(int pfd, char *why, size_t len)
{
	char buf[4096], name[24], val[MAX_VALUE + 1];
	size_t nl = 0, vl = 0;
	bool skip = false; /* past this entry's name, not a variable we judge */
	int var = -1;	   /* loader_vars index whose value is being read */
	int r = 1;
	int fd = openat(pfd, "environ", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "cannot read its environment: %s", strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, len, "cannot read its environment: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			char ch = buf[i];
			if (ch == '\0') {
				if (var >= 0 && judge(var, val, vl, why, len))
					goto out;
				nl = vl = 0;
				skip = false;
				var = -1;
			} else if (var >= 0) {
				if (vl < MAX_VALUE)
					val[vl] = ch;
				if (vl <= MAX_VALUE)
					vl++;
			} else if (skip) {
				continue;
			} else if (ch == '=') {
				skip = true;
				for (int k = 0; k < NVARS; k++)
					if (nl == strlen(loader_vars[k]) &&
					    !memcmp(name, loader_vars[k], nl))
						var = k;
			} else if (nl == sizeof(name)) {
				skip = true; /* longer than any name we look for */
			} else {
				name[nl++] = ch;
			}
		}
	}
	if (var >= 0 && judge(var, val, vl, why, len))
		goto out; /* the last entry had no NUL */
	r = 0;
out:
	close(fd);
	return r;
}

int wfs_procinfo_suspect(pid_t pid, char *why, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	/* one walk of /proc/PID for the four files below */
	int pfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		snprintf(why, len, "cannot look at its process: %s", strerror(errno));
		return 1;
	}
	int r = check_userns(pfd, why, len) || check_traced(pfd, why, len) ||
		check_environ(pfd, why, len);
	close(pfd);
	if (!r)
		why[0] = '\0';
	return r;
}
