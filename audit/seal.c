/*
 * seal.c - forward-secure sealing of the audit database: the sealing key's
 * one-way evolution, the seal tag, and the three texts sealing reads and
 * writes (the host's state file, the off-host verification key, the
 * checkpoint line). No SQLite here: the writer (seal_write.c) and verify
 * (seal_verify.c) use these, and the fuzz target feeds the parsers.
 *
 * k_{i+1} = HMAC-SHA256(k_i, "wardfs seal evolve" || u64be(i)): knowing k_i
 * gives every later key and no earlier one (Bellare-Yee 2003, forward-secure
 * MACs; Schneier-Kelsey 1999, secure audit logs), so an attacker who takes
 * the host's current key cannot forge or redo an earlier epoch's seal.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_internal.h"

#define EVOLVE_LABEL "wardfs seal evolve"
#define TAG_LABEL    "wardfs seal tag"
#define VKEY_LABEL   "wardfs seal verify key"
#define STATE_MAX    1024

int aud_seal_evolve(const unsigned char k[AUD_SEAL_KEY_LEN], uint64_t epoch,
		    unsigned char out[AUD_SEAL_KEY_LEN])
{
	crypto_auth_hmacsha256_state st;
	unsigned char be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)(epoch >> (56 - 8 * i));
	int r = crypto_auth_hmacsha256_init(&st, k, AUD_SEAL_KEY_LEN);
	if (!r)
		r = crypto_auth_hmacsha256_update(&st, (const unsigned char *)EVOLVE_LABEL,
						  strlen(EVOLVE_LABEL));
	if (!r)
		r = crypto_auth_hmacsha256_update(&st, be, sizeof be);
	if (!r)
		r = crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
	return r ? -EIO : 0;
}

int aud_seal_tag(const unsigned char k[AUD_SEAL_KEY_LEN], const struct aud_seal *s,
		 unsigned char out[AUD_MAC_LEN])
{
	unsigned char tmp[5 + WFS_AUDIT_ID_LEN + 3 * 9 + 2 * (5 + AUD_MAC_LEN)];
	struct aud_buf b = {tmp, 0, sizeof tmp};
	aud_enc_text(&b, s->db_id, WFS_AUDIT_ID_LEN);
	aud_enc_int(&b, (int64_t)s->epoch);
	aud_enc_int(&b, s->first_id);
	aud_enc_int(&b, s->last_id);
	aud_enc_text(&b, (const char *)s->head, AUD_MAC_LEN);
	aud_enc_text(&b, (const char *)s->prev_tag, AUD_MAC_LEN);
	crypto_auth_hmacsha256_state st;
	int r = crypto_auth_hmacsha256_init(&st, k, AUD_SEAL_KEY_LEN);
	if (!r)
		r = crypto_auth_hmacsha256_update(&st, (const unsigned char *)TAG_LABEL,
						  strlen(TAG_LABEL));
	if (!r)
		r = crypto_auth_hmacsha256_update(&st, tmp, b.len);
	if (!r)
		r = crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
	return r ? -EIO : 0;
}

/* ---- hex ------------------------------------------------------------- */

void aud_hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2n hex digits at s into out: 0, or the index of the first bad
 * character plus one. */
static size_t unhex(const char *s, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0)
			return 2 * i + 1;
		if (lo < 0)
			return 2 * i + 2;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static bool is_db_id(const char *s, size_t n)
{
	if (n != WFS_AUDIT_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* ---- the verification key --------------------------------------------
 * "wardfs-vk1-" DB_ID(32) "-" K0(64 hex) "-" CHECK(8 hex), CHECK being the
 * first 4 bytes of SHA-256(VKEY_LABEL || db_id || k0): a mistyped or cut
 * key is told as such, not taken for evidence of tampering. */
#define VKEY_PREFIX "wardfs-vk1-"
#define VKEY_LEN    (sizeof VKEY_PREFIX - 1 + WFS_AUDIT_ID_LEN + 1 + 64 + 1 + 8)

static void vkey_check(const char *db_id, const unsigned char *k0, unsigned char out[4])
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)VKEY_LABEL, strlen(VKEY_LABEL));
	crypto_hash_sha256_update(&st, (const unsigned char *)db_id, WFS_AUDIT_ID_LEN);
	crypto_hash_sha256_update(&st, k0, AUD_SEAL_KEY_LEN);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, 4);
	sodium_memzero(&st, sizeof st);
	sodium_memzero(h, sizeof h);
}

