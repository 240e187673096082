/*
 * vault.c - BACKING/.wardfs/: does a vault exist (or did one lose its
 * keyfile), read and atomically replace its keyfile and config, and
 * unlock it from a passphrase or recovery key source.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "say.h"
#include "vault.h"

static int vault_path(char *buf, size_t len, const char *backing, const char *name)
{
	int n = snprintf(buf, len, "%s/" WFS_VAULT_DIR "%s%s", backing, name ? "/" : "",
			 name ? name : "");

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int wfs_make_dirs(const char *dir, mode_t mode, char *failed, size_t len)
{
	char buf[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf)) {
		snprintf(failed, len, "%s", dir);
		return -ENAMETOOLONG;
	}
	if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	for (char *p = buf + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 &&
		    (errno != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
			int r = errno == EEXIST ? -ENOTDIR : -errno;

			snprintf(failed, len, "%s", buf);
			return r;
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

bool wfs_vault_exists(const char *backing)
{
	char path[PATH_MAX];
	struct stat st;

	return vault_path(path, sizeof(path), backing, WFS_VAULT_KEYFILE) == 0 &&
	       lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

struct orphan_walk {
	char *what;
	size_t len;
};

static int is_encrypted(void *arg, int dfd, const char *name, const char *rel,
			const struct stat *st)
{
	struct orphan_walk *w = arg;
	unsigned char head[64];
	if (wfs_mark_get_at(dfd, name) > 0)
		goto found;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || wfs_form_sniff(head, (size_t)n, st->st_size) != WFS_FORM_ENCRYPTED)
		return 0;
found:
	snprintf(w->what, w->len, "encrypted files such as '%s'", rel);
	return 1;
}

int wfs_vault_orphaned(const char *backing, char *what, size_t len)
{
	/* a .wardfs with anything in it (an init that failed before its
	 * keyfile leaves it empty) */
	char path[PATH_MAX];
	DIR *d = vault_path(path, sizeof(path), backing, NULL) == 0 ? opendir(path) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(what, len, "'%s/%s'", path, e->d_name);
			closedir(d);
			return 1;
		}
	if (d)
		closedir(d);
	struct orphan_walk w = {what, len};
	unsigned errors = 0;
	return wfs_vault_walk(backing, is_encrypted, &w, &errors) == 1;
}

void wfs_vault_say_orphaned(const char *backing, const char *what)
{
	vault_error("'%s' has no keyfile (%s/%s) but holds a vault's files (%s): restore the "
		    "keyfile from your backup; a new vault ('wardfs init') could not read them",
		    backing, WFS_VAULT_DIR, WFS_VAULT_KEYFILE, what);
}

#define KEYFILE_MAX (WFS_KEYFILE_MAX + 1) /* one byte more: a longer file is corrupt */

int wfs_vault_read_keyfile(const char *backing, uint8_t **buf, size_t *len)
{
	char path[PATH_MAX];
	uint8_t *b = NULL;
	ssize_t n;
	int fd = -1, r;

	*buf = NULL;
	*len = 0;
	if ((r = vault_path(path, sizeof(path), backing, WFS_VAULT_KEYFILE)) != 0)
		return r;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	if ((b = malloc(KEYFILE_MAX)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < KEYFILE_MAX) {
		n = read(fd, b + got, KEYFILE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == KEYFILE_MAX) {
		r = -EFBIG;
		goto out;
	}
	*buf = b;
	*len = got;
	b = NULL;
	r = 0;
out:
	free(b);
	if (fd >= 0)
		close(fd);
	return r;
}

int wfs_vault_write(const char *backing, const char *name, const void *buf, size_t len, mode_t mode)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	int dfd = -1, fd = -1, r;
	size_t done = 0;

	if ((r = vault_path(dir, sizeof(dir), backing, NULL)) != 0)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -errno;
	(void)unlinkat(dfd, tmp, 0); /* left by an interrupted run */
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)) <
	    0) {
		r = -errno;
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		done += (size_t)n;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		r = -errno;
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r != 0 || renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0)
		(void)unlinkat(dfd, tmp, 0);
	close(dfd);
	return r;
}

