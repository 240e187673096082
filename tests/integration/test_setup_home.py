"""`wardfs setup-home USER`: a real user's home with many files is moved
into a new vault; the run is SIGKILLed half way through the encryption
(seen on its progress bar, on a pty), run again to the end, and then every
original file is byte-identical through the mount and the sensitive ones
are ciphertext on disk."""
import hashlib
import os
import pathlib
import pty
import re
import select
import signal
import stat
import subprocess
import time

import pytest

from conftest import PASS, WARDFS, Mount, is_mounted, run, wardfs

USER = "wardfs-sethome"
POLICY = """\
default public
sensitive /.ssh/**
public    /.ssh/*.pub
sensitive /secret/**
sensitive *.pem
"""
MAGIC = b"\x89WARDFS\x00"


def tree_hashes(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            p = pathlib.Path(dirpath, name)
            rel = "/" + str(p.relative_to(root))
            if rel.startswith("/.wardfs/"):
                continue
            st = p.lstat()
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_uid, st.st_mode)
    return out


@pytest.fixture
def home_user(base):
    """A user whose home, in base, holds many files; deleted afterwards."""
    home = base / "home" / USER
    subprocess.run(["userdel", USER], capture_output=True)
    run("useradd", "-M", "-d", home, "-s", "/bin/sh", USER)
    try:
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh/id_ed25519").write_text("PRIVATE KEY\n")
        (home / ".ssh/id_ed25519.pub").write_text("ssh-ed25519 AAAA\n")
        (home / "src").mkdir()
        (home / "src/main.c").write_text("int main(void) { return 0; }\n")
        (home / "certs").mkdir()
        (home / "certs/server.pem").write_bytes(os.urandom(3000))
        (home / "empty").write_bytes(b"")
        os.symlink("src/main.c", home / "link")
        for d in range(10):
            sub = home / "secret" / f"d{d}"
            sub.mkdir(parents=True)
            for i in range(150):
                # sizes around the 4 KiB block size, some bigger
                (sub / f"f{i}").write_bytes(os.urandom(((d * 150 + i) * 37) % 20000))
        run("chown", "-R", f"{USER}:{USER}", home)
        os.chmod(home, 0o750)
        yield home
    finally:
        subprocess.run(["userdel", USER], capture_output=True)


def setup_args(base, home):
    return [WARDFS, "setup-home", "--backing", str(base / "vault" / "backing"), "--policy",
            str(base / "policy"), "--passfile", str(base / "pass"), "--kdf-memory", "8",
            "--kdf-ops", "1", USER]


