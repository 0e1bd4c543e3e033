"""Issue 27 item 1: a batch never writes, replaces or deletes a file outside its ``-o`` folder.

Manifest rows with ``..`` are folded before keys are made (outputs mirror the normalised
path inside ``-o``); an output or state file that would still resolve outside (a symbolic link
inside ``-o``) makes that video a failed row with a one-line error, the batch going on, and
nothing is read, written or removed there.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import moving_square, write_video
from vidcam.batch import run
from vidcam.batch.inputs import expand_inputs
from vidcam.batch.layout import Outputs
from vidcam.batch.manifest import read_manifest


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links not followed) -> sha256 of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("src")
    return write_video(d / "clip.mkv", moving_square(12, 48, 64, (2, 2, 46, 62)))


def test_manifest_dotdot_is_folded_before_keys(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "m.jsonl").write_text(
        json.dumps({"path": "../victim/clip.mp4", "gt": "sub/../../g.json"}) + "\n"
    )
    (e,) = read_manifest(ds / "m.jsonl")
    assert e.path == tmp_path / "victim" / "clip.mp4" and e.gt == tmp_path / "g.json"
    items = expand_inputs([ds / "m.jsonl", tmp_path / "x" / ".." / "ds" / "a.mp4"])
    # roots ds/ and victim/ have the common ancestor tmp_path: no key climbs out of it
    assert [it.key for it in items] == ["victim/clip.mp4", "ds/a.mp4"]
    assert all(".." not in Path(it.key).parts for it in items)


def test_outputs_outside_is_refused_lexically_and_through_links(tmp_path):
    out = tmp_path / "out"
    (out / "inner").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "link")
    assert Outputs(out, "inner/clip").outside() is None
    for base in ("../clip", "link/clip", "inner/../../clip", str(tmp_path / "abs" / "clip")):
        why = Outputs(out, base).outside()
        assert why is not None and "outside the output folder" in why and "\n" not in why, base


def test_manifest_row_cannot_write_or_replace_outside_o(clip, tmp_path):
    """The issue's case: ds/manifest.jsonl row ../victim/clip.mkv with -o runs/r1 wrote every
    output as runs/victim/clip.* and replaced the clip.json there."""
    work = tmp_path / "work"
    (work / "ds").mkdir(parents=True)
    (work / "victim").mkdir()
    (work / "victim" / "clip.mkv").write_bytes(clip.read_bytes())
    (work / "runs" / "victim").mkdir(parents=True)
    (work / "runs" / "victim" / "clip.json").write_text('{"mine": true}')
    (work / "escape").mkdir()
    (work / "escape" / "x.done.json").write_text('{"keep": 1}')
    (work / "ds" / "manifest.jsonl").write_text(
        json.dumps({"path": "../victim/clip.mkv"})
        + "\n"
        + json.dumps({"path": "../../escape/x.mp4"})  # missing: a failed row
        + "\n"
    )
    before = {d: _tree(work / d) for d in ("victim", "escape", "ds")}
    victim_json = (work / "runs" / "victim" / "clip.json").read_bytes()
    rows = run(
        [work / "ds" / "manifest.jsonl"], work / "runs" / "r1", model="sample", progress=False
    )
    by = {r["key"]: r for r in rows}
    assert [r["status"] for r in rows] == ["done", "failed"]
    assert "does not exist" in rows[1]["error"]
    assert (work / "runs" / "victim" / "clip.json").read_bytes() == victim_json
    assert sorted(p.name for p in (work / "runs").iterdir()) == ["r1", "victim"]
    assert sorted(p.name for p in (work / "runs" / "victim").iterdir()) == ["clip.json"]
    assert {d: _tree(work / d) for d in ("victim", "escape", "ds")} == before
    assert not (tmp_path / "escape").exists() and not (tmp_path / "x.failed.json").exists()
    r1 = work / "runs" / "r1"
    for r in by.values():  # every output and state file under -o
        for rel in r["outputs"].values():
            assert (r1 / rel).resolve().is_relative_to(r1.resolve())
    assert (r1 / rows[0]["outputs"]["json"]).is_file()
    failed_markers = list(r1.rglob("*.failed.json"))
    assert len(failed_markers) == 1 and failed_markers[0].name == "x.failed.json"


def test_symlinked_folder_inside_o_is_a_failed_row(clip, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "ok").mkdir()
    (src / "sub" / "clip.mkv").write_bytes(clip.read_bytes())
    (src / "ok" / "clip.mkv").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "clip.done.json").write_text("{}")  # a rerun must not read or remove it
    (outside / "clip.json").write_text('{"theirs": 1}')
    os.symlink(outside, out / "sub")
    before = _tree(outside)
    rows = run([src], out, model="sample", progress=False, recursive=True)
    by = {r["key"]: r for r in rows}
    assert by["ok/clip.mkv"]["status"] == "done"
    bad = by["sub/clip.mkv"]
    assert bad["status"] == "failed" and bad["outputs"] == {}
    assert "outside the output folder" in bad["error"] and "\n" not in bad["error"]
    assert str(outside / "clip") in bad["error"]
    assert _tree(outside) == before  # nothing written, replaced or deleted there
    again = run([src], out, model="sample", progress=False, recursive=True, retry_failed=True)
    assert [r["status"] for r in again] == ["skipped", "failed"]
    assert _tree(outside) == before
