"""Round trips the mount saves (issue 21, docs/benchmarks.md "Requests per
file"), each checked for what it must not change: listings without
directory handles still show what is there, to every user, in order."""
import ctypes
import errno
import os
import subprocess
import sys

from conftest import run


def requests(m):
    """The daemon's request counters (wardfs status), by kind."""
    line = m.status().get("requests", "")
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}


def delta(m, before):
    now = requests(m)
    return {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}


def test_listings_cost_no_directory_handles(mnt):
    """The first OPENDIR answers ENOSYS and the kernel sends no OPENDIR or
    RELEASEDIR again: a listing that the kernel has cached costs nothing."""
    d = mnt.mnt / "d"
    d.mkdir()
    for i in range(20):
        (d / f"f{i}").write_text("x")
    os.listdir(mnt.mnt)  # the first OPENDIR of the mount, if any
    before = requests(mnt)
    assert sorted(os.listdir(d)) == sorted(f"f{i}" for i in range(20))
    first = delta(mnt, before)
    assert "opendir" not in first and "releasedir" not in first, first
    before = requests(mnt)
    for _ in range(3):
        assert len(os.listdir(d)) == 20
    # (opendir(3)'s fstat may ask for the attributes: the kernel marks a
    # directory's atime stale after a listing)
    assert set(delta(mnt, before)) <= {"getattr"}, delta(mnt, before)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # fsyncdir without a handle: the daemon opens it
    finally:
        os.close(fd)


def test_a_large_listing_over_many_requests_is_whole_and_follows_changes(mnt, test_user):
    """Thousands of long names need many READDIR requests, each of which
    opens the directory at the offset the last one ended at: every name
    once, as in the backing directory; changes made through the mount (by
    another user too) show at the next listing, the kernel's cached one
    dropped."""
    d = mnt.mnt / "big"
    d.mkdir()
    os.chmod(d, 0o777)
    names = {f"{'n' * 100}-{i:05d}" for i in range(3000)}
    for n in names:
        (d / n).touch()
    listed = os.listdir(d)
    assert len(listed) == len(set(listed)) == 3000
    assert set(listed) == names == set(os.listdir(mnt.backing / "big"))
    run("touch", d / "by-user", user=True)
    run("rm", d / f"{'n' * 100}-00007", user=True)
    names = (names | {"by-user"}) - {f"{'n' * 100}-00007"}
    assert set(os.listdir(d)) == names
    r = run("ls", "-1", d, user=True)
    assert set(r.stdout.split()) == names


def test_root_listing_never_shows_the_vault_dir(mnt):
    """Even when the root's listing spans several requests, each opening
    the directory anew."""
    for i in range(2000):
        (mnt.mnt / f"{'r' * 120}{i}").touch()
    listed = os.listdir(mnt.mnt)
    assert ".wardfs" not in listed and len(listed) == 2000


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def test_telldir_and_seekdir_through_the_mount(mnt):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]
    d = mnt.mnt / "seek"
    d.mkdir()
    for i in range(1500):
        (d / f"{'s' * 80}{i}").touch()
    dp = libc.opendir(os.fsencode(d))
    assert dp

    def rest():
        out = []
        while True:
            e = libc.readdir(dp)
            if not e:
                return out
            out.append(e.contents.d_name)

    try:
        first = [libc.readdir(dp).contents.d_name for _ in range(700)]
        pos = libc.telldir(dp)
        tail = rest()
        libc.seekdir(dp, pos)
        assert rest() == tail
        assert len(set(first + tail)) == 1502  # and . and ..
    finally:
        libc.closedir(dp)


