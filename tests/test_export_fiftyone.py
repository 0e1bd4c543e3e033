"""`vidcam export fiftyone`: a real batch exported to a real FiftyOne database and read back.

The database is FiftyOne's own bundled ``mongod``, started here on a free port in a temporary
folder for the session and stopped after (``FIFTYONE_DATABASE_URI``). The batch: two
synthetic clips (one with a manifest label and ground-truth boxes, one non-square) and one
broken file, explained with the tiny ``sample`` model, two methods side by side, ``--evaluate``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import write_video
from vidcam.batch import load_maps, run
from vidcam.cli import main
from vidcam.evaluate.synth import SynthConfig, write_benchmark
from vidcam.export.mongod import HINT, bundled_mongod, running_mongod
from vidcam.export.samples import field_name
from vidcam.video.render import colormap_lut

if importlib.util.find_spec("fiftyone") is None:
    pytest.skip(
        "FiftyOne is not installed (pip install 'vidcam[fiftyone]')", allow_module_level=True
    )

METHODS = ("gradcam", "layercam")


@pytest.fixture(scope="session")
def fo(tmp_path_factory):
    """FiftyOne on its own bundled mongod (started here, stopped after the session)."""
    assert bundled_mongod() is not None, f"FiftyOne has no mongod: {HINT}"
    names = ("FIFTYONE_DATABASE_URI", "FIFTYONE_DO_NOT_TRACK", "FIFTYONE_DATABASE_VALIDATION")
    saved = {k: os.environ.get(k) for k in names}
    try:
        with running_mongod(tmp_path_factory.mktemp("mongo")) as uri:
            os.environ["FIFTYONE_DATABASE_URI"] = uri
            os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
            os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"  # mongod 6.0 is supported
            import fiftyone

            assert fiftyone.config.database_uri == uri
            yield fiftyone
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A finished batch: 2 done rows (one labelled with ground truth), 1 failed row."""
    d = tmp_path_factory.mktemp("export")
    (a,) = write_benchmark(d / "clips", 1, seed=3, config=SynthConfig(frames=28))
    rng = np.random.default_rng(0)
    frames = np.zeros((20, 80, 144, 3), np.uint8)
    for i in range(20):  # a bright square moving right on noise, non-square frame
        frames[i] = rng.integers(0, 40, (80, 144, 3), dtype=np.uint8)
        frames[i, 30:50, 10 + 5 * i : 30 + 5 * i] = 230
    b = write_video(d / "clips" / "wide.mp4", frames, fps=10, codec="libx264")
    broken = d / "clips" / "broken.mp4"
    broken.write_text("not a video\n")
    gt = json.loads(a.with_suffix(".json").read_text())
    man = d / "clips" / "list.jsonl"
    rows = [{"path": a.name, "label": gt["label"], "gt": a.with_suffix(".json").name}]
    man.write_text(
        "".join(json.dumps(r) + "\n" for r in [*rows, {"path": b.name}, {"path": broken.name}])
    )
    out = d / "out"
    run([man], out, model="sample", evaluate=True, side_by_side=METHODS, progress=False)
    return out


