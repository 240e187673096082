"""A mount a person can live on: the operations programs use, checked
through the mount and in the backing directory."""
import ctypes
import errno
import fcntl
import mmap
import os
import re
import stat
import subprocess
import time

import pytest

from conftest import WARDFS, run, wait_for

libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_write_read_and_backing_identical(mnt):
    data = os.urandom(3 * 1024 * 1024 + 17)
    (mnt.mnt / "src").mkdir()
    p = mnt.mnt / "src" / "blob"
    p.write_bytes(data)
    assert p.read_bytes() == data
    assert (mnt.backing / "src" / "blob").read_bytes() == data
    assert p.stat().st_size == len(data)


def test_public_io_bypasses_daemon(mnt):
    before = mnt.status()
    assert before["passthrough"] == "on"
    p = mnt.mnt / "big"
    with open(p, "wb") as f:
        for _ in range(16):
            f.write(b"x" * 65536)
    with open(p, "rb") as f:
        while f.read(65536):
            pass
    after = mnt.status()
    assert after["reads-served"] == before["reads-served"]
    assert after["writes-served"] == before["writes-served"]


def test_no_passthrough_forwards(vault):
    vault.mount("--no-passthrough")
    try:
        st = vault.status()
        assert st["passthrough"] == "off"
        p = vault.mnt / "f"
        p.write_bytes(b"hello" * 1000)
        assert p.read_bytes() == b"hello" * 1000
        assert int(vault.status()["writes-served"]) > int(st["writes-served"])
    finally:
        vault.umount()


@pytest.mark.parametrize("args", [(), ("--no-passthrough",)], ids=["passthrough", "forwarded"])
def test_public_file_changed_behind_the_mount_reads_new_at_next_open(vault, args):
    """The kernel's cache of a public file is not kept across opens (the
    daemon turns auto_inval_data off): a change made in the backing dir
    while the file is cached shows at the next open."""
    vault.mount(*args)
    try:
        p = vault.mnt / "f"
        p.write_bytes(b"a" * 8192)
        assert p.read_bytes() == b"a" * 8192  # now in the page cache
        (vault.backing / "f").write_bytes(b"b" * 8192)  # same size
        assert p.read_bytes() == b"b" * 8192
    finally:
        vault.umount()


def test_vault_dir_hidden(mnt):
    assert ".wardfs" not in os.listdir(mnt.mnt)
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.mnt / ".wardfs")
    with pytest.raises(OSError):
        os.mkdir(mnt.mnt / ".wardfs")


def test_editor_save_by_rename(mnt):
    p = mnt.mnt / "notes.txt"
    p.write_text("v1")
    tmp = mnt.mnt / ".notes.txt.swp"
    tmp.write_text("v2")
    os.fsync(os.open(tmp, os.O_RDONLY))
    os.rename(tmp, p)
    assert p.read_text() == "v2"
    assert (mnt.backing / "notes.txt").read_text() == "v2"
    assert not tmp.exists()