def run_on_pty(argv, kill_at=None, timeout=120):
    """Runs argv on a pty; with kill_at (a fraction), SIGKILLs it once its
    progress bar passes that fraction. Returns (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""
    killed = False
    end = time.time() + timeout
    try:
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if kill_at is not None and not killed:
                    m = re.findall(rb"(\d+)/(\d+) files", out)
                    if m and int(m[-1][0]) >= kill_at * int(m[-1][1]):
                        os.kill(pid, signal.SIGKILL)
                        killed = True
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return status, out.decode(errors="replace")


def test_setup_home_killed_and_resumed(base, home_user):
    home = home_user
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod((base / "pass"), 0o600)  # wardfs refuses a passfile others can read
    backing = base / "vault" / "backing"
    before = tree_hashes(home)
    assert len(before) > 1500
    home_mode = home.stat().st_mode

    status, out = run_on_pty(setup_args(base, home), kill_at=0.3)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, out
    assert "Recovery key" in out
    marker = (backing / ".wardfs/setup-home").read_text()
    assert "state started" in marker
    # killed half way: some sensitive files are encrypted, some not yet
    secret = [p for p in (backing / "secret").rglob("*") if p.is_file()]
    enc = sum(1 for p in secret if p.read_bytes()[:8] == MAGIC)
    assert 0 < enc < len(secret), (enc, len(secret))
    assert list(home.iterdir()) == []

    status, out = run_on_pty(setup_args(base, home))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    assert "Resuming" in out
    assert "fuse.wardfs" in out and "<volume user=\"%s\"" % USER in out
    assert "state done" in (backing / ".wardfs/setup-home").read_text()
    assert not list(backing.rglob("*.wardfs-migrate"))

    # at rest: sensitive files encrypted, public ones untouched
    assert (backing / ".ssh/id_ed25519").read_bytes()[:8] == MAGIC
    assert (backing / "certs/server.pem").read_bytes()[:8] == MAGIC
    assert (backing / ".ssh/id_ed25519.pub").read_text() == "ssh-ed25519 AAAA\n"
    assert all(p.read_bytes()[:8] == MAGIC for p in (backing / "secret").rglob("*")
               if p.is_file() and p.stat().st_size > 0)
    assert backing.stat().st_mode == home_mode
    # the bare home: root's, read-only, with a note (issue 16), so a user
    # whose login mount failed cannot work unencrypted in it
    assert [p.name for p in home.iterdir()] == ["README.wardfs-not-mounted"]
    st = home.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o555)
    assert "This home is not mounted" in (home / "README.wardfs-not-mounted").read_text()
    r = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
                        "touch", str(home / "work")], capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr

    # a third run changes nothing and says so
    r = run(*setup_args(base, home))
    assert "already set up" in r.stdout

    m = Mount(base)
    m.mnt = home
    m.policy = base / "policy"
    m.passfile = base / "pass"
    m.mount()
    try:
        after = tree_hashes(home)
        assert after == before
        assert os.readlink(home / "link") == "src/main.c"
        assert (home / "src/main.c").stat().st_uid == int(run("id", "-u", USER).stdout)
    finally:
        m.umount()


def test_setup_home_refuses(base, home_user):
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod((base / "pass"), 0o600)  # wardfs refuses a passfile others can read
    args = setup_args(base, home_user)
    # a backing that is not empty and not ours
    (base / "vault" / "backing").mkdir(parents=True)
    (base / "vault").chmod(0o700)
    (base / "vault" / "backing" / "x").write_text("x")
    r = run(*args, check=False)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert (home_user / "src/main.c").exists()
    # a backing inside the home
    i = args.index("--backing")
    r = run(*args[:i + 1], str(home_user / "b"), *args[i + 2:], check=False)
    assert r.returncode == 1 and "must not contain" in r.stderr
    r = run(WARDFS, "setup-home", "no-such-user-wardfs", check=False)
    assert r.returncode == 1 and "no user" in r.stderr
    # root and system users (as ecryptfs-migrate-home)
    for who in ("root", "daemon"):
        r = run(WARDFS, "setup-home", who, check=False)
        assert r.returncode == 1 and "is root or a system user" in r.stderr, r.stderr
    # a user with running processes: listed, nothing moved
    p = subprocess.Popen(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
                          "sleep", "60"])
    try:
        time.sleep(0.3)
        r = run(*args[:i], *args[i + 2:], check=False)
        assert r.returncode == 1 and "has running processes" in r.stderr, r.stderr
        assert f"pid {p.pid} (sleep)" in r.stderr, r.stderr
        assert (home_user / "src/main.c").exists()
    finally:
        p.kill()
        p.wait()
    # escrow: the recovery key goes to a new 0600 file, not the terminal;
    # an existing file is refused and no vault is made
    esc = base / "escrow"
    esc.write_text("keep me\n")
    j = args.index("--backing")
    r = run(*args[:j + 1], str(base / "vault" / "b2"), "--recovery-key-out", esc,
            *args[j + 2:], check=False)
    assert r.returncode == 1 and "never overwrites" in r.stderr, r.stderr
    assert esc.read_text() == "keep me\n"
    assert not (base / "vault" / "b2" / ".wardfs" / "keyfile").exists()
    r = run(WARDFS, "setup-home", "--bogus", USER, check=False)
    assert r.returncode == 2 and "unknown option" in r.stderr
    assert "usage: wardfs setup-home" in run(WARDFS, "setup-home", "--help").stdout


def test_setup_home_refuses_a_backing_dir_others_can_reach(base, home_user):
    """A --backing whose parents let other users in (here 0755) would leave
    the home readable around the mount once the backing root is the user's."""
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod(base / "pass", 0o600)
    before = tree_hashes(home_user)
    args = setup_args(base, home_user)
    i = args.index("--backing")
    (base / "open").mkdir(mode=0o755)
    os.chmod(base / "open", 0o755)
    r = run(*args[:i + 1], str(base / "open" / "backing"), *args[i + 2:], check=False)
    assert r.returncode != 0 and "users other than root can reach" in r.stderr, r.stderr
    assert not (base / "open" / "backing").exists()
    assert tree_hashes(home_user) == before


