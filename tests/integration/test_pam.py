"""Login unlock with libpam-mount (the recipe in docs/pam.md): a user whose
home was moved into a vault by `wardfs setup-home`, with the vault
passphrase equal to the login password, logs in with `su - USER` typed on
a pty by an unprivileged user (so PAM really authenticates: pam_unix checks
the password and pam_mount keeps it), pam_mount mounts the home with the
password on the helper's stdin, and unmounts it when the session ends.

The test adds one <volume> to /etc/security/pam_mount.conf.xml for its own
user and restores the file afterwards. It is skipped (with the reason) only
when pam_mount is not installed or not in the PAM stack."""
import os
import pathlib
import pty
import pwd
import select
import subprocess
import threading
import time

import pytest

from conftest import TEST_USER, WARDFS, is_mounted, run, wait_for
from test_install import helper  # noqa: F401  (fixture)

USER = "wardfs-pam"
PASSWORD = "Login pass 7!"
CONF = pathlib.Path("/etc/security/pam_mount.conf.xml")
MAGIC = b"\x89WARDFS\x00"


def pam_mount_missing():
    if not CONF.exists() or not any(pathlib.Path(d, "pam_mount.so").exists() for d in (
            "/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
            "/lib/security", "/usr/lib/security")):
        return "libpam-mount is not installed (scripts/setup.sh installs it)"
    common = pathlib.Path("/etc/pam.d/common-session")
    if not common.exists() or "pam_mount.so" not in common.read_text():
        return "pam_mount is not in /etc/pam.d/common-session (run pam-auth-update)"
    if not os.path.exists("/usr/bin/su"):
        return "no su"
    return None


pytestmark = pytest.mark.skipif(pam_mount_missing() is not None,
                                reason=str(pam_mount_missing()))


def daemon_running(backing):
    """Is a wardfs daemon serving backing still running?"""
    want = str(backing).encode()
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in argv and any(a.endswith(b"wardfs") for a in argv[:1]):
            return True
    return False