int wfs_vault_write_config(const char *backing, const struct wfs_kdf_params *p)
{
	char path[PATH_MAX], created[64] = "", text[512], line[256];
	FILE *f;
	int n, r;

	if ((r = vault_path(path, sizeof(path), backing, WFS_VAULT_CONFIG)) != 0)
		return r;
	if ((f = fopen(path, "re")) != NULL) { /* keep the creation time */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "created %63s", created) == 1)
				break;
		fclose(f);
	}
	if (created[0] == '\0') {
		time_t now = time(NULL);
		struct tm tm;

		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	}
	n = snprintf(text, sizeof(text),
		     "# wardfs vault configuration, written by wardfs init/passwd.\n"
		     "# The keyfile holds the authoritative key-derivation cost.\n"
		     "format %d\n"
		     "created %s\n"
		     "kdf argon2id\n"
		     "kdf-ops %llu\n"
		     "kdf-memory-mib %zu\n",
		     WFS_VAULT_FORMAT, created, (unsigned long long)p->opslimit, p->memlimit >> 20);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EOVERFLOW;
	return wfs_vault_write(backing, WFS_VAULT_CONFIG, text, (size_t)n, 0600);
}

/* What unlocks: the type of slot tried and how the secret is asked for. */
static enum wfs_slot_type unlock_type(const struct wfs_pass_opts *po)
{
	if (po->escrow_key_file != NULL)
		return WFS_SLOT_ESCROW;
	if (po->recovery_key_file != NULL || po->recovery_from_stdin)
		return WFS_SLOT_RECOVERY;
	return WFS_SLOT_PASSPHRASE;
}

/* Reads one secret of type: 0, or -errno after saying why. */
static int unlock_read(const char *backing, const struct wfs_pass_opts *po, enum wfs_slot_type type,
		       char **secret, size_t *slen, bool *tty)
{
	char prompt[PATH_MAX + 64];
	uint8_t sk[WFS_ESCROW_KEY_LEN];
	int r;

	switch (type) {
	case WFS_SLOT_ESCROW:
		if ((r = wfs_secret_read(po->escrow_key_file, NULL, "Escrow secret key: ", false,
					 secret, slen, tty)) != 0)
			return r;
		r = wfs_escrow_secret_parse(*secret, sk);
		sodium_memzero(sk, sizeof(sk)); /* only its shape was wanted here */
		if (r != 0) {
			vault_error("'%s' is not an escrow secret key, or it was mistyped (as "
				    "written by 'wardfs key escrow-keygen')",
				    po->escrow_key_file);
			return -EINVAL;
		}
		return 0;
	case WFS_SLOT_RECOVERY:
		if ((r = wfs_secret_read(po->recovery_key_file, NULL, "Recovery key: ", false,
					 secret, slen, tty)) != 0)
			return r;
		if (!wfs_recovery_wellformed(*secret)) {
			vault_error("malformed recovery key (expected 48 hex digits in groups, as "
				    "printed by wardfs init)");
			return -EINVAL;
		}
		return 0;
	case WFS_SLOT_PASSPHRASE:
	default:
		snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", backing);
		return wfs_secret_read(po->passfile, po->extpass, prompt, false, secret, slen, tty);
	}
}

/* Parses a slots-used line, "ID UNIX-SECONDS": true when it is one. */
static bool used_line(const char *line, unsigned long *id, long long *when)
{
	char *end;

	errno = 0;
	*id = strtoul(line, &end, 10);
	if (end == line || *end != ' ' || errno != 0)
		return false;
	line = end + 1;
	*when = strtoll(line, &end, 10);
	return end != line && (*end == '\n' || *end == '\0') && errno == 0;
}

/* Notes when slot id last unlocked (BACKING/.wardfs/slots-used: "ID
 * UNIX-SECONDS" lines), for `key list`. Best effort: informational, not
 * authenticated, and a read-only vault still mounts. */
static void note_slot_used(const char *backing, uint16_t id)
{
	char path[PATH_MAX], text[WFS_SLOTS_MAX * 32 + 32], line[64];
	size_t n = 0;
	FILE *f;

	if (vault_path(path, sizeof(path), backing, WFS_VAULT_SLOTS_USED) != 0)
		return;
	if ((f = fopen(path, "re")) != NULL) {
		unsigned long oid;
		long long when;
		while (fgets(line, sizeof(line), f) && n + sizeof(line) < sizeof(text))
			if (used_line(line, &oid, &when) && oid != id)
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", line);
		fclose(f);
	}
	n += (size_t)snprintf(text + n, sizeof(text) - n, "%u %lld\n", (unsigned)id,
			      (long long)time(NULL));
	(void)wfs_vault_write(backing, WFS_VAULT_SLOTS_USED, text, n, 0600);
}

/* A version-1 keyfile is rewritten as version 2 by the first unlock that
 * may write it: same slots (legacy), same secrets, atomically. Not being
 * able to is said, and the vault still opens. */
