"""POSIX ACLs through the mount, as a real unprivileged user: restricting
and granting access ACLs are enforced on public and sensitive files alike
(the kernel checks them once the daemon negotiates FUSE_POSIX_ACL), chmod
and setfacl take effect at once, default ACLs are inherited by what is
created through the mount with the caller's umask applied exactly as the
backing file system applies it natively, and `cp -a` and
`wardfs setup-home` keep ACLs."""
import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import PASS, TEST_GROUP, TEST_USER, WARDFS, Mount, run
from test_users import MAKE_NODES

DENIED = "Permission denied"


def acl(path):
    """getfacl's entries for path, without the header naming the file."""
    out = run("getfacl", "--omit-header", "--absolute-names", "--numeric", path).stdout
    return sorted(line for line in out.splitlines() if line and not line.startswith("#"))


def acl_text(path):
    return "\n".join(acl(path))


def user_reads(path):
    return run("cat", path, user=True, check=False)


def open_mount(m):
    # The mount root shows the backing root (0700): let the user in.
    os.chmod(m.mnt, 0o755)


def test_restricting_acl_refuses_public_and_sensitive(mnt, test_user):
    open_mount(mnt)
    files = [mnt.mnt / "pub.txt", mnt.mnt / "secret" / "f"]
    (mnt.mnt / "secret").mkdir(mode=0o755)
    for p in files:
        p.write_text("hello\n")
        os.chmod(p, 0o644)
        # read once first: the kernel has the attributes cached when the
        # ACL is set, and must not go on deciding by them
        assert user_reads(p).stdout == "hello\n"
        run("setfacl", "-m", f"u:{TEST_USER}:---", p)
        assert f"user:{test_user['uid']}:---" in acl_text(p)
        r = user_reads(p)
        assert r.returncode != 0 and DENIED in r.stderr, (p, r.stdout)
        # writing and appending are refused too
        r = run("sh", "-c", f"echo x >> {p}", user=True, check=False)
        assert r.returncode != 0 and DENIED in r.stderr, p
        assert p.read_text() == "hello\n"
    assert (mnt.backing / "secret" / "f").read_bytes()[:8] == b"\x89WARDFS\x00"
    # a group entry restricts the supplementary group's members
    g = mnt.mnt / "grp.txt"
    g.write_text("g\n")
    os.chmod(g, 0o644)
    run("setfacl", "-m", f"g:{TEST_GROUP}:---", g)
    r = user_reads(g)
    assert r.returncode != 0 and DENIED in r.stderr
    # a directory closed to the user by its ACL
    d = mnt.mnt / "closed"
    d.mkdir(mode=0o755)
    (d / "x").write_text("x\n")
    run("setfacl", "-m", f"u:{TEST_USER}:---", d)
    for cmd in (["ls", d], ["cat", d / "x"]):
        r = run(*cmd, user=True, check=False)
        assert r.returncode != 0 and DENIED in r.stderr, cmd
    # removing the ACL gives the mode bits back their say
    run("setfacl", "-b", files[0])
    assert user_reads(files[0]).stdout == "hello\n"


