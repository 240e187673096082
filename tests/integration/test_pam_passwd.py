"""Login password sync (docs/pam.md, "When the login password changes: pam_wardfs"):
pam_wardfs.so in the `password` stack re-wraps the vault passphrase when
the user changes the login password with passwd(1), typed on a pty as the
user, so that the next `su -` still mounts the home through pam_mount.

Uses test_pam's user and vault (its pam_home fixture). The test copies the
module built beside the binary under test into the system's PAM module
directory and appends one marked line to /etc/pam.d/common-password; both
are put back byte for byte afterwards. Where no syslog daemon listens, the
test binds /dev/log itself to read what the module logs."""
import os
import pathlib
import pwd
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import WARDFS, ended, is_mounted, wait_for
from test_pam import PASSWORD, USER, on_pty, pam_mount_missing, su_on_pty
from test_pam import pam_home  # noqa: F401  (fixture)
from test_install import helper  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(pam_mount_missing() is not None,
                                reason=str(pam_mount_missing()))

MODULE = pathlib.Path(WARDFS).resolve().parent / "pam" / "pam_wardfs.so"
COMMON = pathlib.Path("/etc/pam.d/common-password")
MARKER = "# wardfs integration test (test_pam_passwd.py); remove if left behind"
NEW = "Quiet-Harbour 58&"    # pam_unix's `obscure` finds it unlike PASSWORD
OTHER = "Brisk Canyon 42?"
LOG_ERR, LOG_WARNING = 3, 4


def security_dir():
    for d in ("/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
              "/lib/security", "/usr/lib/security"):
        if pathlib.Path(d, "pam_unix.so").exists():
            return pathlib.Path(d)
    pytest.fail("no PAM module directory with pam_unix.so")


@pytest.fixture
def password_stack(pam_home):  # noqa: F811
    """Installs pam_wardfs.so where PAM finds it; returns a function that
    appends its `password` line (with the given arguments) to
    common-password. Both are undone in every path."""
    assert MODULE.is_file(), f"{MODULE} not built"
    dest = security_dir() / "pam_wardfs.so"
    saved_module = dest.with_name(dest.name + ".wardfs-test-saved")
    saved_conf = COMMON.read_bytes()
    if dest.exists():
        os.rename(dest, saved_module)
    shutil.copy(MODULE, dest)

    def add_line(args):
        line = f"{MARKER}\npassword\toptional\tpam_wardfs.so {args}\n"
        COMMON.write_bytes(saved_conf + line.encode())

    try:
        yield add_line
    finally:
        # the line goes first: a line naming a missing module fails every change
        COMMON.write_bytes(saved_conf)
        dest.unlink()
        if saved_module.exists():
            os.rename(saved_module, dest)
    assert COMMON.read_bytes() == saved_conf


@pytest.fixture
def syslog():
    """A function returning (severity, text) of what pam_wardfs logged so
    far, or None where /dev/log is someone else's (then the vault's state
    is all the test checks)."""
    path = "/dev/log"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(path)
    except OSError:
        s.close()
        yield None
        return
    os.chmod(path, 0o666)
    s.setblocking(False)
    got = []

    def read():
        while True:
            try:
                m = s.recv(65536).decode(errors="replace")
            except BlockingIOError:
                break
            pri = re.match(r"<(\d+)>", m)
            if "pam_wardfs" in m and pri:
                got.append((int(pri.group(1)) & 7, m))
        return got

    try:
        yield read
    finally:
        s.close()
        os.unlink(path)


def user_passwd(old, new):
    """The user changes the login password with passwd(1)."""
    return on_pty(["/usr/bin/passwd"], [("Current password:", old), ("New password:", new),
                                        ("Retype new password:", new)],
                  uid=pwd.getpwnam(USER).pw_uid)


def opens(backing, passphrase):
    """Does the vault unlock with passphrase? (fsck only reads.)"""
    r = subprocess.run([WARDFS, "fsck", str(backing)], input=passphrase + "\n",
                       capture_output=True, text=True)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    return r.returncode == 0


def ok(status):
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_passwd_rewraps_the_vault_and_the_next_login_mounts(pam_home, password_stack,
                                                           syslog):
    backing, home = pam_home["backing"], pam_home["home"]
    password_stack(f"backing={backing.parent}/%u wardfs={WARDFS}")
    status, out = user_passwd(PASSWORD, NEW)
    assert ok(status) and "updated successfully" in out, out
    assert opens(backing, NEW) and not opens(backing, PASSWORD)
    if syslog is not None:
        assert any("re-wrapped" in m and str(backing) in m for _, m in syslog()), syslog()
    # the next login, with the new password, mounts the home
    status, out = su_on_pty(NEW, "cat ~/secret/hello")
    assert ok(status) and "hello from the vault" in out, out
    assert wait_for(lambda: not is_mounted(home), 30), out


