"""`wardfs audit report --html`: the weekly review's page, loaded in a real
headless browser (Debian's chromium). One mount makes known rows (public,
sensitive and denied opens by a program of a known path, an integrity
error, a hostile file name), one report is made of them and rendered once;
the tests then check what the browser shows against counts taken from the
database with sqlite3."""
import html
import html.parser
import os
import pathlib
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile

import pytest

from conftest import DEFAULT_POLICY, Mount, run, wardfs

CHROMIUM = shutil.which("chromium")
PROBE_OPENS = 3
# A file name that is markup, quotes, an entity, a newline and a byte that
# is not UTF-8; a name cannot hold '/', so the script tag is not closed.
HOSTILE = (b'<script>document.title="pwned"<script><img src=x onerror="document.title=2">'
           b"&amp;'\n\xff.txt")
# ... as the page must show it: wfs_audit_escape's visible text
HOSTILE_SHOWN = ('<script>document.title="pwned"<script><img src=x onerror="document.title=2">'
                 "&amp;'\\n\\xff.txt")


class Dom(html.parser.HTMLParser):
    """What a test reads of a rendered page: each section's table rows (as
    cell texts), the elements by id, the tags, and the chart bars."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.section = None
        self.rows = {}
        self.ids = {}
        self.tags = {}
        self.bars = []  # (section, class, data-n)
        self.text = []
        self._id = None
        self._cell = None
        self._row = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "section":
            self.section = a.get("id")
        if "id" in a:
            self._id = a["id"]
            self.ids[a["id"]] = {"attrs": a, "text": ""}
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = ""
        if tag == "rect" and "data-n" in a:
            self.bars.append((self.section, a.get("class"), int(a["data-n"])))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.setdefault(self.section, []).append(self._row)
            self._row = None
        if tag in ("p", "td"):
            self._id = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data
        if self._id is not None:
            self.ids[self._id]["text"] += data

    def number(self, id_):
        return int(self.ids[id_]["text"])


def render(page, tmp):
    """Loads the page in headless chromium: (DOM after load, console lines).
    Every console line is one the page caused: a script error, a refused
    load or a CSP violation (the page itself logs nothing)."""
    assert CHROMIUM, "chromium is not installed (scripts/setup.sh installs it)"
    r = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp / 'chromium'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "<html" in r.stdout, r.stderr
    return r.stdout, [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]


def db_rows(db, query, args=()):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def report():
    """Rows made on a real mount, the page made of them, and the page as
    chromium rendered it."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="wardfs-report-", dir="/tmp"))
    base.chmod(0o755)
    m = Mount(base)
    try:
        m.policy.write_text(DEFAULT_POLICY)
        m.init()
        probe = base / "bin" / "wardfs-probe"
        probe.parent.mkdir()
        shutil.copy2("/bin/cat", probe)
        (m.backing / "denied").mkdir()
        (m.backing / "denied" / "x").write_text("no")
        m.mount()
        try:
            (m.mnt / "pub").mkdir()
            (m.mnt / "pub" / "a").write_text("public")
            (m.mnt / "secret").mkdir()
            (m.mnt / "secret" / "s").write_text("sensitive")
            (m.mnt / "secret" / "bad").write_text("to be damaged")
            with open(os.path.join(os.fsencode(m.mnt / "pub"), HOSTILE), "w") as f:
                f.write("hostile")
        finally:
            m.umount()
        # an integrity error: ciphertext replaced by plaintext (same inode)
        with open(m.backing / "secret" / "bad", "r+b") as w:
            w.truncate(0)
            w.write(b"planted plaintext, not a header at all" * 4)
        m.mount()
        try:
            for _ in range(PROBE_OPENS):
                run(probe, m.mnt / "pub" / "a")
            run(probe, m.mnt / "secret" / "s")
            assert run(probe, m.mnt / "denied" / "x", check=False).returncode != 0
            assert run(probe, m.mnt / "secret" / "bad", check=False).returncode != 0
            with open(os.path.join(os.fsencode(m.mnt / "pub"), HOSTILE)) as f:
                f.read()
        finally:
            m.umount()
        # the daemon's log: a sanitizer's report there fails (as mnt does)
        log = m.logtext()
        assert not any(s in log for s in ("AddressSanitizer", "runtime error")), log
        page = base / "report.html"
        r = wardfs("audit", "report", "--db", m.db, "--html", page, "--since", "1h")
        assert r.returncode == 0 and r.stderr == "", r.stderr
        dom, console = render(page, base)
        yield {"m": m, "page": page, "raw": page.read_text(), "dom": dom, "console": console,
               "parsed": Dom(dom), "probe": str(probe.resolve()), "base": base}
    finally:
        m.umount()
        shutil.rmtree(base, ignore_errors=True)


