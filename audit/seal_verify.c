/*
 * seal_verify.c - `wardfs audit verify --verify-key`: checks the seals with
 * the off-host verification key (k0). Each epoch's key is derived from k0;
 * each seal's tag, their sequence and the chain recomputed from the rows
 * (not the stored MACs: an attacker with DB.key recomputes those) must
 * agree, and so must the host's state and, if given, checkpoint lines
 * logged off the host. The first failure is the verdict.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_internal.h"

struct sealrec {
	struct aud_seal s;
	unsigned char tag[AUD_MAC_LEN];
};

/* Locked memory for the keys. */
struct keys {
	unsigned char chain[AUD_KEY_LEN];
	unsigned char k0[AUD_SEAL_KEY_LEN];
	unsigned char cur[AUD_SEAL_KEY_LEN], next[AUD_SEAL_KEY_LEN];
	uint64_t cur_epoch;
	char text[1024]; /* the verification key's file */
	size_t text_len;
};

/* The verification key's file into locked memory ("-": stdin). */
static int read_vkey(const char *path, struct keys *k, char *err, size_t errlen)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open verification key '%s': %s", path, strerror(e));
		return -e;
	}
	ssize_t n;
	k->text_len = 0;
	while (k->text_len < sizeof k->text &&
	       (n = read(fd, k->text + k->text_len, sizeof k->text - k->text_len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot read verification key '%s': %s", path,
				 strerror(e));
			if (fd)
				close(fd);
			return -e;
		}
		k->text_len += (size_t)n;
	}
	if (fd)
		close(fd);
	return 0;
}

static int verdict(struct wfs_audit_seal_result *r, int v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int verdict(struct wfs_audit_seal_result *r, int v, const char *fmt, ...)
{
	/* tampering outranks "cannot vouch"; the first of a kind stays */
	if (r->verdict == WFS_SEAL_TAMPERED || (r->verdict && v != WFS_SEAL_TAMPERED))
		return r->verdict;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
	r->verdict = v;
	return v;
}

/* k->cur becomes k_epoch (from k0 when going back). */
static void key_at(struct keys *k, uint64_t epoch)
{
	if (epoch < k->cur_epoch) {
		memcpy(k->cur, k->k0, AUD_SEAL_KEY_LEN);
		k->cur_epoch = 0;
	}
	while (k->cur_epoch < epoch) {
		aud_seal_evolve(k->cur, k->cur_epoch, k->next);
		memcpy(k->cur, k->next, AUD_SEAL_KEY_LEN);
		k->cur_epoch++;
	}
	sodium_memzero(k->next, sizeof k->next);
}

static void blob(sqlite3_stmt *st, int col, unsigned char *out)
{
	memset(out, 0, AUD_MAC_LEN);
	if (sqlite3_column_bytes(st, col) == AUD_MAC_LEN)
		memcpy(out, sqlite3_column_blob(st, col), AUD_MAC_LEN);
}

/* The seals by epoch; *n = -1 when there is no seal table. */
static int load_seals(sqlite3 *db, const char *db_id, struct sealrec **out, int64_t *n)
{
	sqlite3_stmt *st;
	*out = NULL;
	*n = -1;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT epoch, first_id, last_id, head, prev_tag, tag FROM seal ORDER "
		    "BY epoch",
		    -1, &st, NULL))
		return 0;
	*n = 0;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((size_t)*n == cap) {
			cap = cap ? 2 * cap : 64;
			struct sealrec *p = realloc(*out, cap * sizeof *p);
			if (!p) {
				sqlite3_finalize(st);
				return -ENOMEM;
			}
			*out = p;
		}
		struct sealrec *s = &(*out)[(*n)++];
		memset(s, 0, sizeof *s);
		snprintf(s->s.db_id, sizeof s->s.db_id, "%s", db_id);
		s->s.epoch = (uint64_t)sqlite3_column_int64(st, 0);
		s->s.first_id = sqlite3_column_int64(st, 1);
		s->s.last_id = sqlite3_column_int64(st, 2);
		blob(st, 3, s->s.head);
		blob(st, 4, s->s.prev_tag);
		blob(st, 5, s->tag);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : aud_sqlite_errno(rc);
}

/* The seals' own sequence: tags with each epoch's key, no missing epoch,
 * adjacent row ranges, each linked to the previous tag. */
