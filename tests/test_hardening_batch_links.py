"""Issue 27 item 4: outputs are never written through a symbolic link (nor into a FIFO or a
device): ``OUT/index.jsonl`` as a link got rows appended to its target, outside ``-o``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import moving_square, run_bounded, write_video
from vidcam.batch import run
from vidcam.batch.index import IndexWriter, read_index
from vidcam.batch.state import sha256
from vidcam.errors import VidcamError
from vidcam.paths import open_regular, read_regular


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("links")
    return write_video(d / "clip.mkv", moving_square(12, 48, 64, (2, 2, 46, 62)))


def test_symlinked_index_is_refused_before_any_work(clip, tmp_path):
    """The issue's case."""
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim.jsonl"
    target.write_text("precious\n")
    os.symlink(target, out / "index.jsonl")
    with pytest.raises(VidcamError, match="symbolic link") as err:
        run([clip], out, model="sample", progress=False)
    assert "\n" not in str(err.value) and "index.jsonl" in str(err.value)
    assert target.read_text() == "precious\n"
    assert sorted(p.name for p in out.iterdir()) == ["index.jsonl"]  # nothing else written


@pytest.mark.parametrize("name", ["summary.csv", "classes.csv", "index.html"])
def test_every_run_file_link_is_refused(clip, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim.txt"
    target.write_text("x")
    os.symlink(target, out / name)
    with pytest.raises(VidcamError, match="symbolic link"):
        run([clip], out, model="sample", progress=False)
    assert target.read_text() == "x"


def test_index_append_never_follows_a_link_made_during_the_run(tmp_path):
    """The start-of-run check races with a link made later: the append itself refuses."""
    target = tmp_path / "victim.jsonl"
    target.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    w = IndexWriter(out)
    w.append({"key": "a", "status": "done"})
    (out / "index.jsonl").unlink()
    os.symlink(target, out / "index.jsonl")
    with pytest.raises(VidcamError, match="symbolic link"):
        w.append({"key": "b", "status": "done"})
    assert target.read_text() == "precious\n"
    (out / "index.jsonl").unlink()
    os.mkfifo(out / "index.jsonl")  # nobody reads it: a blocking open would hang
    finished, result = run_bounded(lambda: w.append({"key": "c", "status": "done"}))
    assert finished and isinstance(result, VidcamError), result
    finished, result = run_bounded(lambda: read_index(out / "index.jsonl"))
    assert finished and isinstance(result, VidcamError), result


def test_torn_line_is_still_repaired(tmp_path):
    w = IndexWriter(tmp_path)
    (tmp_path / "index.jsonl").write_text('{"key": "a"}\n{"key": "b", "sta')
    w.append({"key": "c"})
    assert [r["key"] for r in read_index(tmp_path / "index.jsonl")] == ["a", "c"]


def test_linked_state_files_and_outputs_are_not_followed(clip, tmp_path):
    """A done marker or an output that is a link (to a file outside -o) is neither read nor
    replaced: the video is a failed row naming it; the link's target is unchanged."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mkv").write_bytes(clip.read_bytes())
    (src / "b.mkv").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    rows = run([src], out, model="sample", progress=False)
    assert [r["status"] for r in rows] == ["done", "done"]
    outside = tmp_path / "outside.json"
    outside.write_text((out / "a.done.json").read_text())
    (out / "a.done.json").unlink()
    os.symlink(outside, out / "a.done.json")
    real_json = out / "b.json"
    moved = tmp_path / "b-outside.json"
    real_json.rename(moved)
    os.symlink(moved, real_json)
    before = (outside.read_bytes(), moved.read_bytes())
    again = run([src], out, model="sample", progress=False, overwrite=True)
    by = {r["key"]: r for r in again}
    for key, name in (("a.mkv", "a.done.json"), ("b.mkv", "b.json")):
        assert by[key]["status"] == "failed", by[key]
        assert "link" in by[key]["error"] and name in by[key]["error"]
    assert (outside.read_bytes(), moved.read_bytes()) == before
    assert json.loads(before[0])["format"] == "vidcam-batch-done/1"


def test_open_regular_refuses_links_fifos_and_devices(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    os.symlink(f, tmp_path / "l")
    os.mkfifo(tmp_path / "p")
    assert read_regular(f, 3) == b"abc"
    with pytest.raises(VidcamError, match="limit"):
        read_regular(f, 2)
    for p, what in ((tmp_path / "l", "symbolic link"), ("/dev/null", "not a regular file")):
        with pytest.raises(VidcamError, match=what):
            open_regular(p)
    finished, result = run_bounded(lambda: open_regular(tmp_path / "p"))
    assert finished and isinstance(result, VidcamError) and "not a regular file" in str(result)
    with pytest.raises(VidcamError):
        sha256(tmp_path / "l")
