/*
 * fsck.c - the engine of `wardfs fsck`: verifies the header and every
 * block of every encrypted file under a backing directory, prints each
 * damage as 'PATH: block N at offset O: WHY' on stdout, and with an audit
 * database at hand repairs what a crash leaves (the damaged end of a file
 * cut off, or damaged blocks made holes), each repair an audit row.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "say.h"
#include "vault.h"

/* An audit row for a repair; a repair the db does not hold is an error. */
static void fsck_record(struct wfs_fsck *f, const char *detail)
{
	struct wfs_audit_event ev = {
		.kind = WFS_AUDIT_INTEGRITY,
		.path = f->rel,
		.form = "encrypted",
		.allowed = true,
		.pid = getpid(),
		.comm = "wardfs fsck",
		.exe = "wardfs fsck --repair",
		.detail = detail,
	};
	if (wfs_audit_record(f->audit, &ev) != 0) {
		vault_error("the repair of '%s%s' is not in the audit db", f->backing, f->rel);
		f->errors++;
	}
}

/*
 * --repair: a file whose damage is all at its end (a crash cut a write that
 * grew it, or the file was cut) is trimmed back to the intact blocks before
 * it, and the repair is an audit row; damage followed by intact blocks is
 * left for a backup to fix, or, with --hole-damaged, each such block
 * becomes a hole first (its bytes lost, the rest of the file readable).
 */
static void fsck_repair(struct wfs_fsck *f, int fd)
{
	char detail[160];
	long holed = 0;

	if (f->hole_damaged) {
		holed = wfs_content_hole_damaged(f->keys, fd);
		if (holed < 0 && holed != -EOPNOTSUPP) {
			vault_error("cannot repair '%s%s': %s", f->backing, f->rel,
				    strerror((int)-holed));
			f->errors++;
			return;
		}
		if (holed > 0) {
			snprintf(detail, sizeof(detail),
				 "fsck --repair --hole-damaged: %ld damaged block%s made holes "
				 "(their bytes lost)",
				 holed, holed == 1 ? "" : "s");
			printf("%s%s: %ld damaged block%s made holes (they read as zeros)\n",
			       f->backing, f->rel, holed, holed == 1 ? "" : "s");
			fsck_record(f, detail);
			if (wfs_content_verify(f->keys, fd, NULL, NULL) == 0) {
				f->repaired++; /* the holes were all of it */
				return;
			}
		}
	}
	off_t was, kept = wfs_content_trim_tail(f->keys, fd, &was);
	if (kept == -EIO) {
		printf("%s%s: not repaired: intact blocks follow the damage (restore the file "
		       "from a backup, or make the damaged blocks holes: --hole-damaged)\n",
		       f->backing, f->rel);
		return;
	}
	if (kept < 0) {
		vault_error("cannot repair '%s%s': %s", f->backing, f->rel, strerror((int)-kept));
		f->errors++;
		return;
	}
	f->repaired++;
	snprintf(detail, sizeof(detail),
		 "fsck --repair: damaged end cut off: %lld bytes kept of %lld", (long long)kept,
		 (long long)was);
	printf("%s%s: repaired: %lld bytes kept of %lld (the damaged end was cut off)\n",
	       f->backing, f->rel, (long long)kept, (long long)was);
	fsck_record(f, detail);
}

static void fsck_damage(void *arg, uint64_t block, off_t off, const char *why)
{
	struct wfs_fsck *f = arg;

	if (block == WFS_BLOCK_HEADER)
		printf("%s%s: header: %s\n", f->backing, f->rel, why);
	else
		printf("%s%s: block %llu at offset %lld: %s\n", f->backing, f->rel,
		       (unsigned long long)block, (long long)off, why);
	f->bad_here++;
}