static void check_seals(struct keys *k, const struct sealrec *s, int64_t n,
			struct wfs_audit_seal_result *r)
{
	static const unsigned char zero[AUD_MAC_LEN];
	for (int64_t i = 0; i < n; i++) {
		const struct aud_seal *c = &s[i].s;
		uint64_t want = i ? s[i - 1].s.epoch + 1 : 0;
		unsigned char tag[AUD_MAC_LEN];
		if (c->epoch != want) {
			verdict(r, WFS_SEAL_TAMPERED,
				"the seals of epochs %llu..%llu are missing (deleted), before the "
				"seal of epoch %llu (rows %lld..%lld)",
				(unsigned long long)want, (unsigned long long)c->epoch - 1,
				(unsigned long long)c->epoch, (long long)c->first_id,
				(long long)c->last_id);
			return;
		}
		key_at(k, c->epoch);
		aud_seal_tag(k->cur, c, tag);
		if (sodium_memcmp(tag, s[i].tag, AUD_MAC_LEN)) {
			verdict(r, WFS_SEAL_TAMPERED,
				"the seal of epoch %llu (rows %lld..%lld) is forged or edited: its "
				"tag does not verify with the verification key",
				(unsigned long long)c->epoch, (long long)c->first_id,
				(long long)c->last_id);
			return;
		}
		if (sodium_memcmp(c->prev_tag, i ? s[i - 1].tag : zero, AUD_MAC_LEN) ||
		    (i && c->first_id != s[i - 1].s.last_id + 1) || c->last_id < c->first_id) {
			verdict(r, WFS_SEAL_TAMPERED,
				"the seal of epoch %llu (rows %lld..%lld) does not follow the seal "
				"before it",
				(unsigned long long)c->epoch, (long long)c->first_id,
				(long long)c->last_id);
			return;
		}
		r->seals++;
	}
}

/* The latest prune anchor: rows up to *to are gone, the chain goes on
 * from mac (authenticated by the chain key only: see docs). */
static void load_anchor(sqlite3 *db, int64_t *to, unsigned char *mac)
{
	sqlite3_stmt *st;
	*to = 0;
	memset(mac, 0, AUD_MAC_LEN);
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT pruned_to, mac FROM anchors ORDER BY pruned_to DESC, id DESC "
		    "LIMIT 1",
		    -1, &st, NULL))
		return;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*to = sqlite3_column_int64(st, 0);
		blob(st, 1, mac);
	}
	sqlite3_finalize(st);
}

/*
 * Recomputes the chain from the rows themselves (the stored MACs are not
 * trusted: whoever has DB.key can recompute them) and compares it with
 * each seal's head at its last row. Sealed rows edited, deleted or
 * inserted change that MAC or leave a gap.
 */
static int check_rows(sqlite3 *db, const struct keys *k, const struct sealrec *s, int64_t n,
		      struct wfs_audit_seal_result *r)
{
	unsigned char prev[AUD_MAC_LEN], mac[AUD_MAC_LEN];
	int64_t anchor;
	load_anchor(db, &anchor, prev);
	r->pruned_to = anchor;
	int64_t j = 0;
	while (j < n && s[j].s.last_id <= anchor)
		j++; /* pruned: their tags were checked, their rows are gone */
	sqlite3_stmt *st;
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT id," AUD_ROW_COLS " FROM events WHERE id > ? ORDER BY id");
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc)
		return aud_sqlite_errno(rc);
	sqlite3_bind_int64(st, 1, anchor);
	struct aud_buf b = {0};
	int64_t expect = anchor + 1;
	int ret = 0;
	while (j < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const struct aud_seal *c = &s[j].s;
		/* A gap before the first seal's range is the chain's business
		 * (verify's chain check), not the seals'. */
		if (id != expect && id - 1 >= c->first_id) {
			verdict(r, WFS_SEAL_TAMPERED,
				"rows %lld..%lld, sealed in epoch %llu, were deleted",
				(long long)(expect > c->first_id ? expect : c->first_id),
				(long long)(id - 1 < c->last_id ? id - 1 : c->last_id),
				(unsigned long long)c->epoch);
			break;
		}
		struct aud_row row;
		aud_row_from_columns(st, 1, &row);
		b.len = 0;
		if ((ret = aud_row_encode(&b, &row)) ||
		    (ret = aud_mac_row(k->chain, prev, id, b.p, b.len, mac)))
			break;
		memcpy(prev, mac, AUD_MAC_LEN);
		expect = id + 1;
		while (j < n && id >= s[j].s.last_id) {
			c = &s[j].s;
			if (id > c->last_id || sodium_memcmp(mac, c->head, AUD_MAC_LEN)) {
				verdict(r, WFS_SEAL_TAMPERED,
					"rows %lld..%lld, sealed in epoch %llu, were altered "
					"(edited, "
					"inserted or deleted): the chain recomputed from the rows "
					"does "
					"not give the seal's head at row %lld",
					(long long)c->first_id, (long long)c->last_id,
					(unsigned long long)c->epoch, (long long)c->last_id);
				j = n;
				break;
			}
			j++;
		}
	}
	sqlite3_finalize(st);
	aud_buf_free(&b);
	if (ret)
		return ret;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return aud_sqlite_errno(rc);
	if (j < n && r->verdict != WFS_SEAL_TAMPERED)
		verdict(r, WFS_SEAL_TAMPERED,
			"rows %lld..%lld, sealed in epoch %llu, were deleted (at the end)",
			(long long)expect > s[j].s.first_id ? (long long)expect
							    : (long long)s[j].s.first_id,
			(long long)s[j].s.last_id, (unsigned long long)s[j].s.epoch);
	return 0;
}