int aud_vkey_format(const char *db_id, const unsigned char k0[AUD_SEAL_KEY_LEN], char *out,
		    size_t len)
{
	if (len < AUD_VKEY_TEXT_LEN + 1)
		return -ENOSPC;
	unsigned char check[4];
	vkey_check(db_id, k0, check);
	size_t o = (size_t)snprintf(out, len, "%s%.32s-", VKEY_PREFIX, db_id);
	aud_hex(k0, AUD_SEAL_KEY_LEN, out + o);
	o += 64;
	out[o++] = '-';
	aud_hex(check, 4, out + o);
	return 0;
}

int aud_vkey_parse(const char *s, size_t len, char db_id[WFS_AUDIT_ID_LEN + 1],
		   unsigned char k0[AUD_SEAL_KEY_LEN], char *why, size_t whylen)
{
	/* surrounding white space (a file's newline, a pasted blank) is not the key's */
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	size_t plen = sizeof VKEY_PREFIX - 1;
	if (len < plen || memcmp(s, VKEY_PREFIX, plen)) {
		snprintf(why, whylen,
			 "it is not a wardfs verification key (it does not start "
			 "with '" VKEY_PREFIX "')");
		return -EINVAL;
	}
	if (len < VKEY_LEN) {
		snprintf(why, whylen, "it is truncated (%zu of %zu characters)", len,
			 (size_t)VKEY_LEN);
		return -EINVAL;
	}
	if (len > VKEY_LEN) {
		snprintf(why, whylen, "it is too long (%zu characters, not %zu)", len,
			 (size_t)VKEY_LEN);
		return -EINVAL;
	}
	const char *id = s + plen, *k = id + WFS_AUDIT_ID_LEN + 1, *c = k + 65;
	if (id[WFS_AUDIT_ID_LEN] != '-' || k[64] != '-' || !is_db_id(id, WFS_AUDIT_ID_LEN)) {
		snprintf(why, whylen, "it is malformed (not %s<db id>-<key>-<check>)", VKEY_PREFIX);
		return -EINVAL;
	}
	unsigned char check[4], want[4];
	size_t bad = unhex(k, AUD_SEAL_KEY_LEN, k0);
	if (!bad && (bad = unhex(c, 4, check)))
		bad += 65;
	if (bad) {
		snprintf(why, whylen, "character %zu is not a hex digit", (size_t)(k - s) + bad);
		sodium_memzero(k0, AUD_SEAL_KEY_LEN);
		return -EINVAL;
	}
	memcpy(db_id, id, WFS_AUDIT_ID_LEN);
	db_id[WFS_AUDIT_ID_LEN] = 0;
	vkey_check(db_id, k0, want);
	if (sodium_memcmp(check, want, 4)) {
		snprintf(why, whylen, "its checksum does not match (a typo?)");
		sodium_memzero(k0, AUD_SEAL_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

/* ---- the state file ---------------------------------------------------
 *   wardfs-seal-state 1
 *   db_id=<32 hex>
 *   epoch=<decimal>
 *   key=<64 hex>          (k_epoch: the next seal's key)
 *   rows=<decimal>        (seal every so many rows ...)
 *   interval=<decimal>    (... or seconds)
 * Lines in this order, each ending in a newline, nothing else. */

static int take_line(const char **p, const char *end, const char *name, const char **val,
		     size_t *vlen)
{
	size_t n = strlen(name);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl || (size_t)(nl - *p) < n || memcmp(*p, name, n))
		return -EINVAL;
	*val = *p + n;
	*vlen = (size_t)(nl - *val);
	*p = nl + 1;
	return 0;
}

static int take_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!n || n > 19)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int aud_seal_state_parse(const char *buf, size_t len, struct aud_seal_state *s, char *why,
			 size_t whylen)
{
	const char *p = buf, *end = buf + len, *v;
	size_t n;
	int r = -EINVAL;
	const char *what = "its first line is not 'wardfs-seal-state 1'";
	if (take_line(&p, end, "wardfs-seal-state 1", &v, &n) || n)
		goto out;
	what = "its db_id line is malformed";
	if (take_line(&p, end, "db_id=", &v, &n) || !is_db_id(v, n))
		goto out;
	memcpy(s->db_id, v, n);
	s->db_id[n] = 0;
	what = "its epoch line is malformed";
	if (take_line(&p, end, "epoch=", &v, &n) || take_u64(v, n, INT64_MAX, &s->epoch))
		goto out;
	what = "its key line is malformed";
	if (take_line(&p, end, "key=", &v, &n) || n != 2 * AUD_SEAL_KEY_LEN ||
	    unhex(v, AUD_SEAL_KEY_LEN, s->key))
		goto out;
	what = "its rows line is malformed";
	if (take_line(&p, end, "rows=", &v, &n) || take_u64(v, n, UINT32_MAX, &s->rows) || !s->rows)
		goto out;
	what = "its interval line is malformed";
	if (take_line(&p, end, "interval=", &v, &n) ||
	    take_u64(v, n, 365ULL * 86400, &s->interval_s) || !s->interval_s)
		goto out;
	what = "it has text after its last line";
	if (p != end)
		goto out;
	r = 0;
out:
	if (r) {
		snprintf(why, whylen, "%s", what);
		sodium_memzero(s->key, sizeof s->key);
	}
	return r;
}

/* The state's text into buf (locked memory: it holds the key in hex). */
static int state_format(const struct aud_seal_state *s, char *buf, size_t len)
{
	char hex[2 * AUD_SEAL_KEY_LEN + 1];
	aud_hex(s->key, AUD_SEAL_KEY_LEN, hex);
	int n = snprintf(buf, len,
			 "wardfs-seal-state 1\ndb_id=%s\nepoch=%llu\nkey=%s\nrows=%llu\n"
			 "interval=%llu\n",
			 s->db_id, (unsigned long long)s->epoch, hex, (unsigned long long)s->rows,
			 (unsigned long long)s->interval_s);
	sodium_memzero(hex, sizeof hex);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

struct aud_seal_state *aud_seal_state_new(void)
{
	if (sodium_init() < 0)
		return NULL;
	struct aud_seal_state *s = sodium_malloc(sizeof *s);
	if (s)
		memset(s, 0, sizeof *s);
	return s;
}

void aud_seal_state_free(struct aud_seal_state *s)
{
	if (s)
		sodium_free(s); /* wipes it */
}

int aud_seal_state_read_fd(int fd, const char *path, struct aud_seal_state *s, char *err,
			   size_t errlen)
{
	struct stat st;
	char why[128];
	int r = 0;
	char *buf = sodium_malloc(STATE_MAX);
	if (!buf)
		return -ENOMEM;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot stat sealing state '%s': %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "sealing state '%s' is not a regular file", path);
	} else if (st.st_mode & 077) {
		r = -EPERM;
		snprintf(err, errlen,
			 "sealing state '%s' is accessible by group or others (mode %o)", path,
			 (unsigned)(st.st_mode & 07777));
	} else if (geteuid() == 0 && st.st_uid != 0) {
		r = -EPERM;
		snprintf(err, errlen, "sealing state '%s' is not owned by root", path);
	}
	ssize_t n = r ? 0 : pread(fd, buf, STATE_MAX, 0);
	if (!r && (n < 0 || n >= STATE_MAX)) {
		r = n < 0 ? -errno : -EINVAL;
		snprintf(err, errlen, "cannot read sealing state '%s': %s", path,
			 n < 0 ? strerror(errno) : "too long");
	}
	if (!r && aud_seal_state_parse(buf, (size_t)n, s, why, sizeof why)) {
		r = -EINVAL;
		snprintf(err, errlen, "sealing state '%s' cannot be read: %s", path, why);
	}
	sodium_free(buf);
	return r;
}