def test_a_user_cannot_list_a_directory_closed_to_him(mnt, test_user):
    """No OPENDIR reaches the daemon: the kernel's own permission check
    still refuses the listing."""
    d = mnt.mnt / "closed"
    d.mkdir(mode=0o700)
    (d / "x").touch()
    os.chmod(mnt.mnt, 0o755)
    r = run("ls", d, user=True, check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    os.chmod(d, 0o711)  # search, no read
    r = run("ls", d, user=True, check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert run("stat", d / "x", user=True, check=False).returncode == 0


def test_symlink_targets_are_cached_and_follow_replacements(mnt, test_user):
    """The kernel keeps a symlink's target (FUSE_CAP_CACHE_SYMLINKS): one
    READLINK per symlink however often it is read or walked through; a
    symlink replaced through the mount (ln -sfn, which renames a new one
    over it; rm and ln -s; by another user too) shows its new target at
    once, to every user."""
    d = mnt.mnt / "links"
    d.mkdir()
    os.chmod(mnt.mnt, 0o755)
    os.chmod(d, 0o777)
    for t in ("a", "b", "c"):
        (d / t).write_text(t)
    os.symlink("a", d / "l")
    os.readlink(d / "l")
    before = requests(mnt)
    for _ in range(5):
        assert os.readlink(d / "l") == "a"
        assert (d / "l").read_text() == "a"
    assert "readlink" not in delta(mnt, before), delta(mnt, before)
    run("ln", "-sfn", "b", d / "l", user=True)
    assert os.readlink(d / "l") == "b" and (d / "l").read_text() == "b"
    run("sh", "-c", f"rm {d}/l && ln -s c {d}/l", user=True)
    assert os.readlink(d / "l") == "c" and (d / "l").read_text() == "c"
    assert run("cat", d / "l", user=True).stdout == "c"
    assert os.readlink(mnt.backing / "links" / "l") == "c"


def test_concurrent_listings_while_names_come_and_go(mnt):
    """Listings of one directory by several processes at once while another
    creates and removes names in it: each readdir request opens its own
    stream, so no listing loses a name that stayed or shows one twice."""
    d = mnt.mnt / "busy"
    d.mkdir()
    stay = {f"{'k' * 90}{i}" for i in range(800)}
    for n in stay:
        (d / n).touch()
    churn = subprocess.Popen([sys.executable, "-c",
        "import os, sys\n"
        "for k in range(3000):\n"
        "    p = os.path.join(sys.argv[1], 'c%d' % (k % 40))\n"
        "    if os.path.exists(p): os.unlink(p)\n"
        "    else: open(p, 'w').close()\n", str(d)])
    lister = ("import os, sys\n"
              "for _ in range(30):\n"
              "    n = os.listdir(sys.argv[1])\n"
              "    assert len(n) == len(set(n)), 'duplicate'\n"
              "    print(len([x for x in n if x.startswith('k')]))\n")
    listers = [subprocess.Popen([sys.executable, "-c", lister, str(d)],
                                stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in listers]
    assert churn.wait(timeout=300) == 0
    for p, (out, _) in zip(listers, outs):
        assert p.returncode == 0
        assert set(out.split()) == {"800"}, out
    assert {n for n in os.listdir(d) if n.startswith("k")} == stay


def test_selinux_labels_are_neither_stored_nor_asked_per_file(mnt):
    """security.selinux answers EOPNOTSUPP, so `ls -l` (libselinux) stops
    asking for the rest of the mount after one round trip instead of one
    per entry; a label in a backing file is neither shown nor listed, and
    none can be set or removed through the mount."""
    d = mnt.mnt / "d"
    d.mkdir()
    for i in range(50):
        (d / f"f{i}").write_text("x")
    b = mnt.backing / "d" / "f0"
    os.setxattr(b, "security.selinux", b"user_u:object_r:user_home_t:s0")
    os.setxattr(b, "user.kept", b"v")
    f = d / "f0"
    for call, args in ((os.getxattr, ("security.selinux",)),
                       (os.setxattr, ("security.selinux", b"x")),
                       (os.removexattr, ("security.selinux",))):
        try:
            call(f, *args)
            raise AssertionError(f"{call.__name__} of security.selinux succeeded")
        except OSError as e:
            assert e.errno == errno.EOPNOTSUPP, (call.__name__, e)
    assert os.listxattr(f) == ["user.kept"]
    assert os.getxattr(b, "security.selinux") == b"user_u:object_r:user_home_t:s0"
    # a remount drops the kernel's cached ACLs, so each entry costs its
    # one ACL query and nothing more
    mnt.umount()
    mnt.mount()
    before = requests(mnt)
    r = run("ls", "-l", d)
    assert r.stdout.count("\n") == 51, r.stdout
    got = delta(mnt, before).get("getxattr", 0)
    # one ACL query per entry and the directory's two, plus the one label
    # query that says EOPNOTSUPP; ENODATA made it one more per entry
    assert 50 <= got <= 55, delta(mnt, before)
