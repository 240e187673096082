"""Power cuts (issue 22 item 4, docs/format.md "Crashes: the undo journal").

There is no device-mapper here to cut a disk's power, so cutdisk.c stands
in: a FUSE file whose writes wait in a volatile cache until the kernel
flushes them, and a loop device on it carries the ext4 that holds the vault.
A round: processes append to and rewrite sensitive files (some fsync each
write, some never do), overwrite whole blocks of a durable one (redo
entries), and save a document by write-fsync-rename; the writers
are frozen, the power is cut (each unflushed sector lands or is lost, at
random and in any order), the daemon is killed. Then the disk is mounted as
it was left (ext4 replays its own journal), and wardfs with it (which
replays the undo journal). Every byte whose fsync returned is there, every
byte a file holds is the byte written, a saved document is a whole version
no older than the last acknowledged one, and what fsck finds in bytes
nobody fsync'ed (a torn tail, a torn block, a header that never reached the
disk) `fsck --repair --hole-damaged` repairs, after which fsck is clean and
the files read without EIO. The vault's key, made by `wardfs init` at the start, survives
every cut."""
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import DEFAULT_POLICY, Mount, ROOT, ended, run, throttled_writeback, wait_for, wardfs
from test_crash import _content, _writer, log_number
from test_redo import BLOCK, BLOCKS, _block, _layout, _read_direct

HERE = os.path.dirname(os.path.abspath(__file__))
# Two generations of appenders: a round writes one (new files, which grow
# into rewriters past 1 MiB) while the other's, from the round before, must
# stay as they are.
NAMES = [f"{n}-{g}" for g in (0, 1) for n in ("sync0", "sync1", "nosync0")]


@pytest.fixture(scope="module")
def cutdisk_bin(tmp_path_factory):
    out = tmp_path_factory.mktemp("cutdisk") / "cutdisk"
    pc = {"PKG_CONFIG_PATH": f"{ROOT}/deps/libfuse/lib/pkgconfig"}
    flags = run("pkg-config", "--cflags", "--libs", "fuse3", env={**os.environ, **pc}).stdout
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                    os.path.join(HERE, "cutdisk.c"), *flags.split(),
                    f"-Wl,-rpath,{ROOT}/deps/libfuse/lib", "-lpthread"], check=True)
    return out


def _doc(version):
    rnd = random.Random(f"doc-{version}")
    return f"version {version}\n".encode() + rnd.randbytes(rnd.randrange(1, 30000))


