"""Damaged input (issue 11, item 10; issue 25, item 6): garbage bytes in a file, a truncated
file, a destroyed header or index, an empty file.

Every CLI case runs ``python -m vidcam explain ... --model sample`` in a child process and
asserts the exit status, a one-line error or warning on stderr, no traceback, no leftover file
next to the output and the input unchanged, byte for byte. How much of a file FFmpeg itself
can still decode (the independent count the messages are checked against) comes from PyAV's
own demux-and-decode loop here, not from vidcam.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import HANG_S, pattern_frames, write_video

from vidcam.video import write_explained_video
from vidcam.video.decode import DecodeWarning

N = 48  # frames of the clean clip (25 fps, 64×48 H.264, one keyframe every 8 frames)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damaged")
    h264 = {"codec": "libx264", "options": {"crf": "18", "g": "8"}}
    frames = pattern_frames(N, 48, 64)
    clean = write_video(
        d / "clean.mp4", frames, **h264, container_options={"movflags": "+faststart"}
    )
    index_last = write_video(d / "index_last.mp4", frames, **h264)  # moov after the data
    data = clean.read_bytes()
    size = len(data)
    rng = np.random.default_rng(25)  # the same damage on every run
    out = {"clean": clean}

    def write(name: str, content: bytes) -> None:
        (d / f"{name}.mp4").write_bytes(content)
        out[name] = d / f"{name}.mp4"

    def damaged(name: str, start: float, length: float) -> None:
        b = bytearray(data)
        s, n = int(size * start), int(size * length)
        b[s : s + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # same size
        write(name, bytes(b))

    damaged("scratched", 0.5, 0.01)  # a few packets: a little loss, the run goes on
    damaged("shredded", 0.3, 0.4)  # most of the middle: far below 90 %
    write("cut", data[: size // 4])  # faststart: the index survives, the data not
    write("zero_tail", data[: size - size // 3] + bytes(size // 3))  # a disk that lost blocks
    write("index_cut", index_last.read_bytes()[: len(index_last.read_bytes()) // 2])
    write("zero_head", bytes(64) + data[64:])  # the container's signature wiped
    write("garbage", rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    write("empty", b"")
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


def _explain(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vidcam", "explain", str(src), "-o", str(out)]
    cmd += ["--model", "sample", "--quiet", *extra]
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_S, env=env)


#: damaged file -> what the one line says about it
REFUSED = {
    "shredded": "is damaged or truncated: only",
    "cut": "is damaged or truncated: only",
    "zero_tail": "is damaged or truncated: only",
    "index_cut": "is not a readable video file",
    "zero_head": "is not a readable video file",
    "garbage": "is not a readable video file",
    "empty": "is not a readable video file",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_every_damaged_file_is_refused_in_one_line(clips, tmp_path, name):
    """Exit status 2, one line naming the input and the damage, no traceback; no video, JSON
    or contact sheet, no temporary file; the input untouched, byte for byte."""
    src = clips[name]
    before, stamp = src.read_bytes(), src.stat().st_mtime_ns
    out = tmp_path / "o.mp4"
    r = _explain(src, out, "--json", str(tmp_path / "o.json"), "--preview", str(tmp_path / "o.png"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"vidcam explain: error: input {str(src)!r} {REFUSED[name]}"), lines
    assert list(tmp_path.iterdir()) == []
    assert src.read_bytes() == before and src.stat().st_mtime_ns == stamp


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
