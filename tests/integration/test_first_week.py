"""An admin's first week (issue 16): the documented commands, run as
written, on a machine where wardfs was never set up. Each test runs in a
private root (conftest.in_private_root): /var/lib, /var/log, /home and
/root start empty, /etc and /sbin are copy-on-write, so /var/lib/wardfs,
/home/.wardfs and /etc/wardfs do not exist when it starts, and nothing of
it reaches the host."""
import os
import pathlib
import re
import stat

import pytest

from conftest import PASS, ROOT, WARDFS, in_private_root, is_mounted, run, wait_for

STATE = pathlib.Path("/var/lib/wardfs")


def sh(line, **kw):
    """One documented shell line, as an admin types it (wardfs on PATH)."""
    bindir = pathlib.Path("/root/bin")  # in the private root: wardfs is the binary under test
    if not bindir.exists():
        bindir.mkdir()
        os.symlink(WARDFS, bindir / "wardfs")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("WARDFS_AUDIT_DB", None)
    r = run("sh", "-c", line, check=False, env=env, cwd=kw.pop("cwd", ROOT), **kw)
    assert r.returncode == 0, f"$ {line}\n{r.stdout}{r.stderr}"
    return r


def code_block(doc, first):
    """The lines of the first ``` block of doc whose first line starts with first."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", (ROOT / doc).read_text(), re.S):
        lines = block.splitlines()
        if lines and lines[0].startswith(first):
            return lines
    raise AssertionError(f"no block starting with {first!r} in {doc}")


def mode(path):
    st = os.lstat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid


def check_state_dir():
    """The audit db's directory was created 0700, the db and key 0600."""
    assert mode(STATE) == (0o700, 0)
    assert mode(STATE / "audit.db") == (0o600, 0)
    assert mode(STATE / "audit.db.key") == (0o600, 0)


def daemon_gone(backing):
    want = str(backing).encode()
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in argv and argv[0].endswith(b"wardfs"):
            return False
    return True


def audit_rows(path):
    r = run("sqlite3", "-cmd", ".timeout 30000", STATE / "audit.db",
            f"SELECT count(*) FROM events WHERE path = '{path}'")
    return int(r.stdout)


def link_helper():
    """/sbin/mount.fuse.wardfs, as docs/admin.md says (in the private /sbin)."""
    os.symlink(WARDFS, "/sbin/mount.fuse.wardfs")


def test_readme_guide(base):
    """README's five-minute guide, line by line, as root with the
    passphrase on stdin: init creates the missing backing directory, mount
    without --audit-db creates /var/lib/wardfs."""
    guide = [ln.split("  #")[0].strip() for ln in code_block("README.md", "wardfs init")]
    guide = [ln for ln in guide if ln and "setup-home" not in ln]  # tested below

    def body():
        assert not STATE.exists() and not pathlib.Path("/home/.wardfs").exists()
        run("useradd", "-M", "-d", "/home/alice", "alice")
        try:
            for line in guide:
                r = sh(line, input=PASS + "\n")
                if line.startswith("wardfs init"):
                    assert "Recovery key" in r.stdout
                    assert mode("/home/.wardfs") == (0o700, 0)
                    assert mode("/home/.wardfs/alice") == (0o700, 0)
                if line.startswith("wardfs mount"):
                    assert is_mounted("/home/alice")
                    check_state_dir()
                if line.startswith("chown alice"):
                    os.mkdir("/home/alice/.ssh")
                    pathlib.Path("/home/alice/.ssh/id_ed25519").write_text("key\n")
                if line.startswith("wardfs audit query"):
                    assert '"path":"/.ssh/id_ed25519"' in r.stdout.replace(" ", ""), r.stdout
            assert not is_mounted("/home/alice")
            assert wait_for(lambda: daemon_gone("/home/.wardfs/alice"), 30)
            assert b"key" not in pathlib.Path("/home/.wardfs/alice/.ssh/id_ed25519").read_bytes()
        finally:
            run("userdel", "alice", check=False)

    host = STATE.exists()
    in_private_root(base, body)
    assert STATE.exists() == host


def test_admin_md_fstab_line(base):
    """The /etc/fstab line of docs/admin.md, then `mount /home/alice`."""
    line = [ln for ln in code_block("docs/admin.md", "/home/.wardfs/alice")
            if "fuse.wardfs" in ln][0]

    def body():
        assert not STATE.exists()
        link_helper()
        pathlib.Path("/root/alice.pass").write_text(PASS + "\n")
        os.chmod("/root/alice.pass", 0o600)
        sh("install -D -m 644 etc/policy.example /etc/wardfs/policy")
        os.makedirs("/home/.wardfs/alice", mode=0o700)
        os.makedirs("/home/alice")
        sh("wardfs init --passfile /root/alice.pass --kdf-memory 8 --kdf-ops 1 "
           "/home/.wardfs/alice")
        with open("/etc/fstab", "a") as f:
            f.write(line + "\n")
        sh("mount /home/alice")
        assert is_mounted("/home/alice")
        check_state_dir()
        pathlib.Path("/home/alice/notes").write_text("x")
        sh("umount /home/alice")
        assert wait_for(lambda: daemon_gone("/home/.wardfs/alice"), 30)
        assert audit_rows("/notes") >= 1

    in_private_root(base, body)


