/*
 * cmd_lock.c - `wardfs lock MOUNTPOINT` and `wardfs unlock MOUNTPOINT`: wipe
 * the keys from a running daemon without unmounting (session lock,
 * suspend), and bring them back with any key slot. While locked, public
 * files are served as ever, sensitive ones refuse to open (ENOKEY) and
 * those still open read EIO (daemon/keys_lock.c).
 *
 * The daemon is driven through attributes of its mount root that only
 * root may set (wardfs_status.h). unlock opens the vault's keyfile here,
 * with the same sources as mount, and hands the daemon the master key,
 * which is wiped on both sides.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "commands.h"
#include "crypto.h"
#include "mounted.h"
#include "usage.h"
#include "vault.h"
#include "wardfs_status.h"

static const char lock_usage[] =
	"usage: wardfs lock MOUNTPOINT...\n\n"
	"Wipes the vault's keys from each running mount without unmounting it:\n"
	"the daemon's keys, its cached key schedules and plaintext buffers, and\n"
	"the kernel's cached pages of sensitive files. Until 'wardfs unlock',\n"
	"sensitive files cannot be opened or created (ENOKEY, audited), those\n"
	"open already read and write EIO, and public files work as ever.\n"
	"Says which processes hold sensitive files open. Needs root.\n";

static const char unlock_usage[] =
	"usage: wardfs unlock [options] MOUNTPOINT\n\n"
	"Brings back the keys of a mount locked with 'wardfs lock', unlocking the\n"
	"vault with any of its key slots; open files read again.\n\n"
	"  --passfile FILE          read the passphrase from FILE\n"
	"  --extpass CMD            read the passphrase from CMD's output\n"
	"  --recovery-key           unlock with the recovery key (stdin or terminal)\n"
	"  --recovery-key-file FILE unlock with the recovery key in FILE\n"
	"  --escrow-key FILE        unlock with the escrow secret key in FILE\n"
	"  -h, --help               show this help\n";

/* The mount point as its daemon knows it (canonical, as /proc shows it)
 * and the daemon's status; 1 after an error. Nothing touches the mount
 * before the daemon has answered within the timeout: a stopped daemon
 * would hang a realpath or the setxattr below (mounted.c). */
static int find_mount(const char *arg, char *mnt, char *status, size_t len)
{
	if (wfs_require_wardfs(arg))
		return 1;
	int r = wfs_read_status(arg, status, len, WFS_STATUS_TIMEOUT_MS);
	if (r)
		return error("cannot read the status of '%s': %s", arg,
			     r == -ETIMEDOUT ? "its daemon does not answer" : strerror(-r));
	if (!wfs_status_get(status, "mountpoint", mnt, PATH_MAX))
		return error("the daemon of '%s' does not say its mount point", arg);
	return 0;
}

/* One process's open fds on the files in list (paths under mnt, one a
 * line). */
static void holders_of(const char *pid, const char *mnt, const char *list, unsigned *shown)
{
	char dir[300], link[PATH_MAX + 1], path[PATH_MAX + 320], comm[64] = "?";
	size_t ml = strcmp(mnt, "/") ? strlen(mnt) : 0;
	snprintf(path, sizeof path, "/proc/%s/comm", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	snprintf(dir, sizeof dir, "/proc/%s/fd", pid);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= (ssize_t)ml || strncmp(link, mnt, ml))
			continue;
		link[n] = 0;
		/* one line of list equal to the rest of link */
		size_t rl = strlen(link + ml);
		for (const char *l = list; *l; l = strchr(l, '\n') + 1) {
			if (!strncmp(l, link + ml, rl) && l[rl] == '\n') {
				printf("  pid %s (%s) fd %s: %s\n", pid, comm, e->d_name, link);
				(*shown)++;
				break;
			}
			if (!strchr(l, '\n'))
				break;
		}
	}
	if (d)
		closedir(d);
}

