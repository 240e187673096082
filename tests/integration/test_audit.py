"""The audit database on real mounts: exactly one row per open under
concurrent load, no returned open lost to a SIGKILL of the daemon, the
--audit-failure modes on a full and a read-only db, tamper evidence
(verify, prune) and the query/tail/stats CLI checked against rows made by
real opens of real processes."""
import contextlib
import csv
import errno
import io
import fcntl
import json
import math
import mmap
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

import pytest

from conftest import (DEFAULT_POLICY, TEST_USER, WARDFS, Mount, ended, is_mounted, run, wait_for,
                      wardfs)

# 8 x 10,000 opens take about 4 s on the normal build and 7 s on the ASan
# build (2 cores), so both run the full load.
N_OPENS = 10000
N_PROCS = 8


# ---------------------------------------------------------------------------
# helpers


def db_rows(db, query, args=()):
    """Rows of a query on the audit db (read-only; the daemon may be gone)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


def db_exec(db, *statements):
    """Writes to the db directly, as someone tampering with it would."""
    con = sqlite3.connect(str(db))
    try:
        for s in statements:
            con.execute(s)
        con.commit()
    finally:
        con.close()


def count_opens(db, glob, kind="open"):
    return db_rows(db, "SELECT count(*) FROM events WHERE kind = ? AND path GLOB ?",
                   (kind, glob))[0][0]


def opens_by_pid(db, glob):
    return dict(db_rows(db, "SELECT pid, count(*) FROM events WHERE kind = 'open' AND "
                        "path GLOB ? GROUP BY pid", (glob,)))


def verify(db, *extra):
    return wardfs("audit", "verify", "--db", db, *extra, check=False)


def open_close(path, flags=os.O_RDONLY):
    os.close(os.open(path, flags))


class Workers:
    """Forked processes that open/close files in a tight loop and publish,
    in shared memory, how many opens have returned successfully to them
    (updated right after each open returns) and the errno that stopped them."""

    def __init__(self, nprocs, paths, count=None, flags=os.O_RDONLY):
        self.n = nprocs
        self.shm = mmap.mmap(-1, 16 * nprocs)  # MAP_SHARED | MAP_ANONYMOUS
        self.pids = []
        self.codes = {}
        for i in range(nprocs):
            pid = os.fork()
            if pid == 0:
                self._child(i, [str(p) for p in paths], count, flags)
            self.pids.append(pid)

    def _child(self, slot, paths, count, flags):
        code = 0
        try:
            done, k = 0, len(paths)
            try:
                while count is None or done < count:
                    fd = os.open(paths[(done + slot) % k], flags)
                    done += 1
                    struct.pack_into("q", self.shm, 8 * slot, done)
                    os.close(fd)
            except OSError as e:
                struct.pack_into("q", self.shm, 8 * (self.n + slot), e.errno or -1)
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def done(self, i=None):
        if i is None:
            return sum(self.done(k) for k in range(self.n))
        return struct.unpack_from("q", self.shm, 8 * i)[0]

    def error(self, i):
        return struct.unpack_from("q", self.shm, 8 * (self.n + i))[0]

    def wait(self, timeout=120):
        """Reaps every worker; returns {pid: exit code}."""
        end = time.time() + timeout
        while len(self.codes) < len(self.pids):
            for pid in self.pids:
                if pid not in self.codes:
                    p, status = os.waitpid(pid, os.WNOHANG)
                    if p:
                        self.codes[pid] = os.waitstatus_to_exitcode(status)
            if len(self.codes) < len(self.pids):
                if time.time() > end:
                    self.stop()
                    raise AssertionError("workers did not finish")
                time.sleep(0.01)
        return self.codes

    def stop(self):
        """Kills and reaps whatever still runs (for finally blocks)."""
        for pid in self.pids:
            if pid not in self.codes:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.codes[pid] = -9


@contextlib.contextmanager
def tmpfs(path, size):
    """A small tmpfs at path, always unmounted."""
    path.mkdir()
    run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path)
    try:
        yield path
    finally:
        if is_mounted(path):
            subprocess.run(["umount", str(path)], check=False)
        if is_mounted(path):
            subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def mounted(m, *extra):
    m.mount(*extra)
    try:
        yield m
    finally:
        m.umount()
        log = m.logtext()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log


def fill(path):
    """Fills the filesystem holding path; returns the filler's size."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 512):
            try:
                while True:
                    n += os.write(fd, b"\xa5" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return n


def long_path(root, depth=12):
    """A file about 3000 characters deep below root: its rows are large, so
    a few thousand opens fill the 16 MiB audit journal."""
    d = root
    for i in range(depth):
        d = d / (f"{i:02d}" + "d" * 248)
    os.makedirs(d, exist_ok=True)
    f = d / "f"
    f.write_text("x")
    return f


def status_int(m, key):
    return int(m.status()[key])


# ---------------------------------------------------------------------------
# 1. exactly one row per open under concurrent load


def test_exact_rows_for_concurrent_opens(mnt):
    load = mnt.mnt / "load"
    load.mkdir()
    files = [load / f"f{i}" for i in range(N_PROCS)]
    for f in files:
        f.write_text("x")
    t = time.time()
    w = Workers(N_PROCS, files, count=N_OPENS)
    try:
        codes = w.wait(timeout=300)
    finally:
        w.stop()
    elapsed = time.time() - t
    assert set(codes.values()) == {0}
    assert [w.error(i) for i in range(N_PROCS)] == [0] * N_PROCS
    assert w.done() == N_PROCS * N_OPENS
    st = mnt.status()
    assert int(st["audit-lost"]) == 0
    mnt.umount()

    assert count_opens(mnt.db, "/load/*") == N_PROCS * N_OPENS, f"{elapsed:.1f}s of load"
    # Every worker has exactly its own opens, each file its share.
    assert opens_by_pid(mnt.db, "/load/*") == {pid: N_OPENS for pid in w.pids}
    per_file = dict(db_rows(mnt.db, "SELECT path, count(*) FROM events WHERE kind = 'open' "
                            "AND path GLOB '/load/*' GROUP BY path"))
    assert per_file == {f"/load/f{i}": N_OPENS for i in range(N_PROCS)}
    # The rows are complete and the chain is intact: ids are consecutive.
    lo, hi, n = db_rows(mnt.db, "SELECT min(id), max(id), count(*) FROM events")[0]
    assert (lo, hi - lo + 1) == (1, n)
    bad = db_rows(mnt.db, "SELECT count(*) FROM events WHERE path GLOB '/load/*' AND kind = "
                  "'open' AND (decision != 'allow' OR errno != 0 OR access != 'r' OR "
                  "class != 'public' OR form != 'plain' OR comm IS NULL OR exe IS NULL)")
    assert bad == [(0,)]
    r = verify(mnt.db)
    assert r.returncode == 0 and f"ok: {n} rows verified" in r.stdout, r.stdout + r.stderr


def test_rows_name_the_executable_after_an_execve(mnt):
    """The daemon keeps a link per pid to /proc/PID/exe; an execve keeps the
    pid, so the row after it must name the new program, not a cached one."""
    d = mnt.mnt / "exec"
    d.mkdir()
    for name in ("before", "after", "again"):
        (d / name).write_text(name)
    py = os.path.realpath(sys.executable)
    cat = shutil.which("cat")
    script = (f"import os; open({str(d / 'before')!r}).read(); "
              f"os.execv({cat!r}, ['cat', {str(d / 'after')!r}])")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert p.stdout == b"after"
    # Another process gets its own link.
    run(cat, str(d / "again"))
    mnt.umount()
    rows = db_rows(mnt.db, "SELECT path, pid, exe, comm FROM events WHERE kind = 'open' "
                   "AND path GLOB '/exec/*' ORDER BY id")
    assert [(r[0], r[2]) for r in rows] == [("/exec/before", py),
                                           ("/exec/after", os.path.realpath(cat)),
                                           ("/exec/again", os.path.realpath(cat))]
    assert rows[0][1] == rows[1][1], "the execve kept the pid"
    assert rows[1][3] == "cat" and rows[0][3].startswith("python")


# ---------------------------------------------------------------------------
# 2. SIGKILL of the daemon mid-load


def test_sigkill_mid_load_loses_no_returned_open(vault):
    m = vault
    (m.backing / "load").mkdir()
    files = [m.backing / "load" / f"f{i}" for i in range(N_PROCS)]
    for f in files:
        f.write_text("x")
    files = [m.mnt / "load" / f.name for f in files]
    replayed = 0
    for rnd in range(2):
        m.mount()
        w = None
        try:
            pid = int(m.status()["pid"])
            w = Workers(N_PROCS, files)
            # Kill once the load is well under way (and at a different
            # point in each round).
            target = 3000 * (rnd + 1)
            assert wait_for(lambda: w.done() >= target, 60), w.done()
            os.kill(pid, signal.SIGKILL)
            codes = w.wait(timeout=60)
            assert set(codes.values()) == {0}
            # Every worker was stopped by the dead mount, not by anything else.
            errs = {w.error(i) for i in range(N_PROCS)}
            assert errs <= {errno.ENOTCONN, errno.ECONNABORTED}, errs
            assert wait_for(lambda: ended(pid), 10)
        finally:
            if w:
                w.stop()
            m.umount()  # detaches the dead mount
        before = opens_by_pid(m.db, "/load/*")
        # The next mount replays the journal the killed daemon left.
        with mounted(m):
            pass
        after = opens_by_pid(m.db, "/load/*")
        for i, wpid in enumerate(w.pids):
            done = w.done(i)
            got = after.get(wpid, 0)
            # Every open that returned is there; at most the one open in
            # flight at the kill is there too, and nothing twice.
            assert done <= got <= done + 1, (rnd, i, done, got)
        replayed += sum(after.values()) - sum(before.values())
    # The journal did its job: rows that had not reached SQLite at the kill
    # were added by the replay.
    assert replayed > 0
    n = db_rows(m.db, "SELECT count(*) FROM events")[0][0]
    r = verify(m.db)
    assert r.returncode == 0 and f"ok: {n} rows verified" in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------------------
# 3. a full or read-only db, with --audit-failure=closed and =open

# The db's filesystem holds the 16 MiB journal (allocated up front) and,
# once repaired, room for every row the journal kept (large rows, indexed).
DB_FS_SIZE = "160m"
# The journal lives next to the db, in that small file system, and must be
# small enough to leave room for the rows it holds (3,000-character paths,
# indexed forwards and reversed, and again in the WAL).
SMALL_JOURNAL = ("--audit-journal-size", "16")


def probe_immutable(path):
    """Skips unless this filesystem refuses writes to an immutable file
    through a descriptor opened before (ext4, xfs and btrfs do; tmpfs not)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        run("chattr", "+i", path)
        try:
            os.pwrite(fd, b"x", 0)
            enforced = False
        except PermissionError:
            enforced = True
        run("chattr", "-i", path)
    finally:
        os.close(fd)
        os.unlink(path)
    if not enforced:
        pytest.skip(f"{path.parent}: open files stay writable after chattr +i")


def write_error(m, how):
    """The writer's error (shown by `wardfs status`) when the db is broken."""
    if how == "ro":  # the writer's check of the files' attributes says it first
        return (f"audit database '{m.db}' is immutable (chattr +i): rows cannot be "
                "written; make it writable again (chattr -i -a)")
    return f"cannot write to audit database '{m.db}': database or disk is full"


@contextlib.contextmanager
def broken_db(m, how):
    """Puts m's db in a directory where, inside the block, SQLite writes fail:
    how="full": a small tmpfs filled up (ENOSPC); how="ro": the db and its
    WAL made immutable (writes fail with EPERM even for root). The daemon's
    journal and the -shm mapping are left alone (they are memory mappings; an
    immutable -shm is test_immutable_db_wal_shm_do_not_kill_the_mount's).
    Yields a function that breaks the db, then one that repairs it."""
    dbdir = m.base / "dbdir"
    stack = contextlib.ExitStack()
    with stack:
        if how == "full":
            stack.enter_context(tmpfs(dbdir, DB_FS_SIZE))
        else:
            dbdir.mkdir()
        m.db = dbdir / "audit.db"
        filler = dbdir / "filler"
        immutable = [m.db, dbdir / "audit.db-wal"]
        if how == "ro":
            probe_immutable(dbdir / "probe")

        def break_it():
            if how == "full":
                fill(filler)
            else:
                # one chattr for both: a commit between two would fail with
                # another error than the one the test expects
                run("chattr", "+i", *immutable)

        def repair():
            if how == "full":
                filler.unlink(missing_ok=True)
            else:
                for p in immutable:
                    if p.exists():
                        run("chattr", "-i", p)

        stack.callback(repair)
        yield break_it, repair


def open_until_error(path, limit, seconds):
    """Opens path until an open fails; returns (opens that returned, error)."""
    end = time.time() + seconds
    n = 0
    while n < limit and time.time() < end:
        try:
            open_close(path)
        except OSError as e:
            return n, e
        n += 1
    return n, None


@pytest.mark.parametrize("how", ["full", "ro"])
def test_failure_closed_refuses_opens(vault, how):
    m = vault
    (m.backing / "f").write_text("x")
    with broken_db(m, how) as (break_it, repair):
        with mounted(m, *SMALL_JOURNAL):
            ok = 0
            for _ in range(50):
                open_close(m.mnt / "f")
                ok += 1
            t = time.time()
            break_it()
            # Opens keep being served until the writer's next commit fails,
            # then every open is refused.
            n, e = open_until_error(m.mnt / "f", 10**6, 60)
            ok += n
            assert e is not None, f"{n} opens served on a {how} db"
            assert e.errno == errno.EACCES
            for _ in range(20):
                with pytest.raises(PermissionError):
                    open_close(m.mnt / "f")
            # A refused open has no effect: O_TRUNC does not truncate, O_CREAT
            # does not create.
            with pytest.raises(PermissionError):
                open_close(m.mnt / "f", os.O_WRONLY | os.O_TRUNC)
            assert (m.backing / "f").read_text() == "x"
            with pytest.raises(PermissionError):
                open_close(m.mnt / "new", os.O_WRONLY | os.O_CREAT)
            assert not (m.backing / "new").exists()
            # ... and the daemon says why, in its status and its log (not
            # once per refused open). A commit that raced the chattr fails
            # as "disk I/O error" from SQLite; the writer then checks the
            # files' attributes and says why, before any open is refused.
            why = write_error(m, how)
            assert wait_for(lambda: m.status()["audit-last-error"] == why, 10), m.status()
            refused = [line for line in m.logtext().splitlines()
                       if "cannot record the open of '/f'" in line]
            assert refused and all(why in line and "refusing it" in line for line in refused)
            assert len(refused) <= 2 + time.time() - t, refused
            # Once the db can be written again, opens are served again and
            # the rows the journal kept meanwhile reach the db.
            repair()
            assert wait_for(lambda: open_until_error(m.mnt / "f", 1, 1)[1] is None, 10)
            ok += 1
            for _ in range(10):
                open_close(m.mnt / "f")
                ok += 1
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
        # Exactly the opens that were served are recorded: none of the
        # refused ones, none of the served ones lost.
        rows = db_rows(m.db, "SELECT decision, errno, count(*) FROM events WHERE path = '/f' "
                       "AND kind = 'open' GROUP BY 1, 2")
        assert rows == [("allow", 0, ok)]
        assert verify(m.db).returncode == 0


def assert_rows_are_opens_minus_lost(m, f, n, lost):
    """Every served open of backing file f is a row, except exactly the
    ones counted lost; and the chain still verifies."""
    rel = "/" + str(f.relative_to(m.backing))
    got = db_rows(m.db, "SELECT count(*) FROM events WHERE path = ? AND kind = 'open'",
                  (rel,))[0][0]
    assert got == n - lost, (n, lost, got)
    assert verify(m.db).returncode == 0


@pytest.mark.parametrize("how", ["full", "ro"])
def test_failure_open_serves_and_counts_lost(vault, how):
    m = vault
    f = long_path(m.backing)
    path = m.mnt / f.relative_to(m.backing)
    with broken_db(m, how) as (break_it, repair):
        with mounted(m, "--audit-failure=open", *SMALL_JOURNAL):
            for _ in range(20):
                open_close(path)
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
            break_it()
            # Every open is served; once the journal is full the rows that
            # find no room are counted as lost.
            n = 20
            t = time.time()
            while status_int(m, "audit-lost") == 0:
                for _ in range(500):
                    open_close(path)
                    n += 1
                assert time.time() - t < 120 and n < 200000, n
            # Serving goes on at full speed: a lost row does not make the
            # open wait for the writer.
            t = time.time()
            for _ in range(200):
                open_close(path)
                n += 1
            slow = time.time() - t
            st = m.status()
            lost = int(st["audit-lost"])
            assert 0 < lost < n
            assert st["audit-last-error"] == write_error(m, how), st
            assert slow < 20, f"200 opens took {slow:.1f}s with the journal full"
            repair()
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 30), m.status()
            assert status_int(m, "audit-lost") == lost
        assert_rows_are_opens_minus_lost(m, f, n, lost)


