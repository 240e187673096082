"""Forward-secure sealing of the audit database (issue 19, docs/audit.md
"Sealing"): seal-init hands out a verification key, a real mount seals its
rows every N rows and at unmount, evolving the key in DB.seal and logging a
checkpoint per seal. Then an attacker who holds the host's current state
and DB.key edits, deletes, inserts and truncates sealed rows, recomputing
the whole local chain so plain `verify` passes, and `verify --verify-key`
with the off-host key must catch each. Plus the unsealed tail and the bad
inputs (wrong, mistyped, cut key; another db's key or checkpoints; state
or seal table deleted), none of which may say "ok"."""
import hashlib
import hmac
import os
import pathlib
import re
import shutil
import socket
import sqlite3
import struct
import tempfile
import time

import pytest

from conftest import DEFAULT_POLICY, Mount, in_private_root, run, wait_for, wardfs

ROWCOLS = ("time_ns,mount,kind,path,flags,access,flag_names,class,form,decision,errno,"
           "rule,uid,gid,pid,comm,exe,detail")
SEAL_ROWS = 5


def enc(v):
    """The canonical encoding of one value (docs/audit.md "Chain")."""
    if v is None:
        return b"\0"
    if isinstance(v, int):
        return b"\1" + struct.pack(">q", v)
    b = v.encode() if isinstance(v, str) else bytes(v)
    return b"\2" + struct.pack(">I", len(b)) + b


def evolve(k, i):
    """k_{i+1} as docs/audit.md "Sealing" defines it."""
    return hmac.new(k, b"wardfs seal evolve" + struct.pack(">Q", i), hashlib.sha256).digest()


def seal_tag(k, db_id, epoch, first, last, head, prev):
    msg = (b"wardfs seal tag" + enc(db_id) + enc(epoch) + enc(first) + enc(last) + enc(head)
           + enc(prev))
    return hmac.new(k, msg, hashlib.sha256).digest()


def vkey_text(db_id, k0):
    check = hashlib.sha256(b"wardfs seal verify key" + db_id.encode() + k0).digest()[:4]
    return f"wardfs-vk1-{db_id}-{k0.hex()}-{check.hex()}"


def read_state(path):
    d = dict(line.split("=", 1) for line in path.read_text().splitlines()[1:])
    return int(d["epoch"]), bytes.fromhex(d["key"]), d


def rechain(db, key):
    """What an attacker holding DB.key does after changing rows: recompute
    every row's MAC and the authenticated chain head, so that the local
    chain verifies again."""
    con = sqlite3.connect(db)
    try:
        prev = bytes(32)
        rows = con.execute(f"SELECT id,{ROWCOLS} FROM events ORDER BY id").fetchall()
        for r in rows:
            payload = b"".join(enc(v) for v in r[1:])
            prev = hmac.new(key, prev + enc(r[0]) + payload, hashlib.sha256).digest()
            con.execute("UPDATE events SET mac = ? WHERE id = ?", (prev, r[0]))
        last = rows[-1][0]
        auth = hmac.new(key, b"wardfs-audit-head\0" + enc(last) + enc(prev),
                        hashlib.sha256).digest()
        con.execute("INSERT OR REPLACE INTO chain (k, last_id, last_mac, auth) "
                    "VALUES (1, ?, ?, ?)", (last, prev, auth))
        con.commit()
        return prev
    finally:
        con.close()


def sql(db, *stmts):
    con = sqlite3.connect(db)
    try:
        out = None
        for s in stmts:
            out = con.execute(s).fetchall()
        con.commit()
        return out
    finally:
        con.close()


def verify(db, *extra, key=None):
    return wardfs("audit", "verify", "--db", db, *(["--key", key] if key else []), *extra,
                  check=False)


def opens(m, n):
    """n opens through the mount, spaced so that several seals are made."""
    for i in range(n):
        with open(m.mnt / f"f{i % 4}") as f:
            f.read()
        time.sleep(0.06)


def drained(m):
    """Every open made so far is a row (the writer drains within 20 ms)."""
    def count():
        return sql(m.db, "SELECT count(*) FROM events")[0][0]
    before = -1
    while count() != before:
        before = count()
        time.sleep(0.2)
    return before


