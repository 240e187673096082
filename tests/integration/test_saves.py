"""Saves by rename across classes (issue 16): the real programs that write a
temporary file beside the target and rename it over the target, where the
temporary file and the target are of different classes. Each one failed
with EXDEV (some leaving their temporary file behind); the rename now
converts the file into the target's form. What may not be converted (a
rule would be shed, a hard link, an open file, a large file) stays EXDEV.
"""
import errno
import os
import subprocess

import pytest

from conftest import is_marked as marked, run, wardfs


def set_policy(m, extra):
    m.policy.write_text(m.policy.read_text() + extra)
    wardfs("reload", m.mnt)


def deep_tree(top, levels=80):
    """Makes top/d0/d1/.../d{levels-1}; returns the deepest directory."""
    deep = top
    for i in range(levels):
        deep = deep / f"d{i}"
    os.makedirs(deep)
    return deep


def leftovers(m):
    """Temporary files of conversions in the vault directory."""
    return [n for n in os.listdir(m.backing / ".wardfs") if n.startswith("convert.")]


def test_sed_i_on_a_public_file_in_a_sensitive_directory(mnt):
    """sed -i writes its temporary file in the file's directory: in /.ssh
    (sensitive) for /.ssh/id.pub (public)."""
    m = mnt
    ssh = m.mnt / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "id.pub").write_text("ssh-ed25519 AAAA old@host\n")
    (ssh / "id").write_text("PRIVATE\n")
    r = run("sed", "-i", "s/old@host/new@host/", ssh / "id.pub", check=False)
    assert r.returncode == 0, r.stderr
    assert (ssh / "id.pub").read_text() == "ssh-ed25519 AAAA new@host\n"
    backing = m.backing / ".ssh" / "id.pub"
    assert backing.read_text() == "ssh-ed25519 AAAA new@host\n"  # plain, as its class says
    assert not marked(backing)
    assert sorted(os.listdir(ssh)) == ["id", "id.pub"]  # no temporary file left
    assert not leftovers(m)
    # and back: sed -i on the sensitive file keeps it encrypted (no conversion)
    run("sed", "-i", "s/PRIVATE/SECRET/", ssh / "id")
    assert (ssh / "id").read_text() == "SECRET\n"
    assert marked(m.backing / ".ssh" / "id")


def test_ssh_keygen_r_with_a_public_known_hosts(mnt):
    """The example policy's layout: /.ssh/** sensitive, known_hosts public.
    ssh-keygen -R hard-links known_hosts to known_hosts.old (so the example
    makes both public: a link across classes stays EXDEV), then renames its
    temporary file (sensitive) over known_hosts."""
    m = mnt
    set_policy(m, "public /.ssh/known_hosts\npublic /.ssh/known_hosts.old\n")
    ssh = m.mnt / ".ssh"
    ssh.mkdir(mode=0o700)
    kh = ssh / "known_hosts"
    kh.write_text("gone.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGone\n"
                  "kept.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKept\n")
    r = run("ssh-keygen", "-R", "gone.example", "-f", kh, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert kh.read_text() == "kept.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKept\n"
    assert not marked(m.backing / ".ssh" / "known_hosts")
    assert (m.backing / ".ssh" / "known_hosts").read_text() == kh.read_text()
    assert (ssh / "known_hosts.old").read_text().startswith("gone.example")
    assert not marked(m.backing / ".ssh" / "known_hosts.old")
    assert not leftovers(m)


def test_git_credential_store_into_a_sensitive_file(mnt):
    """git's lock file (/.git-credentials.lock) is public; the credentials
    file it is renamed to is sensitive: it must land encrypted."""
    m = mnt
    set_policy(m, "sensitive /.git-credentials\n")
    store = m.mnt / ".git-credentials"
    for user in ("alice", "bob"):
        r = subprocess.run(["git", "credential-store", "--file", str(store), "store"],
                           input=f"protocol=https\nhost=example.com\nusername={user}\n"
                                 f"password=hunter2-{user}\n\n",
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    text = store.read_text()
    assert "https://bob:hunter2-bob@example.com" in text, text
    raw = (m.backing / ".git-credentials").read_bytes()
    assert marked(m.backing / ".git-credentials")
    assert b"hunter2" not in raw  # ciphertext at rest
    assert not (m.mnt / ".git-credentials.lock").exists()
    r = subprocess.run(["git", "credential-store", "--file", str(store), "get"],
                       input="protocol=https\nhost=example.com\n\n",
                       capture_output=True, text=True)
    assert "password=hunter2-bob" in r.stdout, r.stdout + r.stderr


def test_python_save_by_rename_both_ways_keeps_attributes(mnt):
    """os.replace of a temporary file, in both directions; the converted
    file keeps owner, mode, xattrs and mtime, and is read through the same
    path at once (the kernel's old inode answers ESTALE, then a lookup)."""
    m = mnt
    (m.mnt / "secret").mkdir()
    (m.mnt / "pub").mkdir()
    pairs = [(m.mnt / "pub" / "doc.tmp", m.mnt / "secret" / "doc", True),
             (m.mnt / "secret" / "notes.tmp", m.mnt / "pub" / "notes", False)]
    for tmp, dst, encrypted in pairs:
        dst.write_bytes(b"old version\n")
        with open(dst, "rb") as f:  # cached in the kernel: the old inode
            assert f.read() == b"old version\n"
        data = os.urandom(300_000)
        tmp.write_bytes(data)
        os.chmod(tmp, 0o640)
        os.chown(tmp, 1234, 5678)
        os.setxattr(tmp, "user.origin", b"editor")
        os.utime(tmp, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
        os.replace(tmp, dst)
        assert dst.read_bytes() == data
        st = os.stat(dst)
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
        assert st.st_mtime_ns == 1_600_000_000_123_456_789 and st.st_size == len(data)
        assert os.getxattr(dst, "user.origin") == b"editor"
        assert not tmp.exists()
        b = m.backing / dst.relative_to(m.mnt)
        assert marked(b) == encrypted
        assert (data in b.read_bytes()) != encrypted
        with open(dst, "r+b") as f:  # writable through the new inode
            f.write(b"X")
        assert dst.read_bytes()[:1] == b"X"
    assert not leftovers(m)
    # the files survive a remount as they are
    m.umount()
    m.mount()
    assert (m.mnt / "secret" / "doc").read_bytes()[:1] == b"X"
    assert marked(m.backing / "secret" / "doc")


def test_what_cannot_be_converted_stays_exdev(mnt):
    m = mnt
    (m.mnt / "secret").mkdir()
    (m.mnt / "pub").mkdir()
    # a rule that narrows access would be shed
    (m.mnt / "secret" / "cred").write_bytes(b"token")
    set_policy(m, "sensitive /secret/cred allow-exe=/usr/bin/cat\n")
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "secret" / "cred", m.mnt / "pub" / "cred")
    assert e.value.errno == errno.EXDEV
    # a hard link
    (m.mnt / "secret" / "a").write_bytes(b"linked")
    os.link(m.mnt / "secret" / "a", m.mnt / "secret" / "a2")
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "secret" / "a", m.mnt / "pub" / "a")
    assert e.value.errno == errno.EXDEV
    # a file someone holds open: its later writes would go astray
    (m.mnt / "secret" / "open").write_bytes(b"held")
    with open(m.mnt / "secret" / "open", "rb"):
        with pytest.raises(OSError) as e:
            os.rename(m.mnt / "secret" / "open", m.mnt / "pub" / "open")
        assert e.value.errno == errno.EXDEV
    os.rename(m.mnt / "secret" / "open", m.mnt / "pub" / "open")  # closed: converted
    assert (m.mnt / "pub" / "open").read_bytes() == b"held"
    # larger than the limit (64 MiB): mv copies
    with open(m.mnt / "pub" / "big", "wb") as f:
        f.truncate((64 << 20) + 1)
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "pub" / "big", m.mnt / "secret" / "big")
    assert e.value.errno == errno.EXDEV
    # a deny path is never a target
    (m.mnt / "pub" / "x").write_bytes(b"x")
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "pub" / "x", m.mnt / "denied" / "x")
    assert e.value.errno in (errno.EXDEV, errno.ENOENT, errno.EACCES)
    assert (m.mnt / "pub" / "x").exists()
    assert not leftovers(m)


