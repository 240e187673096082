"""Crash safety of encrypted files (issue 22 item 4, docs/format.md
"Crashes"): the daemon is SIGKILLed again and again while processes append
to and rewrite sensitive files, with and without fsync, under tight
writeback limits. After each remount (which replays the undo journal)
every file reads without EIO, holds exactly the bytes that were written,
and at least every byte whose write had returned; fsck finds nothing."""
import os
import random
import signal
import time

import pytest

from conftest import wait_for, wardfs

LIMIT = 1 << 20  # appenders turn into rewriters past this size


def _content(name, seed=7):
    return random.Random(f"{name}-{seed}").randbytes(2 * LIMIT)


def _writer(path, name, log, do_fsync, seed):
    """Appends (then rewrites in place) the file's own bytes, logging the
    size after each write (and fsync) returned."""
    buf = _content(name)
    rnd = random.Random(seed)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    size = os.fstat(fd).st_size
    while True:
        n = rnd.choice([1, 100, 4000, 4096, 5000, 9000, 70000])
        off = size if size < LIMIT else rnd.randrange(0, size - n)
        try:
            os.pwrite(fd, buf[off:off + n], off)
            if do_fsync:
                os.fsync(fd)
        except OSError:
            os._exit(0)
        size = max(size, off + n)
        with open(log, "w") as fh:
            fh.write(str(size))


def _dirty_limits(nbytes):
    """Sets vm.dirty_bytes / dirty_background_bytes; returns the old values."""
    old = {}
    for k in ("dirty_bytes", "dirty_background_bytes", "dirty_ratio",
              "dirty_background_ratio"):
        old[k] = open(f"/proc/sys/vm/{k}").read().strip()
    with open("/proc/sys/vm/dirty_background_bytes", "w") as f:
        f.write(str(nbytes // 2))
    with open("/proc/sys/vm/dirty_bytes", "w") as f:
        f.write(str(nbytes))
    return old


def _restore_limits(old):
    # writing a *_bytes value zeroes its *_ratio twin and back: restore the
    # ones that were in force (non-zero)
    for k, v in old.items():
        if v != "0":
            with open(f"/proc/sys/vm/{k}", "w") as f:
                f.write(v)


def _kill_loop(vault, rounds):
    names = ["sync0", "sync1", "nosync0", "nosync1"]
    logs = {n: vault.base / f"{n}.acked" for n in names}
    for n in names:
        logs[n].write_text("0")
    old = _dirty_limits(4 << 20)
    rnd = random.Random(2026)
    restored = 0
    try:
        for r in range(rounds):
            vault.mount()
            killed = False
            try:
                d = vault.mnt / "secret"
                d.mkdir(exist_ok=True)
                pid = int(vault.status()["pid"])
                kids = []
                for i, n in enumerate(names):
                    k = os.fork()
                    if k == 0:
                        _writer(d / n, n, logs[n], n.startswith("sync"), r * 10 + i)
                        os._exit(0)
                    kids.append(k)
                time.sleep(rnd.uniform(0.05, 0.6))
                os.kill(pid, signal.SIGKILL)
                killed = True
                for k in kids:
                    os.waitpid(k, 0)
                assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
            finally:
                if killed:
                    wardfs("umount", vault.mnt, check=False)
                vault.umount()
            vault.mount()
            try:
                for n in names:
                    p = vault.mnt / "secret" / n
                    if not p.exists():
                        continue
                    try:
                        got = p.read_bytes()
                    except OSError as e:
                        pytest.fail(f"round {r}: {n} does not read after the crash: {e}")
                    acked = int(logs[n].read_text())
                    assert len(got) >= acked, \
                        f"round {r}: {n} lost acknowledged bytes: {len(got)} < {acked}"
                    assert got == _content(n)[:len(got)], f"round {r}: {n} holds wrong bytes"
            finally:
                vault.umount()
        restored = vault.logtext().count("a write cut short by a crash was undone")
    finally:
        _restore_limits(old)
    r = wardfs("fsck", "--passfile", vault.passfile, vault.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return restored


def test_sigkill_during_appends_and_rewrites_loses_nothing(vault):
    restored = _kill_loop(vault, 15)
    print(f"writes undone at remount: {restored}")


@pytest.mark.long
def test_hundreds_of_sigkills_lose_nothing(vault):
    restored = _kill_loop(vault, 300)
    print(f"writes undone at remount: {restored}")