/* The host's state: the next epoch's key, for this db. e is how reading
 * it went (0, -ENOENT, or -errno with err). */
static void check_state(const char *path, int e, const char *err, struct aud_seal_state *st,
			struct keys *k, const char *db_id, const struct sealrec *s, int64_t n,
			struct wfs_audit_seal_result *r)
{
	uint64_t next = n > 0 ? s[n - 1].s.epoch + 1 : 0;
	if (e == -ENOENT) {
		verdict(r, WFS_SEAL_UNVERIFIABLE,
			"the sealing state '%s' is missing: rows after row %lld cannot be sealed "
			"any more (deleted? copy it along when verifying elsewhere)",
			path, n > 0 ? (long long)s[n - 1].s.last_id : 0LL);
	} else if (e) {
		verdict(r, WFS_SEAL_UNVERIFIABLE, "%s", err);
	} else if (strcmp(st->db_id, db_id)) {
		verdict(r, WFS_SEAL_UNVERIFIABLE,
			"the sealing state '%s' is of another audit database (id %s)", path,
			st->db_id);
	} else {
		key_at(k, st->epoch);
		if (sodium_memcmp(k->cur, st->key, AUD_SEAL_KEY_LEN))
			verdict(r, WFS_SEAL_TAMPERED,
				"the sealing state '%s' (epoch %llu) does not hold that epoch's "
				"key: "
				"it was replaced or edited",
				path, (unsigned long long)st->epoch);
		else if (st->epoch > next)
			verdict(r, WFS_SEAL_TAMPERED,
				"the seals of epochs %llu..%llu are missing (the sealing state is "
				"at "
				"epoch %llu): the newest seals were deleted",
				(unsigned long long)next, (unsigned long long)st->epoch - 1,
				(unsigned long long)st->epoch);
		else if (st->epoch + 1 < next)
			verdict(r, WFS_SEAL_TAMPERED,
				"the sealing state '%s' is at epoch %llu, behind the seals (epoch "
				"%llu): an old state was put back",
				path, (unsigned long long)st->epoch, (unsigned long long)next - 1);
	}
}

static int cp_cmp(const void *x, const void *y)
{
	const struct aud_checkpoint *a = x, *b = y;
	return a->epoch < b->epoch ? -1 : a->epoch > b->epoch;
}

/*
 * Checkpoint lines logged off the host: those of epochs the db holds must
 * be its seals; one beyond its newest seal means seals and rows were
 * deleted at the end (a truncated tail), or the db replaced. A checkpoint
 * right after a known seal is authenticated (its tag is recomputed).
 */