def test_granting_acl_allows_the_user(mnt, test_user):
    open_mount(mnt)
    (mnt.mnt / "secret").mkdir(mode=0o755)
    assert mnt.status()["passthrough"] == "on"
    for p in (mnt.mnt / "root-only", mnt.mnt / "secret" / "root-only"):
        p.write_text("for the user\n")
        os.chmod(p, 0o600)
        r = user_reads(p)
        assert r.returncode != 0 and DENIED in r.stderr
        run("setfacl", "-m", f"u:{TEST_USER}:r", p)
        # the ACL's mask shows in the group bits, as on ext4
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
        assert stat.S_IMODE(os.stat(mnt.backing / p.relative_to(mnt.mnt)).st_mode) == 0o640
        assert user_reads(p).stdout == "for the user\n", p
        # chmod narrows the mask: the entry no longer grants
        os.chmod(p, 0o600)
        assert f"user:{test_user['uid']}:r--" in acl_text(p)  # the entry stays
        r = user_reads(p)
        assert r.returncode != 0 and DENIED in r.stderr, p
        os.chmod(p, 0o640)
        assert user_reads(p).stdout == "for the user\n", p
        # the grant is read-only
        r = run("sh", "-c", f"echo x >> {p}", user=True, check=False)
        assert r.returncode != 0 and DENIED in r.stderr, p
    # a public file opened through an ACL grant still uses passthrough
    before = mnt.status()
    assert user_reads(mnt.mnt / "root-only").stdout == "for the user\n"
    assert mnt.status()["reads-served"] == before["reads-served"]
    # a write grant through the supplementary group
    w = mnt.mnt / "group-writable"
    w.write_text("")
    os.chmod(w, 0o600)
    run("setfacl", "-m", f"g:{TEST_GROUP}:rw", w)
    run("sh", "-c", f"echo added >> {w}", user=True)
    assert w.read_text() == "added\n"
    # an ACL never opens a deny path, and cannot be set on one
    (mnt.backing / "denied").mkdir(mode=0o755)
    (mnt.backing / "denied" / "x").write_text("x\n")
    den = mnt.mnt / "denied" / "x"
    r = run("setfacl", "-m", f"u:{TEST_USER}:r", den, check=False)
    assert r.returncode != 0
    os.chmod(mnt.backing / "denied" / "x", 0o644)
    r = user_reads(den)
    assert r.returncode != 0 and DENIED in r.stderr


def test_setfacl_clears_setgid_as_natively(mnt, test_user, base):
    """Setting an access ACL on a setgid file of a group its owner is not
    in clears the bit, as ext4 does natively; the daemon sets it as root,
    whom the backing file system lets keep it."""
    open_mount(mnt)
    ref = base / "ref"
    ref.mkdir(mode=0o755)
    os.chmod(ref, 0o755)
    for d in (mnt.mnt, ref):
        for name, gid in (("other-group", 0), ("own-group", test_user["extra_gid"])):
            p = d / name
            p.write_text("#!/bin/sh\n")
            os.chown(p, test_user["uid"], gid)
            os.chmod(p, 0o2755)
            run("setfacl", "-m", "u:root:r", p, user=True)
    for name in ("other-group", "own-group"):
        want = stat.S_IMODE(os.stat(ref / name).st_mode)
        assert oct(stat.S_IMODE(os.stat(mnt.mnt / name).st_mode)) == oct(want), name
        assert oct(stat.S_IMODE(os.stat(mnt.backing / name).st_mode)) == oct(want), name
    assert not os.stat(ref / "other-group").st_mode & stat.S_ISGID
    assert os.stat(ref / "own-group").st_mode & stat.S_ISGID


def native_and_mounted(m, name):
    """A directory of that name in the mount (public and sensitive) and on
    the backing file system outside any vault, for comparison."""
    ref = m.base / "ref"
    return {"pub": m.mnt / name, "secret": m.mnt / "secret" / name,
            "ref": ref / name}


NAMES = ("f620", "f666", "f777", "mknod646", "d777", "d750", "fifo666")


