"""Resume after a killed `vidcam batch` (SIGKILL, then SIGTERM): every input done exactly once,
no partial file left, complete outputs never rewritten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HANG_S, moving_square, write_video
from vidcam.batch import load_maps, run
from vidcam.batch.index import read_index

N = 5


def _markers(out: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*.done.json")
    }


def _start(folder: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vidcam", "batch", str(folder), "-o", str(out)]
    cmd += ["--model", "sample", "--clip-len", "8", "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_after(proc: subprocess.Popen, out: Path, n_done: int, sig: int) -> str:
    """Send ``sig`` once ``n_done`` done markers exist (however long that takes: only a run
    that finishes no video in HANG_S seconds is a failure)."""
    deadline = time.monotonic() + HANG_S
    while len(_markers(out)) < n_done:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no video finished in {HANG_S} s: a hang")
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=HANG_S)
    return err.decode()


def _temps(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_killed_runs_resume_each_video_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    base = moving_square(12, 48, 64, (2, 2, 46, 62))
    for i in range(N):
        write_video(folder / f"v{i}.mkv", base[:, :, ::-1].copy() if i % 2 else base)
    out = tmp_path / "out"

    proc = _start(folder, out)
    _kill_after(proc, out, 1, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    first = _markers(out)
    assert 1 <= len(first) < N
    rows1 = read_index(out / "index.jsonl")  # streamed rows (a torn last line is ignored)

    proc = _start(folder, out)
    err = _kill_after(proc, out, len(first) + 1, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not _temps(out)  # a SIGTERM leaves no partial file (and the SIGKILL's were swept)
    second = _markers(out)
    assert len(second) < N, "the SIGTERM came too late to test anything"
    rows2 = read_index(out / "index.jsonl")

    rows3 = run([folder], out, model="sample", clip_len=8, progress=False)
    final = _markers(out)
    assert len(final) == N and not _temps(out)
    for k, st in {**first, **second}.items():
        assert final[k] == st, f"{k} was rewritten"
    for r in rows3:
        assert r["status"] in ("done", "skipped")
        for p in r["outputs"].values():
            assert (out / p).is_file()
        load_maps(out / r["outputs"]["maps"])
    # every input done exactly once over the three runs
    counts = {r["key"]: 0 for r in rows3}
    for rows in (rows1, rows2, rows3):
        for r in {x["key"]: x for x in rows}.values():
            counts[r["key"]] += r["status"] == "done"
    # a kill between a video's done marker and its streamed row loses only the row: the
    # marker (checked above: never rewritten) says it was done, and the next run skips it
    done_before_kill = {k.removesuffix(".done.json") + ".mkv" for k in {**first, **second}}
    for k, c in counts.items():
        assert c == 1 or (c == 0 and k in done_before_kill), (k, c)
    assert os.path.isfile(out / "summary.csv")
