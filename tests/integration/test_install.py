"""Installing and mounting the way an admin does: `cmake --install` into a
DESTDIR, the mount(8) helper through `mount -t fuse.wardfs` and an fstab
line (`mount -T`), and the systemd unit's ExecStart/ExecStop run by hand.

mount(8) looks for helpers only in /sbin, so the helper tests link
/sbin/mount.fuse.wardfs to the binary under test for their duration and
restore whatever was there."""
import os
import pathlib
import shlex
import stat
import subprocess

import pytest

from conftest import PASS, ROOT, WARDFS, ended, is_mounted, run, wait_for, wardfs

BUILD = pathlib.Path(WARDFS).resolve().parent
HELPER = pathlib.Path("/sbin/mount.fuse.wardfs")
UNIT = ROOT / "etc" / "systemd" / "wardfs@.service"


def install(destdir, prefix="/usr/local"):
    env = dict(os.environ, DESTDIR=str(destdir))
    r = subprocess.run(["cmake", "--install", str(BUILD), "--prefix", prefix],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_install_into_destdir(base):
    dest = base / "dest"
    out = install(dest)
    usr = dest / "usr/local"
    binary = usr / "bin/wardfs"
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert run(binary, "--version").stdout.startswith("wardfs ")
    # it does not need the source tree: a project-local libfuse is installed
    # beside it and found relative to the binary
    fuse = [ln for ln in run("ldd", binary).stdout.splitlines() if "libfuse3" in ln]
    assert len(fuse) == 1, fuse
    lib = os.path.realpath(fuse[0].split("=>")[1].split("(")[0].strip())
    assert not lib.startswith(str(ROOT)), fuse
    if (ROOT / "deps/libfuse/lib").is_dir():
        assert lib.startswith(str(usr / "lib")), fuse
    for name in ("mount.wardfs", "mount.fuse.wardfs"):
        link = usr / "sbin" / name
        assert link.is_symlink(), name
        assert link.resolve() == binary.resolve()
    # the PAM module goes where PAM looks (pam.pc's libdir/security, outside
    # the prefix), with only the entry points exported and no sanitizer
    # runtime, since passwd(1) loads it
    pam = list(dest.glob("**/security/pam_wardfs.so"))
    assert len(pam) == 1 and not str(pam[0]).startswith(str(usr)), pam
    syms = run("nm", "-D", "--defined-only", pam[0]).stdout.split()
    assert "pam_sm_chauthtok" in syms and "run_passwd" not in syms, syms
    assert "asan" not in run("ldd", pam[0]).stdout
    # a helper called by its installed name is the helper
    r = run(usr / "sbin/mount.wardfs", "--help")
    assert "mount.wardfs BACKING MOUNTPOINT" in r.stdout
    for page in (ROOT / "docs/man").iterdir():
        section = page.suffix.lstrip(".")
        installed = usr / "share/man" / f"man{section}" / page.name
        assert installed.read_bytes() == page.read_bytes(), installed
    for page in ("wardfs.1", "wardfs-policy.5", "wardfs-setup-home.8"):
        assert list(usr.glob(f"share/man/man*/{page}")), page
    comp = usr / "share/bash-completion/completions/wardfs"
    run("bash", "-n", comp)
    # bash-completion's _init_completion, reduced to what it sets
    r = run("bash", "-c", "_init_completion() { words=(wardfs setup-); cword=1; "
            f"cur=setup-; prev=wardfs; }}; . {comp}; _wardfs; "
            'echo "${COMPREPLY[@]}"')
    assert r.stdout.split() == ["setup-home"]
    # the daily audit prune (systemd timer, cron where systemd does not
    # run) and the log's rotation (issue 16)
    units = usr / "lib/systemd/system"
    prune = (units / "wardfs-prune.service").read_text()
    assert "ExecStart=/usr/local/bin/wardfs audit prune --older-than 365d" in prune
    assert "OnCalendar=daily" in (units / "wardfs-prune.timer").read_text()
    cron = dest / "etc/cron.daily/wardfs-prune"
    assert os.access(cron, os.X_OK) and "/usr/local/bin/wardfs audit prune" in cron.read_text()
    run("sh", "-n", cron)
    rot = (dest / "etc/logrotate.d/wardfs").read_text()
    assert "/var/log/wardfs.log {" in rot and "copytruncate" in rot
    unit = (usr / "lib/systemd/system/wardfs@.service").read_text()
    assert "@BINDIR@" not in unit
    assert "ExecStart=/usr/local/bin/wardfs mount " in unit
    assert "ExecStop=/usr/local/bin/wardfs umount %f" in unit
    policy = dest / "etc/wardfs/policy"
    assert policy.read_text() == (ROOT / "etc/policy.example").read_text()
    assert stat.S_IMODE(policy.stat().st_mode) == 0o644
    assert "Installing: " + str(policy) in out
    # the admin's policy is never overwritten
    policy.write_text("default deny\n")
    out = install(dest)
    assert policy.read_text() == "default deny\n"
    assert "Keeping: " + str(policy) in out


def test_install_other_prefix(base):
    dest = base / "dest"
    install(dest, prefix="/opt/wardfs")
    assert (dest / "opt/wardfs/bin/wardfs").is_file()
    assert os.readlink(dest / "opt/wardfs/sbin/mount.wardfs") == "../bin/wardfs"
    unit = (dest / "opt/wardfs/lib/systemd/system/wardfs@.service").read_text()
    assert "ExecStart=/opt/wardfs/bin/wardfs mount" in unit


def test_make_install_passes_destdir_and_prefix(base):
    r = run("make", "-n", "-C", ROOT, "install", "PREFIX=/opt/x", f"DESTDIR={base}/d")
    line = [l for l in r.stdout.splitlines() if "cmake --install" in l]
    assert line, r.stdout
    assert f'DESTDIR="{base}/d"' in line[0] and '--prefix "/opt/x"' in line[0]


@pytest.fixture
def helper():
    """/sbin/mount.fuse.wardfs -> the binary under test, restored after."""
    saved = None
    if HELPER.exists() or HELPER.is_symlink():
        saved = HELPER.with_name(HELPER.name + ".wardfs-test-saved")
        os.rename(HELPER, saved)
    os.symlink(WARDFS, HELPER)
    try:
        yield HELPER
    finally:
        HELPER.unlink()
        if saved is not None:
            os.rename(saved, HELPER)


def fstab_opts(v, *extra):
    return ",".join([f"passfile={v.passfile}", f"policy={v.policy}",
                     f"audit-db={v.db}", f"log={v.log}", *extra])


def check_mount_works(v):
    assert is_mounted(v.mnt)
    (v.mnt / ".ssh").mkdir()
    (v.mnt / ".ssh/id_test").write_text("private\n")
    assert (v.mnt / ".ssh/id_test").read_text() == "private\n"
    assert b"private" not in (v.backing / ".ssh/id_test").read_bytes()
    st = v.status()
    return int(st["pid"])


def umount_and_wait(v, pid):
    run("umount", v.mnt)
    assert not is_mounted(v.mnt)
    assert wait_for(lambda: ended(pid), 30), "daemon still runs"


def test_mount_t_fuse_wardfs(vault, helper):
    vault.mnt.mkdir()
    try:
        r = run("mount", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o",
                fstab_opts(vault, "nofail", "noauto", "_netdev", "x-systemd.device-timeout=5",
                           "defaults", "nosuid", "nodev"), check=False)
        assert r.returncode == 0, r.stderr + vault.logtext()
        opts = [l.split()[3] for l in open("/proc/self/mounts")
                if l.split()[1] == str(vault.mnt)][0].split(",")
        assert "nosuid" in opts and "nodev" in opts
        pid = check_mount_works(vault)
        umount_and_wait(vault, pid)
    finally:
        vault.umount()


def test_mount_passphrase_on_stdin(vault, helper):
    """pam_mount writes the password, without a newline, to mount's stdin."""
    vault.mnt.mkdir()
    opts = f"policy={vault.policy},audit-db={vault.db},log={vault.log}"
    try:
        r = run("mount", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o", opts,
                input="wrong", check=False)
        assert r.returncode != 0 and "wrong passphrase" in r.stderr
        assert not is_mounted(vault.mnt)
        r = run("mount", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o", opts,
                input=PASS, check=False)
        assert r.returncode == 0, r.stderr
        pid = check_mount_works(vault)
        umount_and_wait(vault, pid)
    finally:
        vault.umount()


def test_fstab_line(vault, helper):
    vault.mnt.mkdir()
    fstab = vault.base / "fstab"
    fstab.write_text("# test fstab\n"
                     f"{vault.backing} {vault.mnt} fuse.wardfs "
                     f"{fstab_opts(vault, 'nofail', 'x-systemd.automount')} 0 0\n")
    try:
        r = run("mount", "-T", fstab, vault.mnt, check=False)
        assert r.returncode == 0, r.stderr + vault.logtext()
        pid = check_mount_works(vault)
        umount_and_wait(vault, pid)
    finally:
        vault.umount()


def test_helper_option_errors(vault, helper):
    vault.mnt.mkdir()
    try:
        r = run("mount", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o",
                fstab_opts(vault, "colour=blue"), check=False)
        assert r.returncode != 0
        assert "unknown mount option 'colour=blue'" in r.stderr
        assert not is_mounted(vault.mnt)
        r = run("mount", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o",
                fstab_opts(vault, "passfile"), check=False)
        assert r.returncode != 0 and "needs a value" in r.stderr
        # -f (fake) shows the translation and mounts nothing
        r = run("mount", "-f", "-v", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o",
                fstab_opts(vault, "no-passthrough", "ro"), check=False)
        assert r.returncode == 0, r.stderr
        assert f"--passfile {vault.passfile}" in r.stderr + r.stdout
        assert "--no-passthrough" in r.stderr + r.stdout
        assert not is_mounted(vault.mnt)
        # sloppy: unknown options are ignored with a warning
        r = run("mount", "-s", "-t", "fuse.wardfs", vault.backing, vault.mnt, "-o",
                fstab_opts(vault, "colour=blue", "no-passthrough"), check=False)
        assert r.returncode == 0, r.stderr
        assert "ignoring unknown option 'colour'" in r.stderr
        assert vault.status()["passthrough"].startswith("off")
    finally:
        vault.umount()


def unit_commands(instance, confdir):
    """ExecStart/ExecStop of the unit as systemd would run them for instance."""
    text = UNIT.read_text().replace("@BINDIR@", str(pathlib.Path(WARDFS).parent))
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), v.strip())
    path = "/" + run("systemd-escape", "--unescape", "--path", instance).stdout.strip()

    def spec(s):
        return s.replace("%i", instance).replace("%f", path)

    envfile = spec(keys["EnvironmentFile"]).replace("/etc/wardfs/mounts", str(confdir))
    env = {}
    for line in pathlib.Path(envfile).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v

    def expand(cmd):
        argv = []
        for word in spec(cmd).split():
            if word.startswith("${"):
                argv.append(env[word[2:-1]])  # one argument
            elif word.startswith("$"):
                argv.extend(env[word[1:]].split())  # split at spaces
            else:
                argv.append(word)
        return argv

    assert keys["Type"] == "forking"
    return expand(keys["ExecStart"]), expand(keys["ExecStop"])


