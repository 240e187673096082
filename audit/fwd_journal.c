/*
 * fwd_journal.c - the journal sink of audit forwarding: each row as one
 * structured entry sent with sd_journal_sendv, a MESSAGE_ID per kind (the
 * ids are fixed: docs/audit.md lists them), OBJECT_PID= the opener so
 * journald attributes the entry to it, and WARDFS_* fields. Values are sent
 * as they are stored: the journal's native protocol carries any byte,
 * newlines included, so a field is exact where MESSAGE is escaped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "audit_internal.h"

static const struct {
	const char *kind, *id;
} message_ids[] = {
	{"open", "a995e3f14c80f16ef8eaf40fecaf1ef9"},
	{"create", "18d3b5f8bbeb51468e4b80e1b1e0c7e5"},
	{"integrity", "0df70d340475ebab9dbe18be5d73ff35"},
	{"reload", "7ff7d6cd12d40ada2a59ae6ba72c288d"},
	{"mount", "8261b52d39eaa529814469c4aedceb86"},
	{"unmount", "1c49f3254b2bde38b5143ec601b5037c"},
	{"unlink", "a056992c499028d008cb39b070ec2e2c"},
	{"rmdir", "5edd61588034fbc8e04dcf52e87fcf47"},
	{"rename", "c8234a4112426727979a0193e199d398"},
	{"link", "132b6c521882561b5a16d16d2787db46"},
	{"truncate", "c52ce9d9571f17265919d3f29b44f7ae"},
	{"chmod", "4f57896b641ef761256f96f8d881bb96"},
	{"chown", "91ccf188812c66cc7fc4f1960c8b5412"},
	{"utimes", "35fda93cf32add3712d905c97f77ca88"},
	{"setxattr", "d4f4f53c4ed91b5e1005da077d0f686f"},
	{"removexattr", "94adaed875caa6a8b0ebb0d6c8c4ad11"},
	{"chain-break", "cd0feded3b2a9e04579b0b8d471938b5"},
	{"vault", "b928a8ece89c2fbb20264074423b3811"},
	{"lost", "5c8caf991559c175a1e12cdab7649ee4"},
};
#define OTHER_ID "4cea732ff5917453899d550de13351f0"

const char *aud_fwd_message_id(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof message_ids / sizeof message_ids[0]; i++)
		if (!strcmp(message_ids[i].kind, kind))
			return message_ids[i].id;
	return OTHER_ID;
}

#define MAX_FIELDS 24

struct fields {
	struct aud_buf b;
	size_t off[MAX_FIELDS], len[MAX_FIELDS];
	int n;
};

/* "NAME=value" (a NULL value: no field). The buffer may move as it grows,
 * so fields are kept as offsets until they are all in. */
static int field(struct fields *f, const char *name, const char *val)
{
	if (!val)
		return 0;
	if (f->n >= MAX_FIELDS)
		return -E2BIG;
	size_t nl = strlen(name), vl = strlen(val);
	if (aud_buf_reserve(&f->b, nl + 1 + vl))
		return -ENOMEM;
	f->off[f->n] = f->b.len;
	memcpy(f->b.p + f->b.len, name, nl);
	f->b.p[f->b.len + nl] = '=';
	memcpy(f->b.p + f->b.len + nl + 1, val, vl);
	f->b.len += nl + 1 + vl;
	f->len[f->n++] = nl + 1 + vl;
	return 0;
}

static int field_int(struct fields *f, const char *name, long long v)
{
	char n[32];
	snprintf(n, sizeof n, "%lld", v);
	return field(f, name, n);
}

int aud_fwd_journal_send(const struct aud_fwd_row *row)
{
	const struct wfs_audit_row *r = row->r;
	struct fields f = {0};
	char *msg = NULL, *path = wfs_audit_escape(r->path), *exe = wfs_audit_escape(r->exe);
	char ts[64];
	int e = -ENOMEM;
	if (!path || !exe)
		goto out;
	wfs_audit_format_time(r->time_ns, ts, sizeof ts);
	if (asprintf(&msg, "wardfs %s%s%s by %s uid %lld: %s", r->kind ? r->kind : "-",
		     r->path ? " " : "", path, exe[0] ? exe : "-", (long long)r->uid,
		     r->decision ? r->decision : "-") < 0) {
		msg = NULL;
		goto out;
	}
	e = field(&f, "MESSAGE", msg);
	if (!e)
		e = field(&f, "MESSAGE_ID", aud_fwd_message_id(r->kind));
	if (!e)
		e = field_int(&f, "PRIORITY", aud_fwd_severity(r));
	if (!e)
		e = field(&f, "SYSLOG_IDENTIFIER", "wardfs");
	/* journald adds the opener's _COMM, _EXE, unit... as OBJECT_* fields
	 * while it still runs (only for a sender that is root, as the daemon
	 * is). */
	if (!e && r->pid > 0)
		e = field_int(&f, "OBJECT_PID", (long long)r->pid);
	if (!e)
		e = field_int(&f, "WARDFS_ROW_ID", (long long)r->id);
	if (!e)
		e = field(&f, "WARDFS_KIND", r->kind);
	if (!e)
		e = field(&f, "WARDFS_PATH", r->path);
	if (!e)
		e = field(&f, "WARDFS_CLASS", r->cls);
	if (!e)
		e = field(&f, "WARDFS_DECISION", r->decision);
	if (!e && r->err)
		e = field(&f, "WARDFS_ERRNO", wfs_audit_errno_name(r->err));
	if (!e)
		e = field(&f, "WARDFS_ACCESS", r->access);
	if (!e)
		e = field(&f, "WARDFS_RULE", r->rule);
	if (!e)
		e = field(&f, "WARDFS_EXE", r->exe);
	if (!e)
		e = field(&f, "WARDFS_COMM", r->comm);
	if (!e)
		e = field_int(&f, "WARDFS_UID", (long long)r->uid);
	if (!e)
		e = field_int(&f, "WARDFS_GID", (long long)r->gid);
	if (!e)
		e = field_int(&f, "WARDFS_PID", (long long)r->pid);
	if (!e)
		e = field(&f, "WARDFS_MOUNT", r->mount);
	if (!e)
		e = field(&f, "WARDFS_DETAIL", r->detail);
	if (!e)
		e = field(&f, "WARDFS_TIME", ts);
	if (!e && row->chain[0])
		e = field(&f, "WARDFS_CHAIN_HEAD", row->chain);
	if (!e)
		e = field(&f, "WARDFS_DB_ID", row->db_id);
	if (e)
		goto out;
	struct iovec iov[MAX_FIELDS];
	for (int i = 0; i < f.n; i++)
		iov[i] = (struct iovec){.iov_base = f.b.p + f.off[i], .iov_len = f.len[i]};
	e = sd_journal_sendv(iov, f.n);
out:
	free(msg);
	free(path);
	free(exe);
	aud_buf_free(&f.b);
	return e;
}
