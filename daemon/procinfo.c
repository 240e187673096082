/*
 * procinfo.c - who is calling: the executable and process name (comm) of
 * the pid in a FUSE request.
 *
 * The executable is read from /proc/PID/exe at every open (never from
 * argv, never cached): a cache keyed by (pid, start time) survives execve,
 * so a forked shell that opened a file before exec'ing `cat` would be
 * judged by allow-exe= (and audited) as the shell. The readlink costs
 * about 0.7 us here.
 *
 * comm only labels audit rows, and reading /proc/PID/comm costs 1.75 us
 * more, the largest part of the audit's cost per open: it is cached per
 * (pid, executable). An execve changes the executable and so refreshes it;
 * a process renaming itself (PR_SET_NAME) keeps its old comm in the audit
 * until it execs. The caller is blocked in its open while we read, so its
 * pid cannot be reused unless it is killed meanwhile.
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

#define SLOTS 1024

struct slot {
	pid_t pid;
	uint64_t exe_hash;
	char comm[sizeof(((struct wfs_procinfo *)0)->comm)];
};

static struct slot slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

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

int wfs_procinfo_get(pid_t pid, struct wfs_procinfo *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, out->exe, sizeof(out->exe) - 1);
	if (n < 0 && errno != ENOENT) { /* ENOENT: a kernel thread, or gone */
		int err = -errno;
		snprintf(out->comm, sizeof(out->comm), "?");
		out->exe[0] = '\0';
		return err;
	}
	out->exe[n > 0 ? n : 0] = '\0';

	uint64_t h = fnv1a(out->exe);
	struct slot *s = &slots[(unsigned)pid % SLOTS];
	pthread_mutex_lock(&slots_lock);
	bool hit = s->pid == pid && s->exe_hash == h;
	if (hit)
		memcpy(out->comm, s->comm, sizeof(out->comm));
	pthread_mutex_unlock(&slots_lock);
	if (hit)
		return 0;

	int r = read_comm(pid, out->comm, sizeof(out->comm));
	if (r) {
		snprintf(out->comm, sizeof(out->comm), "?");
		return r;
	}
	pthread_mutex_lock(&slots_lock);
	s->pid = pid;
	s->exe_hash = h;
	memcpy(s->comm, out->comm, sizeof(s->comm));
	pthread_mutex_unlock(&slots_lock);
	return 0;
}
