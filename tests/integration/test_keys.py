"""Key slots (issue 17) through the CLI and real mounts: list, add and
remove slots of every type, an organisation's escrow key unlocking a vault
and resetting a user's passphrase without knowing it, a version-1 keyfile
upgraded in place at mount, SIGKILL during `key add` never leaving a
half-written keyfile, and bad input with one-line errors."""
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import time

from conftest import PASS, is_mounted, wardfs, WARDFS

HERE = pathlib.Path(__file__).resolve().parent
V1_KAT = HERE.parent / "data" / "keyfile-v1-kat.txt"
CHEAP = ("--kdf-memory", "8", "--kdf-ops", "1")


def secret_file(path, text):
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def mount_with(m, *unlock, check=True):
    m.mnt.mkdir(exist_ok=True)
    r = wardfs("mount", *unlock, "--policy", m.policy, "--audit-db", m.db, "--log", m.log,
               m.backing, m.mnt, check=False)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def slots(m):
    r = wardfs("key", "list", m.backing)
    rows = [l.split() for l in r.stdout.splitlines()[1:] if l and l[0].isdigit()]
    return {int(f[0]): f[1] for f in rows}, r.stdout


def vault_rows(m):
    con = sqlite3.connect(f"file:{m.db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT detail FROM events WHERE kind = 'vault' ORDER BY id")]
    finally:
        con.close()


def test_slots_of_every_type(vault, base):
    m = vault
    have, text = slots(m)
    assert have == {0: "recovery", 1: "passphrase"}, text
    assert "never" in text and "keyfile version 2" in text
    mount_with(m, "--passfile", m.passfile)
    try:
        (m.mnt / "notes").write_text("kept through every key change\n")
    finally:
        m.umount()
    _, text = slots(m)
    assert "never" in text.splitlines()[1]  # the recovery slot
    assert "never" not in text.splitlines()[2], text  # slot 1 unlocked just now

    # a second passphrase, labelled
    p2 = secret_file(base / "p2", "laptop passphrase")
    r = wardfs("key", "add", m.backing, "--type", "passphrase", "--label", "alice laptop",
               "--passfile", m.passfile, "--new-passfile", p2, *CHEAP, check=False)
    assert r.returncode == 0, r.stderr
    assert "Added slot 2 (passphrase, 'alice laptop')" in r.stdout
    have, text = slots(m)
    assert have[2] == "passphrase" and "alice laptop" in text

    # an organisation's escrow key
    sec, pub = base / "org.secret", base / "org.public"
    r = wardfs("key", "escrow-keygen", "--secret-out", sec, "--public-out", pub)
    assert r.stdout.strip() == pub.read_text().strip()
    assert r.stdout.startswith("wardfs-escrow-public-1:")
    assert sec.stat().st_mode & 0o777 == 0o600
    assert sec.read_text().startswith("wardfs-escrow-secret-1:")
    r = wardfs("key", "add", m.backing, "--type", "escrow", "--label", "it dept", "--public",
               pub, "--passfile", p2, check=False)
    assert r.returncode == 0, r.stderr
    have, text = slots(m)
    assert have[3] == "escrow" and "public key" in text

    # the admin unlocks with the escrow key alone, and sets a new passphrase
    # for the user without knowing the old one
    mount_with(m, "--escrow-key", sec)
    try:
        assert (m.mnt / "notes").read_text() == "kept through every key change\n"
    finally:
        m.umount()
    p3 = secret_file(base / "p3", "reset by the admin")
    r = wardfs("passwd", "--escrow-key", sec, "--slot", "1", "--new-passfile", p3, m.backing,
               check=False)
    assert r.returncode == 0, r.stderr
    assert mount_with(m, "--passfile", m.passfile, check=False).returncode != 0
    mount_with(m, "--passfile", p3)
    m.umount()

    # a second recovery key, written to a file
    rk = base / "rk2"
    r = wardfs("key", "add", m.backing, "--type", "recovery", "--recovery-key-out", rk,
               "--passfile", p3, check=False)
    assert r.returncode == 0, r.stderr
    assert rk.stat().st_mode & 0o777 == 0o600
    mount_with(m, "--recovery-key-file", rk)
    m.umount()

    # removing a slot revokes its secret, the others still open
    r = wardfs("key", "remove", m.backing, "2", "--passfile", p3, check=False)
    assert r.returncode == 0, r.stderr
    assert "Removed slot 2 (passphrase)" in r.stdout
    r = mount_with(m, "--passfile", p2, check=False)
    assert r.returncode != 0 and "wrong passphrase" in r.stderr, r.stderr
    assert not is_mounted(m.mnt)
    mount_with(m, "--escrow-key", sec)
    m.umount()

    rows = vault_rows(m)
    assert "key add: slot 2 (passphrase) added (unlocked with slot 1)" in rows, rows
    assert "key add: slot 3 (escrow) added (unlocked with slot 2)" in rows, rows
    assert ("passwd: the passphrase of slot 1 was changed (unlocked with escrow slot 3)"
            in rows), rows
    assert "key remove: slot 2 (passphrase) removed (unlocked with slot 1)" in rows, rows


def test_the_last_slot_is_never_removed(vault, base):
    m = vault
    r = wardfs("key", "remove", m.backing, "0", "--passfile", m.passfile, check=False)
    assert r.returncode == 0, r.stderr
    r = wardfs("key", "remove", m.backing, "1", "--passfile", m.passfile, check=False)
    assert r.returncode == 1
    assert "last key slot" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    mount_with(m, "--passfile", m.passfile)
    m.umount()


