"""Issue 27 item 5: nothing blocks forever. FIFOs and devices are never opened as inputs or
ground truths; FFmpeg's list demuxers (concat, hls, ...) are never run unless named in
``$VIDCAM_DEMUXERS``; ``video_timeout`` turns a video that takes too long into a failed row.

Every call that used to hang runs in a thread with a generous bound (a hang shows as "not
finished", never as a slow pass); FIFOs left with a blocked reader are released at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import moving_square, run_bounded, write_video
from vidcam.batch import run
from vidcam.errors import VidcamError
from vidcam.video import explain_video
from vidcam.video.decode import VideoTimeout, check_time, iter_frames, probe, time_limit


def _release(fifo: Path) -> None:
    """Unblock a reader stuck in open() on ``fifo`` (no reader: nothing to do)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture
def work(tmp_path):
    frames = moving_square(12, 48, 64, (2, 2, 46, 62))
    write_video(tmp_path / "a.mkv", frames)
    write_video(tmp_path / "b.mkv", frames[::-1].copy())
    os.mkfifo(tmp_path / "fifo")
    yield tmp_path
    _release(tmp_path / "fifo")


def test_concat_list_with_a_fifo_segment_is_refused_at_once(work):
    """The issue's case: a 48-byte text file named .mp4 (an FFmpeg concat list) whose second
    segment is a FIFO nobody writes blocked decoding forever, in explain and in batch."""
    listing = work / "list.mp4"
    listing.write_text("ffconcat version 1.0\nfile a.mkv\nfile fifo\n")
    finished, result = run_bounded(lambda: explain_video(listing, model="sample"))
    assert finished, "explain hung on the concat list"
    assert isinstance(result, VidcamError) and "\n" not in str(result)
    assert "concat list" in str(result) and "VIDCAM_DEMUXERS" in str(result)
    finished, rows = run_bounded(
        lambda: run([listing, work / "b.mkv"], work / "out", model="sample", progress=False)
    )
    assert finished, "batch hung on the concat list"
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert "concat list" in rows[0]["error"]


def test_playlists_are_refused_and_allowed_only_when_asked(work, monkeypatch):
    hls = work / "p.m3u8"
    hls.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfifo\n#EXT-X-ENDLIST\n")
    finished, result = run_bounded(lambda: probe(hls))
    assert finished and isinstance(result, VidcamError) and "HLS playlist" in str(result)
    listing = work / "two.mp4"
    listing.write_text("ffconcat version 1.0\nfile a.mkv\nfile b.mkv\n")
    with pytest.raises(VidcamError, match="concat list"):
        probe(listing)
    monkeypatch.setenv("VIDCAM_DEMUXERS", "concat")  # asked for: the list plays both files
    assert len(list(iter_frames(listing, warn=False))) == 24


def test_fifo_and_device_inputs_are_never_opened(work):
    for p in (work / "fifo", Path("/dev/zero")):
        finished, result = run_bounded(lambda p=p: probe(p))
        assert finished and isinstance(result, VidcamError), p
        assert "is not a file" in str(result) and "FIFO" in str(result)
    finished, rows = run_bounded(
        lambda: run([work / "fifo", work / "a.mkv"], work / "out", model="sample", progress=False)
    )
    assert finished, "batch hung on a FIFO input"
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert "not a regular file" in rows[0]["error"]


def test_manifest_gt_fifo_is_a_failed_row(work):
    man = work / "m.jsonl"
    man.write_text(
        json.dumps({"path": "a.mkv", "gt": "fifo"}) + "\n" + json.dumps({"path": "b.mkv"}) + "\n"
    )
    finished, rows = run_bounded(
        lambda: run([man], work / "out", model="sample", progress=False, evaluate=True)
    )
    assert finished, "batch hung on a FIFO ground truth"
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert "ground truth" in rows[0]["error"] and "not a regular file" in rows[0]["error"]


def test_video_timeout_turns_a_video_into_a_failed_row(work):
    rows = run(
        [work / "a.mkv", work / "b.mkv"],
        work / "out",
        model="sample",
        progress=False,
        video_timeout=1e-9,
    )
    assert [r["status"] for r in rows] == ["failed", "failed"]  # the limit passes at once
    for r in rows:
        assert "took longer than its time limit of 1e-09 s (--video-timeout)" in r["error"]
        assert r["outputs"] == {}
    left = sorted(p.name for p in (work / "out").iterdir())
    assert left == sorted(
        [
            "a.failed.json",
            "b.failed.json",
            "index.jsonl",
            "summary.csv",
            "classes.csv",
            "index.html",
        ]
    )
    again = run([work / "a.mkv"], work / "out", model="sample", progress=False, retry_failed=True)
    assert again[0]["status"] == "done"  # the default limit (an hour) is generous


def test_time_limit_scopes_and_nests():
    check_time()  # no limit
    with time_limit(None):
        check_time()
    with time_limit(1e-9):
        with pytest.raises(VideoTimeout, match="1e-09 s"):
            check_time()
        with time_limit(3600):
            check_time()  # an inner, later limit
        with pytest.raises(VideoTimeout):
            check_time()  # the outer one is back
    check_time()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "10", True])
def test_video_timeout_is_validated(tmp_path, bad):
    with pytest.raises(VidcamError, match="video_timeout"):
        run([tmp_path / "x.mp4"], tmp_path / "out", model="sample", video_timeout=bad)
    assert not (tmp_path / "out").exists()