static void upgrade_keyfile(const char *backing, const uint8_t *kf, size_t kflen,
			    const struct wfs_keys *keys)
{
	struct wfs_keyfile_info info;
	uint8_t *nkf = NULL;
	size_t nlen;
	int r;

	if (wfs_keyfile_parse(kf, kflen, &info) != 0 || info.version != 1 ||
	    access(backing, W_OK) != 0)
		return;
	if ((r = wfs_keyfile_upgrade(kf, kflen, keys, &nkf, &nlen)) != 0 ||
	    (r = wfs_vault_write(backing, WFS_VAULT_KEYFILE, nkf, nlen, 0600)) != 0)
		vault_warning("cannot upgrade the keyfile of '%s' to key slots: %s", backing,
			      strerror(-r));
	free(nkf);
}

/*
 * Tries each tpm2 slot: the TPM unseals its secret, which opens it. 0 with
 * the keys and the slot; -EACCES when none opened (each said why in a
 * warning: no TPM, another TPM, a PCR changed, a garbled slot); -EINVAL
 * when one opened but the keyfile's MAC failed (said: the caller stops);
 * -ENOMEM.
 */
static int unlock_tpm2(const char *backing, const struct wfs_pass_opts *po,
		       const struct wfs_keyfile_info *info, const uint8_t *kf, size_t kflen,
		       struct wfs_keys **keys, uint16_t *id)
{
	uint8_t *secret = NULL;
	char err[256];
	int r = -EACCES;

	for (size_t i = 0; i < info->nslots && r != 0; i++) {
		const struct wfs_slot_info *s = &info->slot[i];

		if (s->type != WFS_SLOT_TPM2)
			continue;
		if (secret == NULL && (secret = wfs_secure_alloc(WFS_TPM2_SECRET_LEN)) == NULL) {
			vault_error("out of secure memory");
			return -ENOMEM;
		}
		r = wfs_tpm2_unseal(po->tpm2_tcti, &s->tpm2, secret, err, sizeof(err));
		if (r == 0) {
			r = wfs_keyfile_open(kf, kflen, WFS_SLOT_TPM2, secret, WFS_TPM2_SECRET_LEN,
					     keys, id);
			if (r == -EINVAL) {
				vault_error("'%s/%s/%s' is corrupt or was tampered with (a slot "
					    "opened but the keyfile's MAC does not match)",
					    backing, WFS_VAULT_DIR, WFS_VAULT_KEYFILE);
				break;
			}
			if (r == -EACCES)
				snprintf(err, sizeof(err),
					 "the secret the TPM unsealed does not open it");
			else if (r != 0)
				snprintf(err, sizeof(err), "%s", strerror(-r));
		}
		if (r != 0) {
			vault_warning("tpm2 slot %u of '%s' did not open: %s", (unsigned)s->id,
				      backing, err);
			r = -EACCES;
		}
	}
	wfs_secure_free(secret);
	return r;
}

int wfs_vault_unlock_slot(const char *backing, const struct wfs_pass_opts *po,
			  struct wfs_keys **keys, uint16_t *slot)
{
	static const char *const what[] = {
		[WFS_SLOT_PASSPHRASE] = "passphrase",
		[WFS_SLOT_RECOVERY] = "recovery key",
		[WFS_SLOT_ESCROW] = "escrow key",
	};
	struct wfs_pass_opts none = {0};
	struct wfs_keyfile_info info;
	enum wfs_slot_type type;
	uint8_t *kf = NULL;
	size_t kflen, slen;
	char *secret = NULL;
	bool tty = false, have = false;
	uint16_t id = 0;
	int r, tries = 0;

