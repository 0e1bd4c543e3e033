"""Damaged input (issue 11, item 10): garbage bytes in the middle of a file, a truncated file.

Every CLI case runs ``python -m vidcam explain ... --model sample`` in a child process and
asserts the exit status, a one-line error or warning on stderr, no traceback, no leftover file
next to the output and the input's sha256 unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import av
import pytest
from conftest import pattern_frames, write_video

from vidcam.video import write_explained_video
from vidcam.video.decode import DecodeWarning

N = 48  # frames of the clean clip (25 fps, 64×48 H.264, one keyframe every 8 frames)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damaged")
    clean = write_video(
        d / "clean.mp4",
        pattern_frames(N, 48, 64),
        codec="libx264",
        options={"crf": "18", "g": "8"},
        container_options={"movflags": "+faststart"},
    )
    data = clean.read_bytes()
    size = len(data)
    out = {"clean": clean}

    def damaged(name: str, start: float, length: float) -> None:
        b = bytearray(data)
        s, n = int(size * start), int(size * length)
        b[s : s + n] = os.urandom(n)  # same size, garbage instead of the middle
        (d / name).write_bytes(bytes(b))
        out[name.split(".")[0]] = d / name

    damaged("scratched.mp4", 0.5, 0.01)  # a few packets: a little loss, the run goes on
    damaged("shredded.mp4", 0.3, 0.4)  # most of the middle: far below 90 %
    (d / "cut.mp4").write_bytes(data[: size // 4])  # faststart: the index survives, data not
    out["cut"] = d / "cut.mp4"
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _decodable(p: Path) -> int:
    """Frames FFmpeg itself gets out of ``p`` (damaged packets skipped)."""
    n = 0
    with av.open(str(p)) as c:
        for packet in c.demux(c.streams.video[0]):
            try:
                n += len(packet.decode())
            except av.FFmpegError:
                continue
    return n


def _explain(src: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vidcam", "explain", str(src), "-o", str(out)]
    cmd += ["--model", "sample", "--quiet"]
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_the_damage_is_real(clips):
    """The fixtures lose what they claim to: a little, most, most (FFmpeg's own count)."""
    assert _decodable(clips["clean"]) == N
    assert 0.9 * N <= _decodable(clips["scratched"]) < N
    assert _decodable(clips["shredded"]) < 0.9 * N
    assert _decodable(clips["cut"]) < 0.9 * N


@pytest.mark.parametrize("name", ["shredded", "cut"])
def test_much_shorter_than_announced_fails_cleanly(clips, tmp_path, name):
    src = clips[name]
    before = _sha(src)
    out = tmp_path / "o.mp4"
    r = _explain(src, out)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    n = _decodable(src)
    assert lines[0] == (
        f"vidcam explain: error: input {str(src)!r} is damaged or truncated: only {n} of {N} "
        + lines[0].split(f"only {n} of {N} ", 1)[1]
    )
    assert "--allow-partial" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file
    assert _sha(src) == before


def test_a_little_damage_is_skipped_and_reported(clips, tmp_path):
    src = clips["scratched"]
    before = _sha(src)
    out = tmp_path / "o.mp4"
    r = _explain(src, out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    n = _decodable(src)
    assert len(lines) == 1 and lines[0].startswith("vidcam explain: warning: scratched.mp4: ")
    assert f"{n} of {N} frames decoded, {N - n} lost" in lines[0]
    assert "damaged packet(s) skipped" in lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == n  # every decodable frame, after the damage too
    assert _sha(src) == before


def test_allow_partial_accepts_a_partial_result(clips, tmp_path):
    """The API's explicit option: the decodable frames are explained and written, with the
    count of lost ones in a warning and in the result."""
    src = clips["shredded"]
    before = _sha(src)
    n = _decodable(src)
    out = tmp_path / "o.mp4"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = write_explained_video(src, out, model="sample", progress=False, allow_partial=True)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DecodeWarning)]
    assert len(msgs) == 1 and f"{n} of {N} frames decoded, {N - n} lost" in msgs[0]
    assert msgs[0] in res.warnings
    assert res.frames == res.frames_written == n
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    assert _sha(src) == before
