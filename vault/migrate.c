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

/* Converts dirfd/name atomically through .NAME.wardfs-migrate. */
static int convert(struct wfs_migrate *m, int dfd, const char *name, const char *rel, bool encrypt)
{
	char tmp[NAME_MAX + 1];
	struct stat st, st2;
	int src = -1, dst = -1, r;
	bool made = false;

	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s" WFS_MIGRATE_SUFFIX, name) >= sizeof(tmp)) {
		r = -ENAMETOOLONG;
		goto out;
	}
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
	int r = wfs_vault_walk(m->backing, migrate_scan, m, &m->errors);

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
	if ((r = wfs_vault_walk(m->backing, migrate_convert, m, &m->errors)) != 0) {
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
