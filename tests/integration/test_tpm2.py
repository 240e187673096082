"""tpm2 key slots (issue 17) against a real software TPM: each test starts
its own swtpm (TCP, free ports, its own state directory), stopped however
the test ends. A vault with a tpm2 slot mounts with no input at all;
bound to a PCR, it stops opening when the PCR changes and the unlock asks
for the passphrase instead; another TPM, no TPM and a garbled slot are one
line each and lose nothing; the slot can be removed; SIGKILL during `key
add --type tpm2` never leaves a torn keyfile."""
import os
import random
import signal
import socket
import subprocess
import time

import pytest

from conftest import PASS, WARDFS, is_marked, is_mounted, wardfs

SWTPM = "/usr/bin/swtpm"


def free_ports():
    """Two free ports P, P + 1: tpm2-tss's swtpm TCTI sends commands to
    the port it is given and controls the TPM on the next one."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port, port + 1
        except OSError:
            continue
    raise AssertionError("no two free ports in a row")


class Swtpm:
    """A swtpm process on 127.0.0.1 with its state in state_dir: the same
    directory is the same TPM (its seeds), across restarts (a reboot:
    startup-clear resets the PCRs)."""

    def __init__(self, state_dir):
        self.state = state_dir
        self.state.mkdir(mode=0o700, exist_ok=True)
        self.proc = None
        self.port = None

    @property
    def tcti(self):
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self):
        self.port, ctrl = free_ports()
        self.proc = subprocess.Popen(
            [SWTPM, "socket", "--tpm2",
             "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
             "--tpmstate", f"dir={self.state}", "--flags", "not-need-init,startup-clear"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"swtpm exited: {self.proc.stderr.read()!r}")
                if time.monotonic() > deadline:
                    raise AssertionError("swtpm did not listen within 10 s")
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def tools(self, *args):
        """A tpm2-tools command on this TPM."""
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tcti, TSS2_LOG="all+none")
        return subprocess.run(list(args), env=env, check=True, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)


@pytest.fixture
def tpm(base):
    if not os.path.exists(SWTPM):
        pytest.fail("swtpm is not installed (scripts/setup.sh installs it)")
    t = Swtpm(base / "tpm-a").start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def other_tpm(base):
    t = Swtpm(base / "tpm-b").start()
    try:
        yield t
    finally:
        t.stop()


def mount(m, *unlock, input=None, env=None, check=True):
    """Mounts m with the given unlock options only: stdin is closed (or
    gives input), no passfile unless one is named."""
    m.mnt.mkdir(exist_ok=True)
    kw = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    r = wardfs("mount", *unlock, "--policy", m.policy, "--audit-db", m.db, "--log", m.log,
               m.backing, m.mnt, check=False, env=env, **kw)
    quiet_tss(r)
    if check:
        assert r.returncode == 0, r.stderr
        assert is_mounted(m.mnt)
    return r


def quiet_tss(r):
    """tpm2-tss logs its failures on stderr ("ERROR:esys:..."): wardfs
    turns that off, its own line says what failed."""
    assert not [l for l in r.stderr.splitlines()
                if l.startswith(("ERROR:", "WARNING:", "INFO:"))], r.stderr


def add_tpm2(m, tpm, *extra):
    r = wardfs("key", "add", m.backing, "--type", "tpm2", "--tpm2-tcti", tpm.tcti,
               "--passfile", m.passfile, *extra, check=False, stdin=subprocess.DEVNULL)
    quiet_tss(r)
    assert r.returncode == 0, r.stderr
    return r


def tpm2_lines(stderr):
    return [l for l in stderr.splitlines() if "tpm2 slot" in l]


def keyfile(m):
    return m.backing / ".wardfs" / "keyfile"


def tpm2_body(kf):
    """The offset of the first tpm2 record's body and its public and
    private blob lengths (docs/format.md)."""
    off = 36
    for _ in range(int.from_bytes(kf[32:34], "little")):
        rl = int.from_bytes(kf[off:off + 2], "little")
        if kf[off + 4] == 4:
            body = off + 16 + kf[off + 6]
            p = int.from_bytes(kf[body + 8:body + 10], "little")
            q = int.from_bytes(kf[body + 10 + p:body + 12 + p], "little")
            return body, p, q
        off += rl
    raise AssertionError("no tpm2 slot")


def test_unattended_mount(vault, tpm):
    """`key add --type tpm2`, then mounts with nothing to read a passphrase
    from; the TPM restarted (a reboot) still unseals; the TPM chosen by the
    environment as well as by --tpm2-tcti."""
    m = vault
    r = add_tpm2(m, tpm)
    assert "Added slot 2 (tpm2, 'tpm2')" in r.stdout, r.stdout
    assert "bound to no PCR" in r.stdout
    text = wardfs("key", "list", m.backing).stdout
    assert "tried without asking: tpm2 slot 2" in text, text
    row = next(l for l in text.splitlines() if l.startswith("2 "))
    assert "tpm2" in row and "no PCRs" in row and "never" in row, row

    r = mount(m, "--tpm2-tcti", tpm.tcti)
    try:
        assert not tpm2_lines(r.stderr), r.stderr
        (m.mnt / "secret").mkdir()
        (m.mnt / "secret" / "id").write_text("opened by the TPM\n")
    finally:
        m.umount()
    assert is_marked(m.backing / "secret" / "id")
    assert b"opened by the TPM" not in (m.backing / "secret" / "id").read_bytes()
    row = next(l for l in wardfs("key", "list", m.backing).stdout.splitlines()
               if l.startswith("2 "))
    assert "never" not in row, row  # slot 2 unlocked just now

    # the audit says how the vault was unlocked
    rows = m.sql("SELECT detail FROM events WHERE kind = 'mount'")
    assert f"{m.backing}; unlocked with slot 2 (tpm2)" in rows, rows
    tpm.stop()
    tpm.start()  # the same TPM after a reboot (another port)
    r = mount(m, env=dict(os.environ, WARDFS_TPM2_TCTI=tpm.tcti))
    try:
        assert (m.mnt / "secret" / "id").read_text() == "opened by the TPM\n"
    finally:
        m.umount()


def test_pcr_change_falls_back_to_the_passphrase(vault, tpm):
    m = vault
    r = add_tpm2(m, tpm, "--tpm2-pcrs", "7,16", "--label", "boot state")
    assert "sha256 PCRs 7,16" in r.stdout, r.stdout
    assert "sha256 PCRs 7,16" in wardfs("key", "list", m.backing).stdout
    mount(m, "--tpm2-tcti", tpm.tcti)
    m.umount()

    tpm.tools("tpm2_pcrextend", "16:sha256=" + "01" * 32)
    # nothing to ask: refused, and it says why in one line each
    r = mount(m, "--tpm2-tcti", tpm.tcti, check=False)
    assert r.returncode != 0 and not is_mounted(m.mnt)
    lines = tpm2_lines(r.stderr)
    assert lines == [f"wardfs mount: warning: tpm2 slot 2 of '{m.backing}' did not open: "
                     "one of PCRs 7,16 (sha256) changed since the slot was sealed"], r.stderr
    assert "cannot read the passphrase from stdin" in r.stderr, r.stderr
    # the passphrase, asked on stdin, opens it
    r = mount(m, "--tpm2-tcti", tpm.tcti, input=PASS + "\n")
    m.umount()
    assert len(tpm2_lines(r.stderr)) == 1, r.stderr
    # a wrong one does not
    r = mount(m, "--tpm2-tcti", tpm.tcti, input="not it\n", check=False)
    assert r.returncode != 0 and "wrong passphrase" in r.stderr, r.stderr
    # a PCR outside the policy changes nothing; a reboot resets the PCRs
    tpm.stop()
    tpm.start()
    tpm.tools("tpm2_pcrextend", "23:sha256=" + "02" * 32)
    r = mount(m, "--tpm2-tcti", tpm.tcti)
    m.umount()
    assert not tpm2_lines(r.stderr), r.stderr
    tpm.tools("tpm2_pcrextend", "7:sha256=" + "03" * 32)
    r = mount(m, "--tpm2-tcti", tpm.tcti, "--passfile", m.passfile)
    m.umount()
    assert "PCRs 7,16 (sha256) changed" in r.stderr, r.stderr


def test_another_tpm_refuses(vault, tpm, other_tpm):
    m = vault
    add_tpm2(m, tpm)
    r = mount(m, "--tpm2-tcti", other_tpm.tcti, input=PASS + "\n")
    m.umount()
    assert tpm2_lines(r.stderr) == [
        f"wardfs mount: warning: tpm2 slot 2 of '{m.backing}' did not open: the TPM does "
        "not know the sealed key: it was sealed by another TPM, or this TPM was cleared "
        "since"], r.stderr
    # and its own TPM still opens it
    mount(m, "--tpm2-tcti", tpm.tcti)
    m.umount()


def test_no_tpm(vault, tpm, base):
    m = vault
    kf = keyfile(m)
    before = kf.read_bytes()
    r = wardfs("key", "add", m.backing, "--type", "tpm2", "--tpm2-tcti",
               f"device:{base}/no-such-tpm", "--passfile", m.passfile, check=False)
    assert r.returncode == 1
    quiet_tss(r)
    assert r.stderr.strip() == (
        f"wardfs key add: cannot seal a key to the TPM: no TPM on this machine "
        f"('{base}/no-such-tpm' does not exist) (the keyfile is as it was)"), r.stderr
    assert kf.read_bytes() == before
    if not os.path.exists("/dev/tpmrm0"):  # the default, on a machine without a TPM
        r = wardfs("key", "add", m.backing, "--type", "tpm2", "--passfile", m.passfile,
                   check=False, env={k: v for k, v in os.environ.items()
                                     if k != "WARDFS_TPM2_TCTI"})
        assert r.returncode == 1 and "no TPM on this machine ('/dev/tpmrm0'" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    add_tpm2(m, tpm)
    tcti = tpm.tcti
    tpm.stop()  # the TPM gone: nothing listens there
    r = mount(m, "--tpm2-tcti", tcti, "--passfile", m.passfile)
    m.umount()
    assert tpm2_lines(r.stderr) == [
        f"wardfs mount: warning: tpm2 slot 2 of '{m.backing}' did not open: cannot reach "
        f"the TPM at '{tcti}' (tcti:IO failure)"], r.stderr
    r = wardfs("key", "add", m.backing, "--type", "tpm2", "--tpm2-tcti", tcti, "--passfile",
               m.passfile, check=False)
    # the unlock's warning (its tpm2 slot), then the error
    assert r.returncode == 1 and r.stderr.strip().splitlines()[1:] == [
        f"wardfs key add: cannot seal a key to the TPM: cannot reach the TPM at '{tcti}' "
        "(tcti:IO failure) (the keyfile is as it was)"], r.stderr


def test_garbled_slot(vault, tpm):
    """A tpm2 slot changed in the keyfile: its one line says so and the
    unlock goes on to the passphrase, which opens its own slot; but every
    byte of a slot is under the keyfile's MAC, so the unlock is then
    refused as tampering (as for any changed slot) and nothing is
    written: the keyfile put back opens again."""
    m = vault
    add_tpm2(m, tpm)
    kf = keyfile(m)
    good = kf.read_bytes()
    body, p, q = tpm2_body(good)

    def garbled(at, says, code=1):
        bad = bytearray(good)
        bad[at] ^= 0x01
        kf.write_bytes(bytes(bad))
        r = mount(m, "--tpm2-tcti", tpm.tcti, "--passfile", m.passfile, check=False)
        assert r.returncode == code and not is_mounted(m.mnt), r.stderr
        assert kf.read_bytes() == bytes(bad)  # nothing rewritten
        return r

    # the private blob: the TPM's integrity check refuses it
    r = garbled(body + 12 + p + 20, "")
    assert tpm2_lines(r.stderr) == [
        f"wardfs mount: warning: tpm2 slot 2 of '{m.backing}' did not open: the TPM does "
        "not know the sealed key: it was sealed by another TPM, or this TPM was cleared "
        "since"], r.stderr
    assert "is corrupt or was tampered with" in r.stderr.splitlines()[-1], r.stderr
    # the public blob's type: not even a sealed object
    r = garbled(body + 10 + 3, "")
    assert tpm2_lines(r.stderr) == [
        f"wardfs mount: warning: tpm2 slot 2 of '{m.backing}' did not open: the sealed key "
        "stored in the slot is garbled"], r.stderr
    assert "is corrupt or was tampered with" in r.stderr.splitlines()[-1], r.stderr
    # a length that no longer adds up: the keyfile is malformed as a whole
    r = garbled(body + 8, "")
    assert r.stderr.strip().splitlines()[-1].endswith("is corrupt or from a newer wardfs")
    assert not tpm2_lines(r.stderr)
    kf.write_bytes(good)
    r = mount(m, "--tpm2-tcti", tpm.tcti)
    m.umount()
    assert not tpm2_lines(r.stderr)


def test_remove_the_tpm2_slot(vault, tpm):
    m = vault
    add_tpm2(m, tpm, "--label", "server")
    # unlocked by the TPM itself: nothing asked
    r = wardfs("key", "remove", m.backing, "2", "--tpm2-tcti", tpm.tcti, check=False,
               stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "Removed slot 2 (tpm2)" in r.stdout
    text = wardfs("key", "list", m.backing).stdout
    assert "no slot is tried without asking" in text and "tpm2" not in text, text
    r = mount(m, "--tpm2-tcti", tpm.tcti, check=False)
    assert r.returncode != 0 and not tpm2_lines(r.stderr), r.stderr
    assert "cannot read the passphrase from stdin" in r.stderr, r.stderr
    mount(m, "--passfile", m.passfile)
    m.umount()


def test_bad_options_are_one_line(vault, tpm):
    m = vault

    def fails(*args, says):
        r = wardfs("key", "add", m.backing, *args, "--passfile", m.passfile, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr

    fails("--type", "tpm2", "--tpm2-pcrs", "24", says="is not a list of PCRs")
    fails("--type", "tpm2", "--tpm2-pcrs", "7,7", says="is not a list of PCRs")
    fails("--type", "tpm2", "--tpm2-pcrs", "", says="is not a list of PCRs")
    fails("--type", "passphrase", "--tpm2-pcrs", "7", says="--tpm2-pcrs goes with --type tpm2")


def test_sigkill_during_tpm2_key_add_leaves_a_whole_keyfile(vault, tpm):
    """Killed at any moment, `key add --type tpm2` leaves the old keyfile
    or the new one, and the old passphrase always unlocks. (swtpm has no
    resource manager, unlike /dev/tpmrm0: what a killed process had loaded
    stays in the TPM, so the test flushes it after each kill.)"""
    m = vault
    kf = keyfile(m)
    seen = set()
    rnd = random.Random(17)
    # kills spread over one whole add, however fast this machine (or build) is
    t0 = time.monotonic()
    add_tpm2(m, tpm)
    took = time.monotonic() - t0
    for i in range(20):
        before = kf.read_bytes()
        p = subprocess.Popen([WARDFS, "key", "add", str(m.backing), "--type", "tpm2",
                              "--tpm2-tcti", tpm.tcti, "--passfile", str(m.passfile)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0, 1.3 * took))
        p.send_signal(signal.SIGKILL)
        p.wait()
        after = kf.read_bytes()
        seen.add(after == before)
        assert wardfs("key", "list", m.backing, check=False).returncode == 0, i
        for what in ("--transient-object", "--loaded-session"):
            tpm.tools("tpm2_flushcontext", what)
    assert seen == {True, False}, seen
    r = mount(m, "--tpm2-tcti", f"device:{m.base}/none", "--passfile", m.passfile)
    m.umount()
    # each tpm2 slot that made it in opens by the TPM alone
    r = mount(m, "--tpm2-tcti", tpm.tcti)
    m.umount()
    assert not tpm2_lines(r.stderr), r.stderr


def test_stdin_lines_keep_their_meaning(vault, tpm, base):
    """`wardfs passwd` and `key add --type passphrase` read "CURRENT\\nNEW\\n"
    from stdin (pam_wardfs writes it so): with a tpm2 slot that opens, the
    first line must still be the current passphrase, not become the new
    one. With the new passphrase in a file, the TPM unlocks passwd alone."""
    m = vault
    add_tpm2(m, tpm)
    env = dict(os.environ, WARDFS_TPM2_TCTI=tpm.tcti)
    r = wardfs("passwd", m.backing, input=f"{PASS}\nsecond passphrase\n", env=env, check=False)
    assert r.returncode == 0, r.stderr
    r = mount(m, "--tpm2-tcti", f"device:{base}/none", input="second passphrase\n")
    m.umount()
    r = mount(m, "--tpm2-tcti", f"device:{base}/none", input=PASS + "\n", check=False)
    assert r.returncode != 0 and "wrong passphrase" in r.stderr, r.stderr
    # a wrong current passphrase is refused, TPM or not
    r = wardfs("passwd", m.backing, input="not it\nthird\n", env=env, check=False)
    assert r.returncode != 0 and "wrong passphrase" in r.stderr, r.stderr

    r = wardfs("key", "add", m.backing, "--type", "passphrase", *("--kdf-memory", "8",
               "--kdf-ops", "1"), input="second passphrase\nthird passphrase\n", env=env,
               check=False)
    assert r.returncode == 0, r.stderr
    assert "Added slot 3 (passphrase" in r.stdout
    mount(m, "--tpm2-tcti", f"device:{base}/none", input="third passphrase\n")
    m.umount()

    newp = base / "new-pass"
    newp.write_text("fourth passphrase\n")
    newp.chmod(0o600)
    r = wardfs("passwd", m.backing, "--slot", "1", "--new-passfile", newp, env=env,
               check=False, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    mount(m, "--tpm2-tcti", f"device:{base}/none", input="fourth passphrase\n")
    m.umount()


def test_unlock_after_lock_asks(vault, tpm):
    """`wardfs lock` wipes the keys; `wardfs unlock` wants a secret again:
    the tpm2 slot that mounted the vault does not stand in for it."""
    m = vault
    add_tpm2(m, tpm)
    mount(m, "--tpm2-tcti", tpm.tcti)
    try:
        (m.mnt / "secret").mkdir()
        (m.mnt / "secret" / "f").write_text("kept\n")
        wardfs("lock", m.mnt)
        r = wardfs("unlock", "--tpm2-tcti", tpm.tcti, m.mnt, check=False,
                   stdin=subprocess.DEVNULL)
        assert r.returncode != 0, r.stderr
        assert "cannot read the passphrase from stdin" in r.stderr and not tpm2_lines(r.stderr)
        wardfs("unlock", "--passfile", m.passfile, m.mnt)
        assert (m.mnt / "secret" / "f").read_text() == "kept\n"
    finally:
        m.umount()
