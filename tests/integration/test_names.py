"""Encrypted names (issue 18): a vault made with `init --encrypt-names`
stores the name of every sensitive path encrypted, public names as they
are, and shows every name through the mount as it was made. The tests
grep the whole backing tree for every sensitive name they made, drive
the mount as programs do (rename, links, rmdir, odd bytes, long names),
drop foreign names into the backing dir, kill the daemon mid-create, and
replay random namespace operations against a reference directory."""
import ctypes
import errno
import json
import os
import pathlib
import random
import signal
import stat
import subprocess
import time

import pytest

from conftest import (DEFAULT_POLICY, Mount, PASS, TEST_USER, ended, is_mounted, run,
                      wait_for, wardfs)

LONG = "L" * 200 + ".txt"        # a long name: entry + sidecar
LONGEST = "M" * 255              # NAME_MAX
ODD = "odd \n\t\\ é \x01 name"    # bytes a shell would mangle
SHORT_SECRETS = ["2026-divorce-lawyer-letter.pdf", "a", "x" * 160, ODD, "wfs~dirid",
                 "wfs~eAAAA", ".hidden"]


def init_names(m, policy=DEFAULT_POLICY):
    m.policy.write_text(policy)
    m.make_backing()
    m.passfile.write_text(PASS + "\n")
    m.passfile.chmod(0o600)
    wardfs("init", "--encrypt-names", "--passfile", m.passfile, "--kdf-memory", "8",
           "--kdf-ops", "1", "--policy", m.policy, m.backing)


@pytest.fixture
def nvault(base):
    m = Mount(base)
    init_names(m)
    return m


@pytest.fixture
def nmnt(nvault):
    nvault.mount()
    try:
        yield nvault
    finally:
        nvault.umount()
        log = nvault.logtext()
        assert not any(s in log for s in ("AddressSanitizer", "runtime error")), log


def backing_bytes(m):
    """Every name in the backing tree and every small file's bytes."""
    names, blobs = [], []
    for dirpath, dirnames, filenames in os.walk(m.backing):
        if ".wardfs" in pathlib.Path(dirpath).parts:
            continue
        for n in dirnames + filenames:
            names.append(n)
            p = os.path.join(dirpath, n)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < 4096:
                with open(p, "rb") as f:
                    blobs.append(f.read())
    return names, blobs


def backing_of(m, path):
    """The backing path of a path of the mount (wardfs reports the backing
    files' inode numbers)."""
    ino = os.lstat(path).st_ino
    for dirpath, dirnames, filenames in os.walk(m.backing):
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            if os.lstat(p).st_ino == ino:
                return p
    raise FileNotFoundError(path)


def assert_hidden(m, secrets):
    names, blobs = backing_bytes(m)
    for s in secrets:
        if s.startswith("wfs~"):
            continue  # the prefix of every name of wardfs's own: checked by content
        b = s.encode()
        # the longest unique part of a name must not appear anywhere
        probe = b if len(b) < 12 else b[:12]
        for n in names:
            assert s != n, f"{s!r} in clear in the backing tree"
            assert len(s) < 4 or probe not in n.encode(), (s, n)
        for blob in blobs:
            assert len(s) < 4 or probe not in blob, (s, blob[:80])


