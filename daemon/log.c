/*
 * log.c - the daemon's log lines say when and which mount.
 *
 * Everything the daemon (and libfuse, and the audit library) logs goes to
 * stderr, which `wardfs mount` points at the log file that several mounts
 * may share. stderr is replaced by a stream whose writer puts each line
 * behind a UTC timestamp and the mount point, and writes it with one
 * write(2), so lines of concurrent threads and daemons never mix:
 *
 *   2026-12-04T21:35:32.123Z /home/alice wardfs: policy reloaded from ...
 *
 * Sanitizers write to fd 2 directly and are not prefixed (nor lost when the
 * daemon dies).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lifecycle.h"

#define LINE_MAX_LEN 4096

struct log {
	const char *mount;
	char line[LINE_MAX_LEN];
	size_t len;
};

static struct log the_log;
/* stdio locks the stream around the writer, but with a lock the thread
 * sanitizer cannot see: this one it can (and it costs nothing more). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(struct log *l)
{
	char out[LINE_MAX_LEN + PATH_MAX + 64], when[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(out, sizeof out, "%s.%03ldZ %s %.*s\n", when, ts.tv_nsec / 1000000,
			 l->mount, (int)l->len, l->line);
	if (n > (int)sizeof out - 1)
		n = (int)sizeof out - 1;
	if (n > 0 && write(STDERR_FILENO, out, (size_t)n) < 0) {
		/* nowhere left to say it */
	}
	l->len = 0;
}

/* The stream's writer. */
static ssize_t log_write(void *cookie, const char *buf, size_t size)
{
	struct log *l = cookie;
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n') {
			emit(l);
			continue;
		}
		if (l->len == sizeof l->line) /* a very long line: in pieces */
			emit(l);
		l->line[l->len++] = buf[i];
	}
	pthread_mutex_unlock(&log_lock);
	return (ssize_t)size;
}

void wfs_log_start(const char *mount)
{
	the_log.mount = mount;
	cookie_io_functions_t io = {.write = log_write};
	FILE *f = fopencookie(&the_log, "w", io);
	if (!f)
		return; /* plain stderr, then */
	setvbuf(f, NULL, _IOLBF, 0);
	fflush(stderr);
	stderr = f;
}