def on_pty(argv, answers, uid=None, timeout=60):
    """Runs argv on a pty (as uid), answering each (prompt, reply) of
    answers in turn. Returns (exit status, everything printed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            if uid is not None:
                u = pwd.getpwuid(uid)
                os.setgroups([])
                os.setgid(u.pw_gid)
                os.setuid(u.pw_uid)
            os.chdir("/")
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    out, at, end = b"", 0, time.time() + timeout
    todo = list(answers)
    try:
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            while todo and todo[0][0].encode() in out[at:]:
                at = out.index(todo[0][0].encode(), at) + len(todo[0][0])
                os.write(fd, todo.pop(0)[1].encode() + b"\n")
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return status, out.decode(errors="replace")


def su_on_pty(password, command, timeout=60, user=USER):
    """`su - user -c command` run by TEST_USER on a pty, typing password
    at the prompt. Returns (exit status, everything printed)."""
    return on_pty(["/usr/bin/su", "-", user, "-c", command], [("assword", password)],
                  uid=pwd.getpwnam(TEST_USER).pw_uid, timeout=timeout)


@pytest.fixture
def pam_home(base, test_user, helper):  # noqa: F811
    """USER with a password and a home moved into a vault whose passphrase
    is that password, and a pam_mount volume for it."""
    home = base / "home" / USER
    backing = base / "vault" / USER  # so test_pam_passwd's backing=.../%u finds it
    subprocess.run(["userdel", USER], capture_output=True)
    run("useradd", "-M", "-d", home, "-s", "/bin/sh", USER)
    saved = CONF.read_text()
    try:
        run("chpasswd", input=f"{USER}:{PASSWORD}\n")
        (home / "secret").mkdir(parents=True)
        (home / "secret/hello").write_text("hello from the vault\n")
        (home / "notes.txt").write_text("public notes\n")
        run("chown", "-R", f"{USER}:{USER}", home)
        (base / "policy").write_text("default public\nsensitive /secret/**\n")
        (base / "pass").write_text(PASSWORD + "\n")
        os.chmod((base / "pass"), 0o600)  # wardfs refuses a passfile others can read
        run(WARDFS, "setup-home", "--backing", backing, "--policy", base / "policy",
            "--passfile", base / "pass", "--kdf-memory", "8", "--kdf-ops", "1", USER)
        (base / "pass").unlink()  # from now on only the login password unlocks it
        assert (backing / "secret/hello").read_bytes()[:8] == MAGIC
        volume = (f'<volume user="{USER}" fstype="fuse.wardfs" path="{backing}" '
                  f'mountpoint="~" options="policy={base}/policy,audit-db={base}/audit.db,'
                  f'log={base}/wardfs.log,nosuid,nodev" />')
        text = saved.replace("<pam_mount>", "<pam_mount>\n" + volume, 1)
        assert volume in text
        CONF.write_text(text)
        yield {"home": home, "backing": backing, "db": base / "audit.db",
               "log": base / "wardfs.log"}
    finally:
        CONF.write_text(saved)
        subprocess.run(["pkill", "-KILL", "-u", USER], check=False)  # what outlived a test
        if is_mounted(home):
            subprocess.run([WARDFS, "umount", str(home)], capture_output=True)
            if is_mounted(home):
                subprocess.run(["umount", "-l", str(home)], check=False)
        subprocess.run(["userdel", USER], capture_output=True)
        subprocess.run(["rm", "-f", f"/run/pam_mount/{USER}"], check=False)


def test_login_password_mounts_home(pam_home):
    home = pam_home["home"]
    status, out = su_on_pty(PASSWORD, "cat ~/secret/hello ~/notes.txt; "
                            "echo written > ~/secret/new; id -un; "
                            "grep -c fuse.wardfs /proc/self/mounts")
    log = pam_home["log"].read_text() if pam_home["log"].exists() else ""
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out + log
    assert "hello from the vault" in out and "public notes" in out, out + log
    assert USER in out
    # logout unmounted it, and the daemon finished
    assert wait_for(lambda: not is_mounted(home), 30), out
    # the bare home setup-home left: only its note
    assert [p.name for p in home.iterdir()] == ["README.wardfs-not-mounted"]
    new = pam_home["backing"] / "secret/new"
    assert new.read_bytes()[:8] == MAGIC
    assert b"written" not in new.read_bytes()
    uid = pwd.getpwnam(USER).pw_uid
    # The daemon writes its last audit rows after the kernel let go of the
    # mount point, and pam_mount does not wait for it (under ASan that took
    # long enough for a query to find no row): wait until it has exited.
    assert wait_for(lambda: not daemon_running(pam_home["backing"]), 60), "daemon still up"
    rows = run("sqlite3", "-cmd", ".timeout 30000", pam_home["db"],
               f"SELECT count(*) FROM events WHERE path = '/secret/hello' AND uid = {uid}")
    assert int(rows.stdout) >= 1
    log = pam_home["log"].read_text() if pam_home["log"].exists() else ""
    assert "AddressSanitizer" not in log and "runtime error" not in log, log


def test_wrong_password_mounts_nothing(pam_home):
    status, out = su_on_pty("not the password", "echo logged-in")
    assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0), out
    assert "logged-in" not in out
    assert not is_mounted(pam_home["home"])


def test_su_and_a_lingering_agent_at_logout(pam_home):
    """docs/pam.md "Which mount for which login", the recommended setup: the
    home mounted by pam_mount alone, with <logout> set to signal what the
    user left behind. A login, a second session of the same user (`su`)
    that ends first, then the logout, while an agent started in the first
    session (as gpg-agent or ssh-agent are) still holds a file of the home
    open: the `su` leaves the home mounted, the logout ends the agent and
    unmounts the home."""
    home, flag = pam_home["home"], pam_home["home"].parent.parent / "logout-now"
    text = CONF.read_text()
    logout = '<logout wait="500" hup="yes" term="yes" kill="yes" />'
    CONF.write_text(text.replace('<logout wait="0" hup="no" term="no" kill="no" />', logout)
                    if "<logout " in text else text.replace("</pam_mount>",
                                                             logout + "\n</pam_mount>"))
    assert logout in CONF.read_text()
    first = {}

    def login():
        first["status"], first["out"] = su_on_pty(
            PASSWORD, "setsid sleep 600 < ~/notes.txt > /dev/null 2>&1 & "
            f"echo agent-started; while [ ! -e {flag} ]; do sleep 0.1; done", timeout=120)

    t = threading.Thread(target=login)
    t.start()
    try:
        assert wait_for(lambda: is_mounted(home) and agent_pids(home), 60), first
        agents = agent_pids(home)
        status, out = su_on_pty(PASSWORD, "cat ~/secret/hello")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
        assert "hello from the vault" in out
        time.sleep(1)
        assert is_mounted(home), "the end of a second session unmounted the home"
        assert (home / "secret" / "hello").exists()
    finally:
        flag.touch()
        t.join(150)
    assert os.WIFEXITED(first["status"]) and os.WEXITSTATUS(first["status"]) == 0, first
    assert wait_for(lambda: not is_mounted(home), 30), "the logout left the home mounted: " + first["out"]
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in agents), 10)


def agent_pids(home):
    """Processes (other than su and shells) with a file of home open."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "sleep":
                continue
            fds = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:
            continue
        if any(f.startswith(str(home) + "/") for f in fds):
            pids.append(int(proc.name))
    return pids