static int lock_one(const char *arg)
{
	char mnt[PATH_MAX], st[WFS_STATUS_MAX + 1];
	if (find_mount(arg, mnt, st, sizeof st))
		return 1;
	if (setxattr(mnt, WFS_LOCK_XATTR, "", 0, 0) < 0) {
		if (errno == EALREADY) {
			printf("'%s' is locked already\n", mnt);
			return 0;
		}
		return error("cannot lock '%s': %s", mnt,
			     errno == ENOKEY ? "it has no vault keys (nothing is encrypted)"
					     : strerror(errno));
	}
	printf("locked '%s': the keys are wiped; sensitive files need 'wardfs unlock'\n", mnt);
	char list[65536];
	ssize_t n = getxattr(mnt, WFS_OPEN_SENSITIVE_XATTR, list, sizeof list - 1);
	if (n <= 0)
		return 0;
	list[n] = 0;
	printf("sensitive files still open (they read and write EIO until unlocked):\n");
	unsigned shown = 0;
	DIR *proc = opendir("/proc");
	for (struct dirent *e; proc && (e = readdir(proc));)
		if (isdigit((unsigned char)e->d_name[0]))
			holders_of(e->d_name, mnt, list, &shown);
	if (proc)
		closedir(proc);
	if (!shown) /* open through a descriptor passed away, or in a process gone */
		for (char *l = list; *l;) {
			char *nl = strchr(l, '\n');
			*nl = 0;
			printf("  %s%s (no process found holding it)\n",
			       strcmp(mnt, "/") ? mnt : "", l);
			l = nl + 1;
		}
	return 0;
}

int wfs_cmd_lock(int argc, char **argv)
{
	const struct opt opts[] = {OPT_END()};
	int first, status = 0;
	if ((first = parse_options(argc, argv, opts, lock_usage, 0, &status)) < 0)
		return status;
	if (first == argc)
		return usage_error("which mount? 'wardfs lock MOUNTPOINT'");
	if (geteuid() != 0)
		return error("needs root (only root may lock a mount)");
	for (int i = first; i < argc; i++)
		status |= lock_one(argv[i]);
	return status;
}

int wfs_cmd_unlock(int argc, char **argv)
{
	struct wfs_pass_opts po = {0};
	const struct opt opts[] = {OPT_PASS_SOURCES(&po), OPT_END()};
	char mnt[PATH_MAX], st[WFS_STATUS_MAX + 1], backing[PATH_MAX], state[32];
	struct wfs_keys *keys = NULL;
	uint8_t *msg = NULL;
	int first, status;
	uint16_t slot = 0;
	if ((first = parse_options(argc, argv, opts, unlock_usage, 0, &status)) < 0)
		return status;
	if ((status = check_pass_opts(&po)) != 0)
		return status;
	if (argc - first != 1)
		return usage_error("one mount point: 'wardfs unlock MOUNTPOINT'");
	if (geteuid() != 0)
		return error("needs root (only root may unlock a mount)");
	if (find_mount(argv[first], mnt, st, sizeof st))
		return 1;
	if (!wfs_status_get(st, "vault", state, sizeof state) || strcmp(state, "locked")) {
		if (!strcmp(state, "unlocked")) {
			printf("'%s' is not locked\n", mnt);
			return 0;
		}
		return error("cannot unlock '%s': it has no vault keys", mnt);
	}
	if (!wfs_status_get(st, "backing", backing, sizeof backing))
		return error("the daemon of '%s' does not say its backing directory", mnt);
	if (wfs_crypto_init() < 0)
		return error("cannot initialize crypto");
	po.may_write = true; /* note the slot's use, as mount does */
	po.no_tpm2 = true;   /* a lock wants a secret given again, not the TPM's */
	int ur = wfs_vault_unlock_slot(backing, &po, &keys, &slot);
	if (ur == -EACCES) { /* a failed unlock is an auditor's question, as at mount */
		char db[PATH_MAX];
		wfs_vault_audit(
			backing,
			wfs_status_get(st, "audit-db", db, sizeof db) && db[0] == '/' ? db : NULL,
			prog_name(), WFS_AUDIT_VAULT, EACCES, unlock_failed_detail(&po));
	}
	if (ur < 0)
		return 1; /* it said why */
	status = 1;
	char note[160];
	wfs_vault_slot_name(backing, slot, note, sizeof note);
	size_t nl = strlen(note), len = WFS_MASTER_KEY_LEN + nl;
	if (!(msg = wfs_secure_alloc(len))) {
		error("out of memory");
		goto out;
	}
	wfs_keys_export(keys, msg);
	memcpy(msg + WFS_MASTER_KEY_LEN, note, nl);
	if (setxattr(mnt, WFS_UNLOCK_XATTR, msg, len, 0) < 0) {
		if (errno == EALREADY) {
			printf("'%s' is not locked\n", mnt);
			status = 0;
		} else {
			error("cannot unlock '%s': %s", mnt,
			      errno == EKEYREJECTED
				      ? "the daemon refused the key (another vault's?)"
				      : strerror(errno));
		}
		goto out;
	}
	printf("unlocked '%s' with %s\n", mnt, note);
	status = 0;
out:
	wfs_secure_free(msg); /* wipes */
	wfs_keys_free(keys);
	return status;
}