def test_admin_md_systemd_unit(base):
    """docs/admin.md's wardfs@.service recipe: its conf file written as
    shown, the unit's ExecStart and ExecStop run as systemd would."""
    from test_install import unit_commands
    block = code_block("docs/admin.md", "systemd-escape")
    heredoc = "\n".join(block[block.index(next(ln for ln in block if ln.startswith("cat >"))):
                              block.index("EOF") + 1])

    def body():
        assert not STATE.exists()
        os.makedirs("/etc/wardfs/mounts")  # as make install does
        sh("install -D -m 644 etc/policy.example /etc/wardfs/policy")
        pathlib.Path("/root/alice.pass").write_text(PASS + "\n")
        os.chmod("/root/alice.pass", 0o600)
        os.makedirs("/home/alice")
        os.makedirs("/home/.wardfs/alice", mode=0o700)
        sh("wardfs init --passfile /root/alice.pass --kdf-memory 8 --kdf-ops 1 "
           "/home/.wardfs/alice")
        sh(heredoc)
        instance = sh("systemd-escape --path /home/alice").stdout.strip()
        start, stop = unit_commands(instance, "/etc/wardfs/mounts")
        r = run(*start, check=False)
        assert r.returncode == 0, r.stderr
        assert is_mounted("/home/alice")
        check_state_dir()
        pathlib.Path("/home/alice/notes").write_text("x")
        r = run(*stop, check=False)
        assert r.returncode == 0, r.stderr
        assert not is_mounted("/home/alice")
        assert audit_rows("/notes") >= 1

    in_private_root(base, body)


def setup_alice():
    """alice, with a home holding a key and a note, moved into a vault by
    `wardfs setup-home alice` (passphrase on stdin); returns its output."""
    run("useradd", "-m", "-d", "/home/alice", "-s", "/bin/sh", "alice")
    os.makedirs("/home/alice/.ssh")
    pathlib.Path("/home/alice/.ssh/id_ed25519").write_text("PRIVATE\n")
    pathlib.Path("/home/alice/notes").write_text("notes\n")
    run("chown", "-R", "alice:alice", "/home/alice")
    sh("install -D -m 644 etc/policy.example /etc/wardfs/policy")
    return sh("wardfs setup-home alice", input=PASS + "\n").stdout


def test_setup_home_fstab_line(base):
    """The fstab line `wardfs setup-home alice` prints names alice's
    passfile, and mounts on a machine without /var/lib/wardfs."""

    def body():
        assert not STATE.exists()
        link_helper()
        try:
            out = setup_alice()
            assert "USER" not in out, out
            lines = [ln.strip() for ln in out.splitlines() if " fuse.wardfs " in ln]
            assert len(lines) == 1, out
            fields = lines[0].split()
            assert fields[:3] == ["/home/.wardfs/alice", "/home/alice", "fuse.wardfs"]
            opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in fields[3].split(","))
            assert opts["passfile"] == "/root/wardfs-alice.pass", lines[0]
            pathlib.Path(opts["passfile"]).write_text(PASS + "\n")
            os.chmod(opts["passfile"], 0o600)
            with open("/etc/fstab", "a") as f:
                f.write(lines[0] + "\n")
            sh("mount /home/alice")
            assert pathlib.Path("/home/alice/notes").read_text() == "notes\n"
            assert pathlib.Path("/home/alice/.ssh/id_ed25519").read_text() == "PRIVATE\n"
            check_state_dir()
            sh("umount /home/alice")
            assert wait_for(lambda: daemon_gone("/home/.wardfs/alice"), 30)
            assert audit_rows("/notes") >= 1
            assert pathlib.Path("/var/log/wardfs.log").exists()
        finally:
            run("userdel", "alice", check=False)

    in_private_root(base, body)


def pam_missing():
    from test_pam import pam_mount_missing
    return pam_mount_missing()


@pytest.mark.skipif(pam_missing() is not None, reason=str(pam_missing()))
def test_setup_home_pam_volume(base, test_user):
    """The pam_mount <volume> `wardfs setup-home alice` prints: alice logs
    in with her password (the vault passphrase) and her home is mounted,
    auditing into /var/lib/wardfs, which did not exist."""
    from test_pam import su_on_pty

    conf = pathlib.Path("/etc/security/pam_mount.conf.xml")

    def body():
        assert not STATE.exists()
        link_helper()
        try:
            out = setup_alice()
            volume = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("<volume")]
            assert len(volume) == 1, out
            assert 'user="alice"' in volume[0] and "audit-db" not in volume[0]
            conf.write_text(conf.read_text().replace("<pam_mount>",
                                                     "<pam_mount>\n" + volume[0], 1))
            run("chpasswd", input=f"alice:{PASS}\n")
            status, tty = su_on_pty(PASS, "cat ~/notes; grep -c fuse.wardfs /proc/self/mounts",
                                    user="alice")
            log = pathlib.Path("/var/log/wardfs.log")
            log = log.read_text() if log.exists() else ""
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, tty + log
            assert "notes" in tty, tty + log
            assert wait_for(lambda: not is_mounted("/home/alice"), 30), tty
            assert wait_for(lambda: daemon_gone("/home/.wardfs/alice"), 60)
            check_state_dir()
            assert audit_rows("/notes") >= 1
        finally:
            run("userdel", "alice", check=False)
            run("rm", "-f", "/run/pam_mount/alice", check=False)

    in_private_root(base, body)
