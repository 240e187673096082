/*
 * procinfo.c - who is calling: process name and executable of a pid,
 * cached by (pid, start time) so a reused pid never inherits another
 * process's identity. The executable comes from /proc/PID/exe, not argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"

#define CACHE_SLOTS 1024

struct slot {
	pid_t pid;
	unsigned long long start;
	struct wfs_procinfo info;
};

static struct slot cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reads comm and start time (field 22) from /proc/PID/stat. */
static int read_stat(pid_t pid, char *comm, size_t commlen, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return -EIO;
	size_t l = (size_t)(close_paren - open_paren - 1);
	if (l >= commlen)
		l = commlen - 1;
	memcpy(comm, open_paren + 1, l);
	comm[l] = '\0';
	/* After ") " come fields 3..; start time is field 22. */
	char *p = close_paren + 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return -EIO;
	*start = strtoull(p, NULL, 10);
	return 0;
}

int wfs_procinfo_get(pid_t pid, struct wfs_procinfo *out)
{
	char comm[sizeof(out->comm)];
	unsigned long long start;
	int r = read_stat(pid, comm, sizeof(comm), &start);
	if (r) {
		snprintf(out->comm, sizeof(out->comm), "?");
		out->exe[0] = '\0';
		return r;
	}
	struct slot *s = &cache[(unsigned)pid % CACHE_SLOTS];
	pthread_mutex_lock(&cache_lock);
	if (s->pid == pid && s->start == start) {
		*out = s->info;
		pthread_mutex_unlock(&cache_lock);
		return 0;
	}
	pthread_mutex_unlock(&cache_lock);

	snprintf(out->comm, sizeof(out->comm), "%s", comm);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[n > 0 ? n : 0] = '\0';

	pthread_mutex_lock(&cache_lock);
	s->pid = pid;
	s->start = start;
	s->info = *out;
	pthread_mutex_unlock(&cache_lock);
	return 0;
}
