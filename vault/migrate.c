/*
 * migrate.c - the engine of `wardfs migrate` and of setup-home's
 * encryption: each file whose form on disk disagrees with the policy is
 * converted atomically, one at a time, through .NAME.wardfs-migrate
 * beside it (same directory: one rename, the same file system), keeping
 * its mode, owner, times and extended attributes. Resumable: a pass first
 * removes the temp files an interrupted run left.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "say.h"
#include "vault.h"

#define CHUNK (1u << 20)

static enum wfs_form_fix wanted(const struct wfs_policy *pol, const char *rel, enum wfs_form form)
{
	struct wfs_decision d;

	wfs_policy_classify(pol, rel, strlen(rel), &d);
	return wfs_vault_form_fix(d.cls, form);
}

/* end: the last drawing even though not every file was done. */
static void progress(struct wfs_migrate *m, bool end)
{
	int width = 30, fill = m->todo ? (int)((uint64_t)m->done * width / m->todo) : width;

	if (!m->progress)
		return;
	vault_progress(end || m->done == m->todo, "[%.*s%*s] %u/%u files", fill,
		       "##############################", width - fill, "", m->done, m->todo);
}

/* The temporary beside name: .NAME.wardfs-migrate; in a vault with
 * encrypted names one of wardfs's own temporaries, which tells nothing
 * of the name and is never listed (docs/format.md). */
static int temp_name(const struct wfs_migrate *m, const char *name, char tmp[NAME_MAX + 1])
{
	if (m->names) {
		uint64_t rnd;
		randombytes_buf(&rnd, sizeof rnd);
		snprintf(tmp, NAME_MAX + 1, WFS_NAME_PREFIX "t%016llx", (unsigned long long)rnd);
		return 0;
	}
	return (size_t)snprintf(tmp, NAME_MAX + 1, ".%s" WFS_MIGRATE_SUFFIX, name) > NAME_MAX
		       ? -ENAMETOOLONG
		       : 0;
}

/* Converts dirfd/name atomically through a temporary beside it. */
static int convert(struct wfs_migrate *m, int dfd, const char *name, const char *rel, bool encrypt)
{
	char tmp[NAME_MAX + 1];
	struct stat st, st2;
	int src = -1, dst = -1, r;
	bool made = false;

	if ((r = temp_name(m, name, tmp)) != 0)
		goto out;
	if ((src = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) <
		    0 ||
	    fstat(src, &st) != 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EAGAIN;
		goto out;
	}
	if (st.st_nlink > 1) {
		vault_warning("%s%s has %ju hard links; not converted", m->backing, rel,
			      (uintmax_t)st.st_nlink);
		m->skipped++;
		goto done;
	}
	(void)unlinkat(dfd, tmp, 0);
	if ((dst = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) <
	    0) {
		r = -errno;
		goto out;
	}
	made = true;
	if ((r = wfs_convert_content(m->keys, src, dst, st.st_size, encrypt, m->buf, CHUNK)) != 0 ||
	    (r = wfs_copy_file_attrs(src, dst, &st)) != 0)
		goto out;
	if (fsync(dst) != 0) {
		r = -errno;
		goto out;
	}
	if (fstat(src, &st2) != 0 || st2.st_size != st.st_size ||
	    st2.st_mtim.tv_sec != st.st_mtim.tv_sec || st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
		r = -EAGAIN;
		goto out;
	}
	if (renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0) {
		r = -errno;
		goto out;
	}
	made = false;
	if (encrypt)
		m->encrypted++;
	else
		m->decrypted++;
	r = 0;
out:
	if (r != 0) {
		vault_error(
			"cannot %s '%s%s': %s", encrypt ? "encrypt" : "decrypt", m->backing, rel,
			r == -EIO ? "a block or the header fails authentication (see 'wardfs fsck')"
			: r == -EAGAIN ? "it changed during the migration; run it again"
				       : strerror(-r));
		m->failed++;
	}
done:
	if (made)
		(void)unlinkat(dfd, tmp, 0);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	return 0;
}

/* ---- names (a vault with encrypted names) ---------------------------- */

/* Renames dirfd/bname into the form its path asks for: the directory's id
 * and a long name's sidecar first, the old sidecar after (docs/format.md). */
