"""Output failures on real file systems: a small tmpfs that fills up, and an
output folder deleted while scanwatch writes to it. Needs root (mount).

Whatever happens, scanwatch says what went wrong in one line, exits
non-zero, and every file under its final name stays complete.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pyarrow.ipc as ipc
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SCANWATCH", os.path.join(ROOT, "target", "release", "scanwatch"))


@pytest.fixture(scope="module")
def capture():
    """A 200k-flow synthetic capture (scanwatch gen), made once."""
    d = tempfile.mkdtemp(prefix="scanwatch-outfail-")
    path = os.path.join(d, "mix.pcap")
    subprocess.run([BIN, "gen", "-o", path, "--flows", "200000", "--seed", "7"],
                   check=True, capture_output=True, timeout=300)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def finals(out):
    return glob.glob(os.path.join(out, "**", "part-*.arrow"), recursive=True)


def test_full_tmpfs_clear_error_and_completed_files_intact(capture):
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a tmpfs")
    mnt = tempfile.mkdtemp(prefix="scanwatch-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True, timeout=30)
    try:
        p = subprocess.run([BIN, "run", "-q", "-r", capture, "-w", mnt, "--max-part-rows", "10000"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode != 0, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], p.stderr
        assert "panicked" not in p.stderr
        parts = finals(mnt)
        assert len(parts) >= 2, os.listdir(mnt)   # several parts completed before the disk filled
        rows = 0
        for f in parts:
            t = ipc.open_file(f).read_all()      # complete: pyarrow reads the footer
            assert 0 < t.num_rows <= 10000 + 16384  # the cap is checked per worker batch
            rows += t.num_rows
        assert rows >= 20000
        assert not glob.glob(os.path.join(mnt, "**", "*.tmp"), recursive=True)  # the cut part is removed
    finally:
        subprocess.run(["umount", mnt], timeout=30)
        os.rmdir(mnt)


def test_output_folder_deleted_while_writing(capture):
    out = tempfile.mkdtemp(prefix="scanwatch-vanish-")
    # Feed the capture through stdin slowly enough to remove the folder
    # while scanwatch is still reading.
    p = subprocess.Popen([BIN, "run", "-q", "-r", "-", "-w", out, "--max-part-rows", "20000"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = open(capture, "rb").read()
    half = len(data) // 2

    def feed():
        try:
            p.stdin.write(data[:half])
            p.stdin.flush()
            time.sleep(1.5)
            p.stdin.write(data[half:])
            p.stdin.close()
        except BrokenPipeError:
            pass

    t = threading.Thread(target=feed)
    t.start()
    time.sleep(1.0)
    shutil.rmtree(out)
    t.join(timeout=60)
    p.wait(timeout=120)
    err = p.stderr.read().decode()
    assert p.returncode != 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and out in lines[0] and "No such file or directory" in lines[0], err
    assert "panicked" not in err