def checkpoints(m):
    return [l for l in m.logtext().splitlines() if "wardfs-checkpoint " in l]


@pytest.fixture(scope="module")
def sealed():
    """One sealed database made through real mounts: mounted once (the db
    is made), sealing started, mounted again for some opens. Tests work on
    copies of its files (db, DB.key, DB.seal, the log)."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="wardfs-seal-", dir="/tmp"))
    base.chmod(0o755)
    m = Mount(base)
    try:
        m.policy.write_text(DEFAULT_POLICY)
        m.init()
        for i in range(4):
            (m.backing / f"f{i}").write_text("x")
        m.mount()
        m.umount()
        vk = base / "vk"
        r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", vk,
                   "--seal-rows", str(SEAL_ROWS), "--seal-every", "1h", check=False)
        assert r.returncode == 0, r.stderr
        m.k0_state = (base / "audit.db.seal").read_text()
        m.mount()
        opens(m, 24)
        m.umount()
        m.vk = vk
        yield m
        log = m.logtext()
        assert not any(s in log for s in ("AddressSanitizer", "runtime error")), log
    finally:
        m.umount()
        shutil.rmtree(base, ignore_errors=True)


def copy(m, name):
    """The attacker's copy of the host's files: db, DB.key and DB.seal."""
    d = m.base / name
    d.mkdir()
    db = d / "audit.db"
    src = sqlite3.connect(f"file:{m.db}?mode=ro", uri=True)
    out = sqlite3.connect(str(db))
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()
    for ext in (".key", ".seal"):
        shutil.copy2(f"{m.db}{ext}", f"{db}{ext}")
    cps = d / "checkpoints"
    cps.write_text("\n".join(checkpoints(m)) + "\n")
    return db, bytes(pathlib.Path(f"{db}.key").read_bytes()), cps


def seals(db):
    return sql(db, "SELECT epoch, first_id, last_id, head, prev_tag, tag FROM seal "
                   "ORDER BY epoch")


def test_sealing_evolves_the_key_and_verifies(sealed):
    m = sealed
    vk = m.vk.read_text().strip()
    assert oct(m.vk.stat().st_mode & 0o777) == "0o600"
    state = pathlib.Path(f"{m.db}.seal")
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    db_id = sql(m.db, "SELECT v FROM meta WHERE k = 'db_id'")[0][0]
    k0 = bytes.fromhex(vk.split("-")[3])
    assert vk == vkey_text(db_id, k0)

    # Several seals, contiguous, each tagged with its epoch's key.
    s = seals(m.db)
    assert len(s) >= 3, s
    epoch, key, fields = read_state(state)
    assert fields["db_id"] == db_id and epoch == len(s)
    k, prev = k0, bytes(32)
    for i, (ep, first, last, head, ptag, tag) in enumerate(s):
        assert ep == i and ptag == prev
        assert tag == seal_tag(k, db_id, ep, first, last, head, ptag)
        prev, k = tag, evolve(k, i)
    # The host keeps only k_epoch: k0 and every earlier key are gone from it.
    assert key == k
    assert k0.hex() in m.k0_state  # at init the state held k0 ...
    assert m.k0_state != state.read_text()
    assert k0.hex() not in state.read_text()  # ... and no longer
    last = s[-1][2]
    assert last == sql(m.db, "SELECT max(id) FROM events")[0][0]  # unmount sealed it all

    # One checkpoint per seal, in the documented format, in the daemon's log.
    cps = checkpoints(m)
    assert len(cps) == len(s)
    ep, first, last_id, head, _, tag = s[-1]
    assert cps[-1].endswith(f"wardfs-checkpoint db={db_id} epoch={ep} last-row={last_id} "
                            f"head={head.hex()} tag={tag.hex()}")

    db, _, cpfile = copy(m, "intact")
    r = verify(db, "--verify-key", m.vk, "--checkpoints", cpfile)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"sealed: rows 1..{last} in {len(s)} seals" in r.stdout
    assert f"checkpoints: {len(s)} of this database matched" in r.stdout
    assert "unsealed" not in r.stdout
    assert r.stdout.splitlines()[-1].startswith("ok: ")
    # the same lines piped in, as from journalctl; stdin is not for both
    r = wardfs("audit", "verify", "--db", db, "--verify-key", m.vk, "--checkpoints", "-",
               input=cpfile.read_text(), check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"checkpoints: {len(s)} of this database matched" in r.stdout
    r = wardfs("audit", "verify", "--db", db, "--verify-key", "-", "--checkpoints", "-",
               input="", check=False)
    assert r.returncode == 2 and "cannot both read stdin" in r.stderr, r.stderr


def test_one_step_replaces_the_key_in_the_state_file(sealed):
    """The state before and after one seal: the old key's bytes are not in
    the new file, and the new key is the old one evolved."""
    m = sealed
    state = pathlib.Path(f"{m.db}.seal")
    before = state.read_bytes()
    ep0, k_old, _ = read_state(state)
    m.mount()
    try:
        with open(m.mnt / "f0") as f:
            f.read()
    finally:
        m.umount()  # the unmount seals the new rows
    after = state.read_bytes()
    ep1, k_new, _ = read_state(state)
    assert ep1 == ep0 + 1
    assert k_new == evolve(k_old, ep0)
    assert k_old.hex().encode() not in after and k_old not in after
    assert before != after


def test_unsealed_tail_is_reported_not_verified(vault):
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    m.mount()
    m.umount()
    vk = m.base / "vk"
    r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", vk, check=False)
    assert r.returncode == 0, r.stderr
    # Sealing twice, or over an existing key file, is refused.
    r = wardfs("audit", "seal-init", "--db", m.db, check=False)
    assert r.returncode == 1 and "is sealed already" in r.stderr, r.stderr
    r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", vk, check=False)
    assert r.returncode == 1 and "cannot create verification key file" in r.stderr
    assert r.stderr.count("\n") == 1

    m.mount()
    try:
        opens(m, 3)
        n = drained(m)
        # Default settings (1000 rows, 15 min): nothing sealed yet.
        r = verify(m.db, "--verify-key", vk)
        assert r.returncode == 3, r.stdout + r.stderr
        assert "holds no seal" in r.stderr and "ok" not in r.stdout
        assert f"{n} rows unsealed (after row 0)" in r.stdout
    finally:
        m.umount()
    r = verify(m.db, "--verify-key", vk)
    assert r.returncode == 0, r.stdout + r.stderr
    sealed_to = sql(m.db, "SELECT max(last_id) FROM seal")[0][0]
    m.mount()
    try:
        opens(m, 3)
        n = drained(m)
        r = verify(m.db, "--verify-key", vk)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"{n - sealed_to} rows unsealed (after row {sealed_to})" in r.stdout
        assert f"rows 1..{sealed_to} sealed and verified" in r.stdout
    finally:
        m.umount()


def attack_edit(db, key, s):
    row = s[1][1]  # a row the second seal covers
    sql(db, f"UPDATE events SET uid = 4242 WHERE id = {row}")
    rechain(db, key)


def attack_delete(db, key, s):
    a = s[1][1]
    sql(db, f"DELETE FROM events WHERE id IN ({a}, {a + 1})",
        f"UPDATE events SET id = id - 2 WHERE id > {a + 1}")
    rechain(db, key)


def attack_insert(db, key, s):
    a = s[1][1]
    cols = ROWCOLS + ",mac,path_id"
    sql(db, f"UPDATE events SET id = -id WHERE id > {a}",
        "UPDATE events SET id = 1 - id WHERE id < 0",
        f"INSERT INTO events (id,{cols}) SELECT {a + 1},{cols} FROM events WHERE id = {a}")
    rechain(db, key)


def attack_truncate(db, key, s):
    """The newest two seals and the rows they cover, gone."""
    keep = s[-3][2]
    sql(db, f"DELETE FROM events WHERE id > {keep}",
        f"DELETE FROM seal WHERE epoch > {s[-3][0]}")
    rechain(db, key)


def attack_forge(db, key, s):
    """Rewrite the newest seal's rows and re-seal them with the key the
    host has now (the only one the attacker can get)."""
    ep, first, last, _, prev, _ = s[-1]
    sql(db, f"UPDATE events SET uid = 4242 WHERE id = {first}")
    head = rechain(db, key)
    _, k_now, fields = read_state(pathlib.Path(f"{db}.seal"))
    tag = seal_tag(k_now, fields["db_id"], ep, first, last, head, prev)
    sql(db, f"UPDATE seal SET head = x'{head.hex()}', tag = x'{tag.hex()}' WHERE epoch = {ep}")


@pytest.mark.parametrize("attack,says", [
    (attack_edit, "sealed in epoch 1, were altered"),
    (attack_delete, "sealed in epoch"),
    (attack_insert, "sealed in epoch 1, were altered"),
    (attack_truncate, "the newest seals were deleted"),
    (attack_forge, "is forged or edited"),
], ids=["edit", "delete", "insert", "truncate", "forge"])
def test_attacker_with_the_host_keys_is_caught(sealed, attack, says):
    db, key, cps = copy(sealed, attack.__name__)
    s = seals(db)
    attack(db, key, s)
    # The local chain alone is fooled: the attacker had its key ...
    r = verify(db)
    assert r.returncode == 0, r.stdout + r.stderr
    # ... the off-host verification key is not.
    r = verify(db, "--verify-key", sealed.vk)
    assert r.returncode == 1, r.stdout + r.stderr
    assert says in r.stderr, r.stderr
    assert not r.stdout.startswith("ok") and "\nok" not in r.stdout
    r = verify(db, "--verify-key", sealed.vk, "--checkpoints", cps)
    assert r.returncode == 1, r.stdout + r.stderr


def test_truncated_tail_without_the_state_needs_the_checkpoints(sealed):
    """The attacker also deletes DB.seal: alone, verify cannot vouch (3);
    with the checkpoints logged off the host it names the truncation."""
    db, key, cps = copy(sealed, "trunc-nostate")
    s = seals(db)
    attack_truncate(db, key, s)
    os.unlink(f"{db}.seal")
    r = verify(db, "--verify-key", sealed.vk)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "sealing state" in r.stderr and "is missing" in r.stderr
    # journalctl / syslog prefixes before the checkpoint are fine
    cps.write_text("".join(f"Dec  5 07:00:00 host wardfs[42]: {l.split('wardfs: ', 1)[1]}\n"
                           for l in cps.read_text().splitlines()))
    r = verify(db, "--verify-key", sealed.vk, "--checkpoints", cps)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "truncated tail" in r.stderr and "its tag verifies" in r.stderr, r.stderr
    assert f"seals end at epoch {s[-3][0]} (row {s[-3][2]})" in r.stderr


def test_bad_inputs_are_never_ok(sealed):
    m = sealed
    db, key, cps = copy(m, "bad")
    vk = m.vk.read_text().strip()
    db_id = sql(db, "SELECT v FROM meta WHERE k = 'db_id'")[0][0]

    def check(path_or_text, code, words, *extra, target=db):
        f = m.base / "bad" / "k"
        f.write_text(path_or_text)
        r = verify(target, "--verify-key", f, *extra)
        assert r.returncode == code, r.stdout + r.stderr
        for w in words:
            assert w in r.stderr, r.stderr
        assert "ok" not in r.stdout.split(":")[0]
        return r

    check(vk[:-5] + "\n", 3, ["truncated (112 of 117 characters)"])
    typo = vk[:40] + ("0" if vk[40] != "0" else "1") + vk[41:]
    check(typo, 3, ["checksum does not match (a typo?)"])
    check("hello\n", 3, ["is not a wardfs verification key"])
    other = "0" * 32
    check(vkey_text(other, os.urandom(32)), 3, [f"is of another audit database (id {other})"])

    # Checkpoints of another db only; a forged checkpoint of this one.
    foreign = m.base / "bad" / "foreign"
    foreign.write_text(re.sub(r"db=[0-9a-f]{32}", "db=" + "1" * 32, cps.read_text()))
    check(vk, 3, ["no checkpoint in", "of another (id " + "1" * 32], "--checkpoints", foreign)
    forged = m.base / "bad" / "forged"
    line = cps.read_text().splitlines()[0]
    forged.write_text(re.sub(r"tag=[0-9a-f]{64}", "tag=" + "ab" * 32, line) + "\n")
    check(vk, 1, ["does not match the database's seal"], "--checkpoints", forged)

    # The seal table dropped: the state says seals were made.
    db2, _, _ = copy(m, "noseals")
    sql(db2, "DROP TABLE seal")
    check(vk, 1, ["the seals of epochs 0.."], target=db2)
    # The state deleted too: nothing to go by, and never "ok".
    os.unlink(f"{db2}.seal")
    check(vk, 3, ["has no seal table"], target=db2)
    # ... but the checkpoints off the host show that it had seals
    check(vk, 1, ["holds no seal, but a checkpoint of epoch"], "--checkpoints", cps,
          target=db2)
    # Only the state deleted.
    db3, _, _ = copy(m, "nostate")
    os.unlink(f"{db3}.seal")
    check(vk, 3, ["sealing state", "is missing"], target=db3)
    # --checkpoints alone is a usage error
    r = verify(db, "--checkpoints", cps)
    assert r.returncode == 2 and "--checkpoints needs --verify-key" in r.stderr


def test_checkpoints_go_to_syslog(vault):
    """Each seal is a syslog(3) message (authpriv.notice, ident wardfs) in
    the documented format. This machine has no /dev/log: in a private
    mount namespace a tmpfs /dev (with the devices a mount needs bound in)
    gets a datagram socket there that the test reads."""
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    m.mount()
    m.umount()
    r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", m.base / "vk",
               "--seal-rows", "3", check=False)
    assert r.returncode == 0, r.stderr
    got = m.base / "syslog"

    def fn():
        dev = m.base / "dev"
        dev.mkdir()
        run("mount", "-t", "tmpfs", "tmpfs", dev)
        for name in ("null", "zero", "full", "random", "urandom", "fuse", "tty"):
            if os.path.exists(f"/dev/{name}"):
                (dev / name).touch()
                run("mount", "--bind", f"/dev/{name}", dev / name)
        run("mount", "--rbind", dev, "/dev")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("/dev/log")
        m.mount()
        try:
            opens(m, 8)
        finally:
            m.umount()
        sock.setblocking(False)
        lines = []
        while True:
            try:
                lines.append(sock.recv(4096).decode())
            except BlockingIOError:
                break
        got.write_text("\n".join(lines) + "\n")

    in_private_root(m.base, fn, timeout=120)
    msgs = [l for l in got.read_text().splitlines() if "wardfs-checkpoint" in l]
    s = seals(m.db)
    assert len(msgs) == len(s) >= 2, got.read_text()
    ep, _, last, head, _, tag = s[-1]
    db_id = sql(m.db, "SELECT v FROM meta WHERE k = 'db_id'")[0][0]
    # <85>: facility authpriv (10) * 8 + notice (5); then the ident and pid
    assert re.match(r"<85>.* wardfs\[\d+\]: wardfs-checkpoint db=%s epoch=%d last-row=%d "
                    r"head=%s tag=%s$" % (db_id, ep, last, head.hex(), tag.hex()),
                    msgs[-1]), msgs[-1]
    # the syslog copy is what verify takes
    r = verify(m.db, "--verify-key", m.base / "vk", "--checkpoints", got)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"checkpoints: {len(s)} of this database matched" in r.stdout


def test_seal_init_on_a_mounted_db_and_time_seals(vault):
    """seal-init while the daemon runs: it starts sealing within 5 s, and
    with --seal-every 1s a few rows (far fewer than N) are sealed within a
    second or two, while still mounted."""
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    m.mount()
    try:
        opens(m, 2)
        # the key on stdout, once; the note on stderr
        r = wardfs("audit", "seal-init", "--db", m.db, "--seal-every", "1s", check=False)
        assert r.returncode == 0, r.stderr
        assert re.fullmatch(r"wardfs-vk1-[0-9a-f]{32}-[0-9a-f]{64}-[0-9a-f]{8}\n", r.stdout)
        assert "keep it off this host" in r.stderr
        (m.base / "vk").write_text(r.stdout)

        def sealed_rows():
            r = sql(m.db, "SELECT max(last_id) FROM seal")
            return r[0][0] or 0
        assert wait_for(lambda: sealed_rows() > 0, timeout=8), m.logtext()
        first = sealed_rows()
        opens(m, 2)
        assert wait_for(lambda: sealed_rows() > first, timeout=4), m.logtext()
        r = wardfs("audit", "verify", "--db", m.db, "--verify-key", "-",
                   input=(m.base / "vk").read_text(), check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        m.umount()


def test_weekly_report_shows_the_seal_state(sealed, tmp_path):
    """The report cannot check seals (the key is off the host) but says how
    far the database is sealed, from its seal table: the newest seal's last
    row and the rows after it, as the database holds them."""
    m = sealed
    db, _, _ = copy(m, "report")
    page = tmp_path / "week.html"
    r = wardfs("audit", "report", "--html", page, "--db", db, check=False)
    assert r.returncode == 0, r.stderr
    status = re.search(r'<p id="seal-status"[^>]*>([^<]*)</p>', page.read_text()).group(1)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    seals, last = con.execute("SELECT count(*), max(last_id) FROM seal").fetchone()
    after = con.execute("SELECT count(*) FROM events WHERE id > ?", (last,)).fetchone()[0]
    con.close()
    assert seals > 0
    assert f"{seals} seals; rows up to {last} sealed" in status, status
    assert f"; {after} rows unsealed" in status, status


def test_sealed_at_first_mount_and_status_says_so(vault):
    """mount --audit-seal FILE seals a new db at its first mount (the key
    written once, 0600), status shows the seal state while mounted, later
    mounts with the same option change nothing, and a key file that is
    there already is never overwritten for a db that is not sealed."""
    m = vault
    for i in range(4):
        (m.backing / f"f{i}").write_text("x")
    vk = m.base / "vk"
    r = m.mount("--audit-seal", vk)
    try:
        assert f"its verification key is in '{vk}'" in r.stderr, r.stderr
        assert oct(vk.stat().st_mode & 0o777) == "0o600"
        assert re.fullmatch(r"wardfs-vk1-[0-9a-f]{32}-[0-9a-f]{64}-[0-9a-f]{8}\n",
                            vk.read_text())
        opens(m, 3)
        st = m.status()["audit-seal"]
        assert re.fullmatch(r"on, \d+ seals, sealed to row \d+, \d+ rows unsealed, "
                            r"every 1000 rows or 900 s", st), st
    finally:
        m.umount()
    r = verify(m.db, "--verify-key", vk)
    assert r.returncode == 0, r.stdout + r.stderr
    last = sql(m.db, "SELECT max(id) FROM events")[0][0]
    assert f"sealed: rows 1..{last} in 1 seals" in r.stdout, r.stdout

    # Sealed already: the same option is a no-op, the key file untouched.
    key = vk.read_text()
    r = m.mount("--audit-seal", vk)
    try:
        assert "verification key" not in r.stderr, r.stderr
        assert m.status()["audit-seal"].startswith("on, 1 seals, ")
    finally:
        m.umount()
    assert vk.read_text() == key

    # Another, new db, with the first db's key file named: refused, and
    # the file is left as it was.
    other = m.base / "other.db"
    r = m.mount("--audit-db", other, "--audit-seal", vk, check=False)
    m.umount()
    assert r.returncode != 0
    assert f"cannot create verification key file '{vk}': File exists" in r.stderr, r.stderr
    assert vk.read_text() == key
    assert not pathlib.Path(f"{other}.seal").exists()


def test_status_says_when_sealing_is_off(vault):
    m = vault
    m.mount()
    try:
        assert m.status()["audit-seal"] == "off"
    finally:
        m.umount()
    # sealed once, then its state deleted: off, and why
    r = wardfs("audit", "seal-init", "--db", m.db, "--verify-key-out", m.base / "vk",
               check=False)
    assert r.returncode == 0, r.stderr
    m.mount()
    m.umount()  # the unmount seals
    os.unlink(f"{m.db}.seal")
    m.mount()
    try:
        st = m.status()["audit-seal"]
        assert re.fullmatch(r"off: sealed up to row \d+, but the sealing state '.*' is missing",
                            st), st
    finally:
        m.umount()