static void rename_name(struct wfs_migrate *m, int dfd, const char *bname, const char *rel,
			bool encrypt)
{
	const char *plain = strrchr(rel, '/') + 1;
	struct wfs_name_enc e = {0};
	char target[WFS_NAME_MAX + 1];
	uint8_t id[WFS_DIRID_LEN];
	ssize_t n;
	int r = 0;

	if (encrypt) {
		if ((r = wfs_dirid_create(dfd, id)) == 0 &&
		    (r = wfs_name_encrypt(m->keys, id, plain, strlen(plain), &e)) == 0 && e.is_long)
			r = wfs_name_sidecar_write(dfd, &e);
		memcpy(target, e.name, e.len + 1);
	} else if ((n = wfs_name_escape(plain, strlen(plain), target)) < 0) {
		r = (int)n;
	}
	if (r == 0 && renameat2(dfd, bname, dfd, target, RENAME_NOREPLACE) != 0)
		r = -errno;
	if (r == -EEXIST) {
		vault_error("'%s%s' is stored both plain and encrypted: left as it is; remove "
			    "one through the mount",
			    m->backing, rel);
		m->names_conflict++;
	} else if (r != 0) {
		vault_error("cannot %s the name of '%s%s': %s", encrypt ? "encrypt" : "decrypt",
			    m->backing, rel,
			    r == -EUCLEAN ? "its directory's id is missing or damaged (see 'wardfs "
					    "fsck')"
					  : strerror(-r));
		m->failed++;
	}
	if (r != 0) {
		if (e.is_long)
			wfs_name_sidecar_remove(dfd, e.name, e.len); /* unless the entry is there */
		return;
	}
	if (wfs_name_classify(bname, strlen(bname)) == WFS_NAME_LONG)
		wfs_name_sidecar_remove(dfd, bname, strlen(bname));
	(void)fsync(dfd);
	if (encrypt)
		m->names_encrypted++;
	else
		m->names_decrypted++;
}

/* Both passes, for every entry: names first counted (and listed), then
 * renamed once the entry (a directory: its whole subtree) is done. */
static int migrate_name(void *arg, int dfd, const char *bname, const char *rel, mode_t type)
{
	struct wfs_migrate *m = arg;
	enum wfs_class cls;

	(void)type;
	if (!wfs_vault_name_disagrees(m->pol, bname, rel, &cls))
		return 0;
	bool encrypt = cls == WFS_SENSITIVE;
	if (!m->converting) { /* the scan */
		m->todo++;
		if (!encrypt) {
			m->to_decrypt++;
			if (m->decrypts)
				fprintf(m->decrypts, "  %s%s (its name)\n", m->backing, rel);
		}
		if (m->dry_run)
			printf("%s the name of %s%s\n", encrypt ? "encrypt" : "decrypt", m->backing,
			       rel);
		return 0;
	}
	if (m->done >= m->todo)
		m->todo = m->done + 1;
	rename_name(m, dfd, bname, rel, encrypt);
	m->done++;
	progress(m, false);
	return 0;
}

/* A temporary of an interrupted run (or of a crash of the daemon). */
static void migrate_issue(void *arg, int dfd, const char *dir, const char *bname,
			  enum wfs_name_issue what)
{
	struct wfs_migrate *m = arg;

	if (what != WFS_NAME_TEMP || m->converting)
		return; /* fsck's to report; the convert pass met them in the scan */
	if (m->dry_run)
		printf("remove %s%s/%s (left by an interrupted migrate)\n", m->backing,
		       strcmp(dir, "/") ? dir : "", bname);
	else if (unlinkat(dfd, bname, 0) != 0 && errno != ENOENT) {
		vault_error("cannot remove '%s' in '%s%s': %s", bname, m->backing, dir,
			    strerror(errno));
		m->errors++;
		return;
	}
	m->temps++;
}

struct reserved {
	const char *backing;
	unsigned n;
};

static int reserved_one(void *arg, int dfd, const char *bname, const char *rel, mode_t type)
{
	struct reserved *rs = arg;

	(void)dfd, (void)type;
	if (strncmp(bname, WFS_NAME_PREFIX, strlen(WFS_NAME_PREFIX)) != 0)
		return 0;
	if (rs->n++ < 10)
		vault_error("'%s%s' has a name wardfs keeps for itself in a vault with encrypted "
			    "names",
			    rs->backing, rel);
	return 0;
}

static int no_file(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	(void)arg, (void)dfd, (void)name, (void)rel, (void)st;
	return 0;
}

int wfs_migrate_check_reserved(const char *backing)
{
	struct reserved rs = {.backing = backing};
	struct wfs_walk w = {.file = no_file, .entry_done = reserved_one, .arg = &rs};
	int r = wfs_walk(backing, &w);

	if (r != 0) {
		vault_error("cannot walk '%s': %s", backing, strerror(-r));
		return r;
	}
	if (rs.n == 0)
		return 0;
	vault_error("%u name%s start%s with '" WFS_NAME_PREFIX "': rename %s through the mount "
		    "first; nothing was changed",
		    rs.n, rs.n == 1 ? "" : "s", rs.n == 1 ? "s" : "", rs.n == 1 ? "it" : "them");
	return -EEXIST;
}

