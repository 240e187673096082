"""Multi-user behaviour with a real unprivileged user: ownership of created
objects, group inheritance, permission checks including supplementary
groups, and allow-exe= against what an unprivileged user can do to look like
an allowed program (user namespaces, bind mounts, LD_PRELOAD, ptrace)."""
import glob
import json
import os
import shutil
import stat
import sys

import pytest

from conftest import run, wardfs, wait_for


def test_objects_belong_to_the_caller(mnt, test_user):
    home = mnt.mnt / "home"
    home.mkdir()
    os.chown(home, test_user["uid"], test_user["gid"])
    run("sh", "-c", f"cd {home} && echo hi > file && mkdir dir && ln -s file sym && mkfifo fifo",
        user=True)
    for name in ("file", "dir", "sym", "fifo"):
        for root in (home, mnt.backing / "home"):
            st = os.lstat(root / name)
            assert (st.st_uid, st.st_gid) == (test_user["uid"], test_user["gid"]), name
    # A device node made by root through the mount.
    os.mknod(home / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    assert stat.S_ISCHR(os.stat(mnt.backing / "home" / "null").st_mode)


def test_setgid_directory_group(mnt, test_user):
    shared = mnt.mnt / "shared"
    shared.mkdir()
    os.chown(shared, 0, test_user["extra_gid"])
    os.chmod(shared, 0o2775)
    run("sh", "-c", f"echo x > {shared}/f && mkdir {shared}/d", user=True)
    for name in ("f", "d"):
        st = os.stat(mnt.backing / "shared" / name)
        assert st.st_uid == test_user["uid"]
        assert st.st_gid == test_user["extra_gid"]
    assert os.stat(shared / "d").st_mode & stat.S_ISGID


def test_permissions_are_the_callers(mnt, test_user):
    priv = mnt.mnt / "rootonly"
    priv.write_text("secret")
    os.chmod(priv, 0o600)
    r = run("cat", priv, user=True, check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    # Access through a supplementary group only.
    grp = mnt.mnt / "grpdir"
    grp.mkdir()
    os.chown(grp, 0, test_user["extra_gid"])
    os.chmod(grp, 0o770)
    run("sh", "-c", f"echo ok > {grp}/mine", user=True)
    assert (mnt.backing / "grpdir" / "mine").read_text() == "ok\n"
    assert os.stat(grp / "mine").st_uid == test_user["uid"]


def test_write_clears_setuid(mnt, test_user):
    p = mnt.mnt / "suid"
    p.write_text("#!/bin/sh\n")
    os.chown(p, test_user["uid"], test_user["gid"])
    os.chmod(p, 0o4755)
    os.chmod(mnt.mnt, 0o755)
    run("sh", "-c", f"echo more >> {p}", user=True)
    assert not os.stat(mnt.backing / "suid").st_mode & stat.S_ISUID


MAKE_NODES = """
import os, stat, sys
os.umask(int(sys.argv[1], 8))
for d in sys.argv[2:]:
    for name, m in (("f620", 0o620), ("f666", 0o666), ("f777", 0o777)):
        os.close(os.open(f"{d}/{name}", os.O_CREAT | os.O_WRONLY, m))
    os.mknod(f"{d}/mknod646", 0o646 | stat.S_IFREG)
    os.mkdir(f"{d}/d777", 0o777)
    os.mkdir(f"{d}/d750", 0o750)
    os.mkfifo(f"{d}/fifo666", 0o666)
"""


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_modes_are_the_callers_request_and_umask(vault, test_user, umask):
    """Files (public and sensitive), mknod'ed files, directories and fifos
    made through the mount get the mode the caller's request and umask give,
    as on the backing file system itself: the daemon (which inherits the
    mounting shell's umask, here 077) must not mask them a second time."""
    saved = os.umask(0o077)
    try:
        vault.mount()
    finally:
        os.umask(saved)
    try:
        ref = vault.base / "ref"
        dirs = {"pub": vault.mnt / "pub", "secret": vault.mnt / "secret",
                "ref_pub": ref / "pub", "ref_secret": ref / "secret"}
        for d in dirs.values():
            d.mkdir(parents=True)
            os.chown(d, test_user["uid"], test_user["gid"])
        run(sys.executable, "-c", MAKE_NODES, oct(umask), *dirs.values(), user=True)
        names = ("f620", "f666", "f777", "mknod646", "d777", "d750", "fifo666")
        for cls in ("pub", "secret"):
            want = {n: oct(stat.S_IMODE(os.lstat(dirs["ref_" + cls] / n).st_mode))
                    for n in names}
            for root in (dirs[cls], vault.backing / cls):
                got = {n: oct(stat.S_IMODE(os.lstat(root / n).st_mode)) for n in names}
                assert got == want, (root, oct(umask))
        assert want["f666"] == oct(0o666 & ~umask)  # the reference is what POSIX says
    finally:
        vault.umount()


# ---- allow-exe= against an unprivileged user ------------------------------

SECRET = "aws_secret_access_key = hunter2\n"
PYTHON = "/usr/bin/python3"  # a symbolic link to python3.X on Debian


@pytest.fixture
def exe_mnt(vault, test_user):
    """A mount whose /.aws/credentials (the test user's) only md5sum may
    open, whose /tool-creds only BASE/bin/tool (a root-owned copy of cat,
    renamed over by the update test), /link-creds only BASE/bin/link (a
    symbolic link to md5sum) and /py-creds only python3 (a symbolic link
    to python3.X) may open."""
    bindir = vault.base / "bin"
    bindir.mkdir()
    shutil.copy("/usr/bin/cat", bindir / "tool")
    os.symlink("/usr/bin/md5sum", bindir / "link")
    rules = [("/.aws/credentials", "/usr/bin/md5sum"), ("/tool-creds", bindir / "tool"),
             ("/link-creds", bindir / "link"), ("/py-creds", PYTHON)]
    # The files are made by root before the rules narrow who may open them.
    vault.policy.write_text("default public\n" +
                            "".join(f"sensitive {p}\n" for p, _ in rules))
    vault.mount()
    try:
        os.chmod(vault.mnt, 0o755)
        aws = vault.mnt / ".aws"
        aws.mkdir()
        for p, _ in rules:
            (vault.mnt / p[1:]).write_text(SECRET)
            os.chown(vault.mnt / p[1:], test_user["uid"], test_user["gid"])
        os.chown(aws, test_user["uid"], test_user["gid"])
        sha = vault.status()["policy-sha256"]
        vault.policy.write_text("default public\n" +
                                "".join(f"sensitive {p} allow-exe={x}\n" for p, x in rules))
        assert wait_for(lambda: vault.status()["policy-sha256"] != sha, 5)
        vault.creds = aws / "credentials"
        vault.bindir = bindir
        yield vault
    finally:
        vault.umount()
        log = vault.logtext()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log


def exe_rows(m, path):
    """The audit rows of opens of path, oldest first."""
    assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
    out = wardfs("audit", "query", "--db", m.db, "--format", "json", "--kind", "open",
                 "--path", path).stdout
    return [json.loads(line) for line in out.splitlines()]


def identity(path):
    st = os.stat(path)
    return f"exe-dev={os.major(st.st_dev)}:{os.minor(st.st_dev)} exe-ino={st.st_ino}"


def refused(r):
    return r.returncode != 0 and "Permission denied" in r.stderr and "hunter2" not in r.stdout


def test_allow_exe_bind_mount_in_user_namespace_is_refused(exe_mnt):
    """Issue 15: in a user namespace anyone may bind-mount cat over an
    allowed program; /proc/PID/exe then says /usr/bin/md5sum. The program is
    judged by its inode (cat's), and the audit row shows that identity."""
    r = run("unshare", "-rm", "sh", "-c",
            f"mount --bind /usr/bin/cat /usr/bin/md5sum && /usr/bin/md5sum {exe_mnt.creds}",
            user=True, check=False)
    assert refused(r), r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["decision"] == "deny" and row["error"] == "EACCES", row
    assert row["exe"] == "/usr/bin/md5sum", row  # what the caller's namespace says
    assert row["detail"] == identity("/usr/bin/cat") + "; refused: not an allowed program", row
    # the identity is in the detail, so queries by exe text keep working
    out = wardfs("audit", "query", "--db", exe_mnt.db, "--format", "json",
                 "--exe", "/usr/bin/md5sum").stdout
    assert any(json.loads(line)["id"] == row["id"] for line in out.splitlines())


def test_allow_exe_real_program_in_user_namespace_is_refused(exe_mnt):
    """The real md5sum, but in a user namespace, where its user could have
    bind-mounted anything over the libraries it loads or /etc/ld.so.preload."""
    r = run("unshare", "-r", "/usr/bin/md5sum", exe_mnt.creds, user=True, check=False)
    assert refused(r), r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["detail"].startswith(identity("/usr/bin/md5sum") +
                                    "; refused: runs in another user namespace"), row


def test_allow_exe_real_program_works(exe_mnt):
    r = run("/usr/bin/md5sum", exe_mnt.creds, user=True, check=False)
    assert r.returncode == 0, r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["decision"] == "allow" and row["detail"] == identity("/usr/bin/md5sum"), row
    # Other programs are still refused, and say who they are.
    r = run("/usr/bin/cat", exe_mnt.creds, user=True, check=False)
    assert refused(r), r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["detail"] == identity("/usr/bin/cat") + "; refused: not an allowed program"


def test_allow_exe_symlink_matches_its_target(exe_mnt):
    """allow-exe=BASE/bin/link, a symbolic link to md5sum: md5sum runs as
    /usr/bin/md5sum, and that is what the admin meant."""
    link = exe_mnt.mnt / "link-creds"
    assert run("/usr/bin/md5sum", link, user=True).returncode == 0
    assert refused(run("/usr/bin/cat", link, user=True, check=False))
    # the daemon's log names the file a symlinked program matches
    assert "resolves through a symbolic link to '/usr/bin/md5sum'" in exe_mnt.logtext()


def test_allow_exe_survives_a_package_update(exe_mnt):
    """dpkg renames the new binary over the path: the new inode is the
    allowed program from the next open on; the old one (still around under
    another name, as a running old version would be) no longer is."""
    creds = exe_mnt.mnt / "tool-creds"
    tool = exe_mnt.bindir / "tool"
    assert run(tool, creds, user=True).stdout == SECRET
    old = exe_mnt.bindir / "tool.old"
    os.link(tool, old)
    shutil.copy("/usr/bin/cat", exe_mnt.bindir / "tool.dpkg-new")
    os.rename(exe_mnt.bindir / "tool.dpkg-new", tool)
    assert run(tool, creds, user=True).stdout == SECRET
    assert refused(run(old, creds, user=True, check=False))
    row = exe_rows(exe_mnt, "/tool-creds")[-1]
    assert row["detail"] == identity(old) + "; refused: not an allowed program", row


def loader_lib():
    libs = glob.glob("/usr/lib/*/libm.so.6") + glob.glob("/lib*/libm.so.6")
    return libs[0] if libs else "/nonexistent/libx.so"


@pytest.mark.parametrize("var", ["LD_PRELOAD", "LD_AUDIT", "GCONV_PATH"])
def test_allow_exe_refuses_loader_variables(exe_mnt, var):
    r = run("env", f"{var}={loader_lib()}", "/usr/bin/md5sum", exe_mnt.creds, user=True,
            check=False)
    assert refused(r), r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["detail"] == (identity("/usr/bin/md5sum") +
                             f"; refused: {var} is set in its environment"), row
    # set but empty, the loader ignores it, and so do we
    r = run("env", f"{var}=", "/usr/bin/md5sum", exe_mnt.creds, user=True, check=False)
    assert r.returncode == 0, r


def test_allow_exe_refuses_a_library_path_its_user_controls(exe_mnt, test_user):
    """LD_LIBRARY_PATH lets whoever can write a directory it names swap any
    library of the program; a path only root can change cannot (PyInstaller
    programs such as AWS CLI v2 re-exec themselves with one)."""
    def attempt(value):
        return run("env", f"LD_LIBRARY_PATH={value}", "/usr/bin/md5sum", exe_mnt.creds,
                   user=True, check=False)

    mine = exe_mnt.base / "mylibs"
    mine.mkdir()
    os.chown(mine, test_user["uid"], test_user["gid"])
    root_only = os.path.dirname(loader_lib())
    for value, why in [
            (f"{root_only}:{mine}", f"LD_LIBRARY_PATH names '{mine}', which someone other "
                                    "than root can change"),
            (f"{root_only}:", "LD_LIBRARY_PATH has an empty entry (the working directory)"),
            ("lib", "LD_LIBRARY_PATH has a relative entry 'lib'"),
            ("$ORIGIN/lib", "LD_LIBRARY_PATH has a relative entry '$ORIGIN/lib'")]:
        r = attempt(value)
        assert refused(r), (value, r)
        row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
        assert row["detail"] == identity("/usr/bin/md5sum") + "; refused: " + why, row
    assert attempt(f"{root_only};/usr/lib").returncode == 0


def test_allow_exe_refuses_a_traced_program(exe_mnt):
    r = run("strace", "-f", "-o", "/dev/null", "/usr/bin/md5sum", exe_mnt.creds,
            user=True, check=False)
    assert refused(r), r
    row = exe_rows(exe_mnt, "/.aws/credentials")[-1]
    assert row["detail"].startswith(identity("/usr/bin/md5sum") + "; refused: traced by pid "), row


TRACE_ONE_THREAD = """
import subprocess, sys, threading, time
path = sys.argv[1]
tid, done = [], threading.Event()
def idle():
    tid.append(threading.get_native_id())
    done.wait()
threading.Thread(target=idle).start()
while not tid:
    time.sleep(0.01)
def attempt():
    try:
        open(path).read()
        return "opened"
    except PermissionError:
        return "refused"
first = attempt()  # two threads, none traced
# strace -p attaches to that one thread only: the caller is not traced
tracer = subprocess.Popen(["strace", "-o", "/dev/null", "-p", str(tid[0])])
while "TracerPid:\t0" in open(f"/proc/{tid[0]}/status").read():
    time.sleep(0.01)
second = attempt()
tracer.terminate()
tracer.wait()
done.set()
print(first, second, tid[0])
"""


def test_allow_exe_refuses_a_program_with_one_traced_thread(exe_mnt):
    """A tracer of any thread can rewrite the shared memory: the opener's
    own TracerPid is not enough."""
    r = run(PYTHON, "-c", TRACE_ONE_THREAD, exe_mnt.mnt / "py-creds", user=True)
    first, second, tid = r.stdout.split()
    assert (first, second) == ("opened", "refused"), r
    row = exe_rows(exe_mnt, "/py-creds")[-1]
    assert row["detail"].startswith(identity(PYTHON) + "; refused: traced by pid "), row
    assert row["detail"].endswith(f" (its thread {tid})"), row