def _saver(d, log):
    """Saves the document as editors do, logging each version whose save
    (fsync of the file, rename, fsync of the directory) returned."""
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    v = int(open(log).read())
    logfd = os.open(log, os.O_WRONLY)
    while True:
        v += 1
        try:
            fd = os.open(d / "doc.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, _doc(v))
            os.fsync(fd)
            os.close(fd)
            os.rename(d / "doc.tmp", d / "doc")
            os.fsync(dfd)
        except OSError:
            os._exit(0)
        log_number(logfd, v)


def _versions(path):
    raw = path.read_bytes()
    return [int(raw[20 * j:20 * j + 20]) for j in range(BLOCKS)]


def _block_writer(path, written, durable, seed):
    """Overwrites whole blocks of a durable file with new versions (the
    redo entries' case), logging each block's version once its write
    returned, and the versions an fsync made durable. Reads a block now
    and then past the page cache: the daemon then writes the pending
    entries in place without syncing them (applied entries), which a cut
    may catch half written back."""
    rnd = random.Random(seed)
    try:
        fd = os.open(path, os.O_RDWR)
        rd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        wfd, dfd = os.open(written, os.O_WRONLY), os.open(durable, os.O_WRONLY)
    except OSError:
        os._exit(0)
    ver = _versions(written)
    while True:
        i = rnd.randrange(BLOCKS - 1)
        k = rnd.choice([1, 1, 2])
        try:
            data = b"".join(_block("blocks", j, ver[j] + 1) for j in range(i, i + k))
            if os.pwrite(fd, data, i * BLOCK) != len(data):
                os._exit(0)
            for j in range(i, i + k):
                ver[j] += 1
            os.pwrite(wfd, b"".join(b"%20d" % v for v in ver), 0)
            if rnd.random() < 0.1:
                _read_direct(rd, rnd.randrange(BLOCKS))
            if rnd.random() < 0.02:
                os.fsync(fd)
                os.pwrite(dfd, b"".join(b"%20d" % v for v in ver), 0)
        except OSError:
            os._exit(0)


class Disk:
    """An ext4 image on a cutdisk, on a loop device, mounted at path."""

    def __init__(self, base, binary, seed):
        self.img, self.cd, self.path = base / "disk.img", base / "cd", base / "disk"
        self.cd.mkdir(exist_ok=True)
        self.path.mkdir(exist_ok=True)
        self.err = base / "cutdisk.err"
        self.proc = subprocess.Popen([binary, self.img, self.cd, str(seed)],
                                     stderr=open(self.err, "w"))
        self.dev = None
        if not wait_for(lambda: os.path.exists(self.cd / "disk")):
            self.close()
            pytest.fail(f"cutdisk did not start: {self.err.read_text()}")
        self.dev = run("losetup", "--find", "--show", self.cd / "disk").stdout.strip()
        # Writeback held to 256 KiB (as test_crash's throttled disk), so
        # data reaches the disk's cache between flushes, not only at fsync.
        self.throttle = throttled_writeback(self.dev, 256 << 10)
        self.throttle.__enter__()
        try:
            run("mount", self.dev, self.path)
        except Exception:
            self.close()
            raise

    def cut(self):
        self.proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "power cut" in self.err.read_text()), self.err.read_text()

    def close(self):
        if self.dev:
            if subprocess.run(["umount", str(self.path)]).returncode:
                subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.throttle.__exit__(None, None, None)
            run("losetup", "-d", self.dev, check=False)
        subprocess.run(["umount", str(self.cd)], check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            subprocess.run(["umount", "-l", str(self.cd)], check=False)


def _powercut_rounds(base, cutdisk_bin, rounds, seed):
    rnd = random.Random(seed)
    img = base / "disk.img"
    run("truncate", "-s", "256M", img)
    run("mkfs.ext4", "-q", "-F", "-b", "4096", img)
    v = Mount(base)
    v.backing = base / "disk" / "vault" / "backing"
    v.policy.write_text(DEFAULT_POLICY)
    logs = {n: base / f"{n}.acked" for n in NAMES + ["doc"]}
    for p in logs.values():
        p.write_text("0")
    for n in ("written", "durable"):
        logs[n] = base / f"blocks.{n}"
        logs[n].write_bytes(b"%20d" % 0 * BLOCKS)
    cuts = repaired = 0
    for r in range(rounds):
        disk = Disk(base, cutdisk_bin, rnd.randrange(1 << 30))
        kids = []
        try:
            if r == 0:
                v.init()
            v.mount()
            d = v.mnt / "secret"
            d.mkdir(exist_ok=True)
            if r == 0:
                _layout(d / "blocks", "blocks")
            pid = int(v.status()["pid"])
            gen = [n for n in NAMES if n.endswith(f"-{r % 2}")]
            for n in gen:
                (d / n).unlink(missing_ok=True)
                logs[n].write_text("0")
            for i, n in enumerate(gen):
                k = os.fork()
                if k == 0:
                    _writer(d / n, n, logs[n], n.startswith("sync"), r * 10 + i)
                    os._exit(0)
                kids.append(k)
            k = os.fork()
            if k == 0:
                _saver(d, logs["doc"])
                os._exit(0)
            kids.append(k)
            k = os.fork()
            if k == 0:
                _block_writer(d / "blocks", logs["written"], logs["durable"], r)
                os._exit(0)
            kids.append(k)
            time.sleep(rnd.uniform(0.2, 1.5))
            # Frozen first: an fsync that returns after the cut (the
            # dropped flush "succeeds") must not be logged as durable.
            for k in kids:
                os.kill(k, signal.SIGSTOP)
            disk.cut()
            cuts += 1
            os.kill(pid, signal.SIGKILL)
            for k in kids:
                os.kill(k, signal.SIGKILL)
                os.waitpid(k, 0)
            kids = []
            assert wait_for(lambda: ended(pid))
        finally:
            for k in kids:
                os.kill(k, signal.SIGKILL)
                os.waitpid(k, 0)
            wardfs("umount", v.mnt, check=False)
            v.umount()
            disk.close()
        repaired += _check(base, v, logs, r)
    return cuts, repaired


def _mount_image(base):
    path = base / "disk"
    dev = run("losetup", "--find", "--show", base / "disk.img").stdout.strip()
    try:
        run("mount", dev, path)
    except Exception:
        run("losetup", "-d", dev, check=False)
        raise
    return dev


def _unmount_image(base, dev):
    if subprocess.run(["umount", str(base / "disk")]).returncode:
        subprocess.run(["umount", "-l", str(base / "disk")], check=False)
    run("losetup", "-d", dev, check=False)


def _read_all(v):
    """{name: bytes or the OSError} of the files through the mount."""
    out = {}
    v.mount()
    try:
        for n in NAMES + ["doc", "blocks"]:
            p = v.mnt / "secret" / n
            try:
                out[n] = p.read_bytes() if p.exists() else None
            except OSError as e:
                out[n] = e
    finally:
        v.umount()
    return out


def _check(base, v, logs, r):
    """The state after the cut, as the next boot sees it. Returns how many
    repairs fsck --repair made."""
    dev = _mount_image(base)
    try:
        got = _read_all(v)
        repaired = 0
        # what an admin does after a power cut: fsck, and repair what it finds
        f = wardfs("fsck", "--passfile", v.passfile, v.backing, check=False)
        assert f.returncode in (0, 1), f"round {r}: fsck: {f.stdout}{f.stderr}"
        if f.returncode == 1:
            f = wardfs("fsck", "--repair", "--hole-damaged", "--audit-db", v.db,
                       "--passfile", v.passfile, v.backing, check=False)
            assert f.returncode == 0, f"round {r}: fsck --repair: {f.stdout}{f.stderr}"
            repaired = f.stdout.count(": repaired: ") + f.stdout.count(" made holes ")
            got = _read_all(v)
        for n in NAMES:
            g = got[n]
            assert not isinstance(g, OSError), f"round {r}: {n} reads {g} after repair"
            acked = int(logs[n].read_text()) if n.startswith("sync") else 0
            g = g or b""
            assert len(g) >= acked, \
                f"round {r}: {n} lost fsync'ed bytes: {len(g)} < {acked}"
            want = _content(n)[:len(g)]
            # Past the fsync'ed bytes a block may read as zeros: what ext4
            # gives for writes it had not written back (its unwritten
            # extents), and what fsck --hole-damaged makes of torn blocks.
            for at in range(0, len(g), 4096):
                blk = g[at:at + 4096]
                assert blk == want[at:at + 4096] or (at >= acked and not any(blk)), \
                    f"round {r}: {n} holds wrong bytes at {at} (fsync'ed: {acked})"
        blocks = got["blocks"]
        assert isinstance(blocks, bytes) and len(blocks) == BLOCKS * BLOCK, \
            f"round {r}: blocks reads {blocks if isinstance(blocks, OSError) else len(blocks)}"
        lo, hi = _versions(logs["durable"]), _versions(logs["written"])
        found = []
        for j in range(BLOCKS):
            blk = blocks[j * BLOCK:(j + 1) * BLOCK]
            head = blk[:40].split(b"\n")[0].split()
            vj = int(head[4]) if head[:4] == [b"blocks", b"block", b"%d" % j, b"version"] else -1
            # the fsync'ed version or a newer one, whole; one in flight may have landed
            assert lo[j] <= vj <= hi[j] + 1 and blk == _block("blocks", j, vj), \
                f"round {r}: blocks block {j} is {blk[:40]!r} (fsync'ed {lo[j]}, written {hi[j]})"
            found.append(vj)
        # the next round goes on from what the cut left (a lost version is
        # not durable because a later fsync of other blocks returned)
        for n in ("written", "durable"):
            logs[n].write_bytes(b"".join(b"%20d" % v for v in found))
        doc, acked = got["doc"], int(logs["doc"].read_text())
        assert not isinstance(doc, OSError), f"round {r}: doc reads {doc}"
        if acked:
            assert doc, f"round {r}: the saved document is gone (version {acked} was saved)"
            version = int(doc.split(b"\n", 1)[0].split()[1])
            assert version >= acked, f"round {r}: doc is version {version} < {acked}"
            assert doc == _doc(version), f"round {r}: doc version {version} is not whole"
        f = wardfs("fsck", "--passfile", v.passfile, v.backing, check=False)
        assert f.returncode == 0, f"round {r}: fsck: {f.stdout}{f.stderr}"
        if os.environ.get("WFS_POWERCUT_VERBOSE"):
            print(f"round {r}:", (base / "cutdisk.err").read_text().strip().replace("\n", "; "),
                  {n: (len(got[n] or b""), logs[n].read_text().strip()) for n in got if n in logs})
        return repaired
    finally:
        _unmount_image(base, dev)


def test_power_cuts_lose_no_fsynced_byte(base, cutdisk_bin):
    """A few rounds in make test; test-long runs hundreds."""
    cuts, repaired = _powercut_rounds(base, cutdisk_bin,
                                      int(os.environ.get("WFS_POWERCUT_ROUNDS", "6")), 1)
    print(f"{cuts} power cuts, {repaired} repairs by fsck --repair")


@pytest.mark.long
def test_hundreds_of_power_cuts_lose_no_fsynced_byte(base, cutdisk_bin):
    cuts, repaired = _powercut_rounds(base, cutdisk_bin,
                                      int(os.environ.get("WFS_POWERCUT_ROUNDS", "200")), 2)
    print(f"{cuts} power cuts, {repaired} repairs by fsck --repair")