static int check_checkpoints(const char *file, struct keys *k, const char *db_id,
			     const struct sealrec *s, int64_t n, struct wfs_audit_seal_result *r,
			     char *err, size_t errlen)
{
	/* "-": stdin, e.g. `journalctl -t wardfs -o cat | wardfs audit verify ...` */
	bool in = !strcmp(file, "-");
	FILE *f = in ? stdin : fopen(file, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "cannot read checkpoints '%s': %s", file, strerror(e));
		return -e;
	}
	char *line = NULL;
	size_t cap = 0, ncp = 0, cpcap = 0;
	ssize_t len;
	struct aud_checkpoint c, *cps = NULL;
	char other[WFS_AUDIT_ID_LEN + 1] = "";
	int ret = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		int p = aud_checkpoint_parse(line, (size_t)len, &c);
		if (p < 0)
			r->malformed++;
		if (p <= 0)
			continue;
		if (strcmp(c.db_id, db_id)) {
			r->foreign++;
			snprintf(other, sizeof other, "%s", c.db_id);
			continue;
		}
		if (ncp == cpcap) {
			cpcap = cpcap ? 2 * cpcap : 64;
			struct aud_checkpoint *q = realloc(cps, cpcap * sizeof *q);
			if (!q) {
				ret = -ENOMEM;
				goto out;
			}
			cps = q;
		}
		cps[ncp++] = c;
	}
	if (!ncp) {
		if (r->foreign)
			verdict(r, WFS_SEAL_UNVERIFIABLE,
				"no checkpoint in '%s' is of this database (id %s); it holds %llu "
				"of "
				"another (id %s): the wrong file, or this database replaced that "
				"one",
				file, db_id, (unsigned long long)r->foreign, other);
		else
			verdict(r, WFS_SEAL_UNVERIFIABLE, "'%s' holds no %s line of this database",
				file, AUD_CHECKPOINT_WORD);
		goto out;
	}
	qsort(cps, ncp, sizeof *cps, cp_cmp);
	uint64_t top = n > 0 ? s[n - 1].s.epoch : 0;
	const unsigned char *prev_tag = n > 0 ? s[n - 1].tag : NULL;
	int64_t prev_last = n > 0 ? s[n - 1].s.last_id : 0;
	uint64_t prev_epoch = top;
	bool authentic = n > 0;
	for (size_t i = 0; i < ncp; i++) {
		const struct aud_checkpoint *cp = &cps[i];
		if (n > 0 && cp->epoch <= top) {
			const struct sealrec *m = NULL;
			for (int64_t x = 0; x < n && !m; x++)
				if (s[x].s.epoch == cp->epoch)
					m = &s[x];
			if (!m || m->s.last_id != cp->last_id ||
			    sodium_memcmp(m->s.head, cp->head, AUD_MAC_LEN) ||
			    sodium_memcmp(m->tag, cp->tag, AUD_MAC_LEN)) {
				verdict(r, WFS_SEAL_TAMPERED,
					"the checkpoint of epoch %llu (row %lld) does not match "
					"the "
					"database's seal of that epoch: the database was replaced "
					"or "
					"its seals rewritten",
					(unsigned long long)cp->epoch, (long long)cp->last_id);
				goto out;
			}
			r->checkpoints++;
			continue;
		}
		/* beyond the db's newest seal: is it genuine? */
		if (authentic && cp->epoch == prev_epoch + 1) {
			struct aud_seal q = {.epoch = cp->epoch,
					     .first_id = prev_last + 1,
					     .last_id = cp->last_id};
			unsigned char tag[AUD_MAC_LEN];
			snprintf(q.db_id, sizeof q.db_id, "%s", db_id);
			memcpy(q.head, cp->head, AUD_MAC_LEN);
			memcpy(q.prev_tag, prev_tag, AUD_MAC_LEN);
			key_at(k, cp->epoch);
			aud_seal_tag(k->cur, &q, tag);
			authentic = !sodium_memcmp(tag, cp->tag, AUD_MAC_LEN);
		} else {
			authentic = false;
		}
		if (n == 0)
			verdict(r, WFS_SEAL_TAMPERED,
				"the database holds no seal, but a checkpoint of epoch %llu (row "
				"%lld) was logged: its seals were deleted, or the database "
				"replaced",
				(unsigned long long)cp->epoch, (long long)cp->last_id);
		else if (authentic)
			verdict(r, WFS_SEAL_TAMPERED,
				"the database's seals end at epoch %llu (row %lld), but a "
				"checkpoint "
				"of epoch %llu (row %lld) was logged, and its tag verifies: the "
				"newest seals and rows were deleted (truncated tail)",
				(unsigned long long)top, (long long)prev_last,
				(unsigned long long)cp->epoch, (long long)cp->last_id);
		else
			verdict(r, WFS_SEAL_TAMPERED,
				"the database's seals end at epoch %llu (row %lld), but a "
				"checkpoint "
				"of epoch %llu (row %lld) was logged (its tag cannot be checked "
				"without the seal before it): the newest seals and rows were "
				"deleted, or the line is forged",
				(unsigned long long)top, (long long)prev_last,
				(unsigned long long)cp->epoch, (long long)cp->last_id);
		goto out;
	}
out:
	free(line);
	free(cps);
	if (!in)
		fclose(f);
	return ret;
}

static int64_t max_row(sqlite3 *db)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	if (sqlite3_prepare_v2(db, "SELECT max(id) FROM events", -1, &st, NULL))
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