def test_writer_recovers_when_little_space_is_freed(vault):
    """After a disk-full episode, freeing less room than one big batch of
    rows needs must still let the writer make progress (smaller batches),
    not leave it retrying the same large transaction for ever."""
    m = vault
    f = long_path(m.backing)
    path = m.mnt / f.relative_to(m.backing)
    with broken_db(m, "full") as (break_it, repair):
        filler = m.base / "dbdir" / "filler"
        with mounted(m, "--audit-failure=open", *SMALL_JOURNAL):
            open_close(path)
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
            break_it()
            n = 1
            for _ in range(3000):  # ~10 MB of rows wait in the journal
                open_close(path)
                n += 1
            assert wait_for(lambda: m.status()["audit-last-error"] != "none", 10)
            pending = status_int(m, "audit-pending")
            assert pending > 1000, m.status()
            # 2 MiB: room for a few hundred of these rows, not for 3,000
            os.truncate(filler, filler.stat().st_size - (2 << 20))
            assert wait_for(lambda: status_int(m, "audit-pending") < pending, 20), m.status()
            repair()
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 30), m.status()
            lost = status_int(m, "audit-lost")
        assert_rows_are_opens_minus_lost(m, f, n, lost)


def test_unwritable_db_at_mount_is_refused(vault):
    m = vault
    dbdir = m.base / "rodb"
    dbdir.mkdir()
    m.db = dbdir / "audit.db"
    with mounted(m):
        pass
    ro = m.base / "rodb-ro"
    ro.mkdir()
    run("mount", "--bind", "-o", "ro", dbdir, ro)
    try:
        m.db = ro / "audit.db"
        for mode in ("closed", "open"):
            r = m.mount(f"--audit-failure={mode}", check=False)
            assert r.returncode != 0
            assert not is_mounted(m.mnt)
            assert str(m.db) in r.stderr, r.stderr
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# ---------------------------------------------------------------------------
# 4. tamper evidence: verify and prune