def test_wrong_old_password_changes_nothing(pam_home, password_stack, syslog):
    backing = pam_home["backing"]
    password_stack(f"backing={backing.parent}/%u wardfs={WARDFS}")
    status, out = user_passwd("not the password", NEW)
    assert not ok(status), out
    assert opens(backing, PASSWORD) and not opens(backing, NEW)
    if syslog is not None:
        assert not any("re-wrapped" in m for _, m in syslog()), syslog()


def test_vault_out_of_step_is_logged_and_the_change_goes_on(pam_home, password_stack,
                                                            syslog):
    """The login password was not the vault passphrase any more: passwd
    still changes it (pam_unix already did), the vault is left alone and
    the failure is logged at LOG_ERR with wardfs' own error."""
    backing = pam_home["backing"]
    subprocess.run(["chpasswd"], input=f"{USER}:{OTHER}\n", text=True, check=True)
    password_stack(f"backing={backing.parent}/%u wardfs={WARDFS}")
    status, out = user_passwd(OTHER, NEW)
    assert ok(status) and "updated successfully" in out, out
    assert opens(backing, PASSWORD) and not opens(backing, NEW)
    if syslog is not None:
        errs = [m for sev, m in syslog() if sev == LOG_ERR]
        assert any("failed" in m and "wrong" in m for m in errs), syslog()
        assert OTHER not in str(syslog()) and NEW not in str(syslog())


def test_root_sets_the_password_without_the_old_one(pam_home, password_stack, syslog):
    backing = pam_home["backing"]
    password_stack(f"backing={backing.parent}/%u wardfs={WARDFS}")
    status, out = on_pty(["/usr/bin/passwd", USER], [("New password:", NEW),
                                                     ("Retype new password:", NEW)])
    assert ok(status) and "updated successfully" in out, out
    assert opens(backing, PASSWORD) and not opens(backing, NEW)
    if syslog is not None:
        warns = [m for sev, m in syslog() if sev == LOG_WARNING]
        assert any("without the old one" in m and "--escrow-key" in m for m in warns), syslog()


def test_user_without_a_vault(pam_home, password_stack, syslog):
    backing = pam_home["backing"]
    password_stack(f"backing={backing.parent.parent}/no-vaults/%u wardfs={WARDFS}")
    status, out = user_passwd(PASSWORD, NEW)
    assert ok(status) and "updated successfully" in out, out
    assert opens(backing, PASSWORD)
    if syslog is not None:
        assert any("no vault in" in m for _, m in syslog()), syslog()


def fake_wardfs(base, body):
    """A stand-in for wardfs that the module runs instead."""
    script = base / "fake-wardfs"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_passwords_go_to_stdin_only_as_root_in_a_clean_environment(base, pam_home,
                                                                   password_stack):
    """What the module hands wardfs: the two passwords as lines on stdin,
    nothing of them in argv or the environment (nor passwd's environment),
    run with every id root although passwd(1) is only set-uid."""
    backing, out = pam_home["backing"], base / "seen"
    fake = fake_wardfs(base, f'{{ id -ru; id -rg; echo "$@"; env; echo --; cat; }} > {out}\n')
    password_stack(f"backing={backing.parent}/%u wardfs={fake}")
    status, text = user_passwd(PASSWORD, NEW)
    assert ok(status), text
    ruid, rgid, argv, rest = out.read_text().split("\n", 3)
    env, stdin = rest.split("--\n", 1)
    assert (ruid, rgid) == ("0", "0")
    assert argv == f"passwd {backing}"
    assert stdin == f"{PASSWORD}\n{NEW}\n"
    names = {ln.split("=", 1)[0] for ln in env.splitlines()}
    assert names <= {"PATH", "LC_ALL", "PWD"}, names  # sh itself sets PWD
    assert PASSWORD not in env and NEW not in env


def test_a_hung_wardfs_is_killed_after_the_timeout(base, pam_home, password_stack, syslog):
    backing = pam_home["backing"]
    fake = fake_wardfs(base, f"echo $$ > {base}/pid; exec sleep 60\n")
    password_stack(f"backing={backing.parent}/%u wardfs={fake} timeout=1")
    start = time.time()
    status, out = user_passwd(PASSWORD, NEW)
    assert ok(status) and "updated successfully" in out, out
    assert time.time() - start < 20
    assert wait_for(lambda: ended(int((base / "pid").read_text())), 5), "not killed"
    assert opens(backing, PASSWORD)
    if syslog is not None:
        assert any(sev == LOG_ERR and "no answer within 1 s" in m for sev, m in syslog()), \
            syslog()