def test_a_leftover_of_a_crash_is_removed_at_mount(vault):
    """A crash between naming the converted file in .wardfs and renaming it
    into place leaves it there; the next mount removes it."""
    m = vault
    (m.backing / ".wardfs" / "convert.999.7").write_bytes(b"half")
    m.mount()
    try:
        assert not leftovers(m)
    finally:
        m.umount()


def test_a_directory_rename_that_changes_no_class_has_no_limit(mnt):
    """Issue 16: a directory rename was EXDEV when its subtree was deeper
    than 64 levels or had more than 100,000 entries, though no file changed
    class (mv then copies). Now the policy alone shows that no rule tells
    the old subtree from the new, and the rename is the kernel's, whatever
    the tree holds. A subtree a rule does tell apart is still checked."""
    m = mnt
    top = m.mnt / "src" / "proj"
    deep = deep_tree(top)
    (deep / "main.c").write_text("int main(void) { return 0; }\n")
    (deep / "key.pem").write_text("sensitive by its name, and stays so\n")
    os.rename(top, m.mnt / "src" / "proj2")
    moved = m.mnt / "src" / "proj2" / deep.relative_to(top)
    assert (moved / "main.c").read_text().startswith("int main")
    assert (moved / "key.pem").read_text().startswith("sensitive")
    assert marked(m.backing / moved.relative_to(m.mnt) / "key.pem")
    # into the sensitive area, the files below would change class
    with pytest.raises(OSError) as e:
        os.rename(m.mnt / "src" / "proj2", m.mnt / "secret")
    assert e.value.errno == errno.EXDEV
    assert (moved / "main.c").exists()


def test_a_directory_rename_a_rule_could_tell_apart_checks_only_what_it_must(mnt):
    """A rule that names something below the old path but not the new one
    (`/work/*/credentials`) means the files are checked: only those a rule
    could tell apart, so a deep tree with no such file moves (once EXDEV
    past 64 levels), and one that holds such a file does not."""
    m = mnt
    set_policy(m, "sensitive /work/*/credentials\n")
    top = m.mnt / "work" / "proj"
    deep = deep_tree(top)
    (deep / "credentials").write_text("deep down: no rule names it\n")
    (m.mnt / "other").mkdir()
    os.rename(top, m.mnt / "other" / "proj")
    assert (m.mnt / "other" / "proj" / deep.relative_to(top) / "credentials").exists()
    os.rename(m.mnt / "other" / "proj", top)  # and back
    (top / "credentials").write_text("the rule's file: encrypted here\n")
    assert marked(m.backing / "work" / "proj" / "credentials")
    with pytest.raises(OSError) as e:
        os.rename(top, m.mnt / "other" / "proj")
    assert e.value.errno == errno.EXDEV
