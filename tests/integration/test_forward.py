"""Audit forwarding (--audit-forward) end to end with real rsyslogd: a
"host" instance takes wardfs's RFC 5424 messages on its own socket and
relays them by RELP to a "central" instance writing one line per row, both
from the configs in etc/rsyslog/. Outages of either must lose no row and
send none twice (row ids are checked against the audit db)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, WARDFS, in_private_root, run, wait_for, wardfs

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
ETC = ROOT / "etc" / "rsyslog"
ROW = re.compile(r'\[wardfs@32473 row="(\d+)"')

pytestmark = pytest.mark.skipif(
    not os.path.exists(RSYSLOGD) or not os.path.exists(
        "/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so"),
    reason="needs rsyslog and rsyslog-relp (scripts/setup.sh installs them)")


@pytest.fixture
def vault(vault):
    """conftest's vault, unmounted at the end whatever happened, and its
    daemon's log free of sanitizer reports (as the mnt fixture checks)."""
    try:
        yield vault
    finally:
        vault.umount()
        log = vault.logtext()
        assert not any(s in log for s in ("AddressSanitizer", "runtime error",
                                          "ThreadSanitizer")), log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipped(name, subst):
    """The shipped config with its site values replaced by the test's: each
    must be there, so the test runs what etc/rsyslog/ ships."""
    text = (ETC / name).read_text()
    for old, new in subst.items():
        assert old in text, f"{old!r} not in {name}"
        text = text.replace(old, new)
    return text