int aud_seal_state_read(const char *path, struct aud_seal_state *s, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open sealing state '%s': %s", path, strerror(e));
		return -e;
	}
	int r = aud_seal_state_read_fd(fd, path, s, err, errlen);
	close(fd);
	return r;
}

int aud_seal_state_lock(const char *path, int op)
{
	/* the lock must be on the file the path names once locked: another
	 * daemon on this db may have replaced it meanwhile */
	for (int tries = 0; tries < 8; tries++) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		struct stat a, b;
		if (flock(fd, op) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

/* Zeros over the replaced state's blocks, through an fd kept on it: a best
 * effort (a copy-on-write file system or an SSD's remapping may keep the
 * old bytes), on top of the rename that unlinks it. */
static void wipe_file(int fd)
{
	static const char zeros[STATE_MAX];
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > STATE_MAX)
		return;
	if (pwrite(fd, zeros, (size_t)st.st_size, 0) == st.st_size)
		fdatasync(fd);
}

int aud_seal_state_write(const char *path, const struct aud_seal_state *s, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd = -1, old = -1, dfd = -1, r = 0;
	char *buf = sodium_malloc(STATE_MAX);
	if (!buf)
		return -ENOMEM;
	int n = state_format(s, buf, STATE_MAX);
	if (n < 0 ||
	    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
		r = -ENAMETOOLONG;
		goto out;
	}
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		snprintf(dir, sizeof dir, ".");
	unlink(tmp); /* a temp file a crash left */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		goto out;
	}
	old = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		r = -errno;
		goto out;
	}
	if (old >= 0)
		wipe_file(old);