def test_report_renders_without_errors(report):
    d = report["parsed"]
    assert report["console"] == [], report["console"]
    for s in ("summary", "chain", "seal", "integrity", "chain-breaks", "opens-chart",
              "denials-chart", "top-programs", "top-users", "top-paths", "top-denied"):
        assert s in d.ids, f"no section '{s}'"
    # the script ran under the page's CSP, and reported no error
    assert 'data-js="ok"' in report["dom"].split(">", 2)[1], report["dom"][:300]
    assert "js-error" not in d.ids
    assert d.ids["chain-status"]["text"].startswith("ok: "), d.ids["chain-status"]
    assert d.ids["seal-status"]["text"] == "not sealed"
    assert d.tags.get("svg") == 2


def test_report_totals_match_the_database(report):
    d, db = report["parsed"], report["m"].db
    opens = "kind IN ('open', 'create')"
    one = lambda q, *a: db_rows(db, q, a)[0][0]  # noqa: E731
    assert d.number("total-opens") == one(f"SELECT count(*) FROM events WHERE {opens}") > 0
    assert d.number("total-opens-denied") == one(
        f"SELECT count(*) FROM events WHERE {opens} AND decision = 'deny'") >= 1
    assert d.number("total-denied") == one(
        "SELECT count(*) FROM events WHERE decision = 'deny'")
    assert d.number("total-rows") == one("SELECT count(*) FROM events")
    assert d.number("integrity-count") == one(
        "SELECT count(*) FROM events WHERE kind = 'integrity'") >= 1
    assert d.number("chain-break-count") == 0
    rows = d.rows["integrity"][1:]
    assert any(r[2] == "/secret/bad" for r in rows), rows
    # per class: the summary and the sum of the chart's bars
    for cls in ("public", "sensitive", "deny"):
        n = one(f"SELECT count(*) FROM events WHERE {opens} AND class = ?", cls)
        assert n > 0, cls
        assert d.number(f"opens-{cls}") == n, cls
        assert sum(b[2] for b in d.bars if b[0] == "opens-chart" and b[1] == cls) == n, cls
    assert sum(b[2] for b in d.bars if b[0] == "denials-chart") == d.number("total-denied")
    # the probe: its opens (PROBE_OPENS of pub/a, one each of the rest)
    probe = [r for r in d.rows["top-programs"][1:] if r[1] == report["probe"]]
    assert len(probe) == 1, d.rows["top-programs"]
    n = one("SELECT count(*) FROM events WHERE exe = ? AND " + opens, report["probe"])
    assert n >= PROBE_OPENS + 3
    assert int(probe[0][2]) == n
    assert int(probe[0][3]) == one("SELECT count(*) FROM events WHERE exe = ? AND "
                                   "decision = 'deny' AND " + opens, report["probe"]) >= 1
    users = d.rows["top-users"][1:]
    assert users[0][1] == "root (0)" and int(users[0][2]) == d.number("total-opens")
    denied = [r for r in d.rows["top-denied"][1:] if r[1] == "/denied/x"]
    assert denied and denied[0][2] == report["probe"], d.rows["top-denied"]


def test_hostile_file_name_is_text(report):
    d, raw = report["parsed"], report["raw"]
    # one script (the page's), no image: the name made no element
    assert d.tags.get("script") == 1 and "img" not in d.tags, d.tags
    title = re.search(r"<title>(.*?)</title>", report["dom"]).group(1)
    assert title == "wardfs audit report"
    paths = [r[1] for r in d.rows["top-paths"][1:]]
    assert "/pub/" + HOSTILE_SHOWN in paths, paths
    assert "<script>document" not in raw and "&lt;script&gt;document" in raw
    assert "\\xff" in raw and b"\xff" not in report["page"].read_bytes()


def test_report_loads_nothing_from_outside(report):
    raw = report["raw"]
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', raw)
    assert csp and "default-src 'none'" in csp.group(1), raw[:500]
    assert not re.search(r"(?i)https?:|ftp:|url\(|@import", raw)
    assert not re.search(r"""(?i)\b(src|href|xlink:href|action)\s*=\s*["']?\s*//""", raw)
    assert "<link" not in raw and "<iframe" not in raw
    # the script and style it carries are the ones the CSP names
    import base64
    import hashlib
    for tag in ("script", "style"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", raw, re.S).group(1)
        h = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{h}'" in csp.group(1), tag


def test_report_file_is_private_and_replaced_atomically(report, tmp_path):
    page = tmp_path / "weekly.html"
    page.write_text("old page")
    page.chmod(0o644)
    db = report["m"].db
    r = wardfs("audit", "report", "--db", db, "--html", page, "--since", "2d")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weekly.html"]
    # a failure leaves the old page, and no temporary file
    page.write_text("old page")
    r = wardfs("audit", "report", "--db", tmp_path / "nope.db", "--html", page, check=False)
    assert r.returncode == 1 and "nope.db" in r.stderr and len(r.stderr.splitlines()) == 1
    assert page.read_text() == "old page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weekly.html"]


