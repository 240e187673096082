"""The documentation an admin reads first: every name a man page's NAME
section lists is a page man(1) finds, every page renders without warnings
and carries the version `wardfs --version` prints and the same date, and
README and docs point only at files that exist."""
import pathlib
import re
import shutil

from conftest import ROOT, run, wardfs

MAN = ROOT / "docs" / "man"


def th(page):
    line = next(ln for ln in page.read_text().splitlines() if ln.startswith(".TH "))
    return re.findall(r'"[^"]*"|\S+', line)[1:]


def names(page):
    """The names before '\\-' in the NAME section ('.so' stubs have none)."""
    text = page.read_text()
    m = re.search(r"^\.SH NAME\n(.*?) \\-", text, re.M | re.S)
    return [n.strip() for n in m.group(1).split(",")] if m else []


def test_man_pages_agree_on_version_and_date():
    version = wardfs("--version").stdout.split()[1]
    heads = {p.name: th(p) for p in MAN.iterdir() if ".so " not in p.read_text()}
    assert heads, MAN
    for name, (title, section, date, source, manual) in heads.items():
        assert title == name.rsplit(".", 1)[0].upper(), name
        assert section == name.rsplit(".", 1)[1], name
        assert source == f'"wardfs {version}"', (name, source)
    assert len({(h[2], h[4]) for h in heads.values()}) == 1, heads


def test_every_listed_name_is_a_page(base):
    """man NAME finds each name of every NAME section, and renders it
    without warnings (pages installed as `make install` does)."""
    mandir = base / "man"
    for page in MAN.iterdir():
        d = mandir / f"man{page.suffix[1:]}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, d / page.name)
    listed = [(n, p.suffix[1:]) for p in MAN.iterdir() for n in names(p)]
    assert ("wardfs-passwd", "1") in listed and ("mount.fuse.wardfs", "8") in listed
    for name, section in listed:
        r = run("man", "--warnings", "-M", mandir, section, name, check=False,
                env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)
        assert name in r.stdout.split("SYNOPSIS")[0], (name, r.stdout[:300])
    # every wardfs page a page refers to exists
    for page in MAN.iterdir():
        for ref, sec in re.findall(r"^\.BR ((?:mount\.)?wardfs[\w.-]*) \((\d)\)",
                                   page.read_text(), re.M):
            assert (ref, sec) in listed, (page.name, ref)


def test_docs_point_at_files_that_exist():
    """README and docs/ named a DESIGN.md (and docs/benchmarks.md a
    FUSE-NOTES) that the repository does not have."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for doc in docs:
        text = doc.read_text()
        for outside in ("DESIGN.md", "FUSE-NOTES"):
            assert outside not in text, (doc, outside)
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert (doc.parent / target).exists(), (doc, target)
        for target in re.findall(r"`(docs/[\w.-]+\.md)`", text):
            assert (ROOT / target).exists(), (doc, target)
    assert (ROOT / "docs/design.md").exists()