COLS = ("time_ns, mount, kind, path, flags, access, flag_names, class, form, decision, "
        "errno, rule, uid, gid, pid, comm, exe, detail, mac")


def make_rows(m, n=20):
    """n opens of a few files through a real mount; returns the row count."""
    with mounted(m):
        for i in range(n):
            open_close(m.mnt / f"f{i % 4}")
    return db_rows(m.db, "SELECT count(*) FROM events")[0][0]


def copy_db(m, name):
    """A consistent copy of m's db (its key stays where it is)."""
    dst = m.base / name
    src = sqlite3.connect(f"file:{m.db}?mode=ro", uri=True)
    out = sqlite3.connect(str(dst))
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()
    return dst


def assert_bad(db, m, first_bad, word):
    r = verify(db, "--key", f"{m.db}.key")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"first bad row: {first_bad}\n" == r.stdout, r.stdout + r.stderr
    assert word in r.stderr, r.stderr
    return r.stderr


def test_verify_detects_edited_deleted_inserted_rows(vault):
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    n = make_rows(m)
    assert n >= 22  # mount, 20 opens, unmount
    r = verify(m.db)
    assert r.returncode == 0 and r.stdout == f"ok: {n} rows verified\n", r.stdout + r.stderr
    k = n // 2

    # Each kind of tampering, on its own copy, made with plain SQL.
    db = copy_db(m, "edited.db")
    db_exec(db, f"UPDATE events SET uid = 4242 WHERE id = {k}")
    assert_bad(db, m, k, "edited")
    db = copy_db(m, "edited-path.db")
    db_exec(db, f"UPDATE events SET path = '/innocent' WHERE id = {k + 1}")
    assert_bad(db, m, k + 1, "edited")

    db = copy_db(m, "deleted.db")
    db_exec(db, f"DELETE FROM events WHERE id = {k}")
    assert_bad(db, m, k, "deleted")
    db = copy_db(m, "deleted-last.db")
    db_exec(db, f"DELETE FROM events WHERE id = {n}")
    assert_bad(db, m, n, "deleted")
    db = copy_db(m, "deleted-many.db")
    db_exec(db, f"DELETE FROM events WHERE id >= {k}")
    assert_bad(db, m, k, "deleted")

    # Inserted at the end (a copy of a genuine row, MAC and all) ...
    db = copy_db(m, "inserted-end.db")
    db_exec(db, f"INSERT INTO events ({COLS}) SELECT {COLS} FROM events WHERE id = {k}")
    assert_bad(db, m, n + 1, "inserted")
    # ... in the middle, the later rows renumbered to make room ...
    db = copy_db(m, "inserted-mid.db")
    db_exec(db, f"UPDATE events SET id = -id WHERE id >= {k}",
            "UPDATE events SET id = 1 - id WHERE id < 0",
            f"INSERT INTO events (id, {COLS}) SELECT {k}, time_ns, mount, kind, '/forged', "
            f"flags, access, flag_names, class, form, decision, errno, rule, uid, gid, pid, "
            f"comm, exe, detail, mac FROM events WHERE id = {k - 1}")
    assert_bad(db, m, k, "inserted")
    # ... and without a MAC.
    db = copy_db(m, "inserted-nomac.db")
    db_exec(db, f"UPDATE events SET id = -id WHERE id >= {k}",
            "UPDATE events SET id = 1 - id WHERE id < 0",
            f"INSERT INTO events (id, {COLS}) SELECT {k}, time_ns, mount, kind, path, "
            f"flags, access, flag_names, class, form, decision, errno, rule, uid, gid, pid, "
            f"comm, exe, detail, NULL FROM events WHERE id = {k - 1}")
    assert_bad(db, m, k, "inserted")

    # A tampered chain head, or a key other than the db's, is no better.
    db = copy_db(m, "head.db")
    db_exec(db, f"UPDATE chain SET last_id = {n - 1}")
    assert verify(db, "--key", f"{m.db}.key").returncode == 1
    other = m.base / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    assert verify(m.db, "--key", other).returncode == 1
    # The untouched original still verifies.
    assert verify(m.db).returncode == 0


