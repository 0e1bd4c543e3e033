"""Two runs writing the same new output (issue 11, item 11): the output is created without
replacing, so the run that finishes second fails with a one-line error, leaves no temporary
file and the winner's file intact; its input is untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import pytest
from conftest import MOTION_SPEC, MotionNet, moving_square, write_video

from vidcam.errors import VidcamError
from vidcam.video import pipeline, write_explained_video

KW = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames = moving_square(16, 48, 64, box=(4, 8, 40, 56))
    return write_video(tmp_path_factory.mktemp("race") / "in.mkv", frames, fps=25)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _winner_appears(monkeypatch, target: Path, data: bytes = b"the winner's file") -> None:
    """After the start checks passed, another run creates ``target`` (pass 1 is the window)."""
    real = pipeline.explain_pass

    def racing(*args, **kwargs):
        analysis = real(*args, **kwargs)
        target.write_bytes(data)
        return analysis

    monkeypatch.setattr(pipeline, "explain_pass", racing)


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_a_video_created_meanwhile_is_not_replaced(clip, tmp_path, monkeypatch, ext):
    out = tmp_path / f"o{ext}"
    before = _sha(clip)
    _winner_appears(monkeypatch, out)
    with pytest.raises(VidcamError, match="created by someone else while vidcam ran; not replaced"):
        write_explained_video(clip, out, **KW)
    assert out.read_bytes() == b"the winner's file"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file
    assert _sha(clip) == before


def test_a_json_created_meanwhile_is_not_replaced(clip, tmp_path, monkeypatch):
    out, js = tmp_path / "o.mp4", tmp_path / "o.json"
    _winner_appears(monkeypatch, js, b"{}")
    with pytest.raises(VidcamError, match="o.json' was created by someone else"):
        write_explained_video(clip, out, json_path=js, **KW)
    assert js.read_bytes() == b"{}"
    # nothing of this run is committed when one of its outputs cannot be (issue 27, 9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


def test_overwrite_still_replaces(clip, tmp_path, monkeypatch):
    out = tmp_path / "o.mp4"
    _winner_appears(monkeypatch, out)
    res = write_explained_video(clip, out, overwrite=True, **KW)
    assert res.frames_written == 16
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 16
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_two_threads_one_new_output(clip, tmp_path):
    """Two real runs at once: exactly one writes the file, the other fails (at the start check
    or at the commit, whichever the timing gives) and leaves nothing behind."""
    out = tmp_path / "o.mp4"
    start = threading.Barrier(2)
    results: list[object] = []

    def one() -> None:
        start.wait()
        try:
            results.append(write_explained_video(clip, out, **{**KW, "model": MotionNet()}))
        except VidcamError as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, VidcamError)]
    assert len(results) == 2 and len(errors) == 1
    assert "already exists" in str(errors[0]) or "created by someone else" in str(errors[0])
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 16
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


_LOSER = """
import sys
from pathlib import Path
import vidcam.video.pipeline as p
real = p.explain_pass
def racing(*a, **k):
    analysis = real(*a, **k)
    Path(sys.argv[2]).write_bytes(b"winner")
    return analysis
p.explain_pass = racing
from vidcam.cli import main
sys.exit(main(["explain", sys.argv[1], "-o", sys.argv[2], "--model", "sample", "--quiet"]))
"""


def test_cli_loser_says_so_in_one_line(clip, tmp_path):
    out = tmp_path / "o.mp4"
    before = _sha(clip)
    r = subprocess.run(
        [sys.executable, "-c", _LOSER, str(clip), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"vidcam explain: error: {str(out)!r} was created by someone else while vidcam ran; "
        "not replaced (pass --overwrite to replace it)"
    ]
    assert out.read_bytes() == b"winner"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    assert _sha(clip) == before