class Rsyslogd:
    """One rsyslogd of its own: config, work dir, pid file; never the
    system's service. stop() ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, d, name, body):
        self.d = d / name
        self.d.mkdir()
        (self.d / "work").mkdir()
        self.conf = self.d / "rsyslog.conf"
        self.conf.write_text(
            f'global(workDirectory="{self.d / "work"}" maxMessageSize="64k")\n'
            + body)
        self.pidfile = self.d / "rsyslogd.pid"
        self.logfile = self.d / "rsyslogd.out"
        self.proc = None
        r = run(RSYSLOGD, "-N1", "-f", self.conf, check=False)
        assert r.returncode == 0, f"{name} config: {r.stdout}{r.stderr}"

    def start(self, ready):
        with open(self.logfile, "a") as out:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                stdout=out, stderr=subprocess.STDOUT)
        assert wait_for(lambda: ready() or self.proc.poll() is not None, 15)
        assert self.proc.poll() is None, self.logfile.read_text()
        assert ready(), self.logfile.read_text()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def sock_live(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
            return True
        except OSError:
            return False


class Fleet:
    def __init__(self, base, syssock=False):
        self.port = free_port()
        self.sock = base / "host" / "audit.sock"
        self.out = base / "central" / "fleet-audit.log"
        self.central = Rsyslogd(base, "central", shipped("wardfs-central.conf", {
            'port="2514"': f'port="{self.port}"',
            "/var/log/wardfs/fleet-audit.log": str(self.out)}))
        self.host = Rsyslogd(base, "host", 'module(load="imuxsock" SysSock.Use="%s")\n'
                             % ("on" if syssock else "off")
                             + shipped("wardfs-host.conf", {
                                 "/run/wardfs/audit.sock": str(self.sock),
                                 "central.example.org": "127.0.0.1",
                                 'port="2514"': f'port="{self.port}"',
                                 'action.resumeInterval="5"': 'action.resumeInterval="1"'}))

    def start_central(self):
        self.central.start(lambda: port_open(self.port))

    def start_host(self):
        self.host.start(lambda: sock_live(self.sock))

    def stop(self):
        self.host.stop()
        self.central.stop()

    def lines(self):
        return self.out.read_text(errors="replace").splitlines() if self.out.exists() else []

    def row_ids_lenient(self):
        """The row ids of the lines that have one (checkpoints have none)."""
        return [int(m.group(1)) for m in map(ROW.search, self.lines()) if m]

    def row_ids(self):
        ids = []
        for line in self.lines():
            m = ROW.search(line)
            assert m, f"a line without a row id: {line!r}"
            ids.append(int(m.group(1)))
        return ids


@pytest.fixture
def fleet(base):
    f = Fleet(base)
    try:
        f.start_central()
        f.start_host()
        yield f
    finally:
        f.stop()


def db_ids(m):
    return [int(x) for x in
            run("sqlite3", "-cmd", ".timeout 30000", m.db,
                "SELECT id FROM events ORDER BY id").stdout.split()]


def opens(m, prefix, n):
    d = m.mnt / prefix
    d.mkdir(exist_ok=True)
    for i in range(n):
        with open(d / f"f{i}", "w") as f:
            f.write("x")


def all_arrived(fleet, m, timeout=40):
    """After unmount (every row in the db): the central file has each row
    of the db once. Returns (db ids, central ids)."""
    want = db_ids(m)
    assert len(want) > 0
    wait_for(lambda: set(fleet.row_ids()) >= set(want), timeout)
    time.sleep(0.5)  # a duplicate would come with or just after the rest
    return want, fleet.row_ids()


def check_once(want, got):
    missing = sorted(set(want) - set(got))
    dup = sorted({i for i in got if got.count(i) > 1})
    assert not missing, f"rows never arrived: {missing[:20]} ({len(missing)})"
    assert not dup, f"rows arrived twice: {dup[:20]} ({len(dup)})"
    assert sorted(got) == sorted(want)


def test_central_outage_loses_nothing(vault, fleet):
    """The central receiver stops mid-stream and comes back: the host's
    RELP queue holds what it could not take, and every row arrives once."""
    vault.mount(f"--audit-forward=syslog:{fleet.sock}")
    try:
        opens(vault, "a", 40)
        assert wait_for(lambda: len(fleet.row_ids()) >= 40, 20), vault.logtext()
        fleet.central.stop()
        opens(vault, "b", 60)
        time.sleep(1.5)  # rows go to the host, which cannot pass them on
        during = len(fleet.row_ids())
        fleet.start_central()
        opens(vault, "c", 20)
    finally:
        vault.umount()
    want, got = all_arrived(fleet, vault)
    assert during < len(want)  # the outage was real: some rows waited
    check_once(want, got)


def test_host_outage_cursor(vault, fleet):
    """The host's rsyslogd (the socket wardfs writes to) stops during opens
    and comes back: wardfs keeps the rows in the db after its cursor and
    sends them once it is back, in order."""
    vault.mount(f"--audit-forward=syslog:{fleet.sock}")
    try:
        opens(vault, "a", 30)
        assert wait_for(lambda: len(fleet.row_ids()) >= 30, 20), vault.logtext()
        fleet.host.stop()
        opens(vault, "b", 50)
        time.sleep(1)
        assert "destination unavailable" in vault.logtext()
        st = vault.status()["audit-forward-syslog"]
        assert st.startswith("down, ") and "failures 0" not in st, st
        before = len(fleet.row_ids())
        fleet.start_host()
        opens(vault, "c", 10)
        assert wait_for(lambda: "destination back" in vault.logtext(), 15), vault.logtext()
        assert vault.status()["audit-forward-syslog"].startswith("up, ")
    finally:
        vault.umount()
    want, got = all_arrived(fleet, vault)
    assert before < len(want)
    check_once(want, got)
    # In order: the central file lists the ids ascending.
    assert got == sorted(got)


def test_odd_names_keep_framing(vault, fleet):
    """A file name with a newline, ']', '"', '\\' and a byte that is not
    UTF-8 stays inside its quoted SD-PARAM: one line per row, rsyslog's
    RFC 5424 parser keeps the structured data, and the value is escaped."""
    name = b'odd\n]"\\\xff.txt'
    vault.mount(f"--audit-forward=syslog:{fleet.sock}")
    try:
        fd = os.open(os.fsencode(str(vault.mnt)) + b"/" + name, os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    finally:
        vault.umount()
    want, got = all_arrived(fleet, vault)
    check_once(want, got)
    lines = [ln for ln in fleet.lines() if "odd" in ln]
    assert len(lines) == 1, lines
    assert 'path="/odd\\\\n\\]\\"\\\\\\\\\\\\xff.txt"' in lines[0], lines[0]
    # MSG, for a person: the same escapes, without the SD-PARAM ones
    assert ' create /odd\\n]"\\\\\\xff.txt by ' in lines[0], lines[0]
    # the structured data reached the central file as structured data
    assert ' kind="create"' in lines[0] and 'decision="allow"' in lines[0], lines[0]


def test_cursor_survives_remount(vault, fleet):
    """Rows written while the destination is down and the daemon then
    unmounted go out at the next mount (the cursor file), once."""
    vault.mount(f"--audit-forward=syslog:{fleet.sock}")
    try:
        opens(vault, "a", 10)
        assert wait_for(lambda: len(fleet.row_ids()) >= 10, 20), vault.logtext()
        fleet.host.stop()
        opens(vault, "b", 20)
    finally:
        vault.umount()
    cursor = (vault.base / "audit.db-forward-syslog").read_text()
    last = int(re.search(r"^row (\d+)$", cursor, re.M).group(1))
    assert last < max(db_ids(vault))  # the rows after it wait in the db
    fleet.start_host()
    vault.mount(f"--audit-forward=syslog:{fleet.sock}")
    vault.umount()
    want, got = all_arrived(fleet, vault)
    check_once(want, got)


def test_forward_option_forms(vault, base):
    """Bad lists are one-line errors; the mount helper's -o form (fstab)
    takes '+' between destinations and passes the list on whole."""
    r = vault.mount("--audit-forward=kafka", check=False)
    assert r.returncode != 0
    assert "unknown audit forward destination 'kafka'" in r.stderr
    r = vault.mount("--audit-forward=syslog:relative/sock", check=False)
    assert r.returncode != 0 and "must be an absolute path" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    os.symlink(WARDFS, base / "mount.wardfs")
    r = run(base / "mount.wardfs", vault.backing, vault.mnt, "-f", "-o",
            "audit-forward=journal+syslog:/run/x.sock,nosuid", check=False)
    assert r.returncode == 0, r.stderr
    assert "--audit-forward journal+syslog:/run/x.sock" in r.stderr, r.stderr


JOURNALD = "/lib/systemd/systemd-journald"
OPEN_MESSAGE_ID = "a995e3f14c80f16ef8eaf40fecaf1ef9"  # docs/audit.md
CREATE_MESSAGE_ID = "18d3b5f8bbeb51468e4b80e1b1e0c7e5"


class Journald:
    """A systemd-journald of the test's own, in a private mount namespace
    whose /run/systemd and /run/log are fresh tmpfs: sd_journal_sendv
    reaches it at the usual /run/systemd/journal/socket, and the host has
    no journald (no systemd as init here) to disturb."""

    def __init__(self, out):
        self.out, self.proc = out, None

    def start(self):
        with open(self.out, "a") as out:
            self.proc = subprocess.Popen([JOURNALD], stdout=out, stderr=subprocess.STDOUT)
        assert wait_for(lambda: sock_live("/run/systemd/journal/socket")
                        or self.proc.poll() is not None, 15)
        assert self.proc.poll() is None, self.out.read_text()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def entries(self):
        r = run("journalctl", "-D", "/run/log/journal", "-o", "json", "--no-pager",
                "SYSLOG_IDENTIFIER=wardfs", check=False)
        return [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]


def field_bytes(v):
    """journalctl's JSON: a string, or an array of byte values for a field
    that is not printable UTF-8."""
    return bytes(v) if isinstance(v, list) else v.encode()


@pytest.mark.skipif(not os.path.exists(JOURNALD), reason="needs systemd-journald")
def test_journal(vault, base):
    """--audit-forward=journal into a real systemd-journald: each row once
    with its WARDFS_* fields, the documented MESSAGE_ID, OBJECT_PID= the
    opener, the exact bytes of an odd file name; rows written while
    journald is down arrive when it is back."""
    name = b'odd\n]"\\\xff.txt'

    def body():
        for d in ("/run/systemd", "/run/log"):
            os.makedirs(d, exist_ok=True)
            run("mount", "-t", "tmpfs", "tmpfs", d)
        jd = Journald(base / "journald.out")
        jd.start()
        try:
            vault.mount("--audit-forward=journal")
            try:
                opens(vault, "a", 10)
                (vault.mnt / "a" / "f0").read_text()  # an open row
                with pytest.raises(PermissionError):  # a denial row
                    (vault.mnt / ".netrc").write_text("x")
                # another process opens the odd name: OBJECT_PID is its pid
                child = subprocess.run(
                    ["/usr/bin/python3", "-c",
                     "import os,sys; p=sys.argv[1].encode('utf-8','surrogateescape');"
                     "os.close(os.open(p, os.O_CREAT|os.O_WRONLY, 0o644));"
                     "print(os.getpid())",
                     os.fsdecode(os.fsencode(str(vault.mnt)) + b"/" + name)],
                    capture_output=True, text=True, check=True)
                opener = child.stdout.strip()
                assert wait_for(lambda: len(jd.entries()) >= 14, 20), vault.logtext()
                jd.stop()
                opens(vault, "b", 10)
                assert wait_for(lambda: "destination unavailable" in vault.logtext(), 10)
                jd.start()
                opens(vault, "c", 5)
                assert wait_for(lambda: "destination back" in vault.logtext(), 15)
            finally:
                vault.umount()
            want = db_ids(vault)
            assert wait_for(lambda: {int(e["WARDFS_ROW_ID"]) for e in jd.entries()}
                            >= set(want), 20)
            entries = jd.entries()
            got = [int(e["WARDFS_ROW_ID"]) for e in entries]
            check_once(want, got)
            odd = [e for e in entries if b"odd" in field_bytes(e.get("WARDFS_PATH", ""))]
            assert len(odd) == 1, odd
            e = odd[0]
            assert field_bytes(e["WARDFS_PATH"]) == b"/" + name
            assert e["WARDFS_KIND"] == "create" and e["MESSAGE_ID"] == CREATE_MESSAGE_ID
            assert e["OBJECT_PID"] == opener and e["WARDFS_PID"] == opener
            assert e["WARDFS_DECISION"] == "allow" and e["WARDFS_CLASS"] == "public"
            assert e["WARDFS_EXE"].startswith("/usr/bin/python3")
            assert e["PRIORITY"] == "6" and e["WARDFS_UID"] == "0"
            assert e["WARDFS_MOUNT"] == str(vault.mnt)
            assert len(e["WARDFS_CHAIN_HEAD"]) == 64
            assert "\n" not in field_bytes(e["MESSAGE"]).decode(errors="replace")
            op = [e for e in entries if e.get("WARDFS_KIND") == "open"
                  and e.get("WARDFS_PATH") == "/a/f0"]
            assert op and op[0]["MESSAGE_ID"] == OPEN_MESSAGE_ID
            deny = [e for e in entries if e.get("WARDFS_PATH") == "/.netrc"]
            assert len(deny) == 1, deny
            d = deny[0]
            assert d["WARDFS_DECISION"] == "deny" and d["PRIORITY"] == "4"
            assert d["WARDFS_ERRNO"] == "EACCES" and "policy" in d["WARDFS_RULE"]
        finally:
            jd.stop()

    in_private_root(base, body, timeout=180)


def test_checkpoints_reach_central_and_verify(vault, base):
    """Sealing's checkpoints (syslog(3) to /dev/log) go through the host's
    rsyslogd to the central file beside the rows, by the rule in
    etc/rsyslog/wardfs-host.conf, and `wardfs audit verify --checkpoints`
    takes that central file: the copy that left the host. /dev/log exists
    only in a private mount namespace (a tmpfs /dev, as test_seal.py does),
    where both rsyslogd run."""
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    m.mount()
    m.umount()
    r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", base / "vk",
               "--seal-rows", "3", check=False)
    assert r.returncode == 0, r.stderr
    out = base / "central-copy.log"

    def fn():
        dev = base / "dev"
        dev.mkdir()
        run("mount", "-t", "tmpfs", "tmpfs", dev)
        for name in ("null", "zero", "full", "random", "urandom", "fuse", "tty"):
            if os.path.exists(f"/dev/{name}"):
                (dev / name).touch()
                run("mount", "--bind", f"/dev/{name}", dev / name)
        run("mount", "--rbind", dev, "/dev")
        fleet = Fleet(base, syssock=True)
        try:
            fleet.start_central()
            fleet.start_host()
            assert wait_for(lambda: sock_live("/dev/log"), 10)
            m.mount(f"--audit-forward=syslog:{fleet.sock}")
            try:
                for i in range(12):
                    with open(m.mnt / f"f{i % 4}") as f:
                        f.read()
                    time.sleep(0.06)
            finally:
                m.umount()
            want = db_ids(m)
            assert wait_for(lambda: set(fleet.row_ids_lenient()) >= set(want), 30)
            assert wait_for(lambda: sum("wardfs-checkpoint" in ln for ln in fleet.lines())
                            >= 2, 15), fleet.lines()[-5:]
            time.sleep(0.5)
            out.write_text("\n".join(fleet.lines()) + "\n")
        finally:
            fleet.stop()

    in_private_root(base, fn, timeout=180)
    lines = out.read_text().splitlines()
    rows = [ln for ln in lines if ROW.search(ln)]
    cps = [ln for ln in lines if "wardfs-checkpoint" in ln]
    assert rows and len(cps) >= 2, lines[-5:]
    assert len(rows) + len(cps) == len(lines), lines  # nothing else there
    check_once(db_ids(m), [int(ROW.search(ln).group(1)) for ln in rows])
    r = wardfs("audit", "verify", "--db", m.db, "--verify-key", base / "vk",
               "--checkpoints", out, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"checkpoints: {len(cps)} of this database matched" in r.stdout, r.stdout