int wfs_audit_seal_verify(struct wfs_audit_db *d, const struct wfs_audit_seal_opts *o,
			  struct wfs_audit_seal_result *r, char *err, size_t errlen)
{
	struct keys *k = NULL;
	struct sealrec *s = NULL;
	int64_t n = 0;
	char why[160], vid[WFS_AUDIT_ID_LEN + 1], *state = NULL, serr[512] = "";
	const char *sp = NULL;
	struct aud_seal_state *st = NULL;
	int se = 0;
	struct wfs_audit_identity id;
	int ret = 0;
	memset(r, 0, sizeof *r);
	if (sodium_init() < 0 || !(k = sodium_malloc(sizeof *k))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(k, 0, sizeof *k);
	if ((ret = read_vkey(o->vkey_path, k, err, errlen)))
		goto out;
	if (aud_vkey_parse(k->text, k->text_len, vid, k->k0, why, sizeof why)) {
		ret = verdict(r, WFS_SEAL_UNVERIFIABLE, "verification key '%s' cannot be used: %s",
			      o->vkey_path, why);
		goto out;
	}
	memcpy(k->cur, k->k0, AUD_SEAL_KEY_LEN);
	if (aud_db_identity(d->db, &id)) {
		ret = verdict(r, WFS_SEAL_UNVERIFIABLE,
			      "audit database '%s' has no identity (schema older than 4): it was "
			      "never sealed",
			      d->path);
		goto out;
	}
	if (strcmp(vid, id.id)) {
		ret = verdict(r, WFS_SEAL_UNVERIFIABLE,
			      "verification key '%s' is of another audit database (id %s), not of "
			      "'%s' (id %s): the wrong key, or this database replaced that one",
			      o->vkey_path, vid, d->path, id.id);
		goto out;
	}
	if ((ret = aud_key_for_db(d->path, o->key_path, k->chain, err, errlen)))
		goto out;
	if (asprintf(&state, "%s.seal", d->path) < 0) {
		state = NULL;
		ret = -ENOMEM;
		goto out;
	}
	/*
	 * The state and the seals as of one moment: a daemon seals holding
	 * the state's lock exclusively (seal row, then state), so with it
	 * held shared the state read and the snapshot begun agree. Held only
	 * until the snapshot starts: a long check must not stall the writer.
	 */
	sp = o->state_path ? o->state_path : state;
	if (!(st = aud_seal_state_new())) {
		ret = -ENOMEM;
		goto out;
	}
	int lfd = aud_seal_state_lock(sp, LOCK_SH);
	if (lfd < 0) {
		se = lfd;
		snprintf(serr, sizeof serr, "cannot open sealing state '%s': %s", sp,
			 strerror(-lfd));
	} else {
		se = aud_seal_state_read_fd(lfd, sp, st, serr, sizeof serr);
	}
	sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL); /* one snapshot */
	ret = load_seals(d->db, id.id, &s, &n);
	if (lfd >= 0)
		close(lfd); /* the snapshot is taken: the daemon may seal again */
	r->last_row = max_row(d->db);
	if (!ret && n > 0) {
		check_seals(k, s, n, r);
		if (r->verdict != WFS_SEAL_TAMPERED)
			ret = check_rows(d->db, k, s, n, r);
		r->sealed_first = s[0].s.first_id;
		r->sealed_to = s[n - 1].s.last_id;
	}
	sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "cannot verify the seals of '%s': %s", d->path,
			 sqlite3_errmsg(d->db));
		goto out;
	}
	r->unsealed = r->last_row > r->sealed_to ? r->last_row - r->sealed_to : 0;
	if (n <= 0 && se == -ENOENT)
		verdict(r, WFS_SEAL_UNVERIFIABLE,
			"audit database '%s' has %s and no sealing state '%s': sealing was never "
			"set up on it, or both were deleted",
			d->path, n < 0 ? "no seal table" : "no seal", sp);
	check_state(sp, se, serr, st, k, id.id, s, n > 0 ? n : 0, r);
	if (n < 0)
		verdict(r, WFS_SEAL_UNVERIFIABLE,
			"audit database '%s' has no seal table: sealing was never set up on it, "
			"or the table was deleted",
			d->path);
	else if (n == 0)
		verdict(r, WFS_SEAL_UNVERIFIABLE,
			"audit database '%s' holds no seal: nothing sealed yet, or the seals were "
			"deleted",
			d->path);
	if (o->checkpoints)
		ret = check_checkpoints(o->checkpoints, k, id.id, s, n > 0 ? n : 0, r, err, errlen);
	if (!ret && r->pruned_to)
		snprintf(r->note, sizeof r->note,
			 "rows up to %lld were pruned: their seals were checked, their rows are "
			 "gone",
			 (long long)r->pruned_to);
	if (!ret)
		ret = r->verdict;
out:
	free(s);
	free(state);
	aud_seal_state_free(st);
	sodium_free(k);
	return ret;
}
