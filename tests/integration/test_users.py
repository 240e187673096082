"""Multi-user behaviour with a real unprivileged user: ownership of created
objects, group inheritance, and permission checks including supplementary
groups."""
import os
import stat
import sys

import pytest

from conftest import run


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
