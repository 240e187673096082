/*
 * seal_init.c - `wardfs audit seal-init`: makes the first sealing key k0,
 * hands it out once as the verification key, and leaves on the host only
 * the state file (epoch 0, k0) that the daemon evolves from then on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_internal.h"

static int64_t count_seals(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM seal", -1, &st, NULL))
		return 0; /* no seal table */
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* All of buf to fd, or -errno. */
static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int wfs_audit_seal_init(struct wfs_audit_db *d, uint64_t rows, uint64_t interval_s, int out_fd,
			char *err, size_t errlen)
{
	char *path = NULL;
	struct aud_seal_state *s = aud_seal_state_new(); /* sodium_init first */
	char *vkey = s ? sodium_malloc(AUD_VKEY_TEXT_LEN + 2) : NULL;
	struct wfs_audit_identity id;
	struct stat st;
	int r = -ENOMEM;
	if (!s || !vkey || asprintf(&path, "%s.seal", d->path) < 0) {
		path = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((r = aud_db_identity(d->db, &id))) {
		snprintf(err, errlen, "cannot read the identity of audit database '%s': %s",
			 d->path, strerror(-r));
		goto out;
	}
	if (lstat(path, &st) == 0) {
		r = -EEXIST;
		snprintf(err, errlen,
			 "audit database '%s' is sealed already (its sealing state '%s' exists); "
			 "its verification key was given when it was set up",
			 d->path, path);
		goto out;
	}
	int64_t n = count_seals(d->db);
	if (n) {
		/* The state was deleted: starting again at epoch 0 would make a
		 * second key for the same epochs. */
		r = -EEXIST;
		snprintf(err, errlen,
			 "audit database '%s' holds %lld seals but its sealing state '%s' is "
			 "missing (deleted?): sealing cannot start over on it; move it aside and "
			 "let the daemon start a new database",
			 d->path, (long long)n, path);
		goto out;
	}
	int rc = sqlite3_exec(d->db, AUD_SEAL_TABLE, NULL, NULL, NULL);
	if (rc) {
		r = aud_sqlite_errno(rc);
		snprintf(err, errlen, "cannot create the seal table in '%s': %s", d->path,
			 sqlite3_errmsg(d->db));
		goto out;
	}
	snprintf(s->db_id, sizeof s->db_id, "%s", id.id);
	s->epoch = 0;
	s->rows = rows ? rows : AUD_SEAL_ROWS;
	s->interval_s = interval_s ? interval_s : AUD_SEAL_INTERVAL_S;
	randombytes_buf(s->key, sizeof s->key);
	if ((r = aud_seal_state_write(path, s, err, errlen)))
		goto out;
	aud_vkey_format(s->db_id, s->key, vkey, AUD_VKEY_TEXT_LEN + 1);
	vkey[AUD_VKEY_TEXT_LEN] = '\n';
	r = write_all(out_fd, vkey, AUD_VKEY_TEXT_LEN + 1);
	if (!r && fsync(out_fd) < 0 && errno != EINVAL && errno != EROFS)
		r = -errno; /* a terminal or pipe cannot be synced; a file must be */
	if (r) {
		/* nobody has k0: a state nobody can verify is worse than none */
		unlink(path);
		snprintf(err, errlen,
			 "cannot write the verification key: %s; sealing was not set up",
			 strerror(-r));
	}
out:
	if (vkey)
		sodium_free(vkey);
	aud_seal_state_free(s);
	free(path);
	return r;
}

int wfs_audit_seal_status(struct wfs_audit_db *d, struct wfs_audit_seal_status *s)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (sqlite3_prepare_v2(d->db,
			       "SELECT (SELECT count(*) FROM seal), epoch, last_id, time_ns, "
			       "(SELECT count(*) FROM events WHERE id > last_id) FROM seal "
			       "ORDER BY epoch DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return 0; /* no seal table: never sealed */
	}
	s->table = true;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->seals = sqlite3_column_int64(st, 0);
		s->epoch = sqlite3_column_int64(st, 1);
		s->last_row = sqlite3_column_int64(st, 2);
		s->time_ns = sqlite3_column_int64(st, 3);
		s->unsealed = sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		/* sealing started, nothing sealed yet: every row is after it */
		if (sqlite3_prepare_v2(d->db, "SELECT count(*) FROM events", -1, &st, NULL) !=
		    SQLITE_OK)
			return -EIO;
		if (sqlite3_step(st) == SQLITE_ROW)
			s->unsealed = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return 0;
	}
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int wfs_audit_seal_init_file(struct wfs_audit_db *d, uint64_t rows, uint64_t interval_s,
			     const char *out, char *err, size_t errlen)
{
	/* Made before the state: a key that cannot be handed out must not
	 * leave a state behind. Never over another key. */
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create verification key file '%s': %s", out,
			 strerror(e));
		return -e;
	}
	int r = wfs_audit_seal_init(d, rows, interval_s, fd, err, errlen);
	close(fd);
	if (r)
		unlink(out);
	return r;
}

int wfs_audit_seal_at_mount(const char *db_path, const char *vkey_out, char *err, size_t errlen)
{
	struct wfs_audit_db *d = NULL;
	char *path = NULL;
	struct stat st;
	int r;
	if (asprintf(&path, "%s.seal", db_path) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = 0;
	if (lstat(path, &st) == 0)
		goto out; /* sealed already: its key was handed out then */
	if ((r = wfs_audit_db_open(db_path, true, &d, err, errlen)))
		goto out;
	if (count_seals(d->db))
		goto out; /* sealed once, state gone: the writer says so */
	if ((r = wfs_audit_seal_init_file(d, 0, 0, vkey_out, err, errlen)) == 0)
		r = 1;
out:
	wfs_audit_db_close(d);
	free(path);
	return r;
}
