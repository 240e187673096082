"""Whole-block overwrites of sensitive files (docs/format.md "Crashes: the
undo journal", redo entries): an overwrite of bytes an fsync made durable
waits in a redo entry of the journal instead of the file. These tests drive
that through the mount: what programs read is always the newest write,
before and after fsync, close, unmount; a killed daemon loses no write
that returned (the next mount finishes it from the journal); and the
journal is empty once the vault is unmounted."""
import mmap
import os
import random
import signal

import pytest

from conftest import ended, run, wait_for, wardfs
from test_crash import kill_daemon_under, log_number
from test_sensitive import vault_on_small_tmpfs

BLOCK = 4096
BLOCKS = 64
CBLOCK = 4124  # a sealed block: 4096 bytes, nonce and tag
HDR = 64


def _block(name, i, v):
    """Block i of file name at version v: different for every version."""
    head = b"%s block %d version %d\n" % (name.encode(), i, v)
    return head + random.Random(f"{name}-{i}-{v}").randbytes(BLOCK - len(head))


def _read_direct(fd, i):
    """Block i read with O_DIRECT: past the mount's page cache, from the
    daemon (which must see a write still in the journal)."""
    buf = mmap.mmap(-1, BLOCK)
    n = os.preadv(fd, [buf], i * BLOCK)
    return bytes(buf[:n])


def _layout(path, name):
    with open(path, "wb") as fh:
        fh.write(b"".join(_block(name, i, 0) for i in range(BLOCKS)))
        fh.flush()
        os.fsync(fh.fileno())