def test_prune_keeps_the_chain_verifiable(vault):
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    old = make_rows(m, 12)
    time.sleep(1.1)
    mid = time.time()
    time.sleep(1.1)
    # Rows made later are kept; so are rows a running daemon adds meanwhile.
    make_rows(m, 8)
    total = db_rows(m.db, "SELECT count(*) FROM events")[0][0]
    assert db_rows(m.db, "SELECT count(*) FROM events WHERE time_ns < ?",
                   (int(mid * 1e9),))[0][0] == old

    # A tampered row among those to prune: prune refuses to erase it.
    db = copy_db(m, "tampered.db")
    shutil.copy(f"{m.db}.key", f"{db}.key")
    db_exec(db, "UPDATE events SET pid = 1 WHERE id = 3")
    age = f"{math.ceil(time.time() - mid)}s"
    r = wardfs("audit", "prune", "--db", db, "--older-than", age, check=False)
    assert r.returncode == 1 and "refusing to prune" in r.stderr, r.stdout + r.stderr
    assert db_rows(db, "SELECT count(*) FROM events")[0][0] == total

    with mounted(m):
        open_close(m.mnt / "f0")  # a live daemon writing to the same db
        age = f"{math.ceil(time.time() - mid)}s"
        r = wardfs("audit", "prune", "--db", m.db, "--older-than", age)
        assert r.stdout == f"pruned {old} rows; the chain is anchored at row {old}\n", r.stdout
        open_close(m.mnt / "f1")
    rows = db_rows(m.db, "SELECT min(id), count(*) FROM events")[0]
    assert rows == (old + 1, total + 4 - old)  # + mount, 2 opens, unmount
    r = verify(m.db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == (f"ok: {total + 4 - old} rows verified (after the prune anchor at "
                        f"row {old})\n"), r.stdout
    # Nothing more is old enough; a second prune changes nothing.
    age = f"{math.ceil(time.time() - mid)}s"
    r = wardfs("audit", "prune", "--db", m.db, "--older-than", age)
    assert r.stdout == "nothing to prune\n"
    assert verify(m.db).returncode == 0

    # The anchor does not hide tampering with what remains ...
    db = copy_db(m, "pruned-deleted.db")
    db_exec(db, f"DELETE FROM events WHERE id = {old + 1}")
    assert_bad(db, m, old + 1, "deleted")
    db = copy_db(m, "pruned-edited.db")
    db_exec(db, f"UPDATE events SET uid = uid + 1 WHERE id = {old + 3}")
    assert_bad(db, m, old + 3, "edited")
    # ... nor rows put back before it, nor a forged anchor.
    db = copy_db(m, "pruned-readded.db")
    db_exec(db, f"INSERT INTO events (id, {COLS}) SELECT {old}, {COLS} FROM events "
            f"WHERE id = {old + 1}")
    assert_bad(db, m, old, "inserted")
    db = copy_db(m, "pruned-anchor.db")
    db_exec(db, "UPDATE anchors SET pruned_to = pruned_to - 1")
    assert verify(db, "--key", f"{m.db}.key").returncode == 1


# ---------------------------------------------------------------------------
# 5. queries, tail and stats against rows made by real opens


def iso(ns):
    s, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{frac:09d}Z"


class QueryDb:
    """What the qdb fixture did (and the db it did it to)."""


@pytest.fixture(scope="module")
def qdb(test_user):
    """A db filled through two mounts sharing it, in two batches 3 s apart,
    by root, the test user, a copied binary and a process of known pid."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="wardfs-it-q-", dir="/tmp"))
    try:
        yield fill_query_db(base, test_user)
    finally:
        with open("/proc/self/mounts") as f:
            for line in f:
                if line.split()[1].startswith(str(base)):
                    subprocess.run(["umount", "-l", line.split()[1]], check=False)
        shutil.rmtree(base, ignore_errors=True)


def fill_query_db(base, test_user):
    base.chmod(0o755)
    (base / "one").mkdir()
    (base / "two").mkdir()
    m, m2 = Mount(base / "one"), Mount(base / "two")
    m2.db = m.db  # one db serves both mounts
    for x in (m, m2):
        x.base.chmod(0o755)
        x.policy.write_text(DEFAULT_POLICY)
        x.init()
        os.chmod(x.backing, 0o755)
    (m.backing / "pub").mkdir(mode=0o755)
    for name in ("a", "b", "c", "p", "u"):
        (m.backing / "pub" / name).write_text(name)
        os.chmod(m.backing / "pub" / name, 0o644)
    (m.backing / "denied").mkdir()
    (m.backing / "denied" / "f").write_text("no")
    (m.backing / ".netrc").write_text("machine x")
    (m2.backing / "pub").mkdir()
    (m2.backing / "pub" / "two").write_text("2")
    mycat = base / "mycat"
    shutil.copy("/usr/bin/cat", mycat)
    q = QueryDb()
    q.m, q.m2, q.db, q.mycat, q.user = m, m2, m.db, str(mycat), test_user
    q.me = os.getpid()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mounted(m))
        stack.enter_context(mounted(m2))
        # batch A
        for _ in range(5):
            open_close(m.mnt / "pub" / "a")
        for _ in range(3):
            assert run("cat", m.mnt / "pub" / "u", user=True).stdout == "u"
        for p in ("denied/f", "denied/f", ".netrc"):
            with pytest.raises(PermissionError):
                open_close(m.mnt / p)
        (m.mnt / "secret").mkdir()
        (m.mnt / "secret" / "s").write_text("s")  # a create
        for _ in range(2):
            assert (m.mnt / "secret" / "s").read_text() == "s"
        for _ in range(2):
            run(mycat, m.mnt / "pub" / "c")
        p = subprocess.Popen(["cat", str(m.mnt / "pub" / "p")], stdout=subprocess.DEVNULL)
        assert p.wait() == 0
        q.cat_pid = p.pid
        for _ in range(4):
            open_close(m2.mnt / "pub" / "two")
        q.a_end = time.time_ns()
        time.sleep(3)
        # batch B
        q.b_start = time.time_ns()
        for _ in range(150):
            open_close(m.mnt / "pub" / "b", os.O_RDWR | os.O_APPEND)
        run("cat", m.mnt / "pub" / "u", user=True)
    q.mid = (q.a_end + q.b_start) // 2
    q.total = db_rows(q.db, "SELECT count(*) FROM events")[0][0]
    return q


def query(q, *args):
    """`wardfs audit query` to a pipe: JSON Lines by default."""
    r = wardfs("audit", "query", "--db", q.db, *args)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    times = [row["time_ns"] for row in rows]
    assert times == sorted(times)
    return rows


def ids_where(q, cond="1", args=()):
    return [r[0] for r in db_rows(q.db, f"SELECT id FROM events WHERE {cond} "
                                  "ORDER BY time_ns, id", args)]


def opens_of(rows):
    """{path: count} of the open/create rows."""
    out = {}
    for r in rows:
        if r["kind"] in ("open", "create"):
            out[r["path"]] = out.get(r["path"], 0) + 1
    return out


def test_query_default_pipe_output_is_all_rows_as_json(qdb):
    rows = query(qdb)
    assert len(rows) == qdb.total > 150  # no default limit to a pipe
    assert [r["id"] for r in rows] == ids_where(qdb)
    assert opens_of(rows) == {"/pub/a": 5, "/pub/u": 4, "/denied/f": 2, "/.netrc": 1,
                              "/secret/s": 3, "/pub/c": 2, "/pub/p": 1, "/pub/two": 4,
                              "/pub/b": 150}
    kinds = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    assert kinds == {"mount": 2, "unmount": 2, "open": 171, "create": 1}
    b = [r for r in rows if r["path"] == "/pub/b"]
    assert {(r["access"], r["flag_names"], r["flags"] & os.O_APPEND) for r in b} == \
        {("rw", "O_APPEND", os.O_APPEND)}
    create = [r for r in rows if r["kind"] == "create"]
    assert create[0]["path"] == "/secret/s" and "O_CREAT" in create[0]["flag_names"]
    assert create[0]["class"] == "sensitive" and create[0]["access"] == "w"
    # Readable times are the ns times.
    for r in rows[:5]:
        assert r["time"] == iso(r["time_ns"])


def assert_table(lines, paths):
    """An aligned table: a header, then rows whose columns start where the
    header's do (whatever the length of the user name or policy path)."""
    head = lines[0]
    assert head.split()[:3] == ["TIME", "(UTC)", "RESULT"]
    starts = [i for i in range(len(head)) if head[i] != " " and (i == 0 or head[i - 1] == " ")
              and head[i:i + 5] != "(UTC)"]
    names = head.split()
    names.remove("(UTC)")
    assert names == ["TIME", "RESULT", "ACC", "CLASS", "FORM", "USER", "PID", "COMM", "EXE",
                     "RULE", "MOUNT", "PATH"]
    path_col = starts[-1]
    for line in lines[1:]:
        assert line[path_col:].split(" (")[0] in paths, (line, path_col)
        for c in starts[1:]:
            if names[starts.index(c)] == "PID":  # right-aligned under its name
                continue
            assert line[c - 1] == " ", (line, c)


def test_query_formats(qdb):
    js = query(qdb, "--format", "json")
    r = wardfs("audit", "query", "--db", qdb.db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [int(x["id"]) for x in rows] == [x["id"] for x in js]
    for c, j in zip(rows, js):
        assert c["path"] == (j["path"] or "") and c["time"] == j["time"]
        assert int(c["uid"]) == j["uid"] and c["exe"] == (j["exe"] or "")
        assert c["decision"] == j["decision"] and int(c["errno"]) == j["errno"]
    denied = [c for c in rows if c["decision"] == "deny"]
    assert {c["error"] for c in denied} == {"EACCES"}
    r = wardfs("audit", "query", "--db", qdb.db, "--format", "table", "--path", "/pub/[au]")
    lines = r.stdout.splitlines()
    assert len(lines) == 1 + 9
    assert_table(lines, {"/pub/a", "/pub/u"})
    users = [line for line in lines[1:] if line.endswith("/pub/u")]
    assert len(users) == 4 and all(f" {TEST_USER} " in line for line in users)
    assert all(" root " in line for line in lines[1:] if line.endswith("/pub/a"))
    r = wardfs("audit", "query", "--db", qdb.db, "--format", "table", "--denied")
    lines = r.stdout.splitlines()
    assert_table(lines, {"/denied/f", "/.netrc"})
    # The rule column keeps the line number of a long policy path.
    assert all(" EACCES " in line and (":6 " in line or ":7 " in line) for line in lines[1:])
    bad = wardfs("audit", "query", "--db", qdb.db, "--format", "xml", check=False)
    assert bad.returncode == 2 and "xml" in bad.stderr


def test_table_shows_user_names_whole(mnt):
    """Issue 16: the USER column cut long names ("alexandra.k+"). It is as
    wide as the longest local user name, and the table stays aligned."""
    name = "wardfs-test-user-with-long-name"  # 31 bytes, useradd allows 32
    if subprocess.run(["id", name], capture_output=True).returncode:
        run("useradd", "-M", "-s", "/bin/sh", name)
    try:
        os.chmod(mnt.backing, 0o755)
        (mnt.mnt / "pub").mkdir(mode=0o755)
        (mnt.mnt / "pub" / "f").write_text("x")
        os.chmod(mnt.mnt / "pub" / "f", 0o644)
        run("setpriv", f"--reuid={name}", f"--regid={name}", "--clear-groups", "cat",
            mnt.mnt / "pub" / "f")
        assert wait_for(lambda: mnt.status()["audit-pending"] == "0", 10)
        r = wardfs("audit", "query", "--db", mnt.db, "--format", "table", "--path", "/pub/f")
        lines = r.stdout.splitlines()
        assert_table(lines, {"/pub/f"})
        assert any(f" {name} " in line for line in lines[1:]), lines
    finally:
        run("userdel", name, check=False)


def query_on_a_terminal(qdb, columns):
    """`wardfs audit query` on a pty of that width: (lines, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        p = subprocess.Popen([WARDFS, "audit", "query", "--db", str(qdb.db)], stdout=slave,
                             stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        err = p.communicate(timeout=30)[1].decode()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return out.decode().replace("\r\n", "\n").splitlines(), err


def test_query_on_a_terminal_is_a_limited_table(qdb):
    lines, err = query_on_a_terminal(qdb, 250)
    assert lines[0].startswith("TIME (UTC)")
    assert len(lines) == 101  # the newest 100 rows on a terminal
    assert "newest 100 rows" in err
    # The newest rows, oldest first: the last is the second mount's unmount.
    assert "[unmount] / " in lines[-1] and "[unmount] / " in lines[-2]
    assert_table([lines[0]] + lines[1:-2], {"/pub/b", "/pub/u"})
    # EXE and MOUNT columns (their ends), the rule by its file's name (issue 16)
    u = [line for line in lines if "/pub/u" in line]
    assert u and all("/usr/bin/cat" in line for line in u), u
    assert all(str(qdb.m.mnt)[-13:] in line for line in u), u
    assert all(f"{qdb.m.policy.name}:" in line for line in lines if "/denied/f" in line)
    # a narrow terminal: no row wraps, the least needed columns go, PATH stays
    lines, _ = query_on_a_terminal(qdb, 100)
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    head = lines[0].split()
    assert "PATH" in head and "USER" in head and "EXE" in head and "COMM" not in head, head
    assert any(line.rstrip().endswith("/pub/u") for line in lines), lines[:5]


def test_query_limit(qdb):
    all_ids = ids_where(qdb)
    assert [r["id"] for r in query(qdb, "--limit", "7")] == all_ids[-7:]
    assert [r["id"] for r in query(qdb, "--limit", "0")] == all_ids
    a = query(qdb, "--path", "/pub/a", "--limit", "2")
    assert [r["id"] for r in a] == ids_where(qdb, "path = '/pub/a'")[-2:]
    assert wardfs("audit", "query", "--db", qdb.db, "--limit", "-1",
                  check=False).returncode == 2


def test_query_time_filters(qdb):
    all_ids = ids_where(qdb)
    since = query(qdb, "--since", iso(qdb.mid))
    until = query(qdb, "--until", iso(qdb.mid))
    assert [r["id"] for r in until] + [r["id"] for r in since] == all_ids
    assert opens_of(since) == {"/pub/b": 150, "/pub/u": 1}
    assert {r["kind"] for r in since} == {"open", "unmount"}
    assert opens_of(until)["/pub/u"] == 3 and "/pub/b" not in opens_of(until)
    assert [r["id"] for r in query(qdb, "--since", iso(qdb.mid), "--until",
                                   iso(qdb.b_start + 10**12))] == [r["id"] for r in since]
    # Relative times: an age that falls in the 3 s gap between the batches.
    age = math.ceil((time.time_ns() - qdb.b_start) / 1e9) + 1
    assert [r["id"] for r in query(qdb, "--since", f"{age}s")] == [r["id"] for r in since]
    assert len(query(qdb, "--since", "1h")) == qdb.total
    assert len(query(qdb, "--since", "1d")) == qdb.total
    assert query(qdb, "--until", "1h") == []
    assert query(qdb, "--until", "2000-01-01") == []
    assert len(query(qdb, "--since", "2000-01-01")) == qdb.total
    for bad in ("tomorrow", "2h30", "2026-13-01", "-5m"):
        r = wardfs("audit", "query", "--db", qdb.db, "--since", bad, check=False)
        assert r.returncode == 2 and bad in r.stderr


def test_query_user_uid_pid_exe_filters(qdb):
    uid = qdb.user["uid"]
    u = query(qdb, "--user", TEST_USER)
    assert [r["id"] for r in u] == ids_where(qdb, "uid = ?", (uid,))
    assert opens_of(u) == {"/pub/u": 4} and len(u) == 4
    assert {(r["uid"], r["gid"], r["comm"], r["exe"]) for r in u} == \
        {(uid, qdb.user["gid"], "cat", "/usr/bin/cat")}
    assert query(qdb, "--uid", str(uid)) == u
    assert len(query(qdb, "--uid", "0")) == qdb.total - 4
    assert query(qdb, "--user", TEST_USER, "--since", iso(qdb.mid))[0]["path"] == "/pub/u"
    assert len(query(qdb, "--user", TEST_USER, "--since", iso(qdb.mid))) == 1
    r = wardfs("audit", "query", "--db", qdb.db, "--user", "no-such-user-x", check=False)
    assert r.returncode == 2

    e = query(qdb, "--exe", qdb.mycat)
    assert opens_of(e) == {"/pub/c": 2} and len(e) == 2
    assert {(r["comm"], r["uid"]) for r in e} == {("mycat", 0)}
    assert query(qdb, "--exe", "/usr/bin/mycat") == []

    p = query(qdb, "--pid", str(qdb.cat_pid))
    assert [(r["path"], r["exe"]) for r in p] == [("/pub/p", "/usr/bin/cat")]
    mine = query(qdb, "--pid", str(qdb.me))
    assert opens_of(mine) == {"/pub/a": 5, "/denied/f": 2, "/.netrc": 1, "/secret/s": 3,
                              "/pub/two": 4, "/pub/b": 150}
    assert {r["exe"] for r in mine} == {os.path.realpath(f"/proc/{qdb.me}/exe")}


def test_query_path_class_denied_mount_kind_filters(qdb):
    pub = query(qdb, "--path", "/pub/*")
    assert [r["id"] for r in pub] == ids_where(qdb, "path GLOB '/pub/*'")
    assert opens_of(pub) == {"/pub/a": 5, "/pub/u": 4, "/pub/c": 2, "/pub/p": 1,
                             "/pub/two": 4, "/pub/b": 150}
    assert len(query(qdb, "--path", "/pub/a")) == 5
    assert len(query(qdb, "--path", "/pub/?")) == 5 + 4 + 2 + 1 + 150
    assert len(query(qdb, "--path", "*/two")) == 4
    assert query(qdb, "--path", "/PUB/*") == []  # case-sensitive

    s = query(qdb, "--class", "sensitive")
    assert opens_of(s) == {"/secret/s": 3}
    assert sorted((r["kind"], r["form"]) for r in s) == \
        [("create", "encrypted"), ("open", "encrypted"), ("open", "encrypted")]
    d = query(qdb, "--class", "deny")
    assert opens_of(d) == {"/denied/f": 2, "/.netrc": 1}

    den = query(qdb, "--denied")
    assert [r["id"] for r in den] == ids_where(qdb, "decision = 'deny'")
    assert opens_of(den) == {"/denied/f": 2, "/.netrc": 1}
    policy = str(qdb.m.policy)
    assert {(r["errno"], r["error"], r["class"]) for r in den} == {(errno.EACCES, "EACCES",
                                                                     "deny")}
    assert {r["path"]: r["rule"] for r in den} == {"/denied/f": f"{policy}:7",
                                                   "/.netrc": f"{policy}:6"}
    assert query(qdb, "--denied", "--path", "/pub/*") == []

    one = query(qdb, "--mount", str(qdb.m.mnt))
    two = query(qdb, "--mount", str(qdb.m2.mnt))
    assert len(one) + len(two) == qdb.total
    assert opens_of(two) == {"/pub/two": 4}
    assert {r["kind"] for r in two} == {"mount", "open", "unmount"}
    assert "/pub/two" not in opens_of(one)
    assert query(qdb, "--mount", "/nowhere") == []
    assert len(query(qdb, "--kind", "create")) == 1
    assert len(query(qdb, "--kind", "mount")) == 2


def test_unknown_filter_values_are_errors_not_empty_answers(qdb):
    """Issue 16: --class secret, --kind opne or a path without its leading
    '/' answered nothing, silently. Now an error that says what was meant;
    a trailing '/' on --mount is dropped; --exe takes a basename or a glob."""
    for args, said in [(("--class", "secret"), "unknown class 'secret' (public, sensitive or deny)"),
                       (("--kind", "opne"), "unknown kind 'opne'; did you mean 'open'?"),
                       (("--kind", "nothing-like-it"), "unknown kind 'nothing-like-it' (open,"),
                       (("--path", "pub/a"), "did you mean '/pub/a'?")]:
        r = wardfs("audit", "query", "--db", qdb.db, *args, check=False)
        assert r.returncode == 2 and said in r.stderr, (args, r.stderr)
        assert r.stdout == ""
    assert query(qdb, "--mount", str(qdb.m2.mnt) + "/") == query(qdb, "--mount", str(qdb.m2.mnt))
    assert len(query(qdb, "--mount", str(qdb.m2.mnt) + "//")) > 0
    # --exe: a basename matches the program in any directory; a glob too
    assert query(qdb, "--exe", "mycat") == query(qdb, "--exe", qdb.mycat)
    assert opens_of(query(qdb, "--exe", "cat")) == {"/pub/u": 4, "/pub/p": 1}
    assert opens_of(query(qdb, "--exe", "*cat")) == {"/pub/u": 4, "/pub/p": 1, "/pub/c": 2}
    assert len(query(qdb, "--kind", "chain-break")) == 0  # a kind the writer makes


def test_incremental_export_tail_filters_and_friendly_times(qdb):
    """Issue 16: --after-id N for incremental export; tail takes query's
    filters; --since today/yesterday and times with offsets."""
    every = query(qdb)
    k = every[len(every) // 2]["id"]
    later = query(qdb, "--after-id", str(k))
    assert [r["id"] for r in later] == [r["id"] for r in every if r["id"] > k]
    r = wardfs("audit", "query", "--db", qdb.db, "--after-id", "-3", check=False)
    assert r.returncode == 2 and "bad row id" in r.stderr
    out = wardfs("audit", "tail", "--db", qdb.db, "-n", "3", "--path", "/pub/b",
                 "--format", "json").stdout
    tail = [json.loads(line) for line in out.splitlines()]
    want = [r["id"] for r in every if r["path"] == "/pub/b"][-3:]
    assert [r["id"] for r in tail] == want, (tail, want)
    assert len(query(qdb, "--since", "today")) == qdb.total  # made a moment ago
    assert len(query(qdb, "--since", "yesterday")) == qdb.total
    assert query(qdb, "--until", "yesterday") == []
    utc = iso(qdb.mid)  # "2026-...Z"
    base, _, _ = utc.rstrip("Z").partition(".")
    import datetime
    t = datetime.datetime.fromisoformat(base)
    plus2 = (t + datetime.timedelta(hours=2)).isoformat() + "+02:00"
    assert query(qdb, "--since", plus2) == query(qdb, "--since", base + "Z")


def test_tail_and_stats(qdb):
    all_ids = [r[0] for r in db_rows(qdb.db, "SELECT id FROM events ORDER BY id")]
    r = wardfs("audit", "tail", "--db", qdb.db, "-n", "5")
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == all_ids[-5:]
    r = wardfs("audit", "tail", "--db", qdb.db)
    assert len(r.stdout.splitlines()) == 10
    r = wardfs("audit", "tail", "--db", qdb.db, "-n", "3", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(r.stdout)))) == 3

    r = wardfs("audit", "stats", "--db", qdb.db)  # JSON Lines to a pipe
    st = [json.loads(line) for line in r.stdout.splitlines()]
    totals = [s for s in st if s["section"] == "totals"]
    opens = db_rows(qdb.db, "SELECT count(*) FROM events WHERE kind IN ('open', 'create')")[0][0]
    assert opens < qdb.total  # mounts and unmounts are rows, not opens (issue 16)
    assert totals == [{"section": "totals", "rows": qdb.total, "denied": 3,
                       "first": iso(db_rows(qdb.db, "SELECT min(time_ns) FROM events")[0][0]),
                       "last": iso(db_rows(qdb.db, "SELECT max(time_ns) FROM events")[0][0]),
                       "opens": opens, "opens_denied": 3}]
    # named fields, not tab-joined keys (issue 16)
    first = {}
    for s in st:
        first.setdefault(s["section"], s)
    assert first["paths"]["path"] == "/pub/b" and first["programs"]["exe"]
    assert {(s.get("uid"), s.get("user")) for s in st if s["section"] == "users"} >= \
        {(qdb.user["uid"], TEST_USER), (0, "root")}
    den = [(s["path"], s["exe"]) for s in st if s["section"] == "denied"]
    assert sorted(den) == [("/.netrc", os.path.realpath(f"/proc/{qdb.me}/exe")),
                           ("/denied/f", os.path.realpath(f"/proc/{qdb.me}/exe"))]
    r = wardfs("audit", "stats", "--db", qdb.db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0] == {"section": "totals", "path": "", "exe": "", "uid": "", "user": "",
                       "count": str(opens), "denied": "3"}, rows[0]
    assert {"section": "users", "path": "", "exe": "", "uid": str(qdb.user["uid"]),
            "user": TEST_USER, "count": "4", "denied": "0"} in rows
    sec = {}
    for s in st:
        if s["section"] != "totals":
            sec.setdefault(s["section"], []).append((s["key"], s["count"], s["denied"]))
    assert sec["paths"][0] == ("/pub/b", 150, 0)
    # mount and unmount rows count in the totals, not as opens of "/" by nobody
    assert db_rows(qdb.db, "SELECT count(*) FROM events WHERE kind = 'mount'")[0][0] > 0
    assert "/" not in [k for k, _, _ in sec["paths"]]
    assert "" not in [k for k, _, _ in sec["programs"]]
    assert ("/denied/f", 2, 2) in sec["paths"] and ("/pub/u", 4, 0) in sec["paths"]
    assert (str(qdb.user["uid"]), 4, 0) in sec["users"]
    assert ("/usr/bin/cat", 5, 0) in sec["programs"]
    assert (qdb.mycat, 2, 0) in sec["programs"]
    me = os.path.realpath(f"/proc/{qdb.me}/exe")
    assert sorted(sec["denied"]) == [(f"/.netrc\t{me}", 1, 1), (f"/denied/f\t{me}", 2, 2)]
    # A window, and the number of entries per section.
    r = wardfs("audit", "stats", "--db", qdb.db, "--since", iso(qdb.mid), "--top", "1")
    st = [json.loads(line) for line in r.stdout.splitlines()]
    assert st[0]["rows"] == len(query(qdb, "--since", iso(qdb.mid)))
    assert [(s["section"], s["key"]) for s in st[1:]] == [
        ("paths", "/pub/b"), ("programs", me), ("users", "0")]
    r = wardfs("audit", "stats", "--db", qdb.db, "--format", "table")
    assert "top paths:" in r.stdout and "top denied opens:" in r.stdout
    assert f"{qdb.user['uid']} ({TEST_USER})" in r.stdout


def test_tail_follow_shows_new_rows(mnt):
    (mnt.mnt / "before").write_text("x")
    time.sleep(0.2)
    p = subprocess.Popen([WARDFS, "audit", "tail", "-f", "-n", "0", "--db", str(mnt.db),
                          "--format", "json"], stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        open_close(mnt.mnt / "before")
        (mnt.mnt / "after").write_text("y")
        out = b""
        end = time.time() + 15
        while time.time() < end and out.count(b"\n") < 2:
            if select.select([p.stdout], [], [], 0.5)[0]:
                out += os.read(p.stdout.fileno(), 65536)
        seen = [json.loads(line) for line in out.splitlines()]
        assert [(r["kind"], r["path"]) for r in seen] == [("open", "/before"),
                                                           ("create", "/after")]
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) == 0


# ---------------------------------------------------------------------------
# 6. hostile names: what users name files must not drive the admin's terminal

FORGED_DIR = (b"x\r\x1b[2K2026-11-25 10:00:00.000 allow   r   sensitive encrypted  alice"
              b"\x1b]0;owned\x07\xff\xc2\x9b\\")


def controls(data):
    """The terminal-control bytes (C0 but newline, DEL, and the UTF-8 of C1)
    in a command's output."""
    bad = [b for b in data if b < 0x20 and b != 0x0a or b == 0x7f]
    return bad + [data[i + 1] for i in range(len(data) - 1)
                  if data[i] == 0xc2 and 0x80 <= data[i + 1] <= 0x9f]


def test_hostile_names_are_escaped_in_every_format(mnt):
    d = os.path.join(bytes(mnt.mnt), FORGED_DIR)
    os.mkdir(d)
    os.mkdir(os.path.join(d, b".ssh"))
    with open(os.path.join(d, b".ssh", b"id_rsa"), "wb") as f:
        f.write(b"k")
    rel = b"/" + FORGED_DIR + b"/.ssh/id_rsa"
    mnt.umount()
    db = str(mnt.db)
    esc = ("/x\\r\\x1b[2K2026-11-25 10:00:00.000 allow   r   sensitive encrypted  alice"
           "\\x1b]0;owned\\x07\\xff\\u009b\\\\/.ssh/id_rsa")

    def out(*args):
        r = subprocess.run([WARDFS, "audit", *args, "--db", db], capture_output=True,
                           check=True)
        assert controls(r.stdout) == [], r.stdout
        return r.stdout.decode()

    table = out("query", "--format", "table", "--path", "/x*")
    lines = table.splitlines()
    assert len(lines) == 2 and lines[1].endswith(" " + esc + " (O_CREAT|O_TRUNC)"), lines
    tail = out("tail", "--format", "table", "-n", "3")
    assert esc in tail
    stats = out("stats", "--format", "table")
    assert esc in stats
    rows = list(csv.DictReader(io.StringIO(out("query", "--format", "csv"))))
    assert [r["path"] for r in rows if r["kind"] == "create"] == [esc]
    js = [json.loads(line) for line in out("query", "--format", "json").splitlines()]
    paths = [r["path"] for r in js if r["kind"] == "create"]
    # JSON keeps every byte: an invalid one as a lone surrogate (surrogateescape)
    assert [p.encode("utf-8", "surrogateescape") for p in paths] == [rel]
    st = [json.loads(line) for line in out("stats", "--format", "json").splitlines()]
    assert rel in [s["key"].encode("utf-8", "surrogateescape") for s in st
                   if s["section"] == "paths"]


# ---------------------------------------------------------------------------
# 7. a database that is not wardfs's


def test_foreign_db_is_refused_not_filled(vault):
    m = vault
    m.db = m.base / "app.db"
    con = sqlite3.connect(str(m.db))
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO accounts VALUES (1, 'alice')")
    con.commit()
    con.close()
    before = m.db.read_bytes()
    for mode in ("closed", "open"):
        r = m.mount(f"--audit-failure={mode}", check=False)
        assert r.returncode != 0 and not is_mounted(m.mnt)
        msg = [line for line in r.stderr.splitlines() if "not a wardfs audit database" in line]
        assert len(msg) == 1 and str(m.db) in msg[0], r.stderr
    r = wardfs("audit", "prune", "--db", m.db, "--older-than", "1d", check=False)
    assert r.returncode == 1 and str(m.db) in r.stderr
    assert "not a wardfs audit database" in r.stderr, r.stderr
    assert m.db.read_bytes() == before
    # prune on an empty file does not make it an audit db; a mount does
    empty = m.base / "empty.db"
    empty.touch()
    r = wardfs("audit", "prune", "--db", empty, "--older-than", "1d", check=False)
    assert r.returncode == 1 and f"'{empty}' is not a wardfs audit database" in r.stderr
    assert empty.stat().st_size == 0
    m.db = empty
    with mounted(m):
        pass
    assert verify(m.db).returncode == 0


# ---------------------------------------------------------------------------
# 8. the newest rows deleted with the chain head


def test_deleted_newest_rows_and_head_are_reported(vault):
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    n = make_rows(m)
    # The last 5 rows and the head that named them, deleted offline ...
    db_exec(m.db, f"DELETE FROM events WHERE id > {n - 5}", "DELETE FROM chain")
    r = verify(m.db)
    assert r.returncode == 1 and r.stdout == f"first bad row: {n - 4}\n", r.stdout + r.stderr
    assert "chain head is missing" in r.stderr, r.stderr
    with mounted(m):
        open_close(m.mnt / "f0")
        assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
        # ... the next mount does not re-chain quietly: it records the break.
        assert db_rows(m.db, "SELECT id, kind FROM events WHERE id = ?", (n - 4,)) == \
            [(n - 4, "chain-break")]
        top = db_rows(m.db, "SELECT max(id) FROM events")[0][0]
        # And live, under the running writer: the same again.
        db_exec(m.db, f"DELETE FROM events WHERE id > {top - 2}", "DELETE FROM chain")
        open_close(m.mnt / "f1")
        assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
        live = db_rows(m.db, "SELECT id, detail FROM events WHERE kind = 'chain-break' "
                       "ORDER BY id")
        assert [i for i, _ in live] == [n - 4, top - 1], live
        assert all("chain head is missing" in d for _, d in live), live
        assert "recorded a chain-break row" in m.logtext()
    r = verify(m.db)
    assert r.returncode == 1 and r.stdout == f"first bad row: {n - 4}\n", r.stdout + r.stderr
    assert "chain break" in r.stderr and "chain head is missing" in r.stderr, r.stderr
    # The table shows the break like any row the daemon writes.
    q = wardfs("audit", "query", "--db", m.db, "--kind", "chain-break", "--format", "table")
    assert len(q.stdout.splitlines()) == 3 and "[chain-break] " in q.stdout, q.stdout


# ---------------------------------------------------------------------------
# 9. open mode on a full audit file system: losses are logged and recorded

LOST_LINE = "audit rows lost since the last message"


def test_failure_open_logs_and_records_lost_rows(vault):
    m = vault
    f = long_path(m.backing)
    path = m.mnt / f.relative_to(m.backing)
    with broken_db(m, "full") as (break_it, repair):
        with mounted(m, "--audit-failure=open", *SMALL_JOURNAL):
            open_close(path)
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
            break_it()
            n, t = 1, time.time()
            while status_int(m, "audit-lost") == 0:
                for _ in range(500):
                    open_close(path)
                    n += 1
                assert time.time() - t < 120, n
            # Keep losing rows for 3 s: a line a second at most, with counts.
            t = time.time()
            while time.time() - t < 3:
                for _ in range(100):
                    open_close(path)
                    n += 1
            assert wait_for(lambda: LOST_LINE in m.logtext().splitlines()[-1], 3)
            lost = status_int(m, "audit-lost")
            lines = [ln for ln in m.logtext().splitlines() if LOST_LINE in ln]
            assert 2 <= len(lines) <= 2 + time.time() - t + 3, lines
            counts = [int(ln.split("wardfs: ")[1].split()[0]) for ln in lines]
            totals = [int(ln.split("(")[1].split()[0]) for ln in lines]
            assert totals == sorted(totals) and sum(counts) == totals[-1] <= lost, lines
            assert all("database or disk is full" in ln for ln in lines), lines
            repair()
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 30), m.status()
            assert status_int(m, "audit-lost") == lost
        rows = db_rows(m.db, "SELECT detail FROM events WHERE kind = 'lost'")
        assert len(rows) == 1 and rows[0][0].startswith(f"{lost} audit rows lost ("), rows
        assert "database or disk is full" in rows[0][0]
        assert_rows_are_opens_minus_lost(m, f, n, lost)


# ---------------------------------------------------------------------------
# 10. the db deleted while mounted


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_db_deleted_while_mounted_is_a_write_failure(vault, mode):
    m = vault
    (m.backing / "f").write_text("x")
    with mounted(m, f"--audit-failure={mode}"):
        for _ in range(5):
            open_close(m.mnt / "f")
        assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(f"{m.db}{suffix}").unlink(missing_ok=True)
        why = f"audit database '{m.db}' was deleted while in use"
        if mode == "closed":
            # Refused within a writer interval or two, not served into a
            # file no one will ever read.
            n, e = open_until_error(m.mnt / "f", 10**6, 10)
            assert e is not None and e.errno == errno.EACCES, n
            served = n
        else:
            served = 0
            for _ in range(50):
                open_close(m.mnt / "f")
                served += 1
            assert wait_for(lambda: why in m.status()["audit-last-error"], 5)
            assert status_int(m, "audit-pending") > 0  # kept in the journal
        st = m.status()
        assert why in st["audit-last-error"], st
        assert why in m.logtext()
    # The next mount starts a new db, and the rows the journal kept reach it;
    # verify says that the vault's earlier rows are not in it.
    assert not m.db.exists()
    with mounted(m):
        pass
    got = db_rows(m.db, "SELECT count(*) FROM events WHERE path = '/f' AND kind = 'open'")
    assert got == [(served,)], (served, got)
    r = verify(m.db)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "younger than the one this vault wrote to before" in r.stderr, r.stderr


def test_verify_says_when_the_db_is_younger_than_the_vault(vault):
    """Issue 22.8: a database deleted between mounts is replaced by a fresh
    one that verified "ok" from its first row. The vault remembers its
    database's identity; a new one is a chain-break row that verify reports.
    A database moved (same identity) is not."""
    m = vault
    (m.backing / "f").write_text("x")
    with mounted(m):
        open_close(m.mnt / "f")
    first = db_rows(m.db, "SELECT v FROM meta WHERE k = 'db_id'")[0][0]
    record = (m.backing / ".wardfs" / "audit-db").read_text()
    assert f"id {first}\n" in record and f"path {m.db}\n" in record, record
    assert stat.S_IMODE((m.backing / ".wardfs" / "audit-db").stat().st_mode) == 0o600
    r = verify(m.db)
    assert r.returncode == 0, r.stdout + r.stderr

    # Moved: the same database under another name; nothing to report.
    moved = m.db.with_name("moved.db")
    os.rename(m.db, moved)
    os.rename(f"{m.db}.key", f"{moved}.key")
    m.db = moved
    with mounted(m):
        open_close(m.mnt / "f")
    r = verify(m.db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"path {moved}\n" in (m.backing / ".wardfs" / "audit-db").read_text()

    # Deleted between mounts (the key kept): a fresh database.
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(f"{m.db}{suffix}").unlink(missing_ok=True)
    with mounted(m):
        open_close(m.mnt / "f")
    second = db_rows(m.db, "SELECT v FROM meta WHERE k = 'db_id'")[0][0]
    assert second != first
    rows = db_rows(m.db, "SELECT id, detail FROM events WHERE kind = 'chain-break'")
    assert len(rows) == 1, rows
    assert first in rows[0][1] and second in rows[0][1] and str(moved) in rows[0][1], rows
    assert "younger than the one this vault wrote to before" in m.logtext()
    r = verify(m.db)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"row {rows[0][0]}: a chain break was recorded: this audit database" in r.stderr
    assert "younger than" in r.stderr, r.stderr

    # Told once: the record now names the new database.
    with mounted(m):
        pass
    assert len(db_rows(m.db, "SELECT id FROM events WHERE kind = 'chain-break'")) == 1

    # An unreadable record is a chain break too (then it is rewritten).
    (m.backing / ".wardfs" / "audit-db").write_text("garbage\n")
    with mounted(m):
        pass
    rows = db_rows(m.db, "SELECT detail FROM events WHERE kind = 'chain-break'")
    assert len(rows) == 2 and "is unreadable" in rows[1][0], rows
    assert f"id {second}\n" in (m.backing / ".wardfs" / "audit-db").read_text()


# ---------------------------------------------------------------------------
# 11. the db, its WAL and its -shm made immutable (issue 22.7)


@contextlib.contextmanager
def immutable_later(paths):
    """Yields a function that makes paths immutable; always undoes it."""
    made = []

    def freeze():
        for p in paths:
            run("chattr", "+i", p)
            made.append(p)

    try:
        yield freeze
    finally:
        for p in made:
            if p.exists():
                subprocess.run(["chattr", "-i", str(p)], check=False)


def open_or_errno(path):
    try:
        open_close(path)
        return 0
    except OSError as e:
        return e.errno


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_immutable_db_wal_shm_do_not_kill_the_mount(vault, mode):
    """SQLite stores into its -shm through a shared mapping: once that page
    has been written back, a store into an immutable -shm is a SIGBUS. The
    daemon must survive it, treat it like any other write failure, and
    write again once the files are mutable."""
    m = vault
    probe_immutable(m.base / "probe")
    f = long_path(m.backing)
    path = m.mnt / f.relative_to(m.backing)
    files = [m.db, pathlib.Path(f"{m.db}-wal"), pathlib.Path(f"{m.db}-shm")]
    with immutable_later(files) as freeze:
        with mounted(m, f"--audit-failure={mode}", *SMALL_JOURNAL):
            n = 0
            for _ in range(2000):  # a burst, drained
                open_close(path)
                n += 1
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 20), m.status()
            assert all(p.exists() for p in files)
            run("sync")  # written back: the next store into -shm faults
            freeze()
            run("sync")
            errs = {}
            t = time.time()
            while time.time() - t < 6 or (mode == "open" and status_int(m, "audit-lost") == 0):
                for _ in range(200):
                    e = open_or_errno(path)
                    errs[e] = errs.get(e, 0) + 1
                    n += e == 0
                assert errno.ENOTCONN not in errs and errno.ECONNABORTED not in errs, \
                    (errs, m.logtext()[-2000:])
                assert time.time() - t < 120, errs
            st = m.status()  # the daemon answers
            assert "immutable" in st["audit-last-error"], st
            if mode == "closed":
                assert errs.get(errno.EACCES, 0) > 0, errs
                assert open_or_errno(path) == errno.EACCES
            else:
                assert set(errs) == {0}, errs
                assert status_int(m, "audit-lost") > 0
            for p in files:
                run("chattr", "-i", p)
            # Rows flow again: the journal drains, opens are served.
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 30), m.status()
            lost = status_int(m, "audit-lost")
            assert wait_for(lambda: open_or_errno(path) == 0, 10), m.status()
            n += 1
            for _ in range(20):
                open_close(path)
                n += 1
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 30), m.status()
            assert status_int(m, "audit-lost") == lost
            assert is_mounted(m.mnt)
        assert_rows_are_opens_minus_lost(m, f, n, lost)


