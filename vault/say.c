/*
 * say.c - the vault library's messages (say.h) and its reporter. Without
 * a reporter (a unit test, a tool that never set one) messages go to
 * stderr as "wardfs: MSG"; the CLI sets one that uses its own program name
 * and keeps a progress line apart from the messages around it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "say.h"

static void print_plain(enum wfs_vault_say kind, const char *line)
{
	switch (kind) {
	case WFS_SAY_DETAIL:
		fprintf(stderr, "%s\n", line);
		break;
	case WFS_SAY_WARNING:
		fprintf(stderr, "wardfs: warning: %s\n", line);
		break;
	case WFS_SAY_PROGRESS:
	case WFS_SAY_PROGRESS_LAST:
		fprintf(stderr, "\rwardfs: %s%s", line, kind == WFS_SAY_PROGRESS_LAST ? "\n" : "");
		break;
	case WFS_SAY_ERROR:
	default:
		fprintf(stderr, "wardfs: %s\n", line);
		break;
	}
}

static wfs_vault_reporter reporter = print_plain;

void wfs_vault_set_reporter(wfs_vault_reporter fn)
{
	reporter = fn ? fn : print_plain;
}

/* Messages are short (paths, an errno text); one longer than the buffer is
 * cut, never split into two lines. */
static void vsay(enum wfs_vault_say kind, const char *fmt, va_list ap, int err)
{
	char line[2 * 4096 + 512];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n >= 0 && err != 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err));
	reporter(kind, line);
}

void vault_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(WFS_SAY_ERROR, fmt, ap, 0);
	va_end(ap);
}

int vault_error_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(WFS_SAY_ERROR, fmt, ap, err);
	va_end(ap);
	return 1;
}

void vault_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(WFS_SAY_WARNING, fmt, ap, 0);
	va_end(ap);
}

void vault_detail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(WFS_SAY_DETAIL, fmt, ap, 0);
	va_end(ap);
}

void vault_progress(bool last, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(last ? WFS_SAY_PROGRESS_LAST : WFS_SAY_PROGRESS, fmt, ap, 0);
	va_end(ap);
}