/* The walk of both passes. */
static int migrate_walk(struct wfs_migrate *m, wfs_walk_fn fn)
{
	struct wfs_walk w = {.file = fn, .arg = m};
	if (m->names) {
		w.names_keys = m->keys;
		w.name_issue = migrate_issue;
		w.entry_done = migrate_name;
	}
	int r = wfs_walk(m->backing, &w);
	m->errors += w.errors;
	return r;
}

/* Pass 1: remove leftover temp files, count (or list) what disagrees. */
static int migrate_scan(void *arg, int dfd, const char *name, const char *rel,
			const struct stat *st)
{
	struct wfs_migrate *m = arg;
	enum wfs_form form;
	enum wfs_form_fix act;
	int r;

	if (wfs_is_migrate_temp(name)) {
		if (m->dry_run)
			printf("remove %s%s (left by an interrupted migrate)\n", m->backing, rel);
		else if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) {
			vault_error("cannot remove '%s%s': %s", m->backing, rel, strerror(errno));
			m->errors++;
			return 0;
		}
		m->temps++;
		return 0;
	}
	if ((r = wfs_vault_file_form(dfd, name, st, &form)) != 0) {
		vault_error("cannot read '%s%s': %s", m->backing, rel, strerror(-r));
		m->errors++;
		return 0;
	}
	act = wanted(m->pol, rel, form);
	if (act == WFS_FIX_NONE)
		return 0;
	m->todo++;
	if (act == WFS_FIX_DECRYPT) {
		m->to_decrypt++;
		if (m->decrypts)
			fprintf(m->decrypts, "  %s%s\n", m->backing, rel);
	}
	if (m->dry_run)
		printf("%s %s%s\n", act == WFS_FIX_ENCRYPT ? "encrypt" : "decrypt", m->backing,
		       rel);
	return 0;
}

/* Pass 2: convert. */
static int migrate_convert(void *arg, int dfd, const char *name, const char *rel,
			   const struct stat *st)
{
	struct wfs_migrate *m = arg;
	enum wfs_form form;
	enum wfs_form_fix act;

	if (wfs_is_migrate_temp(name) || wfs_vault_file_form(dfd, name, st, &form) != 0)
		return 0; /* ours, or reported by the scan */
	if ((act = wanted(m->pol, rel, form)) == WFS_FIX_NONE)
		return 0;
	if (m->done >= m->todo)
		m->todo = m->done + 1; /* appeared since the scan */
	convert(m, dfd, name, rel, act == WFS_FIX_ENCRYPT);
	m->done++;
	progress(m, false);
	return 0;
}

int wfs_migrate_scan(struct wfs_migrate *m)
{
	int r = migrate_walk(m, migrate_scan);

	if (r != 0)
		vault_error("cannot walk '%s': %s", m->backing, strerror(-r));
	return r;
}

int wfs_migrate_convert(struct wfs_migrate *m)
{
	int r;

	if (m->buf == NULL && (m->buf = malloc(CHUNK)) == NULL) {
		vault_error("out of memory");
		return -ENOMEM;
	}
	progress(m, false);
	m->converting = true;
	r = migrate_walk(m, migrate_convert);
	m->converting = false;
	if (r != 0) {
		vault_error("cannot walk '%s': %s", m->backing, strerror(-r));
		return r;
	}
	if (m->done != m->todo)
		progress(m, true);
	return 0;
}

void wfs_migrate_done(struct wfs_migrate *m)
{
	if (m->buf != NULL) {
		sodium_memzero(m->buf, CHUNK);
		free(m->buf);
		m->buf = NULL;
	}
}

int wfs_vault_migrate(const char *backing, const struct wfs_policy *pol,
		      const struct wfs_keys *keys, struct wfs_migrate_stats *st)
{
	struct wfs_migrate m = {.backing = backing, .pol = pol, .keys = keys};
	int r;

	if ((r = wfs_migrate_scan(&m)) != 0)
		goto out;
	if (m.todo > 0) {
		printf("Converting %u file%s to the form the policy asks for.\n", m.todo,
		       m.todo == 1 ? "" : "s");
		fflush(stdout);
		m.progress = isatty(STDERR_FILENO);
		r = wfs_migrate_convert(&m);
	}
out:
	wfs_migrate_done(&m);
	st->encrypted = m.encrypted;
	st->decrypted = m.decrypted;
	st->skipped = m.skipped;
	st->failed = m.failed;
	st->errors = m.errors;
	return r;
}