@pytest.mark.parametrize("args, msg", [
    ([], "--html FILE is required"),
    (["--html", "x.html", "--since", "yesterweek"], "bad time 'yesterweek'"),
    (["--html", "x.html", "--top", "0"], "bad count '0'"),
    (["--html", "x.html", "--bogus"], "bogus"),
])
def test_report_bad_usage(args, msg, tmp_path):
    r = wardfs("audit", "report", "--db", tmp_path / "a.db", *args, check=False,
               cwd=tmp_path)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize("since, unit", [("90d", "day"), ("1000d", "2 days")])
def test_report_long_period_has_coarser_bars(report, since, unit, tmp_path):
    """Beyond 31 days a bar is a day (or more): no more than 744 bars, and
    they still add up to the summary."""
    page = tmp_path / "long.html"
    r = wardfs("audit", "report", "--db", report["m"].db, "--html", page, "--since", since)
    assert r.returncode == 0, r.stderr
    raw = page.read_text()
    d = Dom(raw)
    assert f"One bar per {unit} (UTC)." in raw
    assert len([b for b in d.bars if b[0] == "opens-chart"]) <= 3 * 744
    for cls in ("public", "sensitive", "deny"):
        bars = sum(b[2] for b in d.bars if b[0] == "opens-chart" and b[1] == cls)
        assert bars == d.number(f"opens-{cls}") == report["parsed"].number(f"opens-{cls}")
    # under each chart's axis a date at most every ~12th of the period
    dates = re.findall(r'text-anchor="middle">((?:\d{4}-)?\d\d-\d\d)<', raw)
    assert 2 <= len(dates) <= 2 * 13, dates
    assert all(len(x) == (10 if since == "1000d" else 5) for x in dates), dates


def test_report_shows_a_broken_or_unchecked_chain(report, tmp_path):
    """The page is still written (exit 0), says so in red or amber, and the
    admin is warned on stderr."""
    db = tmp_path / "edited.db"
    con = sqlite3.connect(str(report["m"].db))
    try:
        con.execute("VACUUM INTO ?", (str(db),))
    finally:
        con.close()
    shutil.copy(f"{report['m'].db}.key", f"{db}.key")
    con = sqlite3.connect(str(db))
    try:
        con.execute("UPDATE events SET uid = 4242 WHERE id = 3")
        con.commit()
    finally:
        con.close()
    page = tmp_path / "p.html"
    r = wardfs("audit", "report", "--db", db, "--html", page)
    assert "chain" in r.stderr and "broken" in r.stderr, r.stderr
    d = Dom(page.read_text())
    st = d.ids["chain-status"]
    assert st["attrs"]["class"] == "bad" and "first bad row 3" in st["text"], st
    r = wardfs("audit", "report", "--db", db, "--html", page, "--key", tmp_path / "none.key")
    assert "cannot verify" in r.stderr and "none.key" in r.stderr, r.stderr
    st = Dom(page.read_text()).ids["chain-status"]
    assert st["attrs"]["class"] == "unknown" and st["text"].startswith("not verified"), st


def test_browser_check_catches_errors_and_fetches(report, tmp_path):
    """The checks above can fail: the same page with a script that throws
    (admitted by its hash) and an image to fetch shows the error marker and
    logs console lines."""
    import base64
    import hashlib
    raw = report["raw"]
    script = re.search(r"<script>(.*?)</script>", raw, re.S).group(1)
    bad = script + "throw new Error('report-test');"
    old = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    new = base64.b64encode(hashlib.sha256(bad.encode()).digest()).decode()
    page = tmp_path / "bad.html"
    page.write_text(raw.replace(script, bad).replace(old, new).replace(
        "</body>", '<img src="http://127.0.0.1:9/x.png"></body>'))
    dom, console = render(page, tmp_path)
    d = Dom(dom)
    assert "report-test" in d.ids["js-error"]["text"]
    assert any("report-test" in c for c in console), console
    assert any("Content Security Policy" in c for c in console), console
