"""FUSE over io_uring (`wardfs mount --io-uring`, `-o io_uring`): with the
kernel's enable_uring on, requests really come through the ring (the
daemon counts where each came from, and holds io_uring file descriptors)
while public files stay passthrough; with it off, the mount warns once
and serves through /dev/fuse. enable_uring is the whole machine's: each
test puts back the value it found, however it ends."""
import os
import pathlib

import pytest

from conftest import is_mounted

ENABLE = pathlib.Path("/sys/module/fuse/parameters/enable_uring")

pytestmark = pytest.mark.skipif(not ENABLE.exists(),
                                reason="this kernel has no FUSE over io_uring")


def set_enable(value):
    ENABLE.write_text(value)


@pytest.fixture
def uring_param():
    """Yields a setter for enable_uring; the value found is restored."""
    was = ENABLE.read_text().strip()
    try:
        yield set_enable
    finally:
        set_enable(was)
        assert ENABLE.read_text().strip() == was


@pytest.fixture
def mounted(vault):
    """vault, unmounted at the end whatever the test mounted."""
    try:
        yield vault
    finally:
        vault.umount()
        assert not is_mounted(vault.mnt)
        log = vault.logtext()  # a sanitizer build's reports, as conftest's mnt
        assert not any(s in log for s in ("AddressSanitizer", "runtime error",
                                          "ThreadSanitizer")), log


def count(st, key):
    return int(st[key])


def kinds(st):
    """The per-kind request counts of a status ("requests: kind=N ...")."""
    return {k: int(v) for k, v in
            (kv.split("=") for kv in st["requests"].split())}


def io_uring_fds(pid):
    fds = pathlib.Path(f"/proc/{pid}/fd")
    return [fd for fd in fds.iterdir() if "io_uring" in os.readlink(fd)]


def work(root):
    """A few data and metadata operations on a public and a sensitive
    file; returns what the public and the sensitive file should hold."""
    pub, sec = b"public bytes\n" * 1000, b"secret bytes\n" * 1000
    (root / "d").mkdir()
    (root / "d" / "pub.txt").write_bytes(pub)
    (root / "secret").mkdir()
    (root / "secret" / "s.txt").write_bytes(sec)
    os.rename(root / "d" / "pub.txt", root / "d" / "moved.txt")
    os.chmod(root / "d" / "moved.txt", 0o640)
    (root / "d" / "gone").write_text("x")
    os.unlink(root / "d" / "gone")
    assert sorted(os.listdir(root / "d")) == ["moved.txt"]
    return pub, sec


def test_io_uring_serves_requests_and_keeps_passthrough(mounted, uring_param):
    uring_param("Y")
    r = mounted.mount("--io-uring")
    assert "io_uring" not in r.stderr, r.stderr  # no warning: it is available
    before = mounted.status()
    assert before["io-uring"] == "on", before
    assert before["passthrough"] == "on"
    assert io_uring_fds(before["pid"]), "the daemon holds no io_uring fd"

    pub, sec = work(mounted.mnt)
    mid = mounted.status()
    # every request but FORGET (which the kernel keeps on /dev/fuse) came
    # through the ring
    total = count(mid, "requests-total") - count(before, "requests-total")
    ring = count(mid, "requests-by-io-uring") - count(before, "requests-by-io-uring")
    k0, k1 = kinds(before), kinds(mid)
    forgets = sum(k1.get(k, 0) - k0.get(k, 0) for k in ("forget", "batch_forget"))
    assert total > 10 and ring == total - forgets, (before, mid)
    assert k1["create"] - k0.get("create", 0) == 3
    assert k1["mkdir"] - k0.get("mkdir", 0) == 2

    # data through the ring: the sensitive file is read by the daemon, the
    # public one by the kernel's passthrough (no READ reaches the daemon)
    for f in (mounted.mnt / "d" / "moved.txt", mounted.mnt / "secret" / "s.txt"):
        fd = os.open(f, os.O_RDONLY)  # what was written is read again
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    assert (mounted.mnt / "d" / "moved.txt").read_bytes() == pub
    after_pub = mounted.status()
    assert count(after_pub, "reads-served") == count(mid, "reads-served")
    assert (mounted.mnt / "secret" / "s.txt").read_bytes() == sec
    after = mounted.status()
    assert count(after, "reads-served") > count(after_pub, "reads-served")
    assert count(after, "requests-by-io-uring") > count(mid, "requests-by-io-uring")
    assert (mounted.backing / "d" / "moved.txt").read_bytes() == pub
    assert sec not in (mounted.backing / "secret" / "s.txt").read_bytes()


def test_io_uring_is_used_when_the_kernel_offers_it(mounted, uring_param):
    """By default the ring serves when the kernel's switch is on, and a
    mount where it is off says so without a warning."""
    uring_param("Y")
    r = mounted.mount()
    assert "io_uring" not in r.stderr, r.stderr
    pub, sec = work(mounted.mnt)
    st = mounted.status()
    assert st["io-uring"] == "on", st
    assert count(st, "requests-by-io-uring") > 10
    assert io_uring_fds(st["pid"])
    assert (mounted.mnt / "secret" / "s.txt").read_bytes() == sec
    mounted.umount()
    uring_param("N")
    r = mounted.mount()
    assert "io_uring" not in r.stderr, r.stderr  # not asked for: no warning
    st = mounted.status()
    assert st["io-uring"].startswith("off: the kernel's FUSE over io_uring is off"), st
    assert count(st, "requests-by-io-uring") == 0


def test_no_io_uring_is_never_used(mounted, uring_param):
    """--no-io-uring (fstab: no-io-uring): enable_uring on is not enough."""
    uring_param("Y")
    mounted.mount("--no-io-uring")
    work(mounted.mnt)
    st = mounted.status()
    assert st["io-uring"] == "off (--no-io-uring)"
    assert count(st, "requests-by-io-uring") == 0 and count(st, "requests-total") > 10
    assert not io_uring_fds(st["pid"])


def test_io_uring_off_in_the_kernel_warns_and_falls_back(mounted, uring_param):
    uring_param("N")
    r = mounted.mount("-o", "io_uring")  # libfuse's spelling works too
    warn = [ln for ln in r.stderr.splitlines() if "io_uring" in ln]
    assert warn == ["wardfs mount: warning: io_uring asked for, but the kernel's FUSE "
                    "over io_uring is off: /sys/module/fuse/parameters/enable_uring "
                    "is not Y; serving through /dev/fuse"], r.stderr
    pub, sec = work(mounted.mnt)
    assert (mounted.mnt / "d" / "moved.txt").read_bytes() == pub
    assert (mounted.mnt / "secret" / "s.txt").read_bytes() == sec
    st = mounted.status()
    assert st["io-uring"].startswith("off, asked for: the kernel's FUSE over io_uring "
                                     "is off"), st["io-uring"]
    assert count(st, "requests-by-io-uring") == 0 and count(st, "requests-total") > 10
    assert not io_uring_fds(st["pid"])