def _index(out: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    return {r["key"]: r for r in rows}


def _export(args: list[str], capsys) -> tuple[int, str]:
    code = main(["export", "fiftyone", *args])
    return code, capsys.readouterr().err


def test_export_matches_the_batch_files(fo, batch, capsys):
    code, err = _export([str(batch), "--dataset", "t-main", "--quiet"], capsys)
    assert code == 0, err
    rows = _index(batch)
    done = {k: r for k, r in rows.items() if r["status"] == "done"}
    failed = {k: r for k, r in rows.items() if r["status"] == "failed"}
    assert len(done) == 2 and len(failed) == 1, {k: r["error"] for k, r in rows.items()}
    ds = fo.load_dataset("t-main")
    assert ds.persistent and len(ds) == 2
    info = ds.info["vidcam"]
    assert info["failed"] == [
        {"key": k, "input": r["input"], "error": r["error"]} for k, r in failed.items()
    ]
    assert info["heat_fields"] == {field_name(m): m for m in METHODS}
    for key, row in done.items():
        (sample,) = ds.match({"vidcam_key": key})
        doc = json.loads((batch / row["outputs"]["json"]).read_text())
        raw = load_maps(batch / row["outputs"]["maps"])
        assert sample.filepath == row["input"]
        assert sample.metadata.total_frame_count == row["frames"] == len(raw.times)
        assert sample.prediction.label == row["top"][0]["label"]
        assert sample.prediction.confidence == pytest.approx(row["top"][0]["prob"])
        assert (sample.ground_truth and sample.ground_truth.label) == row["label"]
        assert sample.methods == list(METHODS)
        assert sample.annotated_video == str(batch / row["outputs"]["video"])
        assert sample.report_page == str(batch / row["outputs"]["report"])
        stored = {k: v for k, v in sample.metrics.to_dict().items() if not k.startswith("_")}
        assert {info["metrics"][k]: v for k, v in stored.items()} == row["metrics"]
        _check_frames(sample, doc, raw)
    labelled = next(s for s in ds if s.ground_truth is not None)
    assert labelled.metrics.energy_pg == done[labelled.vidcam_key]["metrics"]["energy_pg"]


def _check_frames(sample, doc: dict, raw) -> None:
    """Frame numbers 1..F; each frame's prediction is the top-1 of the window whose centre is
    nearest (the triangular blend weights peak there); importance as in NAME.json."""
    numbers = sorted(sample.frames.keys())
    assert numbers == list(range(1, len(raw.times) + 1))
    centres = np.array([(w[0] + w[-1]) / 2 for w in raw.window_times])
    for n in numbers:
        frame = sample.frames[n]
        t = raw.times[n - 1]
        w = int(np.argmin(np.abs(centres - t)))
        assert frame.prediction.label == doc["windows"][w]["top"][0]["label"]
        assert frame.prediction.confidence == doc["windows"][w]["top"][0]["prob"]
        assert frame.importance == pytest.approx(doc["importance"][n - 1], abs=1e-6)


def _reference_levels(raw, method: str, size: tuple[int, int]) -> list[np.ndarray]:
    """Independently of the exporter: the video scale (NumPy's exact 99th percentile of the
    slices frames can show), each window's slices interpolated at the frame time and the
    windows blended with the batch's time supports, gamma 0.6, rounded to levels, resized to
    the source grid by OpenCV (the wide clip's crop is its whole resized frame)."""
    sups = raw.supports()
    pan = raw.panels[method]
    shown = [sups[w].kept(torch.from_numpy(pan[w].copy())).numpy() for w in range(len(sups))]
    ref = np.percentile(np.concatenate([x.ravel() for x in shown]), 99)
    out = []
    for t in raw.times:
        weight = np.array([float(s.weight(t)[0]) for s in sups])
        heat = sum(
            weight[w]
            / weight.sum()
            * np.tensordot(s.slice_weights(t)[0], np.clip(pan[w] / ref, 0, 1), 1)
            for w, s in enumerate(sups)
            if weight[w] > 0
        )
        level = np.rint(np.clip(heat, 0, 1) ** 0.6 * 255).astype(np.uint8)
        out.append(cv2.resize(level, size[::-1], interpolation=cv2.INTER_LINEAR).astype(float))
    return out


def test_heatmaps_are_the_videos_display_heat(fo, batch):
    ds = fo.load_dataset("t-main")
    sample = next(s for s in ds if s.vidcam_key == "wide.mp4")
    raw = load_maps(batch / "wide.maps.npz")
    assert raw.geometry.crop == raw.geometry.resized  # a whole-frame crop: resize = placement
    for m in METHODS:
        top = 0
        ref = _reference_levels(raw, m, (80, 144))
        for n, r in enumerate(ref, start=1):
            got = sample.frames[n][field_name(m)].get_map()
            assert got.shape == (80, 144) and got.dtype == np.uint8  # 144 < 256: full size
            # the MP4 leaves a pixel untouched below COLD (12.75 levels) or at most RAMP[0] =
            # 45 % of the frame's peak: there the heatmap is 0 (FiftyOne draws nothing)
            edge = max(12.75, 0.45 * r.max())
            cold, hot = r < edge - 4, r > edge + 4
            assert (got[cold] == 0).all()
            assert np.abs(got[hot] - r[hot]).max() <= 3, (m, n)
            top = max(top, int(got.max()))
        assert top == 255  # the video scale: its 99th percentile is full heat


def test_app_colours_are_the_colormap(fo, batch):
    ds = fo.load_dataset("t-main")
    scheme = ds.app_config.color_scheme
    assert scheme.color_by == "value" and scheme.opacity == pytest.approx(0.6)
    from fiftyone.core.plots.plotly import get_colormap  # what the App's server sends

    lut = colormap_lut("jet")
    for entry in scheme.colorscales:
        assert entry["path"] in {f"frames.{field_name(m)}" for m in METHODS}
        table = np.array(get_colormap([[e["value"], e["color"]] for e in entry["list"]]))
        assert (table == lut).all()


def test_reexport_updates_in_place(fo, batch, capsys):
    assert _export([str(batch), "--dataset", "t-again", "--quiet"], capsys)[0] == 0
    ds = fo.load_dataset("t-again")
    ids = sorted(ds.values("id"))
    frames = ds.count("frames")
    first = ds.first()
    first.tags.append("reviewed")
    first.save()
    runs = list((batch / "fiftyone-maps").glob("t-again-*/run-*"))
    assert _export([str(batch), "--dataset", "t-again", "--quiet"], capsys)[0] == 0
    ds.reload()
    assert sorted(ds.values("id")) == ids and ds.count("frames") == frames
    assert ds.count_sample_tags() == {"reviewed": 1}
    new_runs = list((batch / "fiftyone-maps").glob("t-again-*/run-*"))
    assert len(runs) == len(new_runs) == 1 and runs != new_runs  # the old run's images gone
    paths = [Path(p) for p in _map_paths(ds)]
    assert len(paths) == 2 * frames and all(
        p.parents[2] == new_runs[0] and p.is_file() for p in paths
    )
    # --overwrite rebuilds: new samples, user tags gone, still no duplicates
    assert _export([str(batch), "--dataset", "t-again", "--overwrite", "--quiet"], capsys)[0] == 0
    ds = fo.load_dataset("t-again")
    assert len(ds) == 2 and not set(ds.values("id")) & set(ids) and ds.count_sample_tags() == {}
    assert ds.count("frames") == frames


def _map_paths(ds) -> list[str]:
    return [
        p
        for f in ds.info["vidcam"]["heat_fields"]
        for p in ds.values(f"frames.{f}.map_path", unwind=True)
    ]


def test_array_heatmaps_equal_the_png_ones(fo, batch, capsys):
    args = [str(batch), "--dataset", "t-array", "--heatmaps", "array", "--quiet"]
    assert _export(args, capsys)[0] == 0
    png, arr = fo.load_dataset("t-main"), fo.load_dataset("t-array")
    assert arr.info["vidcam"]["maps_dir"] is None
    for s in png:
        (t,) = arr.match({"vidcam_key": s.vidcam_key})
        for n in (1, len(s.frames)):
            for f in arr.info["vidcam"]["heat_fields"]:
                assert (t.frames[n][f].map == s.frames[n][f].get_map()).all()
    ids, frames = sorted(arr.values("id")), arr.count("frames")
    assert _export(args, capsys)[0] == 0  # streamed in place: same samples, same frames
    arr.reload()
    assert sorted(arr.values("id")) == ids and arr.count("frames") == frames


def _copy(batch: Path, dest: Path) -> Path:
    shutil.copytree(batch, dest, ignore=shutil.ignore_patterns("fiftyone-maps"))
    return dest


def _refused(fo, capsys, args: list[str], wanted: str) -> str:
    before = sorted(fo.list_datasets())
    code, err = _export([*args, "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert wanted in err, err
    assert sorted(fo.list_datasets()) == before  # no dataset made or changed
    return err


def test_bad_inputs_one_line_nothing_written(fo, batch, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(fo, capsys, [str(empty), "--dataset", "x"], "not a vidcam batch output")
    _refused(fo, capsys, [str(tmp_path / "nope"), "--dataset", "x"], "does not exist")
    running = _copy(batch, tmp_path / "running")
    with open(running / "index.jsonl", "a") as f:  # a rerun streams rows again
        f.write(json.dumps(_index(batch)["wide.mp4"]) + "\n")
    _refused(fo, capsys, [str(running), "--dataset", "x"], "still running")
    first_run = _copy(batch, tmp_path / "first_run")
    (first_run / "summary.csv").unlink()  # written only when a batch ends
    _refused(fo, capsys, [str(first_run), "--dataset", "x"], "still running")
    missing = _copy(batch, tmp_path / "missing")
    (missing / "wide.maps.npz").unlink()
    _refused(fo, capsys, [str(missing), "--dataset", "x"], "wide.maps.npz' is missing")
    damaged = _copy(batch, tmp_path / "damaged")
    blob = bytearray((damaged / "wide.maps.npz").read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)  # same size, broken content
    (damaged / "wide.maps.npz").write_bytes(bytes(blob))
    _refused(fo, capsys, [str(damaged), "--dataset", "x"], "wide.maps.npz")
    assert not list((damaged / "fiftyone-maps").glob("*/run-*"))  # its images removed
    for d in (missing, damaged):
        assert not (d / "fiftyone-maps").exists() or not any((d / "fiftyone-maps").rglob("*.png"))
    monkeypatch.setitem(sys.modules, "fiftyone", None)
    err = _refused(fo, capsys, [str(batch), "--dataset", "x"], "FiftyOne is not installed")
    assert "pip install 'vidcam[fiftyone]'" in err


def test_dataset_of_another_origin_is_refused(fo, batch, tmp_path, capsys):
    other = fo.Dataset("t-other", persistent=True)
    other.add_sample(fo.Sample(filepath=str(tmp_path / "x.mp4"), note="theirs"))
    _refused(fo, capsys, [str(batch), "--dataset", "t-other"], "pass --overwrite")
    assert fo.load_dataset("t-other").values("note") == ["theirs"]
    # another batch's export is not ours either
    second = _copy(batch, tmp_path / "second")
    later = (second / "summary.csv").stat().st_mtime + 60
    os.utime(second / "index.jsonl", (later, later))  # copied without times: still finished
    assert _export([str(second), "--dataset", "t-second", "--quiet"], capsys)[0] == 0
    _refused(fo, capsys, [str(batch), "--dataset", "t-second"], "the export of batch")
    code, err = _export([str(batch), "--dataset", "t-other", "--overwrite", "--quiet"], capsys)
    assert code == 0, err
    ds = fo.load_dataset("t-other")
    assert len(ds) == 2 and ds.info["vidcam"]["batch_dir"] == str(batch)


def test_unreachable_database_is_one_line(batch):
    uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
    r = subprocess.run(
        [sys.executable, "-m", "vidcam", "export", "fiftyone", str(batch), "--dataset", "x"],
        env=dict(os.environ, FIFTYONE_DATABASE_URI=uri),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "FiftyOne's database cannot be used" in r.stderr
    assert not list((batch / "fiftyone-maps").glob("x-*"))