@pytest.mark.parametrize("umask", [0o077, 0o022])
@pytest.mark.parametrize("default_acl", [True, False], ids=["default-acl", "no-acl"])
def test_created_files_get_default_acl_and_umask_as_natively(vault, test_user, umask,
                                                              default_acl):
    """Files, mknod'ed files, directories and fifos made by the user get
    the ACLs and modes ext4 gives them natively: with a default ACL on the
    parent they inherit it and the umask is ignored; without one the umask
    applies (the daemon, which inherits the mounting shell's umask, here
    027, neither masks a second time nor forgets to mask)."""
    saved = os.umask(0o027)
    try:
        vault.mount()
    finally:
        os.umask(saved)
    try:
        open_mount(vault)
        (vault.mnt / "secret").mkdir(mode=0o755)
        dirs = native_and_mounted(vault, "shared")
        for d in dirs.values():
            d.mkdir(parents=True)
            os.chown(d, test_user["uid"], test_user["gid"])
            if default_acl:
                run("setfacl", "-d", "-m",
                    f"u::rwx,g::rwx,o::r-x,g:{TEST_GROUP}:rwx,u:{TEST_USER}:rw", d)
        if default_acl:
            assert acl(dirs["pub"]) == acl(dirs["ref"])
        run(sys.executable, "-c", MAKE_NODES, oct(umask), *dirs.values(), user=True)
        for n in NAMES:
            want_mode = stat.S_IMODE(os.lstat(dirs["ref"] / n).st_mode)
            want_acl = acl(dirs["ref"] / n)
            for cls in ("pub", "secret"):
                for root in (dirs[cls], vault.backing / dirs[cls].relative_to(vault.mnt)):
                    got = stat.S_IMODE(os.lstat(root / n).st_mode)
                    assert oct(got) == oct(want_mode), (root / n, oct(umask))
                    assert acl(root / n) == want_acl, (root / n, oct(umask))
        ref_f666 = stat.S_IMODE(os.stat(dirs["ref"] / "f666").st_mode)
        if default_acl:
            # what POSIX.1e says: the umask is not applied, the default
            # ACL (its mask) is, and the new entries are there
            assert ref_f666 == 0o666 & 0o775
            assert re.search(f"group:{test_user['extra_gid']}:rwx\\s+#effective:rw-",
                             acl_text(dirs["pub"] / "f666"))
            assert any(e.startswith("default:") for e in acl(dirs["pub"] / "d777"))
        else:
            assert ref_f666 == 0o666 & ~umask
        # the sensitive files are ciphertext, and read back as written
        run("sh", "-c", f"echo data > {dirs['secret']}/f666", user=True)
        assert (vault.backing / "secret" / "shared" / "f666").read_bytes()[:8] == \
            b"\x89WARDFS\x00"
        assert run("cat", dirs["secret"] / "f666", user=True).stdout == "data\n"
    finally:
        vault.umount()


def test_default_acl_grants_the_user_files_root_creates(mnt, test_user):
    open_mount(mnt)
    d = mnt.mnt / "inbox"
    d.mkdir(mode=0o700)
    run("setfacl", "-m", f"u:{TEST_USER}:rx", "-d", "-m", f"u:{TEST_USER}:r", d)
    f = d / "letter.pem"  # sensitive
    f.write_text("dear user\n")
    assert f"user:{test_user['uid']}:r--" in acl_text(f)
    assert user_reads(f).stdout == "dear user\n"


def test_cp_a_keeps_acls(mnt, test_user, base):
    """cp -a into, within and out of the mount keeps access and default
    ACLs, and what it keeps is enforced."""
    open_mount(mnt)
    (mnt.mnt / "secret").mkdir(mode=0o755)
    outside = base / "outside"
    outside.mkdir()
    os.chmod(outside, 0o755)
    srcs = {}
    for where, d in (("native", outside), ("mounted", mnt.mnt)):
        no = d / f"{where}-no"
        no.write_text("no\n")
        os.chmod(no, 0o644)
        run("setfacl", "-m", f"u:{TEST_USER}:---", no)
        yes = d / f"{where}-yes"
        yes.write_text("yes\n")
        os.chmod(yes, 0o600)
        run("setfacl", "-m", f"u:{TEST_USER}:r", yes)
        dd = d / f"{where}-dir"
        dd.mkdir()
        run("setfacl", "-d", "-m", f"u:{TEST_USER}:rwx", dd)
        srcs[where] = (no, yes, dd)
    targets = [mnt.mnt / "copy", mnt.mnt / "secret" / "copy"]
    for t in targets:
        t.mkdir()
        os.chmod(t, 0o755)
        for where in srcs:
            run("cp", "-a", *srcs[where], t)
    out = base / "out"
    out.mkdir()
    os.chmod(out, 0o755)
    run("cp", "-a", *srcs["mounted"], out)
    for where in srcs:
        no, yes, dd = srcs[where]
        for t in targets + ([out] if where == "mounted" else []):
            assert acl(t / no.name) == acl(no), t / no.name
            assert acl(t / yes.name) == acl(yes), t / yes.name
            assert acl(t / dd.name) == acl(dd), t / dd.name
            r = user_reads(t / no.name)
            assert r.returncode != 0 and DENIED in r.stderr, t / no.name
            assert user_reads(t / yes.name).stdout == "yes\n", t / yes.name
    assert (mnt.backing / "secret" / "copy" / "native-yes").read_bytes()[:8] == \
        b"\x89WARDFS\x00"