def test_rename_noreplace_and_exchange(mnt):
    a, b = mnt.mnt / "a", mnt.mnt / "b"
    a.write_text("A")
    b.write_text("B")
    with pytest.raises(OSError) as e:
        renameat2(a, b, RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    renameat2(a, b, RENAME_EXCHANGE)
    assert a.read_text() == "B" and b.read_text() == "A"
    assert (mnt.backing / "a").read_text() == "B"
    renameat2(a, mnt.mnt / "c", RENAME_NOREPLACE)
    assert (mnt.mnt / "c").read_text() == "B" and not a.exists()


def test_directory_rename_keeps_children(mnt):
    d = mnt.mnt / "d1" / "sub"
    d.mkdir(parents=True)
    (d / "f").write_text("x")
    os.rename(mnt.mnt / "d1", mnt.mnt / "d2")
    assert (mnt.mnt / "d2" / "sub" / "f").read_text() == "x"
    assert (mnt.backing / "d2" / "sub" / "f").exists()


def test_links(mnt):
    t = mnt.mnt / "target"
    t.write_text("data")
    os.link(t, mnt.mnt / "hard")
    os.symlink("target", mnt.mnt / "soft")
    assert (mnt.mnt / "hard").read_text() == "data"
    assert os.readlink(mnt.mnt / "soft") == "target"
    assert (mnt.mnt / "soft").read_text() == "data"
    assert os.stat(t).st_nlink == 2
    assert os.lstat(mnt.mnt / "soft").st_mode & stat.S_IFLNK
    assert os.readlink(mnt.backing / "soft") == "target"
    assert os.stat(mnt.backing / "hard").st_ino == os.stat(mnt.backing / "target").st_ino


def test_chmod_chown_utimes(mnt, test_user):
    p = mnt.mnt / "f"
    p.write_text("x")
    os.chmod(p, 0o640)
    os.chown(p, test_user["uid"], test_user["extra_gid"])
    os.utime(p, ns=(1_000_000_000, 2_000_000_123))
    for q in (p, mnt.backing / "f"):
        st = os.stat(q)
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert (st.st_uid, st.st_gid) == (test_user["uid"], test_user["extra_gid"])
        assert st.st_mtime_ns == 2_000_000_123


def test_xattrs(mnt):
    p = mnt.mnt / "f"
    p.write_text("x")
    os.setxattr(p, "user.color", b"blue")
    assert os.getxattr(p, "user.color") == b"blue"
    assert "user.color" in os.listxattr(p)
    assert os.getxattr(mnt.backing / "f", "user.color") == b"blue"
    os.removexattr(p, "user.color")
    assert "user.color" not in os.listxattr(p)


def test_flock_and_posix_locks(mnt):
    p = mnt.mnt / "lock"
    p.write_text("")
    fd1 = os.open(p, os.O_RDWR)
    fd2 = os.open(p, os.O_RDWR)
    fcntl.flock(fd1, fcntl.LOCK_EX)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(fd1, fcntl.LOCK_UN)
    fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd1)
    os.close(fd2)
    # POSIX record locks conflict between processes.
    fd = os.open(p, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    r = subprocess.run(["python3", "-c",
                        "import fcntl,os,sys\n"
                        f"fd=os.open({str(p)!r},os.O_RDWR)\n"
                        "try:\n fcntl.lockf(fd,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n"])
    assert r.returncode == 3
    os.close(fd)


def test_fallocate_sparse_append(mnt):
    p = mnt.mnt / "alloc"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.posix_fallocate(fd, 0, 1 << 20)
    assert os.fstat(fd).st_size == 1 << 20
    os.close(fd)
    s = mnt.mnt / "sparse"
    with open(s, "wb") as f:
        f.seek(100 << 20)
        f.write(b"end")
    assert s.stat().st_size == (100 << 20) + 3
    assert os.stat(mnt.backing / "sparse").st_blocks * 512 < 1 << 20
    with open(s, "rb") as f:
        f.seek(50 << 20)
        assert f.read(4) == b"\0" * 4
        fd = f.fileno()
        assert os.lseek(fd, 0, os.SEEK_DATA) >= 99 << 20
    a = mnt.mnt / "append"
    a.write_text("one\n")
    with open(a, "a") as f:
        f.write("two\n")
    fd = os.open(a, os.O_WRONLY | os.O_APPEND)
    os.pwrite(fd, b"three\n", 0) if False else os.write(fd, b"three\n")
    os.close(fd)
    assert a.read_text() == "one\ntwo\nthree\n"


def test_mmap_shared_writable(mnt):
    p = mnt.mnt / "mm"
    p.write_bytes(b"\0" * 8192)
    with open(p, "r+b") as f:
        m = mmap.mmap(f.fileno(), 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        m[0:5] = b"hello"
        m[4096:4101] = b"world"
        m.flush()
        m.close()
    data = (mnt.backing / "mm").read_bytes()
    assert data[0:5] == b"hello" and data[4096:4101] == b"world"


def test_o_direct(mnt):
    """Databases open with O_DIRECT: aligned I/O must work and reach disk."""
    p = mnt.mnt / "direct"
    p.write_bytes(b"\0" * 8192)
    fd = os.open(p, os.O_RDWR | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
        buf.write(b"d" * 4096)
        assert os.pwritev(fd, [buf], 4096) == 4096
        back = mmap.mmap(-1, 4096)
        assert os.preadv(fd, [back], 4096) == 4096
        assert back[:] == b"d" * 4096
    finally:
        os.close(fd)
    assert (mnt.backing / "direct").read_bytes() == b"\0" * 4096 + b"d" * 4096


def test_o_tmpfile_is_clear(mnt):
    try:
        fd = os.open(mnt.mnt, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP
    else:
        os.close(fd)


def test_statfs(mnt):
    a, b = os.statvfs(mnt.mnt), os.statvfs(mnt.backing)
    assert a.f_blocks == b.f_blocks and a.f_bsize == b.f_bsize


def test_truncate(mnt):
    p = mnt.mnt / "t"
    p.write_bytes(b"abcdef")
    os.truncate(p, 3)
    assert p.read_bytes() == b"abc"
    with open(p, "r+b") as f:
        f.truncate(10)
    assert p.read_bytes() == b"abc" + b"\0" * 7
    with open(p, "w") as f:  # O_TRUNC
        f.write("z")
    assert (mnt.backing / "t").read_bytes() == b"z"


def test_tar_and_rsync(mnt, base):
    src = base / "tree"
    (src / "a" / "b").mkdir(parents=True)
    for i in range(50):
        (src / "a" / f"f{i}").write_bytes(os.urandom(i * 100))
    os.symlink("f1", src / "a" / "link")
    os.chmod(src / "a" / "f3", 0o600)
    run("tar", "-C", base, "-cf", base / "t.tar", "tree")
    run("tar", "-C", mnt.mnt, "-xf", base / "t.tar")
    run("rsync", "-a", str(src) + "/", str(mnt.mnt / "rs") + "/")
    r = run("diff", "-r", "--no-dereference", src, mnt.mnt / "tree")
    assert r.returncode == 0
    run("diff", "-r", "--no-dereference", src, mnt.mnt / "rs")
    assert stat.S_IMODE(os.stat(mnt.mnt / "rs" / "a" / "f3").st_mode) == 0o600


def test_git_and_c_build(mnt):
    repo = mnt.mnt / "proj"
    repo.mkdir()
    (repo / "main.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    (repo / "Makefile").write_text("hello: main.c\n\tcc -O2 -o hello main.c\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")
    run("git", "-C", repo, "init", "-q", env=env)
    run("git", "-C", repo, "add", ".", env=env)
    run("git", "-C", repo, "commit", "-qm", "init", env=env)
    run("git", "clone", "-q", repo, mnt.mnt / "clone", env=env)
    run("make", "-C", mnt.mnt / "clone")
    assert run(mnt.mnt / "clone" / "hello").stdout == "hi\n"
    assert run("git", "-C", mnt.mnt / "clone", "status", "--porcelain").stdout.strip() == "?? hello"
    run("git", "-C", mnt.mnt / "clone", "fsck")


def test_concurrent_writers(mnt):
    procs = []
    for i in range(4):
        procs.append(subprocess.Popen(["python3", "-c",
            "import os\n"
            f"fd=os.open({str(mnt.mnt / 'shared')!r},os.O_WRONLY|os.O_CREAT,0o644)\n"
            f"for k in range(256): os.pwrite(fd, bytes([{i}])*4096, ({i}*256+k)*4096)\n"]))
    for p in procs:
        assert p.wait() == 0
    data = (mnt.mnt / "shared").read_bytes()
    for i in range(4):
        assert data[i * 256 * 4096:(i + 1) * 256 * 4096] == bytes([i]) * 256 * 4096


def test_many_files_beyond_fd_limit(mnt):
    """More files than the daemon may hold fds (20,000 here): no EMFILE."""
    d = mnt.mnt / "many"
    d.mkdir()
    n = 100_000
    base = str(d)
    for i in range(n):
        fd = os.open(f"{base}/f{i}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    names = os.listdir(d)
    assert len(names) == n
    # readdirplus + stat of every entry keeps all inodes known at once.
    total = 0
    with os.scandir(d) as it:
        for e in it:
            total += e.stat(follow_symlinks=False).st_size == 0
    assert total == n
    st = mnt.status()
    pid = int(st["pid"])
    assert len(os.listdir(f"/proc/{pid}/fd")) < 20_000
    assert len(os.listdir(mnt.backing / "many")) == n


def test_stat_after_names_swapped_behind_the_mount(mnt):
    """getattr stats a file by its parent and last known name when its fd is
    not cached; after the names were swapped in the backing directory that
    name leads to the other file, which must not be reported."""
    a, b = mnt.mnt / "a", mnt.mnt / "b"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 20)
    ino_a = os.stat(a).st_ino
    tmp = mnt.backing / "swap.tmp"
    os.rename(mnt.backing / "a", tmp)
    os.rename(mnt.backing / "b", mnt.backing / "a")
    os.rename(tmp, mnt.backing / "b")
    # The kernel still maps the name "a" to the first file; a write through
    # it makes the kernel ask the daemon for fresh attributes.
    with open(a, "ab") as f:
        f.write(b"z" * 5)
    st = os.stat(a)
    assert (st.st_ino, st.st_size) == (ino_a, 15)
    assert (mnt.backing / "b").read_bytes() == b"x" * 10 + b"z" * 5


def xattr_answer(fn, *args):
    """What an xattr call answers: its value, or its errno."""
    try:
        r = fn(*args, follow_symlinks=False)
        return sorted(r) if isinstance(r, list) else r
    except OSError as e:
        return errno.errorcode[e.errno]


@pytest.mark.parametrize("target", ["f", "missing"])
def test_xattrs_on_symlinks_answer_as_the_backing(mnt, target):
    """get/list/set/remove xattr on a symlink (l*xattr, getfattr -h, ls -l)
    answer what the backing file system answers for the same symlink,
    instead of EPERM for everything."""
    (mnt.mnt / "f").write_text("x")
    link, back, ref = mnt.mnt / "link", mnt.backing / "link", mnt.base / "ref-link"
    os.symlink(target, link)
    os.symlink(target, ref)
    names = ("security.capability", "user.x", "trusted.x")
    for p in (link, back):
        assert [xattr_answer(os.getxattr, p, n) for n in names] == \
            [xattr_answer(os.getxattr, ref, n) for n in names], p
        assert xattr_answer(os.listxattr, p) == xattr_answer(os.listxattr, ref) == []
    # SELinux labels are not stored through the mount (ops_xattr.c)
    assert xattr_answer(os.getxattr, link, "security.selinux") == "ENOTSUP"  # = EOPNOTSUPP
    # set through the mount: on the backing symlink itself, not its target
    for p in (link, ref):
        assert xattr_answer(os.setxattr, p, "trusted.t", b"v") is None
        assert xattr_answer(os.setxattr, p, "user.t", b"v") == "EPERM"
    assert os.getxattr(back, "trusted.t", follow_symlinks=False) == b"v"
    assert xattr_answer(os.getxattr, link, "trusted.t") == b"v"
    assert "trusted.t" in xattr_answer(os.listxattr, link)
    assert xattr_answer(os.listxattr, link) == xattr_answer(os.listxattr, ref)
    if target == "f":
        assert "trusted.t" not in os.listxattr(mnt.backing / "f")
    for p in (link, ref):
        assert xattr_answer(os.removexattr, p, "trusted.t") is None
        assert xattr_answer(os.removexattr, p, "trusted.t") == "ENODATA"
    assert xattr_answer(os.listxattr, back) == []
    r = run("getfattr", "-h", "-d", "-m", "-", link, check=False)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    r = run("ls", "-la", mnt.mnt, check=False)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr


def test_status_while_files_come_and_go(mnt):
    """The status attribute counts inodes and cached fds while other
    requests change both: under ThreadSanitizer (scripts/tsan.sh) a count
    read without its lock is a reported race."""
    procs = []
    for i in range(3):
        d = mnt.mnt / f"d{i}"
        d.mkdir()
        procs.append(subprocess.Popen(["python3", "-c",
            "import os\n"
            "for k in range(300):\n"
            f"    p = {str(d)!r} + '/f%d' % (k % 50)\n"
            "    open(p, 'w').close(); os.stat(p)\n"
            "    if k % 3 == 0: os.unlink(p)\n"]))
    while True:
        busy = any(p.poll() is None for p in procs)
        st = dict(line.split(": ", 1) for line in
                  os.getxattr(mnt.mnt, "trusted.wardfs.status").decode().splitlines())
        assert int(st["inodes"]) >= 0 and int(st["cached-fds"]) >= 0
        if not busy:
            break
    for p in procs:
        assert p.wait() == 0
    # each name's last turn (k = r + 250) decides whether it is there
    expected = {f"f{r}" for r in range(50) if (r + 250) % 3 != 0}
    for i in range(3):
        assert set(os.listdir(mnt.mnt / f"d{i}")) == expected


@pytest.mark.parametrize("where", ["pub", "secret"])
def test_chown_to_nobody_else_updates_ctime_as_ext4(mnt, where):
    """Issue 16: chown(f, -1, -1) left the ctime alone where ext4 updates it."""
    (mnt.mnt / where).mkdir()
    f = mnt.mnt / where / "f"
    f.write_bytes(b"x")
    before = os.stat(f).st_ctime_ns
    time.sleep(0.02)
    os.chown(f, -1, -1)
    after = os.stat(f).st_ctime_ns
    assert after > before, (before, after)
    assert os.stat(mnt.backing / where / "f").st_ctime_ns == after


def test_daemon_log_lines_say_when_and_which_mount(mnt):
    """Issue 16: log lines carry a timestamp and the mount (mounts may share
    one log file)."""
    mnt.policy.write_text(mnt.policy.read_text() + "sensitive /x\n")
    run(WARDFS, "reload", mnt.mnt)
    lines = [ln for ln in mnt.logtext().splitlines() if "policy reloaded" in ln]
    assert lines, mnt.logtext()
    pat = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z " + re.escape(str(mnt.mnt)) + " wardfs: "
    assert all(re.match(pat, ln) for ln in lines), lines


def test_paths_longer_than_path_max_work_as_on_ext4(mnt):
    """Issue 16: the daemon built each path in a PATH_MAX buffer, so a file
    reached by relative names below 4 KiB of directories could not be
    created (ENAMETOOLONG) where ext4 has no such limit. Now the only limits
    are the kernel's, the policy still decides by the whole path (a *.pem
    there is encrypted), and the audit row holds the whole path."""
    def walk(root):
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(25):
            sub = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        return fd

    fd = os.open(mnt.mnt, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(25):
        os.mkdir("d" * 200, dir_fd=fd)
        sub = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    try:
        deep = "/" + "/".join(["d" * 200] * 25)  # 5,025 bytes
        for name, data in (("f", b"plain"), ("k.pem", b"-----BEGIN KEY-----")):
            w = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
            os.write(w, data)
            os.close(w)
        os.chmod("f", 0o640, dir_fd=fd)
        os.link("f", "g", src_dir_fd=fd, dst_dir_fd=fd)
        os.rename("g", "h", src_dir_fd=fd, dst_dir_fd=fd)
        os.unlink("h", dir_fd=fd)
        r = os.open("k.pem", os.O_RDONLY, dir_fd=fd)
        assert os.read(r, 100) == b"-----BEGIN KEY-----"
        os.close(r)
    finally:
        os.close(fd)
    bfd = walk(mnt.backing)
    try:
        raw = os.open("k.pem", os.O_RDONLY, dir_fd=bfd)
        assert os.read(raw, 8) == b"\x89WARDFS\x00"  # encrypted by its name
        os.close(raw)
        raw = os.open("f", os.O_RDONLY, dir_fd=bfd)
        assert os.read(raw, 10) == b"plain"
        assert stat.S_IMODE(os.fstat(raw).st_mode) == 0o640
        os.close(raw)
    finally:
        os.close(bfd)
    mnt.umount()
    rows = mnt.sql("SELECT kind, path FROM events WHERE kind IN ('create', 'open') "
                   "AND path LIKE '%/k.pem'")
    assert f'"path":"{deep}/k.pem"' in rows.replace(" ", ""), rows[:200]
