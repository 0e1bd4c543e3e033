"""Hostile signals (issue 11, item 4): SIGTERM / SIGHUP / SIGINT in the middle of a run leave no
output, no hidden temporary file, the input's sha256 unchanged, one line on stderr (no
traceback) and exit status 128 + the signal (130 for Ctrl-C).

The test sets the child's signal dispositions itself (issue 25, item 6): a shell starts a
background job with SIGINT ignored, its children inherit that, and Python then installs no
KeyboardInterrupt handler, so Ctrl-C did nothing and the run finished with exit 0. No
wall-clock deadline decides a pass: the signal goes out once the run reports pass 2 (the
encoder writing the temporary video), however long pass 1 takes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import pattern_frames, write_video

#: seconds without any sign of pass 2 after which the test gives up (a hang, not slowness)
NOTHING_HAPPENS_S = 900.0

#: run as ``python -c RESET -m vidcam ...``: SIGINT, SIGTERM and SIGHUP back to their defaults
#: (a disposition survives exec, a handler does not), then exec the real command in the same
#: process; the new interpreter sees SIGINT at SIG_DFL and installs its own
#: ``default_int_handler``, so Python's KeyboardInterrupt handling is what Ctrl-C exercises
RESET = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("sig") / "long.mkv", pattern_frames(300, 96, 128))


def _signal_masks(pid: int) -> dict[str, int]:
    """The SigIgn / SigCgt bit masks of process ``pid`` (Linux ``/proc/PID/status``)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(ln.partition(":")[::2] for ln in lines)
    return {k: int(fields[k].strip(), 16) for k in ("SigIgn", "SigCgt")}


def _wait_for_pass_2(proc: subprocess.Popen, err_file: Path) -> None:
    """Return once the run reports pass 2 ("rendering" on stderr: the encoder is writing the
    temporary output). Fails at once if the run ends first, and only after NOTHING_HAPPENS_S
    without a new progress line (a hang), however long pass 1 takes."""
    last, last_change = -1, time.monotonic()
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before pass 2 began: {err_file.read_text()}")
        text = err_file.read_text()
        if "\nrendering" in f"\n{text}":
            return
        if len(text) != last:  # the progress lines: the run is alive and moving
            last, last_change = len(text), time.monotonic()
        if time.monotonic() - last_change > NOTHING_HAPPENS_S:
            proc.kill()
            pytest.fail(f"no progress for {NOTHING_HAPPENS_S} s: {text}")
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_render_leaves_nothing(long_video, tmp_path, sig):
    before = hashlib.sha256(long_video.read_bytes()).hexdigest()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    err_file = tmp_path / "stderr.txt"  # a file, not a pipe: a full pipe would stall the child
    cmd = [sys.executable, "-c", RESET, "-m", "vidcam", "explain", str(long_video)]
    cmd += ["-o", str(out_dir / "o.mp4"), "--json", str(out_dir / "o.json")]
    cmd += ["--model", "sample", "--stride", "1"]
    with err_file.open("w") as err_out:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_out)
        try:
            _wait_for_pass_2(proc, err_file)
            if sig == signal.SIGINT and Path("/proc/self/status").exists():
                masks, bit = _signal_masks(proc.pid), 1 << (signal.SIGINT - 1)
                assert not masks["SigIgn"] & bit, "the child ignores SIGINT: the test is void"
                assert masks["SigCgt"] & bit, "no KeyboardInterrupt handler in the child"
            proc.send_signal(sig)
            proc.wait(timeout=NOTHING_HAPPENS_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = err_file.read_text()
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    lines = [
        line
        for line in err.strip().splitlines()
        if not line.startswith(("explaining", "rendering"))
    ]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert os.listdir(out_dir) == []  # no output, no JSON, no hidden temporary file
    assert hashlib.sha256(long_video.read_bytes()).hexdigest() == before
