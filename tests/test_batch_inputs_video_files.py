"""One rule for "which files are videos": `vidcam evaluate DIR` and `vidcam batch DIR` agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcam.batch.inputs import expand_inputs
from vidcam.errors import VidcamError
from vidcam.evaluate.clips import list_videos
from vidcam.video_files import VIDEO_SUFFIXES, is_video_name, scan_folder


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Every kind of name a folder scan must decide on (the files need not decode)."""
    d = tmp_path / "ds"
    d.mkdir()
    for name in ("b.mp4", "A.MKV", "c.gif", "d.ts", "e.3gp", "f.ogv", "g.mpeg", "h.webm"):
        (d / name).write_bytes(b"x")
    for name in (".hidden.mp4", "notes.txt", "clip.mp4.json", "noext"):
        (d / name).write_bytes(b"x")
    (d / "dir.mp4").mkdir()  # a folder with a video's name is no video
    (d / "sub").mkdir()
    (d / "sub" / "deep.mp4").write_bytes(b"x")  # not picked without recursion
    (d / ".cache").mkdir()
    (d / ".cache" / "x.mp4").write_bytes(b"x")
    return d


def test_evaluate_and_batch_pick_the_same_files(folder):
    want = ["A.MKV", "b.mp4", "c.gif", "d.ts", "e.3gp", "f.ogv", "g.mpeg", "h.webm"]
    evaluated = [p.name for p in list_videos([folder])]
    batched = [it.path.name for it in expand_inputs([folder])]
    assert evaluated == want  # the old evaluate list (6 suffixes) missed .gif, .ts, .3gp, ...
    assert batched == want
    assert [p.resolve() for p in list_videos([folder])] == [
        it.path.resolve() for it in expand_inputs([folder])
    ]


def test_recursive_scan_and_skip(folder):
    names = [p.relative_to(folder).as_posix() for p in scan_folder(folder, recursive=True)]
    assert names == ["A.MKV", "b.mp4", "c.gif", "d.ts", "e.3gp", "f.ogv", "g.mpeg", "h.webm",
                     "sub/deep.mp4"]  # fmt: skip
    skipped = scan_folder(folder, recursive=True, skip=(folder / "sub").resolve())
    assert "deep.mp4" not in [p.name for p in skipped] and len(skipped) == 8


def test_suffix_rule():
    assert len(VIDEO_SUFFIXES) == len(set(VIDEO_SUFFIXES)) == 14
    assert all(s == s.lower() and s.startswith(".") for s in VIDEO_SUFFIXES)
    assert is_video_name("X.MP4") and is_video_name("a/b.c.webm")
    assert not is_video_name("a.json") and not is_video_name("mp4")


def test_an_empty_folder_is_refused_by_both(tmp_path):
    (tmp_path / "readme.txt").write_text("no video")
    with pytest.raises(VidcamError, match="holds no video"):
        list_videos([tmp_path])
    with pytest.raises(VidcamError, match="holds no video"):
        expand_inputs([tmp_path])
