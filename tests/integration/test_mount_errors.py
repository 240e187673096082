"""Bad input to `wardfs mount`: one-line errors that say what to do, a
non-zero exit, and nothing left mounted."""
import os
import shutil

import pytest

from conftest import is_mounted, run, wardfs, WARDFS


def one_line(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_nonempty_mountpoint(vault):
    vault.mnt.mkdir()
    (vault.mnt / "x").write_text("x")
    line = one_line(vault.mount(check=False))
    assert "not empty" in line and "nonempty" in line
    assert not is_mounted(vault.mnt)
    vault.mount("-o", "nonempty")
    try:
        assert is_mounted(vault.mnt)
    finally:
        vault.umount()


def test_missing_backing(vault):
    vault.backing = vault.base / "nope"
    line = one_line(vault.mount(check=False))
    assert "nope" in line and "wardfs init" in line


def test_mountpoint_inside_backing(vault):
    vault.mnt = vault.backing / "inner"
    line = one_line(vault.mount(check=False))
    assert "inside the backing" in line


def test_second_mount_of_same_backing(vault):
    vault.mount()
    try:
        other = vault.base / "mnt2"
        other.mkdir()
        r = wardfs("mount", "--passfile", vault.passfile, "--policy", vault.policy,
                   "--audit-db", vault.db, "--log", vault.log, vault.backing, other,
                   check=False)
        line = one_line(r)
        assert "already mounted" in line
        assert not is_mounted(other)
    finally:
        vault.umount()


def test_non_root_caller(vault, test_user):
    vault.mnt.mkdir()
    os.chmod(vault.base, 0o755)
    r = run(WARDFS, "mount", vault.backing, vault.mnt, user=True, check=False)
    line = one_line(r)
    assert "root" in line


def test_not_a_vault(base):
    (base / "plain").mkdir()
    (base / "m").mkdir()
    r = wardfs("mount", base / "plain", base / "m", check=False)
    line = one_line(r)
    assert "wardfs init" in line


def test_killed_daemon_then_umount(vault):
    vault.mount()
    pid = int(vault.status()["pid"])
    os.kill(pid, 9)
    r = wardfs("umount", vault.mnt, check=False)
    assert r.returncode == 0, r.stderr
    assert not is_mounted(vault.mnt)
    vault.mount()
    vault.umount()


def test_relative_paths_are_kept_after_daemonizing(vault):
    """The daemon runs in "/": --policy, --audit-db and --log given relative
    to the caller's directory must still name the caller's files."""
    vault.policy.write_text("deny /secret-deny\n")
    args = ["mount", "--passfile", "pass", "--policy", "policy", "--audit-db", "rel.db",
            "--log", "rel.log", "vault/backing", "mnt"]
    vault.mnt.mkdir(exist_ok=True)
    r = run(WARDFS, *args, check=False, cwd=vault.base)
    assert r.returncode == 0, r.stderr
    try:
        (vault.backing / "secret-deny").write_text("x")
        with pytest.raises(PermissionError):
            (vault.mnt / "secret-deny").read_text()
    finally:
        vault.umount()
    assert (vault.base / "rel.db").exists()
    assert (vault.base / "rel.log").exists()


def test_umount_of_something_not_mounted(base):
    (base / "empty").mkdir()
    r = wardfs("umount", base / "empty", check=False)
    assert r.returncode == 1
    assert one_line(r) == f"wardfs umount: '{base / 'empty'}' is not a mount point"


def test_log_and_audit_db_in_missing_directories(vault):
    """--log and --audit-db in directories that do not exist yet: both are
    created 0700 (the log used to go nowhere, the audit key failed)."""
    vault.log = vault.base / "logs" / "sub" / "wardfs.log"
    vault.db = vault.base / "state" / "sub" / "audit.db"
    vault.mount()
    try:
        (vault.mnt / "f").write_text("x")
    finally:
        vault.umount()
    for d in (vault.base / "logs", vault.log.parent, vault.base / "state", vault.db.parent):
        assert oct(os.stat(d).st_mode & 0o7777) == "0o700", d
    assert vault.log.exists()
    assert oct(os.stat(vault.db).st_mode & 0o7777) == "0o600"


def test_log_that_cannot_be_written(vault):
    """A log that cannot be opened is refused before anything is mounted."""
    (vault.base / "file").write_text("not a directory")
    vault.log = vault.base / "file" / "wardfs.log"
    line = one_line(vault.mount(check=False))
    assert line == (f"wardfs mount: cannot create the log's directory '{vault.base}/file': "
                    "Not a directory"), line
    assert not is_mounted(vault.mnt)


@pytest.mark.parametrize("cmd, arg, want", [
    ("mount", "--x", "wardfs mount: unknown option '--x'; see 'wardfs mount --help'"),
    ("mount", "--colour=blue", "wardfs mount: unknown option '--colour'; see 'wardfs mount --help'"),
    ("mount", "-z", "wardfs mount: unknown option '-z'; see 'wardfs mount --help'"),
    ("umount", "--x", "wardfs umount: unknown option '--x'; see 'wardfs umount --help'"),
])
def test_unknown_option_is_one_line(base, cmd, arg, want):
    """Not the whole help, and not getopt's "mount: unrecognized option"."""
    r = wardfs(cmd, arg, base / "a", base / "b", check=False)
    assert r.returncode == 2
    assert one_line(r) == want
    assert r.stdout == ""
    r = wardfs("mount", "--policy", check=False)
    assert one_line(r) == ("wardfs mount: option '--policy' needs a value; "
                           "see 'wardfs mount --help'")


def test_recovery_key_file(base):
    """wardfs-init(1) names --recovery-key-file among the unlock options of
    wardfs mount (and mount.wardfs takes recovery-key-file=)."""
    from conftest import Mount, PASS
    v = Mount(base)
    v.policy.write_text("default public\n")
    v.make_backing()
    r = wardfs("init", "--kdf-memory", "8", "--kdf-ops", "1", v.backing, input=PASS + "\n")
    key = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("    ")][0]
    keyfile = base / "recovery"
    keyfile.write_text(key + "\n")
    keyfile.chmod(0o600)
    v.mnt.mkdir()
    r = wardfs("mount", "--recovery-key-file", keyfile, "--passfile", keyfile, v.backing,
               v.mnt, check=False)
    assert one_line(r).endswith("a recovery key replaces the passphrase options; "
                                "see 'wardfs mount --help'")
    r = wardfs("mount", "--recovery-key-file", keyfile, "--policy", v.policy, "--audit-db",
               v.db, "--log", v.log, v.backing, v.mnt, check=False)
    assert r.returncode == 0, r.stderr
    try:
        assert is_mounted(v.mnt)
    finally:
        v.umount()
    # the audit says how the vault was unlocked
    rows = v.sql("SELECT detail FROM events WHERE kind = 'mount'")
    assert f"{v.backing}; unlocked with slot 0 (recovery" in rows, rows
    os.symlink(WARDFS, base / "mount.wardfs")
    helper = run(base / "mount.wardfs", v.backing, v.mnt, "-f", "-o",
                 f"recovery-key-file={keyfile}", check=False)
    assert helper.returncode == 0, helper.stderr
    assert f"--recovery-key-file {keyfile}" in helper.stderr


