/*
 * wardfs_paths.h - the names and default paths every part of wardfs agrees
 * on: the vault directory in a backing tree and its files, and the default
 * policy, audit database and log. Header only, so that the CLI, the vault
 * library and the daemon can all include it without depending on each
 * other.
 */
#ifndef WARDFS_PATHS_H
#define WARDFS_PATHS_H

/* BACKING/.wardfs: the vault, never served through the mount. */
#define WFS_VAULT_DIR	     ".wardfs"
#define WFS_VAULT_KEYFILE    "keyfile"
#define WFS_VAULT_CONFIG     "config"
#define WFS_VAULT_SLOTS_USED "slots-used" /* when each key slot last unlocked */
/* The note setup-home leaves in a bare (unmounted) home; mount ignores it
 * when it checks that the mount point is empty. */
#define WFS_BARE_NOTE "README.wardfs-not-mounted"

#define WFS_DEFAULT_POLICY   "/etc/wardfs/policy"
#define WFS_DEFAULT_AUDIT_DB "/var/lib/wardfs/audit.db"
#define WFS_DEFAULT_LOG	     "/var/log/wardfs.log"

#endif