	*keys = NULL;
	if (po == NULL)
		po = &none;
	type = unlock_type(po);
	if ((r = wfs_vault_read_keyfile(backing, &kf, &kflen)) != 0) {
		char found[PATH_MAX + 64];
		if (r == -ENOENT && wfs_vault_orphaned(backing, found, sizeof found))
			wfs_vault_say_orphaned(backing, found);
		else if (r == -ENOENT)
			vault_error("'%s' is not a wardfs vault (no %s/%s); see 'wardfs init'",
				    backing, WFS_VAULT_DIR, WFS_VAULT_KEYFILE);
		else
			vault_error("cannot read '%s/%s/%s': %s", backing, WFS_VAULT_DIR,
				    WFS_VAULT_KEYFILE, strerror(-r));
		return r;
	}
	if (wfs_keyfile_parse(kf, kflen, &info) != 0) {
		vault_error("'%s/%s/%s' is corrupt or from a newer wardfs", backing, WFS_VAULT_DIR,
			    WFS_VAULT_KEYFILE);
		r = -EINVAL;
		goto out;
	}
	/* Slots that open without asking anyone first. */
	if (!po->no_tpm2 && (r = unlock_tpm2(backing, po, &info, kf, kflen, keys, &id)) != -EACCES)
		goto done;
	for (size_t i = 0; i < info.nslots; i++)
		have = have || info.slot[i].type == type;
	if (!have) {
		vault_error("'%s' has no %s slot (see 'wardfs key list %s')", backing, what[type],
			    backing);
		r = -EACCES;
		goto out;
	}
	do {
		wfs_secret_free(secret);
		secret = NULL;
		if ((r = unlock_read(backing, po, type, &secret, &slen, &tty)) != 0) {
			if (r == -EINVAL && type == WFS_SLOT_RECOVERY)
				continue; /* a typo: asked again on a tty */
			goto out;
		}
		r = wfs_keyfile_open(kf, kflen, type, secret, slen, keys, &id);
		if (r == -EACCES)
			vault_error("wrong %s for %s", what[type], backing);
		else if (r == -EINVAL)
			vault_error("'%s/%s/%s' is corrupt or was tampered with (a slot opened but "
				    "the keyfile's MAC does not match)",
				    backing, WFS_VAULT_DIR, WFS_VAULT_KEYFILE);
		else if (r != 0)
			vault_error("cannot unlock %s: %s", backing, strerror(-r));
	} while ((r == -EACCES || (type == WFS_SLOT_RECOVERY && r == -EINVAL)) && tty &&
		 ++tries < 3);
done:
	if (r == 0 && po->may_write) {
		upgrade_keyfile(backing, kf, kflen, *keys);
		note_slot_used(backing, id);
	}
	if (r == 0 && slot != NULL)
		*slot = id;
out:
	wfs_secret_free(secret);
	free(kf);
	return r;
}

int wfs_vault_unlock(const char *backing, const struct wfs_pass_opts *po, struct wfs_keys **keys)
{
	return wfs_vault_unlock_slot(backing, po, keys, NULL);
}

uint64_t wfs_vault_slot_last_used(const char *backing, uint16_t id)
{
	char path[PATH_MAX], line[64];
	unsigned long sid;
	long long when;
	uint64_t last = 0;
	FILE *f;

	if (vault_path(path, sizeof(path), backing, WFS_VAULT_SLOTS_USED) != 0 ||
	    (f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (used_line(line, &sid, &when) && sid == id && when > 0)
			last = (uint64_t)when;
	fclose(f);
	return last;
}

void wfs_vault_slot_name(const char *backing, uint16_t id, char *buf, size_t len)
{
	uint8_t *kf = NULL;
	size_t kflen;
	struct wfs_keyfile_info info;
	snprintf(buf, len, "slot %u", (unsigned)id);
	if (wfs_vault_read_keyfile(backing, &kf, &kflen) == 0 &&
	    wfs_keyfile_parse(kf, kflen, &info) == 0)
		for (size_t i = 0; i < info.nslots; i++)
			if (info.slot[i].id == id) {
				const char *type = wfs_slot_type_name(info.slot[i].type);
				const char *label = info.slot[i].label;
				bool say = label[0] &&
					   strcmp(label, type); /* not "passphrase, passphrase" */
				snprintf(buf, len, "slot %u (%s%s%s)", (unsigned)id, type,
					 say ? ", " : "", say ? label : "");
			}
	free(kf);
}

unsigned wfs_vault_flags(const char *backing)
{
	uint8_t *kf = NULL;
	size_t kflen;
	struct wfs_keyfile_info *info = malloc(sizeof(*info));
	unsigned flags = 0;
	if (info && wfs_vault_read_keyfile(backing, &kf, &kflen) == 0 &&
	    wfs_keyfile_parse(kf, kflen, info) == 0)
		flags = info->flags;
	free(kf);
	free(info);
	return flags;
}

int wfs_vault_set_flags(const char *backing, const struct wfs_keys *keys, unsigned flags)
{
	uint8_t *kf = NULL, *nkf = NULL;
	size_t kflen, nlen;
	int r = wfs_vault_read_keyfile(backing, &kf, &kflen);

	if (r == 0 && (r = wfs_keyfile_set_flags(kf, kflen, keys, flags, &nkf, &nlen)) == 0)
		r = wfs_vault_write(backing, WFS_VAULT_KEYFILE, nkf, nlen, 0600);
	if (r != 0)
		vault_error("cannot write the keyfile of '%s': %s", backing, strerror(-r));
	free(kf);
	free(nkf);
	return r;
}