# ---------------------------------------------------------------------------
# 12. the db's file system turns read-only under load (issue 22.8)


class LoopExt4:
    """A small ext4 on a loop device, mounted errors=remount-ro at path, that
    a test can make fail as a disk error would (ext4's trigger_fs_error)."""

    def __init__(self, path, size_mb=200):
        self.path = path
        self.img = path.parent / f"{path.name}.img"
        run("truncate", "-s", f"{size_mb}M", self.img)
        run("mkfs.ext4", "-q", "-F", self.img)
        self.dev = run("losetup", "-f", "--show", self.img).stdout.strip()
        path.mkdir()
        self.mount()

    def mount(self):
        run("mount", "-o", "errors=remount-ro", self.dev, self.path)
        self.path.chmod(0o700)

    def fail(self):
        """An ext4 error: with errors=remount-ro the file system is read-only
        from now on, and the dirty pages it held never reach the disk."""
        sysfs = pathlib.Path("/sys/fs/ext4") / pathlib.Path(self.dev).name / "trigger_fs_error"
        sysfs.write_text("wardfs test\n")
        # Linux 6.x marks it emergency_ro and leaves "rw" (statvfs too)
        opts = self.options()
        assert "ro" in opts or "emergency_ro" in opts, opts

    def options(self):
        with open("/proc/self/mounts") as f:
            for line in f:
                if line.split()[1] == str(self.path):
                    return line.split()[3].split(",")
        return []

    def repair(self):
        """Unmounted, checked and mounted again, as an admin would."""
        run("umount", self.path)
        run("e2fsck", "-fy", self.dev, check=False)
        self.mount()

    def close(self):
        if is_mounted(self.path):
            if subprocess.run(["umount", str(self.path)]).returncode:
                subprocess.run(["umount", "-l", str(self.path)], check=False)
        subprocess.run(["losetup", "-d", self.dev], check=False)
        self.img.unlink(missing_ok=True)


