"""The policy on a live mount: deny, allow-exe/user/group with real
processes, EXDEV between classes, reload on change and SIGHUP, status, and
the policy CLI on bad input and on allow-exe= programs that cannot work."""
import errno
import json
import os
import shutil
import signal
import time

import pytest

from conftest import ROOT, TEST_USER, is_marked, run, wardfs, wait_for


def test_deny_open_but_stat_and_readdir_work(mnt):
    (mnt.backing / "denied").mkdir()
    (mnt.backing / "denied" / "f").write_text("x")
    (mnt.backing / ".netrc").write_text("machine x password y")
    for p in (mnt.mnt / ".netrc", mnt.mnt / "denied" / "f"):
        with pytest.raises(PermissionError):
            open(p).read()
        assert os.stat(p).st_size > 0
    assert "f" in os.listdir(mnt.mnt / "denied")
    with pytest.raises(PermissionError):
        (mnt.mnt / "denied" / "new").write_text("x")
    assert not (mnt.backing / "denied" / "new").exists()


def reload_policy(m, text):
    m.policy.write_text(text)
    os.kill(int(m.status()["pid"]), signal.SIGHUP)
    assert wait_for(lambda: m.status()["policy-sha256"] != m.old_sha, 5)


def test_allow_exe_uses_the_real_executable(mnt, base):
    (mnt.mnt / "creds").write_text("token")
    mnt.old_sha = mnt.status()["policy-sha256"]
    reload_policy(mnt, mnt.policy.read_text() + "public /creds allow-exe=/usr/bin/cat\n")
    assert run("/usr/bin/cat", mnt.mnt / "creds").stdout == "token"
    copy = base / "mycat"
    shutil.copy("/usr/bin/cat", copy)
    r = run(copy, mnt.mnt / "creds", check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    # argv[0] does not matter: exec the copy under the name "cat".
    r = run("bash", "-c", f"exec -a /usr/bin/cat {copy} {mnt.mnt / 'creds'}", check=False)
    assert r.returncode != 0


def test_allow_exe_follows_execve(mnt):
    """A process that opened a file, then exec'd another program, is judged
    (and audited) as the new program: same pid, same start time."""
    (mnt.mnt / "creds").write_text("token")
    (mnt.mnt / "before").write_text("x")
    mnt.old_sha = mnt.status()["policy-sha256"]
    reload_policy(mnt, mnt.policy.read_text() + "public /creds allow-exe=/usr/bin/cat\n")
    # python opens /before, then the same process becomes cat and opens /creds
    script = (f"import os; os.close(os.open({str(mnt.mnt / 'before')!r}, os.O_RDONLY)); "
              f"os.execv('/usr/bin/cat', ['cat', {str(mnt.mnt / 'creds')!r}])")
    r = run("/usr/bin/python3", "-c", script, check=False)
    assert r.returncode == 0 and r.stdout == "token", r.stderr
    # the audit names the program that opened each file, not a cached one
    assert wait_for(lambda: mnt.status()["audit-pending"] == "0", 10)
    rows = [json.loads(line) for line in wardfs(
        "audit", "query", "--db", mnt.db, "--format", "json", "--kind", "open").stdout.splitlines()]
    by_path = {row["path"]: row for row in rows if row["path"] in ("/before", "/creds")}
    assert by_path["/creds"]["exe"] == "/usr/bin/cat", by_path
    assert by_path["/creds"]["comm"] == "cat", by_path
    assert by_path["/before"]["comm"].startswith("python"), by_path
    assert by_path["/before"]["pid"] == by_path["/creds"]["pid"], by_path
    # and the reverse: cat's pid is not trusted once it is another program
    script = (f"import os; os.close(os.open({str(mnt.mnt / 'creds')!r}, os.O_RDONLY))")
    r = run("/usr/bin/python3", "-c", script, check=False)
    assert r.returncode != 0 and "PermissionError" in r.stderr


def test_allow_user_and_group(mnt, test_user):
    os.chmod(mnt.mnt, 0o755)
    for name in ("u", "g"):
        (mnt.mnt / name).write_text(name)
        os.chmod(mnt.mnt / name, 0o644)
    mnt.old_sha = mnt.status()["policy-sha256"]
    reload_policy(mnt, mnt.policy.read_text() +
                  "public /u allow-user=root\npublic /g allow-group=wardfs-extra,root\n")
    assert run("cat", mnt.mnt / "u").stdout == "u"
    r = run("cat", mnt.mnt / "u", user=True, check=False)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    # The test user reaches /g through its supplementary group.
    assert run("cat", mnt.mnt / "g", user=True).stdout == "g"


def test_rename_and_link_across_classes(mnt):
    (mnt.mnt / "secret").mkdir()
    (mnt.mnt / "pub").write_text("p")
    with pytest.raises(OSError) as e:
        os.link(mnt.mnt / "pub", mnt.mnt / "secret" / "pub")
    assert e.value.errno == errno.EXDEV
    # a directory holding a file of another class cannot move
    (mnt.mnt / "dir").mkdir()
    (mnt.mnt / "dir" / "f").write_text("f")
    with pytest.raises(OSError) as e:
        os.rename(mnt.mnt / "dir", mnt.mnt / "secret" / "dir")
    assert e.value.errno == errno.EXDEV
    run("mv", mnt.mnt / "pub", mnt.mnt / "secret" / "pub")
    assert (mnt.mnt / "secret" / "pub").read_text() == "p"
    assert (mnt.backing / "secret" / "pub").read_bytes()[1:7] == b"WARDFS"
    os.rename(mnt.mnt / "secret" / "pub", mnt.mnt / "secret" / "pub2")  # same class
    assert (mnt.mnt / "secret" / "pub2").read_text() == "p"


def test_reload_on_edit_and_bad_policy_keeps_old(mnt):
    st = mnt.status()
    mnt.old_sha = st["policy-sha256"]
    (mnt.mnt / "later").write_text("x")
    # An editor replaces the file: picked up without a signal.
    tmp = mnt.policy.with_suffix(".new")
    tmp.write_text(mnt.policy.read_text() + "deny /later\n")
    os.rename(tmp, mnt.policy)
    assert wait_for(lambda: mnt.status()["policy-sha256"] != mnt.old_sha, 5)
    with pytest.raises(PermissionError):
        open(mnt.mnt / "later").read()
    good = mnt.status()
    # A broken policy is rejected; the last good one stays in force.
    mnt.policy.write_text("default public\nsensitive /x[abc\n")
    assert wait_for(lambda: mnt.status()["policy-last-error"] != "none", 5)
    st = mnt.status()
    assert st["policy-sha256"] == good["policy-sha256"]
    assert "unterminated" in st["policy-last-error"]
    with pytest.raises(PermissionError):
        open(mnt.mnt / "later").read()


def test_status_shows_policy(mnt):
    st = mnt.status()
    assert st["policy"] == str(mnt.policy)
    assert len(st["policy-sha256"]) == 64
    assert int(st["policy-rules"]) == 6
    assert st["policy-last-error"] == "none"


def test_insecure_policy_refused_at_mount(vault):
    os.chmod(vault.policy, 0o666)
    r = vault.mount(check=False)
    assert r.returncode != 0
    assert "writable" in r.stderr


def test_policy_check_cli(base):
    bad = base / "bad"
    bad.write_text("default public\nsecret /x\npublic /y[ab\n")
    r = wardfs("policy", "check", bad, check=False)
    assert r.returncode == 1
    assert f"{bad}:2:1" in r.stderr and f"{bad}:3:" in r.stderr
    good = base / "good"
    good.write_text("default public\nsensitive /.ssh/**\n")
    assert wardfs("policy", "check", good).returncode == 0
    out = wardfs("policy", "explain", "--policy", good, "/.ssh/id_rsa", "/src/a.c").stdout
    assert "sensitive" in out and f"{good}:2" in out and "public" in out


def test_policy_check_looks_at_allow_exe_programs(base):
    """A script can never be the caller's executable (its interpreter is),
    and a symbolic link matches its target: check says so, at the path."""
    script = base / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    link = base / "md5"
    os.symlink("/usr/bin/md5sum", link)
    pol = base / "pol"
    pol.write_text(f"default public\nsensitive /a allow-exe={script}\n"
                   f"sensitive /b allow-exe=/usr/bin/cat,{link}\n")
    r = wardfs("policy", "check", pol)
    assert r.returncode == 0 and "ok (2 rules)" in r.stdout
    assert (f"{pol}:2:24: warning: allow-exe program '{script}' is a script run by "
            "'/bin/sh'; the kernel runs the interpreter") in r.stderr, r.stderr
    col = len("sensitive /b allow-exe=/usr/bin/cat,") + 1
    assert (f"{pol}:3:{col}: note: allow-exe program '{link}' resolves through a "
            "symbolic link to '/usr/bin/md5sum'") in r.stderr, r.stderr
    assert "/usr/bin/cat" not in r.stderr  # a plain program says nothing
    # The shipped example holds only rules that work: notes at most.
    r = wardfs("policy", "check", ROOT / "etc" / "policy.example")
    assert "warning:" not in r.stderr and "error:" not in r.stderr, r.stderr


def test_policy_scan_reports_disagreeing_form(mnt):
    (mnt.mnt / "secret").mkdir()
    (mnt.mnt / "secret" / "k").write_text("key")
    (mnt.backing / "secret" / "plain").write_text("was here before")
    mnt.umount()
    r = wardfs("policy", "scan", "--policy", mnt.policy, mnt.backing, check=False)
    assert r.returncode == 1, r.stdout + r.stderr  # a compliance check fails (issue 16)
    assert "/secret/plain: sensitive but stored plain\n" in r.stdout, r.stdout
    assert "secret/k" not in r.stdout
    j = json.loads(wardfs("policy", "scan", "--format", "json", "--policy", mnt.policy,
                          mnt.backing, check=False).stdout)
    assert j["mismatch"] == [{"path": "/secret/plain", "class": "sensitive", "form": "plain",
                              "of": "content"}]
    assert j["sensitive"] == 2 and j["files"] >= 2 and j["unreadable"] == 0, j
    (mnt.backing / "secret" / "plain").unlink()
    r = wardfs("policy", "scan", "--policy", mnt.policy, mnt.backing)
    assert r.returncode == 0 and "mismatch   0\n" in r.stdout
    r = wardfs("policy", "scan", "--format", "yaml", mnt.backing, check=False)
    assert r.returncode == 2 and "text or json" in r.stderr
    mnt.mount()


def test_a_symlinked_directory_is_decided_by_its_real_path_and_explain_says_so(mnt):
    """Issue 15.7: with `sensitive /link/**` and /link a symbolic link to
    /pub, a file written through /link is /pub's, stored in the clear, while
    `explain /link/f` said sensitive. explain --root names the real path and
    its decision, for a backing dir and for the mount point alike."""
    m = mnt
    (m.mnt / "pub").mkdir()
    os.symlink("pub", m.mnt / "link")
    m.old_sha = m.status()["policy-sha256"]
    reload_policy(m, "default public\nsensitive /link/**\nsensitive /secret/**\n")
    (m.mnt / "link" / "f").write_bytes(b"through the link\n")
    # stored where the kernel put it, in the form of its real path
    assert (m.backing / "pub" / "f").read_bytes() == b"through the link\n"
    pol = m.base / "explain-policy"
    pol.write_text("default public\nsensitive /link/**\n")
    plain = wardfs("policy", "explain", "--policy", pol, "/link/f").stdout
    assert plain.startswith("/link/f: sensitive"), plain
    for root in (m.backing, m.mnt):
        out = wardfs("policy", "explain", "--policy", pol, "--root", root,
                     "/link/f", "/link/new", "/pub/g").stdout.splitlines()
        assert out == [
            "/link/f: through a symbolic link, this is /pub/f, which decides:",
            "/pub/f: public (default)",
            "/link/new: through a symbolic link, this is /pub/new, which decides:",
            "/pub/new: public (default)",
            "/pub/g: public (default)",
        ], (root, out)
    # a link out of the root is resolved inside it, never outside
    os.symlink("/etc", m.mnt / "etc-link")
    out = wardfs("policy", "explain", "--policy", pol, "--root", m.backing,
                 "/etc-link/passwd").stdout
    assert "/etc/passwd" not in out.replace("/etc-link/passwd", ""), out
    r = wardfs("policy", "explain", "--root", m.base / "missing", "/x", check=False)
    assert r.returncode == 1 and "cannot open" in r.stderr, r.stderr


def test_included_files_are_watched_and_reload_says_what_is_in_force(mnt):
    """Issue 16: editing or adding a policy.d/*.conf file was not picked up;
    only the top file was watched. Every file the policy reads, and every
    directory an include glob lists, is watched; `wardfs reload` reloads now
    and says what is in force, or why the new policy was rejected."""
    m = mnt
    d = m.base / "policy.d"
    d.mkdir(mode=0o755)
    m.old_sha = m.status()["policy-sha256"]
    reload_policy(m, m.policy.read_text() + "include policy.d/*.conf\n")

    def rules():
        return int(m.status()["policy-rules"])

    n0 = rules()
    # a file added to the directory: picked up by itself
    (d / "10-keys.conf").write_text("sensitive *.key\n")
    assert wait_for(lambda: rules() == n0 + 1, 5), m.status()
    (m.mnt / "a.key").write_bytes(b"key material")
    assert is_marked(m.backing / "a.key")
    # an included file edited in place
    with open(d / "10-keys.conf", "a") as f:
        f.write("deny /denied.txt\n")
    assert wait_for(lambda: rules() == n0 + 2, 5), m.status()
    (m.backing / "denied.txt").write_text("no")
    with pytest.raises(PermissionError):
        (m.mnt / "denied.txt").read_text()

    r = wardfs("reload", m.mnt)
    assert r.stdout.startswith(f"{m.mnt}: reloaded {m.policy} ({n0 + 2} rules, sha256 "), r.stdout
    # a broken include is rejected; the policy in force stays
    (d / "20-bad.conf").write_text("sensitive\n")
    r = wardfs("reload", m.mnt, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the policy was rejected, the one in force stays" in r.stderr, r.stderr
    assert "20-bad.conf:1" in r.stderr, r.stderr
    assert rules() == n0 + 2
    with pytest.raises(PermissionError):
        (m.mnt / "denied.txt").read_text()
    # fixed in place: picked up by itself, though the broken file was never in force
    (d / "20-bad.conf").write_text("sensitive *.secret\n")
    assert wait_for(lambda: rules() == n0 + 3, 5), m.status()
    r = wardfs("reload")  # every mount
    assert r.returncode == 0 and f"{m.mnt}: reloaded" in r.stdout, r.stdout + r.stderr
    r = wardfs("reload", m.base, check=False)
    assert r.returncode == 1 and "is not a wardfs mount" in r.stderr, r.stderr
    assert wardfs("reload", "--help").stdout.startswith("usage: wardfs reload")