def test_overwrites_read_back_and_survive_fsync_close_and_unmount(vault):
    """Random whole-block overwrites, read back through another descriptor
    right after (which writes them in place first), then fsync, close and
    a remount: every block is its newest version, and the journal is
    empty after the unmount."""
    vault.mount()
    p = vault.mnt / "secret" / "db"
    want = [0] * BLOCKS
    rnd = random.Random(21)
    try:
        (vault.mnt / "secret").mkdir()
        _layout(p, "db")
        fd = os.open(p, os.O_RDWR)
        rd = os.open(p, os.O_RDONLY | os.O_DIRECT)
        try:
            for n in range(600):
                i = rnd.randrange(BLOCKS - 3)
                k = rnd.choice([1, 1, 1, 2, 3])
                for j in range(i, i + k):
                    want[j] += 1
                data = b"".join(_block("db", j, want[j]) for j in range(i, i + k))
                assert os.pwrite(fd, data, i * BLOCK) == len(data)
                if n % 7 == 0:
                    j = rnd.randrange(BLOCKS)
                    assert _read_direct(rd, j) == _block("db", j, want[j]), n
                if n % 97 == 0:
                    os.fsync(fd)
        finally:
            os.close(rd)
            os.close(fd)
        assert p.read_bytes() == b"".join(_block("db", j, want[j]) for j in range(BLOCKS))
    finally:
        vault.umount()
    assert (vault.backing / ".wardfs" / "undo").stat().st_size == 0
    vault.mount()
    try:
        assert p.read_bytes() == b"".join(_block("db", j, want[j]) for j in range(BLOCKS))
    finally:
        vault.umount()
    r = wardfs("fsck", "--passfile", vault.passfile, vault.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mount_finishes_an_acknowledged_overwrite(vault):
    """An overwrite of durable blocks returns with the file untouched and the
    new blocks in a redo entry; the daemon is killed before anything
    writes them in place. The next mount writes them, says so in the
    audit log, and the file reads the new bytes."""
    vault.mount()
    p = vault.mnt / "secret" / "img"
    bk = vault.backing / "secret" / "img"
    killed = False
    try:
        (vault.mnt / "secret").mkdir()
        _layout(p, "img")
        before = bk.read_bytes()
        fd = os.open(p, os.O_RDWR)
        new = _block("img", 5, 1) + _block("img", 6, 1)
        assert os.pwrite(fd, new, 5 * BLOCK) == len(new)
        assert bk.read_bytes() == before  # not in place yet
        journal = (vault.backing / ".wardfs" / "undo").read_bytes()
        assert b"WFSREDO1" in journal
        pid = int(vault.status()["pid"])
        os.kill(pid, signal.SIGKILL)
        killed = True
        assert wait_for(lambda: ended(pid))
        os.close(fd)
    finally:
        if killed:
            wardfs("umount", vault.mnt, check=False)
        vault.umount()
    assert bk.read_bytes() == before
    vault.mount()
    try:
        old = b"".join(_block("img", i, 0) for i in range(BLOCKS))
        assert p.read_bytes() == old[:5 * BLOCK] + new + old[7 * BLOCK:]
    finally:
        vault.umount()
    rows = run("sqlite3", vault.db, "SELECT path || '|' || detail FROM events "
               "WHERE kind = 'integrity'").stdout
    assert "/secret/img|undo journal: a write the daemon had acknowledged was finished" in rows
    r = wardfs("fsck", "--passfile", vault.passfile, vault.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def _overwriter(path, name, log, seed):
    """Overwrites whole blocks with new versions, logging each block's
    version once its write returned (fsync now and then, reads between,
    past the page cache)."""
    rnd = random.Random(seed)
    try:
        fd = os.open(path, os.O_RDWR)
        rd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        logfd = os.open(log, os.O_RDWR)
    except OSError:
        os._exit(0)  # killed before it got going: nothing acknowledged
    raw = os.pread(logfd, 20 * BLOCKS, 0)
    ver = [int(raw[20 * i:20 * i + 20]) for i in range(BLOCKS)]
    while True:
        i = rnd.randrange(BLOCKS - 1)
        k = rnd.choice([1, 1, 2])
        vs = [ver[j] + 1 for j in range(i, i + k)]
        data = b"".join(_block(name, j, v) for j, v in zip(range(i, i + k), vs))
        try:
            if os.pwrite(fd, data, i * BLOCK) != len(data):
                os._exit(0)
            r = rnd.random()
            if r < 0.05:
                os.fsync(fd)
            elif r < 0.15:
                j = rnd.randrange(BLOCKS)
                if _read_direct(rd, j) != _block(name, j, ver[j] + (j in range(i, i + k))):
                    os.pwrite(logfd, b"X", 20 * BLOCKS)  # a wrong read: the parent fails
        except OSError:
            os._exit(0)
        for j, v in zip(range(i, i + k), vs):
            ver[j] = v
            os.pwrite(logfd, b"%20d" % v, 20 * j)


def _kill_rounds(vault, rounds):
    """Two processes overwrite whole blocks of two fsynced files, and the
    daemon is killed at a random moment, round after round. After each
    remount every block holds the version its last returned write gave it
    (or the one in flight when the kill came), and no read saw a stale
    block. Returns the overwrites the mounts finished."""
    names = ["a", "b"]
    logs = {n: vault.base / f"{n}.versions" for n in names}
    for n in names:
        logs[n].write_bytes(b"%20d" % 0 * BLOCKS)
    vault.mount()
    try:
        (vault.mnt / "secret").mkdir()
        for n in names:
            _layout(vault.mnt / "secret" / n, n)
    finally:
        vault.umount()
    rnd = random.Random(2027)
    finished = 0
    for r in range(rounds):
        vault.mount()
        kill_daemon_under(vault, [
            lambda i=i, n=n: _overwriter(vault.mnt / "secret" / n, n, logs[n], r * 10 + i)
            for i, n in enumerate(names)], rnd.uniform(0.2, 1.0))
        vault.mount()
        try:
            for n in names:
                raw = logs[n].read_bytes()
                assert len(raw) == 20 * BLOCKS, f"round {r}: a read of {n} saw a stale block"
                got = (vault.mnt / "secret" / n).read_bytes()
                for j in range(BLOCKS):
                    v = int(raw[20 * j:20 * j + 20])
                    blk = got[j * BLOCK:(j + 1) * BLOCK]
                    assert blk in (_block(n, j, v), _block(n, j, v + 1)), \
                        f"round {r}: {n} block {j} lost version {v}: {blk[:40]!r}"
                    if blk == _block(n, j, v + 1):  # the write in flight landed
                        with open(logs[n], "r+b") as fh:
                            fh.seek(20 * j)
                            fh.write(b"%20d" % (v + 1))
        finally:
            vault.umount()
    r = wardfs("fsck", "--passfile", vault.passfile, vault.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return vault.logtext().count("a write the daemon had acknowledged was finished")


def test_sigkill_during_block_overwrites_loses_no_acknowledged_write(vault):
    finished = _kill_rounds(vault, int(os.environ.get("WFS_CRASH_ROUNDS", "8")))
    print(f"overwrites finished at remount: {finished}")
    assert finished > 0  # the kills found writes waiting in the journal


@pytest.mark.long
def test_hundreds_of_sigkills_during_block_overwrites(vault):
    """The same, many more rounds (make test-long)."""
    finished = _kill_rounds(vault, int(os.environ.get("WFS_CRASH_ROUNDS", "100")))
    print(f"overwrites finished at remount: {finished}")


def test_overwrites_on_a_disk_the_journal_fills(base):
    """Written in place, a batch's entries wait in the journal until the
    file is synced. On a disk they fill, an overwrite (which needs no room
    of its own) still succeeds: the daemon syncs, the journal starts over
    where it has room. 12 MiB of overwrites on a disk with about 5 free."""
    with vault_on_small_tmpfs(base, "8M") as (m, _):
        m.mount()
        try:
            (m.mnt / "secret").mkdir()
            p = m.mnt / "secret" / "db"
            n = 512
            want = [0] * n
            with open(p, "wb") as fh:
                fh.write(b"".join(_block("db", i, 0) for i in range(n)))
                fh.flush()
                os.fsync(fh.fileno())
            rnd = random.Random(11)
            fd = os.open(p, os.O_RDWR)
            try:
                for k in range(3000):
                    i = rnd.randrange(n - 1)
                    want[i] += 1
                    assert os.pwrite(fd, _block("db", i, want[i]), i * BLOCK) == BLOCK, k
            finally:
                os.close(fd)
            data = p.read_bytes()
            for i in range(n):
                assert data[i * BLOCK:(i + 1) * BLOCK] == _block("db", i, want[i]), i
        finally:
            m.umount()
