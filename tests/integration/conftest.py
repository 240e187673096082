"""Integration test harness: real wardfs mounts on /dev/fuse in private temp
dirs, always unmounted (fixture finalizers), plus a real unprivileged user."""
import contextlib
import ctypes
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import traceback

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WARDFS = os.environ.get("WARDFS_BIN", str(ROOT / "build" / "wardfs"))
TEST_USER = "wardfs-test"
TEST_GROUP = "wardfs-extra"  # a supplementary group of TEST_USER
PASS = "correct horse battery staple"

DEFAULT_POLICY = """\
default public
sensitive /.ssh/**
public    /.ssh/*.pub
sensitive *.pem
sensitive /secret/**
deny      /.netrc
deny      /denied/**
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "long: soak and crash loops, run by `make test-long` only")


def run(*args, check=True, input=None, user=None, **kw):
    """Runs a command (as TEST_USER with its groups when user=True)."""
    cmd = [str(a) for a in args]
    if user:
        cmd = ["setpriv", f"--reuid={TEST_USER}", f"--regid={TEST_USER}",
               "--init-groups", "--"] + cmd
    return subprocess.run(cmd, check=check, input=input, capture_output=True,
                          text=True, **kw)


def wardfs(*args, **kw):
    return run(WARDFS, *args, **kw)


def is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


MARK = "trusted.wardfs.encrypted"


def is_marked(path):
    """Whether the daemon marked a backing file as encrypted."""
    try:
        return os.getxattr(path, MARK) == b"1"
    except OSError:
        return False


@contextlib.contextmanager
def loop_ext4(path, size, *mkfs_args):
    """A fresh ext4 of size (truncate's syntax) on a loop device, mounted
    at path; yields the device. Unmounted and detached however it ends."""
    img = path.parent / f"{path.name}.img"
    run("truncate", "-s", size, img)
    run("mkfs.ext4", "-q", "-F", *mkfs_args, img)
    dev = run("losetup", "--find", "--show", img).stdout.strip()
    try:
        path.mkdir()
        run("mount", dev, path)
        try:
            yield dev
        finally:
            if subprocess.run(["umount", str(path)]).returncode:
                subprocess.run(["umount", "-l", str(path)], check=False)
    finally:
        run("losetup", "-d", dev, check=False)
        img.unlink(missing_ok=True)


@contextlib.contextmanager
def throttled_writeback(dev, limit):
    """Holds the block device's dirty pages to limit bytes (the kernel's
    per-device strict limit), so that writes wait for writeback in the
    middle, as on a busy disk. The limit belongs to the device, not to its
    file system, and a loop device outlives its file: it is restored, or
    the next test on that loop device crawls."""
    st = os.stat(dev)
    bdi = f"/sys/class/bdi/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    with open(f"{bdi}/strict_limit") as f:
        strict = f.read().strip()
    with open(f"{bdi}/max_ratio") as f:
        ratio = f.read().strip()
    try:
        with open(f"{bdi}/strict_limit", "w") as f:
            f.write("1")
        with open(f"{bdi}/max_bytes", "w") as f:
            f.write(str(limit))
        yield
    finally:
        with open(f"{bdi}/max_ratio", "w") as f:
            f.write(ratio)
        with open(f"{bdi}/strict_limit", "w") as f:
            f.write(strict)


class Mount:
    def __init__(self, base):
        self.base = base
        # A directory closed to other users on the backing dir's path, as
        # init and mount require (a reachable backing dir is refused).
        self.backing = base / "vault" / "backing"
        self.mnt = base / "mnt"
        self.db = base / "audit.db"
        self.log = base / "wardfs.log"
        self.policy = base / "policy"
        self.passfile = base / "pass"
        self.extra = []

    def make_backing(self):
        """The backing dir, below a directory only root may enter."""
        self.backing.parent.mkdir(mode=0o700, exist_ok=True)
        self.backing.mkdir(exist_ok=True)

    def init(self):
        self.make_backing()
        self.passfile.write_text(PASS + "\n")
        self.passfile.chmod(0o600)
        wardfs("init", "--passfile", self.passfile, "--kdf-memory", "8",
               "--kdf-ops", "1", "--policy", self.policy, self.backing)

    def mount(self, *extra, check=True):
        self.mnt.mkdir(exist_ok=True)
        args = ["mount", "--passfile", self.passfile, "--policy", self.policy,
                "--audit-db", self.db, "--log", self.log, *self.extra, *extra,
                self.backing, self.mnt]
        r = wardfs(*args, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"mount failed: {r.stderr}\nlog: {self.logtext()}")
        return r

    def umount(self):
        if is_mounted(self.mnt):
            r = wardfs("umount", self.mnt, check=False)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mnt)], check=False)
        assert not is_mounted(self.mnt)

    def status(self):
        out = wardfs("status", self.mnt).stdout
        return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)

    def logtext(self):
        return self.log.read_text() if self.log.exists() else ""

    def sql(self, query):
        return run("sqlite3", "-cmd", ".timeout 30000", "-json", self.db, query).stdout


@pytest.fixture
def base():
    d = pathlib.Path(tempfile.mkdtemp(prefix="wardfs-it-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    # Anything still mounted below d is a bug, but never leave it mounted.
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1]
            if mp.startswith(str(d)):
                subprocess.run(["umount", "-l", mp], check=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def vault(base):
    m = Mount(base)
    m.policy.write_text(DEFAULT_POLICY)
    m.init()
    return m


@pytest.fixture
def mnt(vault):
    vault.mount()
    try:
        yield vault
    finally:
        vault.umount()
        log = vault.logtext()
        # A sanitizer's report in the daemon's log (its stderr). scripts/tsan.sh
        # sends ThreadSanitizer's elsewhere (log_path) to catch them all.
        assert not any(s in log for s in ("AddressSanitizer", "runtime error",
                                          "ThreadSanitizer")), log


@pytest.fixture(scope="session")
def test_user():
    """A real unprivileged user with one supplementary group."""
    if subprocess.run(["getent", "group", TEST_GROUP], capture_output=True).returncode:
        subprocess.run(["groupadd", TEST_GROUP], check=True)
    if subprocess.run(["id", TEST_USER], capture_output=True).returncode:
        subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-G", TEST_GROUP, TEST_USER],
                       check=True)
    uid = int(run("id", "-u", TEST_USER).stdout)
    gid = int(run("id", "-g", TEST_USER).stdout)
    extra = int(run("getent", "group", TEST_GROUP).stdout.split(":")[2])
    return {"uid": uid, "gid": gid, "extra_gid": extra}


def ended(pid):
    """The process has ended: gone, or a zombie its parent has not reaped
    yet (init here reaps a daemon's corpse only every second or two)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# Directories a private root covers: empty ones bound over them, so the
# documented default paths (/var/lib/wardfs, /var/log/wardfs.log,
# /home/.wardfs/USER, /root/USER.pass) start out missing; and /etc and /sbin
# overlaid, so /etc/wardfs, /etc/fstab, users and pam_mount.conf.xml, and the
# /sbin/mount.fuse.wardfs link can be written without touching the host's.
PRIVATE_EMPTY = ("/home", "/root", "/var/lib", "/var/log")
PRIVATE_OVERLAY = ("/etc", "/usr/sbin")
CLONE_NEWNS = 0x00020000


def in_private_root(base, fn, timeout=600):
    """Runs fn() in a child process with its own mount namespace, in which
    the directories above are temporary (under base/root): a machine on
    which wardfs was never set up, whose changes vanish with the test. The
    host's /var/lib, /etc, /home, ... are never written. Mounts made by fn
    exist in that namespace only; any wardfs mount fn leaves is unmounted
    there before the child exits. Raises fn's failure in the caller."""
    root = base / "root"
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(rd)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            subprocess.run(["mount", "--make-rprivate", "/"], check=True)
            # Copies of FUSE mounts that other tests have up right now: drop
            # them, or they would keep those file systems (and their
            # daemons) alive until this child exits, and count as ours.
            with open("/proc/self/mounts") as f:
                for mp in [ln.split()[1] for ln in f if ln.split()[2].startswith("fuse")]:
                    subprocess.run(["umount", "-l", mp], capture_output=True)
            for d in PRIVATE_EMPTY:
                empty = root / d.lstrip("/")
                empty.mkdir(parents=True)
                subprocess.run(["mount", "--bind", str(empty), d], check=True)
            for d in PRIVATE_OVERLAY:
                upper, work = root / "upper" / d.lstrip("/"), root / "work" / d.lstrip("/")
                upper.mkdir(parents=True)
                work.mkdir(parents=True)
                subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                                f"lowerdir={d},upperdir={upper},workdir={work}", d],
                               check=True)
            try:
                fn()
                status = 0
            finally:
                with open("/proc/self/mounts") as f:
                    left = [ln.split()[1] for ln in f if ln.split()[2] == "fuse.wardfs"]
                for mp in left:
                    if subprocess.run([WARDFS, "umount", mp], capture_output=True).returncode:
                        subprocess.run(["umount", "-l", mp], capture_output=True)
                if left:
                    raise AssertionError(f"left mounted: {left}")
        except BaseException:
            os.write(wr, traceback.format_exc().encode())
            status = 1
        finally:
            os._exit(status)
    os.close(wr)
    end = time.time() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() > end:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the private-root test timed out")
        time.sleep(0.1)
    with os.fdopen(rd, "rb") as f:
        err = f.read().decode(errors="replace")
    if status != 0:
        raise AssertionError(err or f"the private-root child failed ({status})")