def test_setup_home_escrows_the_recovery_key(base, home_user):
    """Issue 16: setup-home --recovery-key-out FILE for escrow: the key is in
    a new 0600 file (not on the terminal), and it unlocks the vault."""
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod(base / "pass", 0o600)
    esc = base / "escrow.key"
    args = setup_args(base, home_user)
    r = run(*args[:-1], "--recovery-key-out", esc, args[-1])
    assert f"Recovery key written to {esc} (mode 0600)" in r.stdout, r.stdout
    key = esc.read_text().strip()
    assert re.fullmatch(r"([0-9a-f]{6}-){7}[0-9a-f]{6}", key), key
    assert key not in r.stdout + r.stderr
    assert stat.S_IMODE(esc.stat().st_mode) == 0o600
    m = Mount(base)
    m.mnt = home_user
    m.policy = base / "policy"
    r = wardfs("mount", "--recovery-key-file", esc, "--policy", m.policy, "--audit-db", m.db,
               "--log", m.log, m.backing, m.mnt, check=False)
    assert r.returncode == 0, r.stderr
    try:
        assert (home_user / "src/main.c").read_text().startswith("int main")
    finally:
        m.umount()


def test_setup_home_gives_the_organisation_an_escrow_slot(base, home_user):
    """Issue 17: setup-home --escrow-public FILE adds a slot for the
    organisation's escrow key: the admin mounts the home with the escrow
    secret key alone, and a mistyped public key stops before anything moves."""
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod(base / "pass", 0o600)
    sec, pub = base / "org.secret", base / "org.public"
    wardfs("key", "escrow-keygen", "--secret-out", sec, "--public-out", pub)
    before = tree_hashes(home_user)
    bad = base / "typo.public"
    text = pub.read_text()
    bad.write_text(text[:40] + ("a" if text[40] != "a" else "b") + text[41:])
    args = setup_args(base, home_user)
    r = run(*args[:-1], "--escrow-public", bad, args[-1], check=False)
    assert r.returncode == 1 and "mistyped" in r.stderr, r.stderr
    assert tree_hashes(home_user) == before
    r = run(*args[:-1], "--escrow-public", pub, args[-1])
    m = Mount(base)
    m.mnt = home_user
    m.policy = base / "policy"
    listed = wardfs("key", "list", m.backing).stdout
    assert re.search(r"^2\s+escrow\s", listed, re.M), listed
    r = wardfs("mount", "--escrow-key", sec, "--policy", m.policy, "--audit-db", m.db,
               "--log", m.log, m.backing, m.mnt, check=False)
    assert r.returncode == 0, r.stderr
    try:
        assert (home_user / "src/main.c").read_text().startswith("int main")
    finally:
        m.umount()


def test_setup_home_then_encrypt_names(base, home_user):
    """Issue 18, as docs/admin.md says it: setup-home, then migrate
    --encrypt-names before the first mount; the home mounts with every
    file, and the backing directory holds no sensitive name."""
    (base / "policy").write_text(POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod(base / "pass", 0o600)
    before = tree_hashes(home_user)
    run(*setup_args(base, home_user))
    backing = base / "vault" / "backing"
    r = wardfs("migrate", "--encrypt-names", "--yes", "--passfile", base / "pass", "--policy",
               base / "policy", backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    names = {p.name for p in backing.rglob("*")}
    assert "id_ed25519" not in names and "server.pem" not in names and "f7" not in names
    assert "id_ed25519.pub" in names and "main.c" in names  # public: plain
    m = Mount(base)
    m.mnt = home_user
    m.policy = base / "policy"
    r = wardfs("mount", "--passfile", base / "pass", "--policy", m.policy, "--audit-db", m.db,
               "--log", m.log, backing, m.mnt, check=False)
    assert r.returncode == 0, r.stderr
    try:
        assert tree_hashes(home_user) == before
    finally:
        m.umount()
