"""`wardfs lock` and `wardfs unlock` of a running mount (issue 17): the keys
leave the daemon without an unmount. While locked, sensitive files refuse
to open or be made (ENOKEY, audited), the ones open already read and write
EIO (their pages are gone from the kernel too, so nothing is served from
the page cache), renames and truncates that need the keys are refused,
public files work as ever; `lock` names the processes holding sensitive
files open; `unlock` with any key slot brings everything back, nothing
lost. Only root may do either: not a user, not root of a user namespace,
not a key of another vault."""
import errno
import json
import os
import subprocess
import sys

import pytest

from conftest import WARDFS, run, wait_for, wardfs


def rows(m, where):
    return json.loads(m.sql(f"SELECT kind, path, decision, errno, detail, uid FROM events "
                            f"WHERE {where} ORDER BY id") or "[]")


def fails_with(err, fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err, e.value
    return e.value


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def test_lock_wipes_keys_and_unlock_brings_them_back(mnt):
    m = mnt
    sec = m.mnt / "secret"
    sec.mkdir()
    (sec / "a.txt").write_bytes(b"alpha " * 1000)
    (sec / "b.txt").write_bytes(b"bravo")
    (m.mnt / "pub.txt").write_text("public\n")
    key_pem = m.mnt / "id.pem"
    key_pem.write_text("-----BEGIN KEY-----\n")

    held = open(sec / "a.txt", "rb", buffering=0)  # open across the lock
    try:
        assert held.read(6) == b"alpha "  # its pages are in the kernel now
        writer = open(sec / "w.txt", "wb", buffering=0)
        writer.write(b"before the lock\n")
        writer.flush()

        r = wardfs("lock", m.mnt)
        assert r.returncode == 0, r.stderr
        assert f"locked '{m.mnt}'" in r.stdout
        # the holders are named: this process, with its two files
        me = f"pid {os.getpid()} ("
        assert any(me in l and l.endswith(f"{sec}/a.txt") for l in r.stdout.splitlines()), \
            r.stdout
        assert any(me in l and l.endswith(f"{sec}/w.txt") for l in r.stdout.splitlines()), \
            r.stdout
        assert m.status()["vault"] == "locked"
        # a second lock is no error
        r = wardfs("lock", m.mnt)
        assert r.returncode == 0 and "locked already" in r.stdout

        # open files: EIO, not the page cache's old bytes
        fails_with(errno.EIO, os.pread, held.fileno(), 6, 0)
        fails_with(errno.EIO, writer.write, b"x")
        # sensitive opens, creates, truncates and converting renames: ENOKEY
        fails_with(errno.ENOKEY, read_all, sec / "a.txt")
        fails_with(errno.ENOKEY, read_all, key_pem)
        fails_with(errno.ENOKEY, open, sec / "new.txt", "wb")
        assert not (m.backing / "secret" / "new.txt").exists()
        fails_with(errno.ENOKEY, os.truncate, sec / "a.txt", 3)
        fails_with(errno.ENOKEY, os.rename, sec / "b.txt", m.mnt / "b.txt")
        fails_with(errno.ENOKEY, os.rename, m.mnt / "pub.txt", sec / "pub.txt")
        # names still list; public files work
        assert sorted(os.listdir(sec)) == ["a.txt", "b.txt", "w.txt"]
        assert (m.mnt / "pub.txt").read_text() == "public\n"
        (m.mnt / "pub2.txt").write_text("made while locked\n")
        assert (m.mnt / "pub2.txt").read_text() == "made while locked\n"

        # a wrong passphrase leaves it locked
        bad = m.base / "bad"
        bad.write_text("wrong\n")
        bad.chmod(0o600)
        r = wardfs("unlock", "--passfile", bad, m.mnt, check=False)
        assert r.returncode != 0 and "passphrase" in r.stderr, r.stderr
        assert m.status()["vault"] == "locked"
        # rows reach the database a moment later (the audit writer's thread)
        assert wait_for(lambda: rows(
            m, "kind = 'vault' AND detail = 'unlock failed: wrong passphrase'")), \
            rows(m, "kind = 'vault'")

        r = wardfs("unlock", "--passfile", m.passfile, m.mnt)
        assert r.returncode == 0, r.stderr
        assert "unlocked" in r.stdout and "(passphrase" in r.stdout, r.stdout
        assert m.status()["vault"] == "unlocked"
        # the same open files read again, nothing lost
        assert os.pread(held.fileno(), 10000, 0) == b"alpha " * 1000
        writer.write(b"after the unlock\n")
        writer.close()
    finally:
        held.close()
    assert (sec / "w.txt").read_bytes() == b"before the lock\nafter the unlock\n"
    assert read_all(key_pem) == b"-----BEGIN KEY-----\n"
    assert read_all(sec / "b.txt") == b"bravo"
    # ciphertext on disk all along
    assert b"alpha" not in (m.backing / "secret" / "a.txt").read_bytes()
    r = wardfs("unlock", "--passfile", m.passfile, m.mnt)
    assert "is not locked" in r.stdout

    # the audit: which slot the mount and the unlock used, who locked, every refusal
    mount = rows(m, "kind = 'mount'")
    assert f"{m.backing}; unlocked with slot 1 (passphrase" in mount[0]["detail"], mount
    vault = rows(m, "kind = 'vault' AND (errno IS NULL OR errno = 0)")
    assert [v["detail"].split(":")[0].split(" ")[0] for v in vault] == ["locked", "unlocked"], \
        vault
    assert vault[0]["uid"] == 0 and "2 encrypted files open" in vault[0]["detail"], vault
    assert "with slot " in vault[1]["detail"] and "passphrase" in vault[1]["detail"], vault
    refused = rows(m, f"errno = {errno.ENOKEY}")
    assert {r["path"] for r in refused} >= {"/secret/a.txt", "/id.pem", "/secret/new.txt"}, \
        refused


def test_lock_keeps_what_a_shared_mapping_wrote(mnt):
    """Bytes a program stored through a shared mapping, not yet written
    back by the kernel, are written (encrypted) before the keys go, not
    lost; the mapping's pages are dropped; after the unlock the file holds
    them and a new mapping reads them."""
    import mmap
    m = mnt
    sec = m.mnt / "secret"
    sec.mkdir()
    (sec / "mapped").write_bytes(b"\0" * 8192)
    fd = os.open(sec / "mapped", os.O_RDWR)
    try:
        mp = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        mp[100:113] = b"stored in RAM"
        wardfs("lock", m.mnt)
        wardfs("unlock", "--passfile", m.passfile, m.mnt)
        assert mp[100:113] == b"stored in RAM"  # read again through the daemon
        mp.close()
    finally:
        os.close(fd)
    m.umount()
    m.mount()
    assert read_all(sec / "mapped")[100:113] == b"stored in RAM"
    assert b"stored in RAM" not in (m.backing / "secret" / "mapped").read_bytes()


def test_only_root_locks_and_unlocks(mnt, test_user):
    m = mnt
    (m.mnt / "secret").mkdir()
    (m.mnt / "secret" / "s").write_text("s")
    key = os.urandom(32)
    user = ["setpriv", f"--reuid={test_user['uid']}", f"--regid={test_user['gid']}",
            "--init-groups"]
    code = ("import os, sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))")
    for prefix in (user, ["unshare", "-rm"]):
        for name, value in (("trusted.wardfs.lock", ""), ("trusted.wardfs.unlock", key.hex())):
            r = subprocess.run([*prefix, sys.executable, "-c", code, str(m.mnt), name, value],
                               capture_output=True, text=True)
            assert r.returncode != 0 and "Operation not permitted" in r.stderr, (prefix, r)
    assert m.status()["vault"] == "unlocked"
    r = run(WARDFS, "lock", m.mnt, user=True, check=False)
    assert r.returncode == 1 and "needs root" in r.stderr, r.stderr

    # root, with a key of another vault (or garbage): refused, still locked
    wardfs("lock", m.mnt)
    with pytest.raises(OSError) as e:
        os.setxattr(m.mnt, "trusted.wardfs.unlock", key + b"forged")
    assert e.value.errno == errno.EKEYREJECTED
    with pytest.raises(OSError) as e:
        os.setxattr(m.mnt, "trusted.wardfs.unlock", b"short")
    assert e.value.errno == errno.EINVAL
    assert m.status()["vault"] == "locked"
    fails_with(errno.ENOKEY, read_all, m.mnt / "secret" / "s")
    assert wait_for(lambda: any("not this vault's key" in r["detail"]
                                for r in rows(m, "kind = 'vault' AND decision = 'deny'"))), \
        rows(m, "kind = 'vault'")
    wardfs("unlock", "--passfile", m.passfile, m.mnt)
    assert (m.mnt / "secret" / "s").read_text() == "s"


def test_lock_under_load_loses_nothing(mnt):
    """Writers and readers of sensitive files while the mount is locked and
    unlocked over and over: each operation either succeeds or fails with
    EIO/ENOKEY, the daemon survives, and after the last unlock every file
    holds exactly what the writes that succeeded put there."""
    m = mnt
    sec = m.mnt / "secret"
    sec.mkdir()
    stop = m.base / "stop"
    # Appends until told to stop, and 20 more after that (unlocked by then).
    code = r"""
import errno, os, sys
path, stop = sys.argv[1], sys.argv[2]
ok = failed = after = i = 0
while after < 20:
    try:
        with open(path, "ab") as f:
            f.write(b"%08d\n" % i)
        ok += 1
        after += os.path.exists(stop)
    except OSError as e:
        if e.errno not in (errno.EIO, errno.ENOKEY):
            raise
        failed += 1
    i += 1
print(ok, failed)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(sec / f"f{i}"), str(stop)],
                              stdout=subprocess.PIPE, text=True) for i in range(3)]
    for _ in range(6):
        wardfs("lock", m.mnt)
        wardfs("unlock", "--passfile", m.passfile, m.mnt)
    stop.write_text("")
    done, failed = [], 0
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
        done.append(int(out.split()[0]))
        failed += int(out.split()[1])
    assert failed > 0  # the locks did meet the writers
    for i in range(3):
        data = (sec / f"f{i}").read_bytes()
        lines = data.splitlines()
        # a write refused by a lock wrote nothing: exactly the ones that succeeded
        assert len(lines) == done[i], (len(lines), done[i])
        # whole records only, in order, no bytes of a failed write's garbage
        assert all(len(l) == 8 and l.isdigit() for l in lines), data[:200]
        assert [int(l) for l in lines] == sorted(int(l) for l in lines)
    assert m.status()["vault"] == "unlocked"


def test_lock_of_a_mount_without_keys_and_of_what_is_not_wardfs(base):
    r = wardfs("lock", base, check=False)
    assert r.returncode != 0 and "not a mount point" in r.stderr
    r = wardfs("unlock", base, check=False)
    assert r.returncode != 0 and "not a mount point" in r.stderr
    r = wardfs("lock", check=False)
    assert r.returncode == 2 and "which mount" in r.stderr


def test_unmount_while_locked_and_mount_again(mnt):
    m = mnt
    (m.mnt / "secret").mkdir()
    (m.mnt / "secret" / "s").write_text("kept")
    wardfs("lock", m.mnt)
    m.umount()  # drains the audit, wipes nothing twice
    m.mount()
    assert m.status()["vault"] == "unlocked"
    assert (m.mnt / "secret" / "s").read_text() == "kept"
    assert "AddressSanitizer" not in m.logtext()
