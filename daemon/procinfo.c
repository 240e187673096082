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
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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

static struct slot slots[SLOTS];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void slots_init(void)
{
	for (int i = 0; i < SLOTS; i++) {
		pthread_mutex_init(&slots[i].lock, NULL);
		slots[i].pid = 0;
		slots[i].exe_fd = -1;
	}
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

int wfs_procinfo_get(pid_t pid, struct wfs_procinfo *out)
{
	pthread_once(&slots_once, slots_init);
	struct slot *s = &slots[(unsigned)pid % SLOTS];
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
