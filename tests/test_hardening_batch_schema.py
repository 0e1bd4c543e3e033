"""Issue 27 items 8-10 for the batch: one-line errors (never a traceback) for manifests and
resume files of the wrong shape, identical rows run once, spreadsheet formulas quoted in
summary.csv, and an input rewritten between pass 1 and pass 2 never rendered."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import vidcam.batch.worker as worker
from tests.conftest import moving_square, write_video
from vidcam.batch import run
from vidcam.batch.index import summary_csv
from vidcam.batch.inputs import expand_inputs
from vidcam.batch.manifest import read_manifest
from vidcam.batch.worker import base_row
from vidcam.errors import VidcamError
from vidcam.video import analyze, render_analysis


@pytest.fixture
def work(tmp_path) -> Path:
    frames = moving_square(12, 48, 64, (2, 2, 46, 62))
    write_video(tmp_path / "a.mkv", frames)
    write_video(tmp_path / "b.mkv", frames[::-1].copy())
    return tmp_path


def test_csv_field_over_the_limit_is_one_line(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("path,label\nx.mp4," + "a" * 140_000 + "\n")
    with pytest.raises(VidcamError, match=r"m\.csv:2: not valid CSV \(field larger") as err:
        read_manifest(m)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"path": 3}, "'path' is missing, empty or not a string"),
        ({"path": ["a.mp4"]}, "'path' is missing, empty or not a string"),
        ({"path": "a.mp4", "label": {"a": 1}}, "label must be a str or int"),
        ({"path": "a.mp4", "gt": 5}, "gt must be a str"),
        ({"path": "a.mp4", "start": True}, "start must be a int or float or str"),
        ({"path": "a.mp4", "target": [1]}, "target must be a str or int"),
    ],
)
def test_manifest_fields_of_the_wrong_type_are_one_line(tmp_path, row, needle):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps(row) + "\n")
    with pytest.raises(VidcamError, match="m.jsonl:1: ") as err:
        read_manifest(m)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_identical_rows_spelled_differently_run_once(work):
    (work / "sub").mkdir()
    m = work / "m.jsonl"
    rows = ["a.mkv", "./a.mkv", "sub/../a.mkv", str(work / "a.mkv"), "b.mkv"]
    m.write_text("".join(json.dumps({"path": p}) + "\n" for p in rows))
    assert [it.key for it in expand_inputs([m])] == ["a.mkv", "b.mkv"]


def test_hand_edited_resume_files_are_redone_not_a_traceback(work):
    out = work / "out"
    rows = run([work / "a.mkv", work / "b.mkv"], out, model="sample", progress=False)
    assert [r["status"] for r in rows] == ["done", "done"]
    done = json.loads((out / "a.done.json").read_text())
    done["outputs"]["video"] = "a.mp4"  # a string where an object belongs
    (out / "a.done.json").write_text(json.dumps(done))
    failed = {
        "format": "vidcam-batch-failed/1",
        "fingerprint": json.loads((out / "b.done.json").read_text())["fingerprint"],
        "input": json.loads((out / "b.done.json").read_text())["input"],
        "row": {"key": "b.mkv", "error": "x"},  # no status, and most keys missing
    }
    (out / "b.done.json").unlink()
    (out / "b.failed.json").write_text(json.dumps(failed))
    again = run([work / "a.mkv", work / "b.mkv"], out, model="sample", progress=False)
    # a: redone over the files its marker names; b: its marker no longer says which files it
    # wrote, so they count as someone else's: a failed row naming --overwrite
    assert [r["status"] for r in again] == ["done", "failed"]
    assert "--overwrite" in again[1]["error"] and "\n" not in again[1]["error"]
    again = run([work / "b.mkv"], out, model="sample", progress=False, overwrite=True)
    assert again[0]["status"] == "done"
    # a marker that no longer says which files the run wrote (not vidcam's format, or its
    # fields of the wrong shape): the files count as someone else's, a one-line refusal
    bad = {"format": "vidcam-batch-done/1", "row": [], "outputs": 3}
    for shape in ([1, 2], "text", bad):
        (out / "a.done.json").write_text(json.dumps(shape))
        (row,) = run([work / "a.mkv"], out, model="sample", progress=False)
        assert row["status"] == "failed" and "already exists" in row["error"]
        assert "--overwrite" in row["error"] and "\n" not in row["error"]
        (row,) = run([work / "a.mkv"], out, model="sample", progress=False, overwrite=True)
        assert row["status"] == "done"


def test_summary_cells_that_spreadsheets_would_run_are_quoted():
    row = base_row(type("I", (), {"key": "=k", "path": Path("/x"), "label": "@SUM(A1)"})(), None)
    row.update(status="done", frames=-3, duration=-0.5)
    row["top"] = [{"label": "=cmd|' /C calc'!A1", "index": 0, "prob": 0.5}]
    row["label"] = "+1"
    parsed = next(csv.DictReader(io.StringIO(summary_csv([row]))))
    assert parsed["key"] == "'=k" and parsed["label"] == "'+1"
    assert parsed["top_1_label"] == "'=cmd|' /C calc'!A1"
    assert parsed["frames"] == "-3" and parsed["duration"] == "-0.5"  # numbers stay numbers
    assert parsed["input"] == "/x"


def test_input_rewritten_between_the_passes_is_never_rendered(work, tmp_path):
    src = work / "a.mkv"
    other = (work / "b.mkv").read_bytes()
    out = tmp_path / "o.mp4"
    with analyze(src, model="sample", progress=False) as analysis:
        src.write_bytes(other)  # same size, other content
        with pytest.raises(VidcamError, match="changed while vidcam ran") as err:
            render_analysis(analysis, out)
    assert "\n" not in str(err.value) and not out.exists()
    assert not list(tmp_path.glob(".o.tmp-*"))


def test_batch_row_fails_when_the_input_changes_mid_run(work, monkeypatch):
    real = worker.render_analysis
    later = moving_square(20, 48, 64, (2, 2, 46, 62))

    def rewrite_then_render(analysis, *a, **k):
        write_video(analysis.source.path, later)  # rewritten in place after pass 1
        return real(analysis, *a, **k)

    monkeypatch.setattr(worker, "render_analysis", rewrite_then_render)
    (row,) = run([work / "a.mkv"], work / "out", model="sample", progress=False)
    assert row["status"] == "failed" and "changed while vidcam ran" in row["error"]
    names = sorted(p.name for p in (work / "out").iterdir())
    assert names == ["a.failed.json", "classes.csv", "index.html", "index.jsonl", "summary.csv"]