def test_systemd_unit_commands(vault):
    vault.mnt.mkdir()
    instance = run("systemd-escape", "--path", vault.mnt).stdout.strip()
    assert "/" not in instance
    conf = vault.base / "mounts"
    conf.mkdir()
    (conf / f"{instance}.conf").write_text(
        f"BACKING={vault.backing}\n"
        f"OPTIONS=--passfile {vault.passfile} --policy {vault.policy} "
        f"--audit-db {vault.db} --log {vault.log}\n")
    start, stop = unit_commands(instance, conf)
    assert start[0] == stop[0] == str(pathlib.Path(WARDFS).parent / "wardfs")
    try:
        # Type=forking: the start command returns once the file system is up
        r = run(*start, check=False)
        assert r.returncode == 0, r.stderr + vault.logtext()
        pid = check_mount_works(vault)
        (vault.mnt / "f").write_text("x")
        r = run(*stop, check=False)
        assert r.returncode == 0, r.stderr
        # ExecStop returns after the daemon drained its audit rows and exited
        assert not is_mounted(vault.mnt)
        assert ended(pid)
        rows = vault.sql("SELECT count(*) AS n FROM events WHERE path = '/f'")
        assert '"n":1' in rows.replace(" ", ""), rows
    finally:
        vault.umount()


@pytest.mark.parametrize("name", ["wardfs@.service", "wardfs-prune.service",
                                  "wardfs-prune.timer"])
def test_systemd_unit_verifies(base, name):
    """systemd-analyze accepts the units (no running systemd needed)."""
    unitdir = base / "units"
    unitdir.mkdir()
    for n in ("wardfs@.service", "wardfs-prune.service", "wardfs-prune.timer"):
        text = (UNIT.parent / n).read_text().replace("@BINDIR@",
                                                     str(pathlib.Path(WARDFS).parent))
        (unitdir / n).write_text(text)
    r = run("systemd-analyze", "verify", "--man=no", unitdir / name, check=False)
    errors = [l for l in (r.stdout + r.stderr).splitlines() if "wardfs" in l]
    assert r.returncode == 0 and not errors, r.stdout + r.stderr