HOME_USER = "wardfs-aclhome"
HOME_POLICY = """\
default public
sensitive /.ssh/**
sensitive *.pem
"""


@pytest.fixture
def acl_home(base, test_user):
    """A user whose home, in base, has files with access and default ACLs
    (and is itself opened to TEST_USER by an ACL); deleted afterwards."""
    home = base / "home" / HOME_USER
    subprocess.run(["userdel", HOME_USER], capture_output=True)
    run("useradd", "-M", "-d", home, "-s", "/bin/sh", HOME_USER)
    try:
        home.mkdir(parents=True)
        os.chmod(base / "home", 0o755)
        (home / ".ssh").mkdir()
        (home / ".ssh/id_ed25519").write_text("PRIVATE KEY\n")
        (home / "public.txt").write_text("public\n")
        (home / "granted.txt").write_text("granted\n")
        (home / "shared").mkdir()
        # created before the directory got its default ACL: it has no ACL
        # of its own, and must not get one when it is encrypted
        (home / "shared/old.pem").write_text("old\n")
        run("chown", "-R", f"{HOME_USER}:{HOME_USER}", home)
        os.chmod(home, 0o750)
        os.chmod(home / ".ssh", 0o700)
        for p in (".ssh/id_ed25519", "granted.txt", "shared/old.pem"):
            os.chmod(home / p, 0o600)
        os.chmod(home / "public.txt", 0o644)
        run("setfacl", "-m", f"u:{TEST_USER}:rx", home)
        run("setfacl", "-d", "-m", f"g:{TEST_GROUP}:rx", home)
        run("setfacl", "-m", f"u:{TEST_USER}:rx", home / ".ssh")
        run("setfacl", "-m", f"u:{TEST_USER}:r", home / ".ssh/id_ed25519")
        run("setfacl", "-m", f"u:{TEST_USER}:r", home / "granted.txt")
        run("setfacl", "-m", f"u:{TEST_USER}:---", home / "public.txt")
        run("setfacl", "-m", f"u:{TEST_USER}:rx", "-d", "-m", f"u:{TEST_USER}:rw",
            home / "shared")
        yield home
    finally:
        subprocess.run(["userdel", HOME_USER], capture_output=True)


def test_setup_home_keeps_acls(base, acl_home, test_user):
    home = acl_home
    paths = ["", ".ssh", ".ssh/id_ed25519", "public.txt", "granted.txt", "shared",
             "shared/old.pem"]
    before = {p: acl(home / p) for p in paths}
    (base / "policy").write_text(HOME_POLICY)
    (base / "pass").write_text(PASS + "\n")
    os.chmod(base / "pass", 0o600)
    backing = base / "vault" / "backing"
    run(WARDFS, "setup-home", "--backing", backing, "--policy", base / "policy",
        "--passfile", base / "pass", "--kdf-memory", "8", "--kdf-ops", "1", HOME_USER)
    assert (backing / ".ssh/id_ed25519").read_bytes()[:8] == b"\x89WARDFS\x00"
    assert (backing / "shared/old.pem").read_bytes()[:8] == b"\x89WARDFS\x00"
    m = Mount(base)
    m.mnt = home
    m.policy = base / "policy"
    m.passfile = base / "pass"
    m.mount()
    try:
        for p in paths:
            assert acl(backing / p) == before[p], p
            assert acl(home / p) == before[p], p
        # enforced through the mount, as the user
        assert run("ls", home, user=True).returncode == 0
        assert user_reads(home / ".ssh/id_ed25519").stdout == "PRIVATE KEY\n"
        assert user_reads(home / "granted.txt").stdout == "granted\n"
        r = user_reads(home / "public.txt")
        assert r.returncode != 0 and DENIED in r.stderr
        r = user_reads(home / "shared/old.pem")
        assert r.returncode != 0 and DENIED in r.stderr
        # the home's default ACL reaches what is created in it
        (home / "new").write_text("")
        assert f"group:{test_user['extra_gid']}:r-x" in acl_text(home / "new")
    finally:
        m.umount()