@contextlib.contextmanager
def loop_ext4(path):
    fs = LoopExt4(path)
    try:
        yield fs
    finally:
        fs.close()


def logged_lost(m):
    """The rows the daemon's log says were lost, in all (its last count)."""
    counts = [int(x) for x in re.findall(r"\((\d+)(?: lost)? in all\)", m.logtext())]
    return max(counts, default=0)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_db_file_system_turning_read_only_loses_nothing_silently(vault, mode):
    """ext4's errors=remount-ro under a burst of opens: the writer defers
    during a burst, and used to notice only when it drained; meanwhile every
    open was served and its row went to a journal that could no longer
    reach the disk (139,000 rows gone, audit-lost 0). Now closed mode
    refuses opens within a writer interval, and every row that is not in
    the db is counted lost and logged."""
    m = vault
    (m.backing / "f").write_text("x")
    with loop_ext4(m.base / "dbfs") as fs:
        m.db = fs.path / "audit.db"
        counts = {0: 0, errno.EACCES: 0}
        with mounted(m, f"--audit-failure={mode}"):
            for _ in range(200):
                open_close(m.mnt / "f")
            assert wait_for(lambda: m.status()["audit-pending"] == "0", 10)
            run("sync")  # these 200 rows are on the disk
            stop = threading.Event()

            def burst():  # the writer defers its drain while it lasts
                while not stop.is_set():
                    e = open_or_errno(m.mnt / "f")
                    counts[e] = counts.get(e, 0) + 1

            opener = threading.Thread(target=burst)
            opener.start()
            try:
                time.sleep(0.5)
                # What the writer committed before the burst was detected
                # reaches the disk (rows SQLite committed but the file system
                # never wrote are a machine crash's loss, docs/audit.md) ...
                os.sync()
                before = counts[0]
                fs.fail()  # ... then the file system fails mid-burst
                time.sleep(2.5)
                st = m.status()
            finally:
                stop.set()
                opener.join()
            assert set(counts) == {0, errno.EACCES}, counts
            served, refused = 200 + counts[0], counts[errno.EACCES]
            assert "read-only" in m.logtext(), m.logtext()[-2000:]
            if mode == "closed":
                # refused within a few writer intervals, not 129,000 opens later
                assert refused > 0 and counts[0] - before < 3000, (before, counts)
            else:
                assert refused == 0 and status_int(m, "audit-lost") > 0, st
        lost = logged_lost(m)
        assert lost > 0, m.logtext()[-2000:]
        fs.repair()
        rows = db_rows(m.db, "SELECT count(*) FROM events WHERE path = '/f' "
                       "AND kind = 'open'")[0][0]
        # Every served open is a row, or counted lost (a row the journal
        # had on the disk may be both: replayed later, and told lost now).
        assert served - rows <= lost, (served, rows, lost)


def test_a_daemon_that_died_is_told_by_the_next_mount(vault):
    """Issue 16: an auditor expects to learn that a daemon died (killed or
    crashed): the next mount's row says so, with the dead daemon's pid; a
    clean end leaves nothing to say."""
    m = vault
    m.mount()
    pid = int(m.status()["pid"])
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: ended(pid), 10)
    subprocess.run(["umount", "-l", str(m.mnt)], check=False)
    with mounted(m):
        pass
    with mounted(m):
        pass
    rows = db_rows(m.db, "SELECT detail FROM events WHERE kind = 'mount' ORDER BY id")
    assert len(rows) == 3, rows
    unlocked = f"{m.backing}; unlocked with slot 1 (passphrase)"
    assert rows[0][0] == unlocked, rows
    assert rows[1][0].startswith(f"{unlocked}; the previous mount (daemon pid {pid}, mounted 20")
    assert rows[1][0].endswith("did not end cleanly: its daemon was killed or crashed"), rows
    assert rows[2][0] == unlocked, rows  # the mount before ended cleanly
    assert f"daemon pid {pid}" in m.logtext()