out:
	if (r) {
		snprintf(err, errlen, "cannot write sealing state '%s': %s", path, strerror(-r));
		if (fd >= 0)
			unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	if (old >= 0)
		close(old);
	if (dfd >= 0)
		close(dfd);
	sodium_free(buf);
	return r;
}

/* ---- checkpoints ------------------------------------------------------
 * wardfs-checkpoint db=<32 hex> epoch=<n> last-row=<n> head=<64 hex> tag=<64 hex>
 * anywhere in a line (journalctl and syslog put their own prefix before). */

int aud_checkpoint_format(const struct aud_seal *s, const unsigned char tag[AUD_MAC_LEN], char *out,
			  size_t len)
{
	char head[2 * AUD_MAC_LEN + 1], t[2 * AUD_MAC_LEN + 1];
	aud_hex(s->head, AUD_MAC_LEN, head);
	aud_hex(tag, AUD_MAC_LEN, t);
	int n = snprintf(out, len,
			 AUD_CHECKPOINT_WORD " db=%s epoch=%llu last-row=%lld head=%s tag=%s",
			 s->db_id, (unsigned long long)s->epoch, (long long)s->last_id, head, t);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int take_field(const char **p, const char *end, const char *name, const char **val,
		      size_t *vlen)
{
	size_t n = strlen(name);
	if ((size_t)(end - *p) < n || memcmp(*p, name, n))
		return -EINVAL;
	*val = *p + n;
	const char *q = *val;
	while (q < end && *q != ' ')
		q++;
	*vlen = (size_t)(q - *val);
	*p = q < end ? q + 1 : q;
	return 0;
}

int aud_checkpoint_parse(const char *line, size_t len, struct aud_checkpoint *c)
{
	static const char word[] = AUD_CHECKPOINT_WORD " ";
	const char *end = line + len, *p = NULL;
	/* trailing white space (\r\n) is syslog's, not the checkpoint's */
	while (end > line && isspace((unsigned char)end[-1]))
		end--;
	for (const char *q = line; q + sizeof word - 1 <= end; q++)
		if (!memcmp(q, word, sizeof word - 1)) {
			p = q + sizeof word - 1;
			break;
		}
	if (!p)
		return 0;
	const char *v;
	size_t n;
	uint64_t u;
	memset(c, 0, sizeof *c);
	if (take_field(&p, end, "db=", &v, &n) || !is_db_id(v, n))
		return -EINVAL;
	memcpy(c->db_id, v, n);
	if (take_field(&p, end, "epoch=", &v, &n) || take_u64(v, n, INT64_MAX, &c->epoch))
		return -EINVAL;
	if (take_field(&p, end, "last-row=", &v, &n) || take_u64(v, n, INT64_MAX, &u))
		return -EINVAL;
	c->last_id = (int64_t)u;
	if (take_field(&p, end, "head=", &v, &n) || n != 2 * AUD_MAC_LEN ||
	    unhex(v, AUD_MAC_LEN, c->head))
		return -EINVAL;
	if (take_field(&p, end, "tag=", &v, &n) || n != 2 * AUD_MAC_LEN ||
	    unhex(v, AUD_MAC_LEN, c->tag) || p != end)
		return -EINVAL;
	return 1;
}
