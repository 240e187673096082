/*
 * fwd_syslog.c - the syslog sink of audit forwarding: each row as one RFC
 * 5424 message with its fields in structured data, sent to a unix datagram
 * socket (/dev/log, or the socket a host's rsyslog listens on for wardfs).
 * A datagram the kernel accepted is not yet one the receiver read: the
 * sink tells the forwarder a batch is delivered only once the socket's
 * queue is empty and the receiver that emptied it is still there.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit_internal.h"

/* A field's escaped text is cut at this many bytes (path) or the other
 * (the rest), so a message stays under rsyslog's default 8 KiB; the db
 * keeps the whole row. */
#define CAP_PATH  4096
#define CAP_OTHER 1024
/* RFC 5424 "log audit" */
#define FACILITY 13
/* How long send waits for room in a full receiver queue before it counts
 * as a failure. */
#define FULL_WAIT_MS 1000

struct aud_fwd_syslog {
	struct sockaddr_un addr;
	int fd;
	dev_t dev; /* the socket file connected to */
	ino_t ino;
	char host[256];
	long pid;
	struct aud_buf msg;
};

static int add(struct aud_buf *b, const char *s, size_t n)
{
	if (aud_buf_reserve(b, n + 1))
		return -ENOMEM;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static int adds(struct aud_buf *b, const char *s)
{
	return add(b, s, strlen(s));
}

/* The length of the token at s in wfs_audit_escape's output: an escape
 * (\\, \n, \xNN, \uNNNN) or one UTF-8 character, so a cut never splits
 * one. */
static size_t token_len(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = 1;
	if (c == '\\')
		n = s[1] == 'x' ? 4 : s[1] == 'u' ? 6 : 2;
	else if (c >= 0xf0)
		n = 4;
	else if (c >= 0xe0)
		n = 3;
	else if (c >= 0xc0)
		n = 2;
	size_t have = strnlen(s, n);
	return have ? have : 1;
}

/*
 * A PARAM-VALUE: the text as `wardfs audit` shows it (controls, invalid
 * UTF-8 and backslashes escaped by wfs_audit_escape, so the value is valid
 * UTF-8 with no line break), cut at cap bytes with "..." marking the cut,
 * then with '"', '\' and ']' escaped as RFC 5424 section 6.3.3 says.
 */
static int add_escaped(struct aud_buf *b, const char *s, size_t cap, bool sd)
{
	/* The common case, printable ASCII without a backslash, is its own
	 * escape: copied in one pass, without wfs_audit_escape's copy. */
	size_t plain = 0;
	if (!s)
		s = ""; /* as wfs_audit_escape takes it */
	while (s[plain] >= 0x20 && s[plain] < 0x7f && s[plain] != '\\')
		plain++;
	if (!s[plain]) {
		size_t n = plain > cap ? cap : plain;
		if (aud_buf_reserve(b, 2 * n + 4))
			return -ENOMEM;
		char *o = (char *)b->p + b->len;
		for (size_t i = 0; i < n; i++) {
			if (sd && (s[i] == '"' || s[i] == ']'))
				*o++ = '\\';
			*o++ = s[i];
		}
		if (plain > cap) {
			memcpy(o, "...", 3);
			o += 3;
		}
		*o = 0;
		b->len = (size_t)(o - (char *)b->p);
		return 0;
	}
	char *e = wfs_audit_escape(s);
	if (!e)
		return -ENOMEM;
	int r = 0;
	size_t i = 0;
	while (e[i] && !r) {
		size_t n = token_len(e + i);
		if (i + n > cap) {
			r = adds(b, "...");
			break;
		}
		for (size_t k = 0; k < n && !r; k++) {
			char c = e[i + k];
			if (sd && (c == '"' || c == '\\' || c == ']'))
				r = add(b, "\\", 1);
			if (!r)
				r = add(b, &c, 1);
		}
		i += n;
	}
	free(e);
	return r;
}

static int add_value(struct aud_buf *b, const char *s, size_t cap)
{
	return add_escaped(b, s, cap, true);
}

/* MSG is free text to the end of the datagram: escaped for one line,
 * without the SD-PARAM escapes. */
static int add_text(struct aud_buf *b, const char *s, size_t cap)
{
	return add_escaped(b, s, cap, false);
}

static int add_param(struct aud_buf *b, const char *name, const char *val, size_t cap)
{
	if (!val)
		return 0;
	int r = adds(b, " ");
	if (!r)
		r = adds(b, name);
	if (!r)
		r = adds(b, "=\"");
	if (!r)
		r = add_value(b, val, cap);
	if (!r)
		r = adds(b, "\"");
	return r;
}

static int add_int(struct aud_buf *b, const char *name, long long v)
{
	char n[32];
	snprintf(n, sizeof n, "%lld", v);
	return add_param(b, name, n, sizeof n);
}

/* A header field: PRINTUSASCII (33..126), or "-" (the NILVALUE). */
static int add_header_word(struct aud_buf *b, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	bool ok = n > 0 && n <= max;
	for (size_t i = 0; ok && i < n; i++)
		ok = s[i] > 32 && s[i] < 127;
	return adds(b, ok ? s : "-");
}

int aud_fwd_syslog_format(struct aud_buf *b, const struct aud_fwd_row *row, const char *host,
			  long procid)
{
	const struct wfs_audit_row *r = row->r;
	char head[128], ts[64];
	b->len = 0;
	/* RFC 5424 allows six digits of a second, and they must be there or
	 * not at all: the row's nanoseconds are cut to microseconds. */
	wfs_audit_format_time(r->time_ns, ts, sizeof ts);
	char *dot = strchr(ts, '.');
	if (dot && strlen(dot) >= 8)
		memcpy(dot + 7, "Z", 2);
	snprintf(head, sizeof head, "<%d>1 %s ", FACILITY * 8 + aud_fwd_severity(r), ts);
	int e = adds(b, head);
	if (!e)
		e = add_header_word(b, host, 255);
	snprintf(head, sizeof head, " wardfs %ld ", procid);
	if (!e)
		e = adds(b, head);
	if (!e)
		e = add_header_word(b, r->kind, 32);
	/* row first: a consumer can find it with a fixed pattern, and a
	 * value's quote is always escaped, so no path can forge one. */
	if (!e)
		e = adds(b, " [" WFS_FWD_SD_ID);
	if (!e)
		e = add_int(b, "row", (long long)r->id);
	if (!e)
		e = add_param(b, "kind", r->kind, CAP_OTHER);
	if (!e)
		e = add_param(b, "path", r->path, CAP_PATH);
	if (!e)
		e = add_param(b, "class", r->cls, CAP_OTHER);
	if (!e)
		e = add_param(b, "decision", r->decision, CAP_OTHER);
	if (!e)
		e = add_param(b, "errno", r->err ? wfs_audit_errno_name(r->err) : NULL, CAP_OTHER);
	if (!e)
		e = add_param(b, "access", r->access, CAP_OTHER);
	if (!e)
		e = add_param(b, "rule", r->rule, CAP_OTHER);
	if (!e)
		e = add_param(b, "exe", r->exe, CAP_OTHER);
	if (!e)
		e = add_param(b, "comm", r->comm, CAP_OTHER);
	if (!e)
		e = add_int(b, "uid", (long long)r->uid);
	if (!e)
		e = add_int(b, "gid", (long long)r->gid);
	if (!e)
		e = add_int(b, "pid", (long long)r->pid);
	if (!e)
		e = add_param(b, "mount", r->mount, CAP_OTHER);
	if (!e)
		e = add_param(b, "detail", r->detail, CAP_OTHER);
	if (!e)
		e = add_param(b, "chain", row->chain[0] ? row->chain : NULL, CAP_OTHER);
	if (!e)
		e = add_param(b, "db", row->db_id, CAP_OTHER);
	if (!e)
		e = adds(b, "] ");
	/* MSG: one line for a person; the fields above are for programs. */
	if (!e)
		e = add_text(b, r->kind, CAP_OTHER);
	if (!e && r->path) {
		e = adds(b, " ");
		if (!e)
			e = add_text(b, r->path, CAP_PATH);
	}
	snprintf(head, sizeof head, " uid %lld: %s", (long long)r->uid,
		 r->decision ? r->decision : "-");
	if (!e && r->exe) {
		e = adds(b, " by ");
		if (!e)
			e = add_text(b, r->exe, CAP_OTHER);
	}
	if (!e)
		e = adds(b, head);
	return e;
}

int aud_fwd_syslog_new(const char *path, struct aud_fwd_syslog **out)
{
	struct aud_fwd_syslog *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	if (strlen(path) >= sizeof s->addr.sun_path) {
		free(s);
		return -ENAMETOOLONG;
	}
	s->addr.sun_family = AF_UNIX;
	strcpy(s->addr.sun_path, path);
	s->fd = -1;
	s->pid = (long)getpid();
	if (gethostname(s->host, sizeof s->host) < 0)
		snprintf(s->host, sizeof s->host, "-");
	s->host[sizeof s->host - 1] = 0;
	*out = s;
	return 0;
}

void aud_fwd_syslog_reset(struct aud_fwd_syslog *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void aud_fwd_syslog_free(struct aud_fwd_syslog *s)
{
	if (!s)
		return;
	aud_fwd_syslog_reset(s);
	aud_buf_free(&s->msg);
	free(s);
}

static int connect_to(struct aud_fwd_syslog *s)
{
	struct stat st;
	if (stat(s->addr.sun_path, &st) < 0)
		return -errno;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&s->addr, sizeof s->addr) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

int aud_fwd_syslog_send(struct aud_fwd_syslog *s, const struct aud_fwd_row *row)
{
	int e;
	if (s->fd < 0 && (e = connect_to(s)))
		return e;
	if ((e = aud_fwd_syslog_format(&s->msg, row, s->host, s->pid)))
		return e;
	for (int tries = 0;; tries++) {
		if (send(s->fd, s->msg.p, s->msg.len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		e = -errno;
		if (e != -EAGAIN || tries > 0)
			return e;
		/* The receiver's queue is full: wait for room, once. */
		struct pollfd p = {.fd = s->fd, .events = POLLOUT};
		if (poll(&p, 1, FULL_WAIT_MS) <= 0)
			return -ETIMEDOUT;
	}
}

/*
 * Is the socket file still the one the sink connected to, with a live
 * socket behind it? A receiver that stopped leaves a stale file (connect:
 * ECONNREFUSED) or none; one that started again made a new file.
 */
static int same_receiver(struct aud_fwd_syslog *s)
{
	struct stat st;
	if (stat(s->addr.sun_path, &st) < 0)
		return -errno;
	if (st.st_dev != s->dev || st.st_ino != s->ino)
		return -ECONNRESET;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int e = connect(fd, (struct sockaddr *)&s->addr, sizeof s->addr) < 0 ? -errno : 0;
	close(fd);
	return e;
}

/*
 * A unix datagram stays charged to the sender's socket until the receiver
 * takes it off its queue (SIOCOUTQ counts it), or until the receiving
 * socket is closed, which drops it unread. So: nothing charged, and the
 * receiver's socket still alive afterwards, means it read every message.
 */
int aud_fwd_syslog_settle(struct aud_fwd_syslog *s)
{
	if (s->fd < 0)
		return -ENOTCONN;
	/* Looked at often: a receiver that reads and then stops before the
	 * look fails it, and the batch goes again (the consumer dedupes). */
	for (int i = 0; i < 200; i++) {
		int queued = 0;
		if (ioctl(s->fd, SIOCOUTQ, &queued) < 0)
			return -errno;
		if (queued == 0)
			return same_receiver(s);
		struct timespec ts = {0, 500000};
		nanosleep(&ts, NULL);
	}
	int e = same_receiver(s);
	return e ? e : -EAGAIN;
}