def test_bad_input_is_one_line(vault, base):
    m = vault
    m.mnt.mkdir()
    sec, pub = base / "s", base / "p"
    wardfs("key", "escrow-keygen", "--secret-out", sec, "--public-out", pub)

    def fails(*args, code=1, says):
        r = wardfs(*args, check=False)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert says in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    fails("key", "add", m.backing, "--type", "tpm9", code=2, says="not a slot type")
    fails("key", "add", m.backing, code=2, says="missing --type")
    fails("key", "add", m.backing, "--type", "escrow", code=2, says="--public FILE")
    fails("key", "remove", m.backing, code=2, says="missing SLOT")
    fails("key", "remove", m.backing, "x1", code=2, says="not a slot id")
    fails("key", "escrow-keygen", code=2, says="missing --secret-out")
    fails("key", "escrow-keygen", "--secret-out", sec, says="it exists")
    typo = base / "typo"
    text = pub.read_text()
    typo.write_text(text[:30] + ("0" if text[30] != "0" else "1") + text[31:])
    fails("key", "add", m.backing, "--type", "escrow", "--public", typo,
          "--passfile", m.passfile, says="mistyped")
    fails("key", "add", m.backing, "--type", "escrow", "--public", sec,
          "--passfile", m.passfile, says="not an escrow public key")
    fails("key", "remove", m.backing, "9", "--passfile", m.passfile, says="has no slot 9")
    # an escrow key of another organisation, and one for a vault without escrow
    fails("mount", "--escrow-key", sec, "--policy", m.policy, "--audit-db", m.db,
          "--log", m.log, m.backing, m.mnt, says="has no escrow key slot")
    wardfs("key", "add", m.backing, "--type", "escrow", "--public", pub, "--passfile",
           m.passfile)
    other = base / "other"
    wardfs("key", "escrow-keygen", "--secret-out", other)
    fails("mount", "--escrow-key", other, "--policy", m.policy, "--audit-db", m.db,
          "--log", m.log, m.backing, m.mnt, says="wrong escrow key")
    assert not is_mounted(m.mnt)
    # a keyfile cut short, or with a slot's label changed behind the MAC
    kf = m.backing / ".wardfs" / "keyfile"
    good = kf.read_bytes()
    kf.write_bytes(good[:100])
    fails("key", "list", m.backing, says="corrupt")
    label = good.index(b"passphrase")
    kf.write_bytes(good[:label] + b"P" + good[label + 1:])
    fails("mount", "--escrow-key", sec, "--policy", m.policy, "--audit-db", m.db,
          "--log", m.log, m.backing, m.mnt, says="tampered")
    kf.write_bytes(good)
    mount_with(m, "--escrow-key", sec)
    m.umount()


def v1_keyfile():
    text = V1_KAT.read_text()
    get = lambda name: next(l.split(": ", 1)[1] for l in text.splitlines()
                            if l.startswith(name + ": "))
    return bytes.fromhex(get("keyfile")), get("passphrase"), get("recovery")


def test_version_1_keyfile_is_upgraded_at_mount(base):
    """A vault made by the first wardfs (its 188-byte keyfile) mounts with
    its passphrase, and the mount rewrites the keyfile as version 2 with
    the same two secrets as legacy slots."""
    from conftest import Mount, DEFAULT_POLICY
    m = Mount(base)
    m.policy.write_text(DEFAULT_POLICY)
    m.init()
    kf, pw, rec = v1_keyfile()
    (m.backing / ".wardfs" / "keyfile").write_bytes(kf)
    _, text = slots(m)
    assert "keyfile version 1" in text and "(version 1)" in text, text
    secret_file(m.passfile, pw)
    mount_with(m, "--passfile", m.passfile)
    try:
        (m.mnt / "secret").mkdir(exist_ok=True)
        (m.mnt / "secret" / "f").write_text("written after the upgrade\n")
    finally:
        m.umount()
    now = (m.backing / ".wardfs" / "keyfile").read_bytes()
    assert len(now) != 188 and now[8] == 2
    have, text = slots(m)
    assert have == {0: "recovery", 1: "passphrase"} and "keyfile version 2" in text, text
    mount_with(m, "--recovery-key-file", secret_file(base / "rk", rec))
    try:
        assert (m.mnt / "secret" / "f").read_text() == "written after the upgrade\n"
    finally:
        m.umount()


def test_sigkill_during_key_add_leaves_a_whole_keyfile(vault, base):
    """Killed at any moment, `key add` leaves the old keyfile or the new
    one, never a torn one, and the old passphrase always unlocks."""
    m = vault
    kf = m.backing / ".wardfs" / "keyfile"
    p2 = secret_file(base / "p2", "another")
    seen = set()
    rnd = random.Random(17)
    for i in range(25):
        before = kf.read_bytes()
        p = subprocess.Popen([WARDFS, "key", "add", str(m.backing), "--type", "passphrase",
                              "--passfile", str(m.passfile), "--new-passfile", str(p2),
                              *CHEAP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0, 0.15))
        p.send_signal(signal.SIGKILL)
        p.wait()
        after = kf.read_bytes()
        seen.add(after == before)
        assert wardfs("key", "list", m.backing, check=False).returncode == 0, i
    # some kills landed before the write, some after (or the loop proves little)
    assert seen == {True, False}, seen
    mount_with(m, "--passfile", m.passfile)
    m.umount()
    mount_with(m, "--passfile", p2)
    m.umount()
