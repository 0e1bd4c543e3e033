"""Issue 27 item 2: a batch never replaces an input of the run, and replaces a file that no
earlier run of that video wrote only with ``overwrite=True`` (``vidcam batch --overwrite``).

The resume state tells which files a run wrote: the done marker lists its outputs, and the
failed marker (written in state ``started`` before any output) lists the planned ones, so a
rerun after a kill or with other settings replaces vidcam's own files without ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import vidcam.batch.worker as worker
from tests.conftest import moving_square, write_video
from vidcam.batch import run
from vidcam.batch.guard import InputSet, output_conflict
from vidcam.batch.layout import Outputs


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def frames():
    return moving_square(12, 48, 64, (2, 2, 46, 62))


def test_inputs_in_the_output_folder_are_never_replaced(frames, tmp_path):
    """The issue's case: ``vidcam batch dir/clip.avi dir/clip.mp4 -o dir`` named clip.avi's
    annotated video clip.mp4 and replaced that input (exit 0)."""
    d = tmp_path / "dir"
    d.mkdir()
    avi = write_video(d / "clip.avi", frames)
    mp4 = write_video(d / "clip.mp4", frames[::-1].copy(), codec="libx264")
    before = {p: _sha(p) for p in (avi, mp4)}
    rows = run([avi, mp4], d, model="sample", progress=False)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert {p: _sha(p) for p in (avi, mp4)} == before
    videos = sorted(r["outputs"]["video"] for r in rows)
    assert videos == ["clip.avi.mp4", "clip.mp4.mp4"]  # the input names are avoided
    # the second item explains its own input, not an annotated file: 12 frames of it
    doc = json.loads((d / rows[1]["outputs"]["json"]).read_text())
    assert doc["input"] == str(mp4) and doc["frames"] == 12
    again = run([avi, mp4], d, model="sample", progress=False)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert {p: _sha(p) for p in (avi, mp4)} == before


def test_an_output_linked_to_an_input_is_never_replaced_even_with_overwrite(frames, tmp_path):
    src = write_video(tmp_path / "clip.mkv", frames)
    other = write_video(tmp_path / "b.mkv", frames)
    out = tmp_path / "out"
    out.mkdir()
    os.link(src, out / "clip.json")  # the JSON output name is the input itself (a hard link)
    os.symlink(other, out / "b.json")  # and a symbolic link to the other input
    before = {p: _sha(p) for p in (src, other)}
    rows = run([src, other], out, model="sample", progress=False, overwrite=True)
    # the layout routes around the inputs: the bases keep their extension
    assert [r["status"] for r in rows] == ["done", "done"]
    assert [r["outputs"]["json"] for r in rows] == ["clip.mkv.json", "b.mkv.json"]
    assert {p: _sha(p) for p in (src, other)} == before
    assert os.path.samefile(out / "clip.json", src) and os.readlink(out / "b.json") == str(other)
    # the guard itself (run before any write, in the planner and in the worker)
    o = Outputs(out, "clip")
    read = InputSet([src, other])
    why = output_conflict(o, ["video", "json"], read, set(), set(), overwrite=True)
    assert why is not None and "is the input" in why and str(src) in why and "\n" not in why
    why = output_conflict(
        Outputs(out, "b"), ["json"], InputSet([src]), set(), set(), overwrite=True
    )
    assert why is not None and "symbolic link" in why  # never replaced, even if not an input
    assert (
        output_conflict(Outputs(out, "new"), ["json"], read, set(), set(), overwrite=False) is None
    )


def test_a_file_no_run_wrote_needs_overwrite(frames, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a.mkv", frames)
    write_video(src / "b.mkv", frames[::-1].copy())
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.json").write_text('{"theirs": true}')
    rows = run([src], out, model="sample", progress=False)
    by = {r["key"]: r for r in rows}
    assert by["b.mkv"]["status"] == "done"  # the batch goes on
    err = by["a.mkv"]["error"]
    assert by["a.mkv"]["status"] == "failed" and "--overwrite" in err and "a.json" in err
    assert (out / "a.json").read_text() == '{"theirs": true}'
    assert not (out / "a.mp4").exists() and not (out / "a.failed.json").exists()
    rows = run([src], out, model="sample", progress=False, overwrite=True)
    assert [r["status"] for r in rows] == ["done", "skipped"]
    assert json.loads((out / "a.json").read_text())["frames"] == 12


def test_reruns_replace_their_own_outputs_without_overwrite(frames, tmp_path, monkeypatch):
    src = write_video(tmp_path / "clip.mkv", frames)
    out = tmp_path / "out"
    # a run killed after the annotated video was written (BaseException: not a failed row)
    monkeypatch.setattr(
        worker, "save_maps", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        run([src], out, model="sample", progress=False)
    monkeypatch.undo()
    assert (out / "clip.mp4").is_file() and not (out / "clip.done.json").exists()
    marker = json.loads((out / "clip.failed.json").read_text())
    assert marker["status"] == "started" and "clip.mp4" in marker["outputs"]
    first = run([src], out, model="sample", progress=False)
    assert first[0]["status"] == "done"
    # other settings: the video is redone over its own outputs, still without --overwrite
    stamp = (out / "clip.mp4").stat().st_ino
    second = run([src], out, model="sample", progress=False, alpha=0.3)
    assert second[0]["status"] == "done" and (out / "clip.mp4").stat().st_ino != stamp


def test_input_set_matches_resolved_paths_and_hard_links(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.bin")
    os.symlink(a, tmp_path / "soft.bin")
    s = InputSet([a, None, tmp_path / "missing.bin"])
    assert s.holds(tmp_path / "sub" / ".." / "a.bin") == a
    assert s.holds(tmp_path / "hard.bin") is not None and s.holds(tmp_path / "soft.bin") == a
    assert s.holds(tmp_path / "missing.bin") is not None  # listed, even though absent
    assert s.holds(tmp_path / "other.bin") is None