static int fsck_one(void *arg, int dfd, const char *name, const char *rel, const struct stat *st)
{
	struct wfs_fsck *f = arg;
	uint8_t b[WFS_HDR_SIZE];
	enum wfs_form form = WFS_FORM_PLAIN;
	ssize_t n = 0;
	long v;
	int fd, m = 0;

	if (wfs_is_migrate_temp(name)) {
		f->temps++;
		return 0;
	}
	if ((fd = openat(dfd, name,
			 (f->audit ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				 O_CLOEXEC)) < 0 ||
	    (m = wfs_form_of(fd, st->st_size, &form)) < 0 ||
	    (form == WFS_FORM_PLAIN && (n = pread(fd, b, sizeof(b), 0)) < 0)) {
		vault_error("cannot read '%s%s': %s", f->backing, rel,
			    strerror(m < 0 ? -m : errno));
		f->errors++;
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (form == WFS_FORM_ENCRYPTED) {
		f->files++;
		f->rel = rel;
		f->bad_here = 0;
		v = wfs_content_verify(f->keys, fd, fsck_damage, f);
		if (v < 0) {
			vault_error("cannot verify '%s%s': %s", f->backing, rel, strerror((int)-v));
			f->errors++;
		} else if (v > 0) {
			f->damaged++;
			if (f->audit)
				fsck_repair(f, fd);
		}
		fflush(stdout);
	} else if (form == WFS_FORM_PLAIN &&
		   wfs_form_sniff(b, (size_t)n, st->st_size) == WFS_FORM_ENCRYPTED) {
		/* Served as the plain bytes it is. Ours and restored without
		 * xattrs? The next mount adopts what this key authenticates. */
		printf("%s%s: starts like an encrypted file but has no wardfs mark: "
		       "served as plain bytes\n",
		       f->backing, rel);
		f->unmarked++;
	}
	close(fd);
	return 0;
}

static const char *const issue_text[] = {
	[WFS_NAME_UNREADABLE] = "does not decrypt in this directory (a foreign, moved or damaged "
				"name): not listed",
	[WFS_NAME_NO_SIDECAR] = "a long name without its sidecar: not listed (still reachable by "
				"its name)",
	[WFS_NAME_ORPHAN_SIDECAR] = "a long name's sidecar without its entry (left by a crash)",
	[WFS_NAME_NO_DIRID] = "an encrypted name in a directory without its id: not listed",
	[WFS_NAME_BAD_DIRID] = "the directory's id is damaged: its encrypted names are not "
			       "listed and none is made (restore the file from a backup)",
	[WFS_NAME_TEMP] = "a temporary left by a crash or an interrupted migrate",
	[WFS_NAME_UNKNOWN] = "a name in wardfs's own form that it does not know (not listed; "
			     "the directory cannot be removed through the mount)",
};

/* A name the mount cannot show. The on-disk name is printed: it is what
 * the admin finds in the backing directory, and no plaintext exists. */
static void fsck_name(void *arg, int dfd, const char *dir, const char *bname,
		      enum wfs_name_issue what)
{
	struct wfs_fsck *f = arg;
	char detail[512];

	if (what == WFS_NAME_TEMP) {
		f->temps++; /* counted in the summary: migrate removes them */
		return;
	}
	if (what == WFS_NAME_ORPHAN_SIDECAR && f->audit) {
		if (unlinkat(dfd, bname, 0) != 0 && errno != ENOENT) {
			vault_error("cannot remove '%s' in '%s%s': %s", bname, f->backing, dir,
				    strerror(errno));
			f->errors++;
			return;
		}
		printf("%s%s: '%s': %s: removed\n", f->backing, dir, bname, issue_text[what]);
		snprintf(detail, sizeof detail, "fsck --repair: orphan sidecar '%s' removed",
			 bname);
		f->rel = dir;
		fsck_record(f, detail);
		f->repaired++;
		f->bad_names++;
		return;
	}
	printf("%s%s: '%s': %s\n", f->backing, dir, bname, issue_text[what]);
	f->bad_names++;
}

int wfs_fsck(struct wfs_fsck *f)
{
	struct wfs_walk w = {.file = fsck_one, .arg = f};
	if (f->keys && (wfs_keys_vault_flags(f->keys) & WFS_VAULT_ENCRYPT_NAMES)) {
		w.names_keys = f->keys;
		w.name_issue = fsck_name;
	}
	int r = wfs_walk(f->backing, &w);
	f->errors += w.errors;
	return r;
}
