"""What was written and acknowledged comes back intact (issue 22): inode
identity under inode-number reuse, files whose form disagrees with the
policy, and a file's form following the daemon's own mark, not its bytes.
The `long` marker holds the soak versions (make test-long)."""
import os
import pathlib
import subprocess
import threading

import pytest

from conftest import run

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def savetest_bin(tmp_path_factory):
    out = tmp_path_factory.mktemp("savetest") / "savetest"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", str(out), str(HERE / "savetest.c")],
                   check=True)
    return out


def save_by_rename(savetest_bin, dirs, per_dir, iterations, listers=True):
    """Runs per_dir savetest processes in each dir at once (plus listers
    reading each directory meanwhile); returns their outputs."""
    stop = threading.Event()

    def lister(d):
        while not stop.is_set():
            for e in os.scandir(d):
                try:
                    e.stat()
                except FileNotFoundError:
                    pass  # renamed away between readdir and stat: fine

    threads = [threading.Thread(target=lister, args=(d,)) for d in dirs] if listers else []
    for t in threads:
        t.start()
    procs = [subprocess.Popen([str(savetest_bin), str(d), f"f{i}", str(iterations)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in dirs for i in range(per_dir)]
    outs = [p.communicate() for p in procs]
    stop.set()
    for t in threads:
        t.join()
    return [(p.returncode, o, e) for p, (o, e) in zip(procs, outs)]


def check_saves(results, iterations):
    for rc, out, err in results:
        assert rc == 0 and out.strip() == f"iterations {iterations} errors 0", out + err


def test_atomic_save_never_stale(mnt, savetest_bin):
    """write a.tmp, rename over a, open a: ext4 reuses the freed inode
    number at once, and an inode table keyed by number alone answered
    ESTALE (hundreds of times in 20,000 saves here)."""
    dirs = [mnt.mnt / "pub", mnt.mnt / "secret"]
    for d in dirs:
        d.mkdir()
    check_saves(save_by_rename(savetest_bin, dirs, 4, 2500), 2500)
    # Each saved file is in its class's form on disk.
    assert (mnt.backing / "pub" / "f0").read_bytes() == b"f0 version 2499\n"
    assert (mnt.backing / "secret" / "f0").read_bytes()[:8] == b"\x89WARDFS\x00"


@pytest.mark.long
def test_atomic_save_million(mnt, savetest_bin):
    dirs = [mnt.mnt / "pub", mnt.mnt / "secret"]
    for d in dirs:
        d.mkdir()
    check_saves(save_by_rename(savetest_bin, dirs, 4, 125000), 125000)