def test_a_vault_that_lost_its_keyfile_is_not_sent_to_init(vault):
    """Issue 16: a backing dir whose keyfile is gone was "not a wardfs vault
    (no .wardfs/keyfile); see 'wardfs init'", and init made a new key that
    cannot read a single one of its files. Both now say to restore the
    keyfile, as long as a vault's files are there."""
    from conftest import PASS
    v = vault
    v.mount()
    try:
        (v.mnt / "secret").mkdir()
        (v.mnt / "secret" / "x").write_bytes(b"only the old key reads this")
    finally:
        v.umount()
    (v.backing / ".wardfs" / "keyfile").unlink()
    v.mnt.mkdir(exist_ok=True)
    for args in (["init", "--passfile", v.passfile, v.backing],
                 ["mount", "--passfile", v.passfile, "--policy", v.policy, "--audit-db", v.db,
                  "--log", v.log, v.backing, v.mnt]):
        r = wardfs(*args, check=False)
        assert r.returncode == 1 and not is_mounted(v.mnt), r.stderr
        assert "has no keyfile (.wardfs/keyfile) but holds a vault's files" in r.stderr, r.stderr
        assert "restore the keyfile from your backup" in r.stderr and "'.wardfs/" not in r.stderr
    # without .wardfs at all, the ciphertext still tells
    shutil.rmtree(v.backing / ".wardfs")
    r = wardfs("init", "--passfile", v.passfile, v.backing, check=False)
    assert r.returncode == 1 and "encrypted files such as '/secret/x'" in r.stderr, r.stderr
    assert not (v.backing / ".wardfs").exists()
    # plain files only: init is right
    (v.backing / "secret" / "x").unlink()
    (v.backing / "notes").write_text("plain")
    r = wardfs("init", "--passfile", v.passfile, "--kdf-memory", "8", "--kdf-ops", "1",
               v.backing, input=PASS + "\n")
    assert "Created a wardfs vault" in r.stdout