def listing(root):
    """Every path below root with its kind, through the mount."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = stat.S_IFMT(st.st_mode)
    return out


def remount(m):
    m.umount()
    m.mount()


def test_backing_holds_no_sensitive_name(nmnt):
    """Sensitive files, directories, symlinks and fifos, short, long and odd
    names, in /secret and as *.pem beside public files: no name of them in
    the backing tree, every one back after a remount."""
    m = nmnt
    made = []
    (m.mnt / "secret").mkdir()
    for n in SHORT_SECRETS + [LONG, LONGEST]:
        (m.mnt / "secret" / n).write_text(f"content of {n}")
        made.append(n)
    d = m.mnt / "secret" / "Documents-about-the-merger"
    d.mkdir()
    (d / "deeper-private-plans").mkdir()
    (d / "deeper-private-plans" / "q3-layoffs.xlsx").write_text("rows")
    os.symlink("q3-layoffs.xlsx", d / "deeper-private-plans" / "symlink-to-layoffs")
    os.mkfifo(d / "fifo-of-secrets")
    made += ["Documents-about-the-merger", "deeper-private-plans", "q3-layoffs.xlsx",
             "symlink-to-layoffs", "fifo-of-secrets"]
    (m.mnt / "pub").mkdir()
    (m.mnt / "pub" / "server-cert-private.pem").write_text("key")
    (m.mnt / "pub" / ("P" * 250 + ".pem")).write_text("long key")
    (m.mnt / "pub" / "readme-public.txt").write_text("public")
    (m.mnt / "pub" / "wfs~looks-like-ours").write_text("plain")
    made += ["server-cert-private.pem", "P" * 250 + ".pem"]
    before = listing(m.mnt)
    assert_hidden(m, made)
    # public names stay as they are (one escaped: it starts with wfs~)
    assert (m.backing / "pub" / "readme-public.txt").read_text() == "public"
    assert (m.backing / "pub" / "wfs~plooks-like-ours").read_text() == "plain"
    assert (m.backing / "secret").is_dir()  # /secret itself is public by the policy
    remount(m)
    assert listing(m.mnt) == before
    for n in SHORT_SECRETS + [LONG, LONGEST]:
        assert (m.mnt / "secret" / n).read_text() == f"content of {n}"
    assert os.readlink(d / "deeper-private-plans" / "symlink-to-layoffs") == "q3-layoffs.xlsx"
    assert sorted(os.listdir(m.mnt / "pub")) == sorted(
        ["server-cert-private.pem", "P" * 250 + ".pem", "readme-public.txt",
         "wfs~looks-like-ours"])
    # statfs says NAME_MAX 255, and one byte more is refused
    assert os.statvfs(m.mnt / "secret").f_namemax == 255
    with pytest.raises(OSError) as e:
        (m.mnt / "secret" / ("N" * 256)).write_text("x")
    assert e.value.errno == errno.ENAMETOOLONG
    # the audit keeps plaintext paths
    rows = m.sql("SELECT path FROM events WHERE path LIKE '/secret/2026%'")
    assert "2026-divorce-lawyer-letter.pdf" in rows


def sidecars_match(m):
    """Every long entry has its sidecar and no sidecar is orphaned."""
    for dirpath, dirnames, filenames in os.walk(m.backing):
        names = set(dirnames + filenames)
        for n in names:
            if n.startswith("wfs~l"):
                assert "wfs~n" + n[5:] in names, (dirpath, n)
            if n.startswith("wfs~n"):
                assert "wfs~l" + n[5:] in names, ("orphan", dirpath, n)


def renameat2(old, new, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD = -100
    if libc.renameat2(AT_FDCWD, str(old).encode(), AT_FDCWD, str(new).encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def test_renames_links_and_removals(nmnt):
    m = nmnt
    s = m.mnt / "secret"
    (s / "a").mkdir(parents=True)
    (s / "b").mkdir()
    (s / "a" / "short").write_text("1")
    # short -> long -> long (other dir) -> short, each step listed right
    os.rename(s / "a" / "short", s / "a" / LONG)
    assert os.listdir(s / "a") == [LONG]
    os.rename(s / "a" / LONG, s / "b" / LONGEST)
    assert os.listdir(s / "a") == [] and os.listdir(s / "b") == [LONGEST]
    os.rename(s / "b" / LONGEST, s / "b" / "back")
    assert (s / "b" / "back").read_text() == "1"
    sidecars_match(m)
    # over an existing long name; RENAME_NOREPLACE and RENAME_EXCHANGE
    (s / "b" / LONG).write_text("old")
    os.rename(s / "b" / "back", s / "b" / LONG)
    assert os.listdir(s / "b") == [LONG] and (s / "b" / LONG).read_text() == "1"
    (s / "b" / "other").write_text("2")
    with pytest.raises(FileExistsError):
        renameat2(s / "b" / "other", s / "b" / LONG, 1)  # RENAME_NOREPLACE
    renameat2(s / "b" / "other", s / "b" / LONG, 2)       # RENAME_EXCHANGE
    assert (s / "b" / LONG).read_text() == "2" and (s / "b" / "other").read_text() == "1"
    sidecars_match(m)
    # hard links within the class; removing one keeps the other listed
    os.link(s / "b" / LONG, s / "a" / LONGEST)
    os.link(s / "b" / LONG, s / "a" / "short-link")
    assert os.stat(s / "a" / "short-link").st_nlink == 3
    os.unlink(s / "b" / LONG)
    assert sorted(os.listdir(s / "a")) == sorted([LONGEST, "short-link"])
    # a rename between two links of one file leaves both (rename(2))
    os.rename(s / "a" / LONGEST, s / "a" / "short-link")
    assert sorted(os.listdir(s / "a")) == sorted([LONGEST, "short-link"])
    sidecars_match(m)
    # a directory with encrypted names is removed with its id
    with pytest.raises(OSError) as e:
        os.rmdir(s / "a")
    assert e.value.errno == errno.ENOTEMPTY
    for n in os.listdir(s / "a"):
        os.unlink(s / "a" / n)
    os.rmdir(s / "a")
    assert not any("a" == n for n in os.listdir(s))
    # a public file renamed to a sensitive name is encrypted by name too
    (m.mnt / "notes").write_text("n")
    os.rename(m.mnt / "notes", m.mnt / "notes-now-private.pem")
    assert_hidden(m, ["notes-now-private.pem"])
    assert (m.mnt / "notes-now-private.pem").read_text() == "n"
    # rm -rf of a deep encrypted tree leaves nothing behind
    deep = s / "t" / "u" / "v"
    deep.mkdir(parents=True)
    for i in range(30):
        (deep / f"{i}-{LONG}").write_text("x")
    run("rm", "-rf", s / "t")
    assert sorted(os.listdir(s)) == ["b"]
    sidecars_match(m)
    remount(m)
    assert sorted(os.listdir(s)) == ["b"]
    assert sorted(os.listdir(s / "b")) == ["other"]


def test_directory_moving_between_classes_is_exdev(nmnt):
    """A directory whose subtree would change class on disk is not
    renamed (mv copies it, re-encrypting every name)."""
    m = nmnt
    (m.mnt / "secret" / "d").mkdir(parents=True)
    (m.mnt / "secret" / "d" / "inner").mkdir()
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "secret" / "d", m.mnt / "d")
    assert e.value.errno == errno.EXDEV
    run("mv", m.mnt / "secret" / "d", m.mnt / "d")  # copies
    assert (m.mnt / "d" / "inner").is_dir()
    assert (m.backing / "d" / "inner").is_dir()  # public: plain names now


def test_policy_change_finds_names_in_the_other_form(nvault):
    """A public file whose path a new rule makes sensitive keeps its plain
    name until migrate: lookups find it, listings show it once, and a
    create of the same name opens it rather than make a second entry."""
    m = nvault
    m.mount()
    try:
        (m.mnt / "notes.txt").write_text("plain")
        (m.mnt / "secret").mkdir()
        (m.mnt / "secret" / "diary.txt").write_text("enc")
        m.umount()
        m.policy.write_text("default sensitive\npublic /secret/**\n")
        m.mount()
        assert (m.mnt / "notes.txt").read_text() == "plain"
        assert (m.mnt / "secret" / "diary.txt").read_text() == "enc"
        assert os.listdir(m.mnt).count("notes.txt") == 1
        with open(m.mnt / "notes.txt", "a") as f:  # O_CREAT, no O_EXCL
            f.write("+")
        with pytest.raises(FileExistsError):
            os.open(m.mnt / "notes.txt", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        assert os.listdir(m.mnt).count("notes.txt") == 1
        assert os.listdir(m.mnt / "secret") == ["diary.txt"]
        assert (m.backing / "notes.txt").exists()
    finally:
        m.umount()


def test_foreign_and_damaged_names_are_skipped(nmnt):
    """Names that do not decrypt (dropped in, moved from another
    directory, a long entry without its sidecar, a sidecar of another
    entry) are skipped with one log line per directory; never a crash."""
    m = nmnt
    s = m.mnt / "secret"
    (s / "one").mkdir(parents=True)
    (s / "two").mkdir()
    (s / "one" / "kept").write_text("k")
    (s / "one" / "moved-on-disk").write_text("m")
    (s / "one" / LONG).write_text("l")
    (s / "two" / "x").write_text("x")
    b1, b2 = backing_of(m, s / "one"), backing_of(m, s / "two")
    m.umount()
    enc = {p.name for p in b1.iterdir() if p.name.startswith("wfs~e")}
    # find the backing name of "moved-on-disk" by elimination later: move
    # every short encrypted name but one to the other directory
    names = sorted(enc)
    victim = names[0]
    os.rename(b1 / victim, b2 / victim)
    (b1 / ("wfs~e" + "A" * 43)).write_text("forged")
    (b1 / "wfs~eNOT-BASE64!!").write_text("junk")
    long_entry = next(p for p in b1.iterdir() if p.name.startswith("wfs~l"))
    sidecar = b1 / ("wfs~n" + long_entry.name[5:])
    text = sidecar.read_text()
    sidecar.unlink()
    m.mount()
    listed1 = sorted(os.listdir(s / "one"))
    listed2 = sorted(os.listdir(s / "two"))
    assert LONG not in listed1  # its sidecar is gone: skipped
    assert len(listed1) == 1 and listed1[0] in ("kept", "moved-on-disk")
    assert listed2 == ["x"]  # the moved name does not decrypt there
    # still reachable by its name (one backing lookup, no sidecar needed)
    assert (s / "one" / LONG).read_text() == "l"
    log = m.logtext()
    assert log.count("holds names that cannot be decrypted") == 2, log
    # a sidecar holding another name's bytes is refused too
    sidecar.write_text(text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1])
    m.umount()
    m.mount()
    assert LONG not in os.listdir(s / "one")
    # a damaged directory id: lookups and creates of encrypted names fail
    m.umount()
    (b2 / "wfs~dirid").chmod(0o644)
    data = bytearray((b2 / "wfs~dirid").read_bytes())
    data[20] ^= 1
    (b2 / "wfs~dirid").write_bytes(bytes(data))
    m.mount()
    with pytest.raises(OSError) as e:
        (s / "two" / "new").write_text("n")
    assert e.value.errno == errno.EIO
    assert os.listdir(s / "two") == []


def test_tampered_flag_and_tools(nvault, base):
    """The names flag is authenticated: cleared, the vault does not
    unlock; unknown, the keyfile is refused. init --encrypt-names wants an
    empty directory."""
    m = nvault
    kf = m.backing / ".wardfs" / "keyfile"
    good = kf.read_bytes()
    bad = bytearray(good)
    bad[10] = 0
    kf.write_bytes(bytes(bad))
    r = m.mount(check=False)
    assert r.returncode != 0 and not is_mounted(m.mnt), r.stderr
    bad[10] = 0x03  # a flag this build does not know
    kf.write_bytes(bytes(bad))
    r = m.mount(check=False)
    assert r.returncode != 0 and not is_mounted(m.mnt)
    kf.write_bytes(good)
    # policy scan unlocks such a vault to show its paths
    r = wardfs("policy", "scan", "--policy", m.policy, "--passfile", m.passfile, m.backing,
               check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    # init --encrypt-names wants an empty directory
    other = base / "vault" / "other"
    other.mkdir()
    (other / "f").write_text("x")
    r = wardfs("init", "--encrypt-names", "--passfile", m.passfile, "--kdf-memory", "8",
               "--kdf-ops", "1", other, check=False)
    assert r.returncode != 0 and "not empty" in r.stderr
    assert not (other / ".wardfs").exists()


def test_lock_hides_encrypted_names(nmnt):
    m = nmnt
    (m.mnt / "secret").mkdir()
    (m.mnt / "secret" / "private-name").write_text("p")
    (m.mnt / "public-name").write_text("q")
    wardfs("lock", m.mnt)
    try:
        subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
        assert "public-name" in os.listdir(m.mnt)
        with pytest.raises(OSError) as e:
            os.stat(m.mnt / "secret" / "not-seen-before")
        assert e.value.errno == errno.ENOKEY
        with pytest.raises(OSError) as e:
            os.mkdir(m.mnt / "secret" / "new-dir")
        assert e.value.errno == errno.ENOKEY
    finally:
        wardfs("unlock", "--passfile", m.passfile, m.mnt)
    assert (m.mnt / "secret" / "private-name").read_text() == "p"


def test_user_cannot_reach_wardfs_files(nmnt, test_user):
    """A user makes and renames sensitive files in their own directory;
    the names wardfs keeps for itself cannot be reached or clobbered."""
    m = nmnt
    home = m.mnt / "secret" / "home"
    home.mkdir(parents=True)
    os.chown(home, test_user["uid"], test_user["gid"])
    (home / "mine").write_text("x")  # makes the directory's id
    os.chown(home / "mine", test_user["uid"], test_user["gid"])
    script = (f"cd {home} && echo a > wfs~dirid && mv mine {LONG} && ln {LONG} hard && "
              f"ls -a && cat wfs~dirid")
    r = run("sh", "-c", script, user=True)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(home)) == sorted(["wfs~dirid", LONG, "hard"])
    # the backing directory's id is intact and owned by root
    idf = backing_of(m, home)
    bid = next(p for p in idf.iterdir() if p.name == "wfs~dirid")
    assert bid.stat().st_uid == 0 and bid.stat().st_size == 48
    assert (home / "wfs~dirid").read_text() == "a\n"
    assert "wfs~pdirid" not in os.listdir(idf)  # sensitive: encrypted, not escaped
    sidecars_match(m)


def test_sigkill_during_long_name_churn_loses_no_entry(nvault):
    """Creates and renames of long names while the daemon is killed:
    after a remount every entry the backing dir holds has its sidecar (a
    leftover sidecar of a create cut short is allowed and not listed)."""
    m = nvault
    m.mount()
    s = m.mnt / "secret"
    s.mkdir()
    script = ("import os,sys\n"
              "d=sys.argv[1]\n"
              "i=0\n"
              "while True:\n"
              "  p=os.path.join(d,'%03d'%(i%50)+'L'*190)\n"
              "  try:\n"
              "    open(p,'w').write('x')\n"
              "    os.rename(p,p+'-renamed'+'R'*40)\n"
              "  except OSError:\n"
              "    break\n"
              "  i+=1\n")
    procs = [subprocess.Popen(["python3", "-c", script, str(s)]) for _ in range(2)]
    time.sleep(1.5)
    pid = int(m.status()["pid"])
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: ended(pid), 10)
    for p in procs:
        p.wait(timeout=30)
    subprocess.run(["umount", "-l", str(m.mnt)], check=False)
    assert wait_for(lambda: not is_mounted(m.mnt), 10)
    b = m.backing / "secret"
    names = set(os.listdir(b))
    entries = [n for n in names if n.startswith("wfs~l")]
    assert entries, names
    for n in entries:
        assert "wfs~n" + n[5:] in names, n
    m.mount()
    try:
        listed = os.listdir(s)
        assert len(listed) == len(entries)
        for n in listed:
            assert (s / n).read_text() in ("x", "")
    finally:
        m.umount()


OPS = ("create", "mkdir", "rename", "link", "unlink", "rmdir", "symlink", "write")


def names_pool(rng):
    return rng.choice(["a", "b.pem", "c", "d.pem", "e" * 180, "f" * 170 + ".pem", "wfs~g",
                       "h" * 255])


def replay(rng, root, op, args):
    """Applies one operation under root; returns its errno (0: done)."""
    try:
        p = [root / a for a in args]
        if op == "create":
            with open(p[0], "x") as f:
                f.write(args[0][-8:])
        elif op == "write":
            with open(p[0], "a") as f:
                f.write("w")
        elif op == "mkdir":
            os.mkdir(p[0])
        elif op == "rename":
            os.rename(p[0], p[1])
        elif op == "link":
            os.link(p[0], p[1])
        elif op == "unlink":
            os.unlink(p[0])
        elif op == "rmdir":
            os.rmdir(p[0])
        elif op == "symlink":
            os.symlink(args[1][:100], p[0])
        return 0
    except OSError as e:
        return e.errno


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            else:
                out[rel] = ("f", p.read_text(), st.st_nlink)
    return out


@pytest.mark.parametrize("names", [True, False], ids=["encrypted-names", "plain-names"])
def test_random_namespace_operations_match_a_reference(base, names):
    """Random creates, renames across directories, hard links, removals and
    long names in mixed-class directories: the mount must answer each as a
    plain directory does (EXDEV aside: a class change, where mv copies),
    and hold the same tree, before and after a remount. The same on a
    vault without encrypted names, as a reference for the reference."""
    m = Mount(base)
    if names:
        init_names(m)
    else:
        m.policy.write_text(DEFAULT_POLICY)
        m.init()
    m.mount()
    try:
        random_namespace_operations(m, base)
    finally:
        m.umount()


def random_namespace_operations(m, base):
    ref = base / "ref"
    ref.mkdir()
    dirs = ["", "secret", "secret/x", "pub", "pub/y"]
    for d in dirs[1:]:
        (m.mnt / d).mkdir()
        (ref / d).mkdir()
    rng = random.Random(int(os.environ.get("WFS_NAMES_SEED", "18")))
    nops = int(os.environ.get("WFS_NAMES_OPS", "4000"))
    done, exdev = {}, 0
    for i in range(nops):
        op = rng.choice(OPS)
        a = os.path.join(rng.choice(dirs), names_pool(rng))
        b = os.path.join(rng.choice(dirs), names_pool(rng))
        got = replay(rng, m.mnt, op, (a, b))
        if got == errno.EXDEV:
            exdev += 1
            continue
        want = replay(rng, ref, op, (a, b))
        assert got == want, (i, op, a, b, os.strerror(got), os.strerror(want))
        done[op] = done.get(op, 0) + (got == 0)
        if i % 100 == 0:
            assert tree(m.mnt) == tree(ref), i
    print("done", done, "exdev", exdev)
    # each kind of operation really ran, most renames and links did not
    # meet EXDEV (the test would prove little)
    assert all(done.get(op, 0) >= nops // 300 for op in OPS), done
    assert exdev < (done["rename"] + done["link"]), (exdev, done)
    assert tree(m.mnt) == tree(ref)
    sidecars_match(m)
    remount(m)
    assert tree(m.mnt) == tree(ref)
    assert "AddressSanitizer" not in m.logtext()


def fsck(m, *extra):
    return wardfs("fsck", "--passfile", m.passfile, *extra, m.backing, check=False)


def test_fsck_checks_names(nvault):
    """fsck reports each name the mount cannot show, prints paths as the
    mount shows them, and --repair removes orphan sidecars (a row each)."""
    m = nvault
    m.mount()
    try:
        s = m.mnt / "secret"
        (s / "one").mkdir(parents=True)
        (s / "two").mkdir()
        (s / "one" / LONG).write_text("l")
        (s / "one" / ("K" * 180)).write_text("k")
        (s / "one" / "damaged-content").write_text("d" * 10000)
        (s / "two" / "x").write_text("x")
        b1, b2 = backing_of(m, s / "one"), backing_of(m, s / "two")
        victim = backing_of(m, s / "one" / "damaged-content")
        k_entry = backing_of(m, s / "one" / ("K" * 180))
    finally:
        m.umount()
    r = fsck(m)
    assert r.returncode == 0, r.stdout + r.stderr
    # an orphan sidecar (its entry gone), an entry without one, a foreign
    # name, damaged content, a damaged id
    os.unlink(k_entry)
    long_entry = next(p for p in b1.iterdir() if p.name.startswith("wfs~l") and
                      (b1 / ("wfs~n" + p.name[5:])).exists())
    (b1 / ("wfs~n" + long_entry.name[5:])).unlink()
    (b1 / ("wfs~e" + "Q" * 42 + "A")).write_text("foreign")  # canonical, not ours
    (b1 / "wfs~zebra").write_text("unknown")
    with open(victim, "r+b") as f:
        f.seek(5000)
        f.write(b"\xff")
    data = bytearray((b2 / "wfs~dirid").read_bytes())
    data[17] ^= 1
    (b2 / "wfs~dirid").chmod(0o644)
    (b2 / "wfs~dirid").write_bytes(bytes(data))
    r = fsck(m)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert f"{m.backing}/secret/one/damaged-content: block" in out, out
    assert "sidecar without its entry" in out
    assert "without its sidecar" in out
    assert "does not decrypt" in out
    assert "'wfs~zebra': a name in wardfs's own form that it does not know" in out
    assert f"{m.backing}/secret/two: 'wfs~dirid': the directory's id is damaged" in out
    assert "names the mount cannot show" in r.stderr
    r = fsck(m, "--repair", "--audit-db", m.db)
    assert "sidecar without its entry (left by a crash): removed" in r.stdout, r.stdout
    assert not any(p.name.startswith("wfs~n") for p in b1.iterdir())
    rows = m.sql("SELECT detail FROM events WHERE kind = 'integrity'")
    assert "orphan sidecar" in rows
    r = fsck(m)
    assert "sidecar without its entry" not in r.stdout
    assert r.returncode == 1  # the rest is for a backup


def test_migrate_moves_names_to_the_policys_form(nvault):
    """After a policy change migrate renames names into the form their
    paths now ask for, and the mount shows the same tree."""
    m = nvault
    m.mount()
    try:
        (m.mnt / "notes-about-the-board.txt").write_text("plain")
        (m.mnt / "secret" / "deep").mkdir(parents=True)
        (m.mnt / "secret" / "deep" / LONG).write_text("enc")
        (m.mnt / "secret" / "short-secret").write_text("enc2")
    finally:
        m.umount()
    m.policy.write_text("default public\nsensitive *.txt\n")
    r = wardfs("policy", "scan", "--policy", m.policy, "--passfile", m.passfile,
               "--format", "json", m.backing, check=False)
    assert r.returncode == 1, r.stderr
    mis = {(x["path"], x["class"], x["form"], x["of"]) for x in json.loads(r.stdout)["mismatch"]}
    assert ("/notes-about-the-board.txt", "sensitive", "plain", "name") in mis
    assert ("/notes-about-the-board.txt", "sensitive", "plain", "content") in mis
    assert ("/secret/deep", "public", "encrypted", "name") in mis
    assert ("/secret/short-secret", "public", "encrypted", "name") in mis
    assert ("/secret/short-secret", "public", "encrypted", "content") in mis
    r = wardfs("migrate", "--dry-run", "--passfile", m.passfile, "--policy", m.policy,
               m.backing, check=False)
    assert r.returncode == 0, r.stderr
    assert "encrypt the name of" in r.stdout and "decrypt the name of" in r.stdout, r.stdout
    # the secret tree's names would become plain: asked, or --yes
    r = wardfs("migrate", "--passfile", m.passfile, "--policy", m.policy, m.backing,
               check=False, input="")
    assert r.returncode == 1 and "(its name)" in r.stderr, r.stderr
    # a temporary an interrupted run left
    (m.backing / "secret" / "wfs~t0123456789abcdef").write_text("left")
    r = wardfs("migrate", "--yes", "--passfile", m.passfile, "--policy", m.policy, m.backing,
               check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "names encrypted" in r.stdout
    assert not (m.backing / "secret" / "wfs~t0123456789abcdef").exists()
    assert_hidden(m, ["notes-about-the-board.txt", LONG])
    assert (m.backing / "secret" / "deep").is_dir()  # public now: plain
    assert (m.backing / "secret" / "short-secret").read_text() == "enc2"
    sidecars_match(m)
    m.mount()
    try:
        assert (m.mnt / "notes-about-the-board.txt").read_text() == "plain"
        assert (m.mnt / "secret" / "deep" / LONG).read_text() == "enc"
        assert sorted(os.listdir(m.mnt)) == ["notes-about-the-board.txt", "secret"]
    finally:
        m.umount()
    r = wardfs("migrate", "--dry-run", "--passfile", m.passfile, "--policy", m.policy,
               m.backing, check=False)
    assert "0 files would be converted" in r.stdout, r.stdout
    r = wardfs("policy", "scan", "--policy", m.policy, "--passfile", m.passfile, m.backing,
               check=False)
    assert r.returncode == 0 and "mismatch   0" in r.stdout, r.stdout + r.stderr


def test_migrate_encrypt_names_on_an_existing_vault(vault, base):
    """A vault made without --encrypt-names gets it by migrate: the flag is
    set with every slot kept, and every sensitive name encrypted."""
    m = vault
    m.mount()
    try:
        (m.mnt / "secret" / "sub").mkdir(parents=True)
        (m.mnt / "secret" / "sub" / "tax-return-2026.pdf").write_text("t")
        (m.mnt / "secret" / LONGEST).write_text("l")
        (m.mnt / "id_server.pem").write_text("k")
        (m.mnt / "public.txt").write_text("p")
        (m.mnt / "wfs~mine").write_text("w")
    finally:
        m.umount()
    kf = (m.backing / ".wardfs" / "keyfile").read_bytes()
    r = wardfs("migrate", "--encrypt-names", "--passfile", m.passfile, "--policy", m.policy,
               m.backing, check=False)
    assert r.returncode == 1 and "wfs~mine" in r.stderr and "nothing was changed" in r.stderr
    assert (m.backing / ".wardfs" / "keyfile").read_bytes() == kf
    os.rename(m.backing / "wfs~mine", m.backing / "mine")
    rk = base / "rk"
    wardfs("key", "add", m.backing, "--type", "recovery", "--recovery-key-out", rk,
           "--passfile", m.passfile)
    r = wardfs("migrate", "--encrypt-names", "--passfile", m.passfile, "--policy", m.policy,
               m.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_hidden(m, ["tax-return-2026.pdf", LONGEST, "id_server.pem", "sub"])
    assert (m.backing / "public.txt").read_text() == "p"
    # the other slot still opens the vault (fsck unlocks with it)
    r = wardfs("fsck", "--recovery-key-file", rk, m.backing, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    m.mount()
    try:
        assert (m.mnt / "secret" / "sub" / "tax-return-2026.pdf").read_text() == "t"
        (m.mnt / "secret" / "new-after-migrate").write_text("n")
        assert_hidden(m, ["new-after-migrate"])
    finally:
        m.umount()


def test_concurrent_creates_renames_and_listings(nmnt):
    """Processes make, rename, link and remove long and short names in one
    sensitive directory while others list it and look names up: each sees
    only whole names, and the end state is exact (the TSan run's too)."""
    m = nmnt
    d = m.mnt / "secret" / "shared"
    d.mkdir(parents=True)
    worker = ("import os,sys\n"
              "d,me,n=sys.argv[1],sys.argv[2],int(sys.argv[3])\n"
              "for i in range(n):\n"
              "  a=os.path.join(d,me+'-%d-'%i+'A'*(i%3*90))\n"
              "  open(a,'w').write(me)\n"
              "  b=a+'-moved'\n"
              "  os.rename(a,b)\n"
              "  if i%2: os.link(b,b+'-link'); os.unlink(b+'-link')\n"
              "  if i%3==0: os.unlink(b)\n")
    lister = ("import os,sys\n"
              "d,n=sys.argv[1],int(sys.argv[2])\n"
              "for i in range(n):\n"
              "  for e in os.listdir(d):\n"
              "    assert e.startswith('w'), e\n"
              "    try: os.stat(os.path.join(d,e))\n"
              "    except FileNotFoundError: pass\n")
    n = 60
    ws = [subprocess.Popen(["python3", "-c", worker, str(d), f"w{k}", str(n)],
                           stderr=subprocess.PIPE, text=True) for k in range(3)]
    ls = [subprocess.Popen(["python3", "-c", lister, str(d), "40"],
                           stderr=subprocess.PIPE, text=True) for k in range(2)]
    for p in ws + ls:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    want = sorted(f"w{k}-{i}-" + "A" * (i % 3 * 90) + "-moved"
                  for k in range(3) for i in range(n) if i % 3)
    assert sorted(os.listdir(d)) == want
    sidecars_match(m)
    remount(m)
    assert sorted(os.listdir(d)) == want


def test_a_name_in_both_forms_is_listed_once(nvault):
    """A name stored both plain and encrypted (made behind the mount) is
    listed once: as the one a lookup finds, the form its class asks for."""
    m = nvault
    m.mount()
    try:
        (m.mnt / "twin.pem").write_text("encrypted one")
        enc = backing_of(m, m.mnt / "twin.pem")
    finally:
        m.umount()
    (m.backing / "twin.pem").write_text("plain one")  # behind the mount
    for policy, want in (("default public\nsensitive *.pem\n", "encrypted one"),
                         ("default public\n", "plain one")):
        m.policy.write_text(policy)
        m.mount()
        try:
            assert os.listdir(m.mnt) == ["twin.pem"], policy
            # readdirplus and a cold lookup agree
            subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
            assert run("ls", "-l", m.mnt).stdout.count("twin.pem") == 1
            assert (m.mnt / "twin.pem").read_text() == want
        finally:
            m.umount()
    assert enc.exists()
