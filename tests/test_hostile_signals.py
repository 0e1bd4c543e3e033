"""Hostile signals (issue 11, item 4): SIGTERM / SIGHUP / SIGINT in the middle of a run leave no
output, no hidden temporary file, the input's sha256 unchanged, one line on stderr (no
traceback) and exit status 128 + the signal (130 for Ctrl-C)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import pattern_frames, write_video


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("sig") / "long.mkv", pattern_frames(300, 96, 128))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_render_leaves_nothing(long_video, tmp_path, sig):
    before = hashlib.sha256(long_video.read_bytes()).hexdigest()
    out = tmp_path / "o.mp4"
    cmd = [sys.executable, "-m", "vidcam", "explain", str(long_video), "-o", str(out)]
    cmd += ["--model", "sample", "--stride", "1", "--json", str(tmp_path / "o.json")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".o.tmp-") for p in tmp_path.iterdir()):  # pass 2 is writing
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    lines = [
        line
        for line in err.strip().splitlines()
        if not line.startswith(("explaining", "rendering"))
    ]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []  # no output, no JSON, no hidden temporary file
    assert hashlib.sha256(long_video.read_bytes()).hexdigest() == before
