"""Issue 27 item 9: nothing is committed until every output is written. A late failure (the
``--json`` write on a full disk, a preview that cannot be written, a file that appeared
meanwhile) leaves none of the outputs, and no temporary file."""

from __future__ import annotations

import pytest

from tests.conftest import moving_square, write_video
from vidcam.errors import VidcamError
from vidcam.paths import LIVE_TEMPS, AtomicFile, commit_all
from vidcam.video import write_explained_video
from vidcam.video.results import VideoExplanation


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "in.mkv", moving_square(12, 48, 64, (2, 2, 46, 62)))


def _left(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "in.mkv")


def test_a_failing_json_write_leaves_no_video(clip, tmp_path, monkeypatch):
    def full_disk(self, path, **kw):
        raise VidcamError(f"cannot write {str(path)!r}: No space left on device")

    monkeypatch.setattr(VideoExplanation, "write_json", full_disk)
    with pytest.raises(VidcamError, match="No space left"):
        write_explained_video(
            clip, tmp_path / "o.mp4", json_path=tmp_path / "o.json",
            preview=tmp_path / "o.png", model="sample", progress=False,
        )  # fmt: skip
    assert _left(tmp_path) == [] and not LIVE_TEMPS


def test_a_file_that_appeared_meanwhile_stops_every_output(clip, tmp_path, monkeypatch):
    """Without overwrite, the JSON name was taken by another run during the work: the video
    and preview renamed before it are removed again; the other run's file is kept."""
    real = VideoExplanation.write_json

    def then_taken(self, path, **kw):
        real(self, path, **kw)
        (tmp_path / "o.json").write_text("theirs")

    monkeypatch.setattr(VideoExplanation, "write_json", then_taken)
    with pytest.raises(VidcamError, match="created by someone else"):
        write_explained_video(
            clip, tmp_path / "o.mp4", json_path=tmp_path / "o.json",
            preview=tmp_path / "o.png", model="sample", progress=False,
        )  # fmt: skip
    assert _left(tmp_path) == ["o.json"] and (tmp_path / "o.json").read_text() == "theirs"


def test_all_outputs_appear_together(clip, tmp_path):
    result = write_explained_video(
        clip, tmp_path / "o.mp4", json_path=tmp_path / "o.json",
        preview=tmp_path / "o.png", model="sample", progress=False,
    )  # fmt: skip
    assert _left(tmp_path) == ["o.json", "o.mp4", "o.png"] and result.frames_written == 12


def test_commit_all_rolls_back(tmp_path):
    (tmp_path / "b").write_text("old")
    files = [AtomicFile(tmp_path / n, overwrite=False) for n in ("a", "b", "c")]
    for f in files:
        f.tmp.write_text("new")
    with pytest.raises(VidcamError, match="created by someone else"):
        commit_all(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert (tmp_path / "b").read_text() == "old"
