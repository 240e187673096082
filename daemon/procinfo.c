/*
 * procinfo.c - who is calling: the process name (comm) and executable of
 * the pid in a FUSE request, read from /proc at each open.
 *
 * Not cached on purpose: a cache keyed by (pid, start time) survives
 * execve, so a forked shell that opened a file before exec'ing `cat`
 * would be recorded, and judged by allow-exe=, as the shell. Reading
 * /proc/PID/comm and /proc/PID/exe costs about 2.5 us here, less than the
 * /proc/PID/stat read such a cache needs to check the start time. The
 * executable comes from /proc/PID/exe, never from argv. The caller is
 * blocked in its open while we read, so its pid cannot be reused unless
 * it is killed meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procinfo.h"

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
	int r = read_comm(pid, out->comm, sizeof(out->comm));
	if (r) {
		snprintf(out->comm, sizeof(out->comm), "?");
		out->exe[0] = '\0';
		return r;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[n > 0 ? n : 0] = '\0';
	return 0;
}
