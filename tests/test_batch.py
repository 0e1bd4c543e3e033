"""`vidcam batch` / vidcam.batch.run: inputs, layout, rows, failures, reruns, raw maps."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from tests.conftest import moving_square, write_video
from vidcam.batch import load_maps, run, save_maps
from vidcam.batch.aggregates import centre_energy, temporal_profile, video_top
from vidcam.batch.index import read_index
from vidcam.batch.inputs import expand_inputs
from vidcam.batch.layout import plan_layout
from vidcam.batch.manifest import read_manifest
from vidcam.errors import VidcamError
from vidcam.video import analyze
from vidcam.video.preprocess import Geometry
from vidcam.video.results import WindowResult
from vidcam.video.to_source import MapBlender

SCHEMA_KEYS = {
    "key", "input", "status", "error", "label", "target", "outputs", "top", "frames",
    "duration", "seconds", "temporal_profile", "centre_energy", "metrics",
}  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two folders that both hold clip.mkv (different content), plus a third clip."""
    d = tmp_path_factory.mktemp("clips")
    (d / "a").mkdir()
    (d / "b").mkdir()
    right = moving_square(12, 48, 64, (2, 2, 46, 62))
    write_video(d / "a" / "clip.mkv", right)
    write_video(d / "b" / "clip.mkv", right[::-1].copy())
    write_video(d / "b" / "other.mkv", right[:, ::-1].copy())
    return d


def test_manifest_errors_name_the_line(tmp_path):
    bad = {
        "m1.csv": ("video,label\nx.mp4,a\n", "m1.csv:1: the header has no 'path' column"),
        "m2.csv": ("path,start\nx.mp4,1\ny.mp4,soon\n", "m2.csv:3: start must be a number"),
        "m3.jsonl": ('{"path": "x.mp4"}\n\n{"path": "y.mp4"\n', "m3.jsonl:3: not valid JSON"),
        "m4.jsonl": ('{"path": "x.mp4", "start": 2, "end": 1}\n', "m4.jsonl:1: end (1 s) must be after"),
        "m5.jsonl": ('{"path": "x.mp4", "lable": "a"}\n', "m5.jsonl:1: unknown field(s) lable"),
        "m6.csv": ("path,label\nx.mp4,a,extra\n", "m6.csv:2: 3 cells"),
        "m7.jsonl": ('["x.mp4"]\n', "m7.jsonl:1: expected a JSON object"),
    }  # fmt: skip
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(VidcamError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_manifest(tmp_path / name)
    (tmp_path / "ok.csv").write_text(
        "path,label,target,start,end,gt\nsub/x.mp4,run,1,0.5,2,g.json\n"
    )
    (e,) = read_manifest(tmp_path / "ok.csv")
    assert (e.path, e.label, e.target, e.start, e.end, e.gt, e.line) == (
        tmp_path / "sub" / "x.mp4", "run", "1", 0.5, 2.0, tmp_path / "g.json", 2,
    )  # fmt: skip


def test_keys_and_layout_never_collide(clips, tmp_path):
    items = expand_inputs([clips / "a", clips / "b"])
    assert [it.key for it in items] == ["a/clip.mkv", "b/clip.mkv", "b/other.mkv"]
    single = expand_inputs([clips / "b"])
    assert [it.key for it in single] == ["clip.mkv", "other.mkv"]
    # two files named alike in two folders, one listed twice: kept once
    files = expand_inputs(
        [clips / "a" / "clip.mkv", clips / "b" / "clip.mkv", clips / "a" / "clip.mkv"]
    )
    assert [it.key for it in files] == ["a/clip.mkv", "b/clip.mkv"]
    plan = plan_layout(tmp_path, ["x/clip.mp4", "x/clip.avi", "index.mp4", "x/clip.done.mp4"])
    assert [plan[k].base for k in plan] == ["x/clip", "x/clip.avi", "index.mp4", "x/clip.done.mp4"]
    assert plan["x/clip.avi"].rel("video") == "x/clip.avi.mp4"  # not x/clip.mp4
    assert plan["index.mp4"].rel("report") == "index.mp4.html"  # not the run's index.html
    with pytest.raises(VidcamError, match="holds no video file"):
        expand_inputs([tmp_path])


def test_aggregates_literal():
    assert temporal_profile(np.repeat(np.arange(20) / 19, 2)) == pytest.approx(
        np.arange(20) / 19, abs=1e-6
    )
    assert temporal_profile(np.array([0.0, 1.0]), bins=4) == [0.0, 0.25, 0.75, 1.0]
    # 100x200 frame seen whole (full mode), the model's 100x100 centre square = columns 50..150
    g = Geometry(source=(100, 200), resized=(100, 200), crop=(100, 200), offset=(0, 0))
    heat = np.zeros((2, 4))
    heat[:, 1] = 1.0  # map column 1 covers x 50..100: inside
    heat[:, 0] = 3.0  # x 0..50: outside
    assert centre_energy(heat, g, (100, 100)) == pytest.approx(2 / 8)
    heat = np.ones((1, 8))  # columns of 25 px; the square covers columns 2..5 exactly
    assert centre_energy(heat, g, (100, 100)) == pytest.approx(0.5)
    assert centre_energy(np.ones((1, 3)), g, (100, 100)) == pytest.approx(0.5)  # straddling cells
    w = [WindowResult(i, (0,), (0.0,), False, top, ()) for i, top in enumerate(
        [((1, 0.6, 0.0), (0, 0.4, 0.0)), ((2, 0.5, 0.0), (1, 0.3, 0.0))]
    )]  # fmt: skip
    assert video_top(w, ["a", "b", "c"]) == [
        {"label": "b", "index": 1, "prob": 0.45},
        {"label": "c", "index": 2, "prob": 0.25},
        {"label": "a", "index": 0, "prob": 0.2},
    ]


def test_maps_round_trip(clips, tmp_path):
    with analyze(
        clips / "a" / "clip.mkv", model="sample", progress=False, clip_len=8, stride=4
    ) as an:
        path = save_maps(tmp_path / "m.maps.npz", an, meta={"model": "sample"})
        raw = load_maps(path)
        spooled = [an.spool.get(i)["gradcam++"].float().numpy() for i in range(len(an.spool))]
        ref = MapBlender(an.supports, lambda i: {k: v.float() for k, v in an.spool.get(i).items()})
        want = [ref.at(float(t))[0]["gradcam++"] for t in an.times]
        assert raw.geometry == an.geometry and raw.model_crop == (112, 112)
        np.testing.assert_array_equal(raw.times, an.times)
        np.testing.assert_array_equal(raw.importance, an.importance)
        assert [tuple(f) for f in raw.window_frames] == [w.frames for w in an.windows]
    heat = raw.panels["gradcam++"]
    assert heat.shape == (len(spooled), *spooled[0].shape) and len(spooled) >= 2
    for got, exp in zip(heat, spooled, strict=True):  # float16 of map/peak: 3 digits of the peak
        np.testing.assert_allclose(got, exp, rtol=0, atol=1e-3 * exp.max())
    blend = raw.blender()
    for t, w in zip(raw.times, want, strict=True):
        np.testing.assert_allclose(
            blend.at(float(t))[0]["gradcam++"], w, atol=2e-3 * float(w.max())
        )
    assert raw.meta["model"] == "sample"
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(VidcamError, match="cannot be read"):
        load_maps(tmp_path / "bad.npz")
    damaged = path.read_bytes()  # a real maps file cut short: zip or zlib errors, one line
    for cut in (len(damaged) // 2, len(damaged) - 30):
        (tmp_path / "cut.npz").write_bytes(damaged[:cut])
        with pytest.raises(VidcamError, match="cannot be read"):
            load_maps(tmp_path / "cut.npz")


def test_mixed_inputs_rows_and_rerun(clips, videos, tmp_path):
    man = tmp_path / "list.jsonl"
    man.write_text(
        json.dumps({"path": str(clips / "b" / "other.mkv"), "label": "moving_left", "start": 0.12})
        + "\n"
    )
    inputs = [clips / "a", videos["garbage"], tmp_path / "missing.mp4", videos["audio_only"], man]
    out = tmp_path / "out"
    rows = run(inputs, out, model="sample", progress=False, evaluate=True)
    by = {r["key"]: r for r in rows}
    assert all(set(r) == SCHEMA_KEYS for r in rows)
    status = {k: r["status"] for k, r in by.items()}
    assert sorted(status.values()) == ["done", "done", "failed", "failed", "failed"]
    for r in rows:
        if r["status"] == "failed":
            assert r["error"] and "\n" not in r["error"] and r["outputs"] == {}
    done = [r for r in rows if r["status"] == "done"]
    for r in done:
        assert set(r["outputs"]) >= {"video", "json", "maps", "preview", "metrics"}
        assert all((out / p).is_file() for p in r["outputs"].values())
        assert len(r["temporal_profile"]) == 20 and 0 <= r["centre_energy"] <= 1
        assert r["top"][0]["label"] and r["metrics"]["map_mean"] > 0
        doc = json.loads((out / r["outputs"]["json"]).read_text())
        assert doc["model"] == "sample" and doc["input"] == r["input"]
        assert r["frames"] == doc["frames"]
    seg = next(r for r in done if r["label"] == "moving_left")
    assert seg["frames"] == 9  # 12 frames at 25 fps from 0.12 s: frames 3..11
    assert "label_top1" in seg["metrics"]
    assert {r["key"]: r for r in read_index(out / "index.jsonl")} == by
    assert len((out / "summary.csv").read_text().splitlines()) == 1 + len(rows)
    assert not list(out.rglob(".*tmp-*"))

    # rerun: complete outputs are verified and not rewritten; failures are kept
    stats = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    again = run(inputs, out, model="sample", progress=False, evaluate=True)
    assert [r["status"] for r in again] == [
        "skipped" if r["status"] == "done" else "failed" for r in rows
    ]
    for p, st in stats.items():
        if p.parent != out:  # run-level files are refreshed
            assert (p.stat().st_ino, p.stat().st_mtime_ns) == st, p

    # an output damaged after the run is noticed (verified, not just present) and redone
    maps = out / done[0]["outputs"]["maps"]
    maps.write_bytes(maps.read_bytes()[:-1] + b"x")
    third = run(inputs, out, model="sample", progress=False, evaluate=True, retry_failed=True)
    redone = {r["key"]: r["status"] for r in third}
    assert redone[done[0]["key"]] == "done" and redone[done[1]["key"]] == "skipped"
    assert [redone[k] for k, v in status.items() if v == "failed"] == ["failed"] * 3
    load_maps(maps)


def test_cli_exit_status(clips, tmp_path, capsys):
    from vidcam.cli import main

    assert (
        main(
            ["batch", str(clips / "a"), "-o", str(tmp_path / "o1"), "--model", "sample", "--quiet"]
        )
        == 0
    )
    assert (
        main(
            [
                "batch",
                str(tmp_path / "nope.mp4"),
                "-o",
                str(tmp_path / "o2"),
                "--model",
                "sample",
                "--quiet",
            ]
        )
        == 1
    )
    (tmp_path / "m.csv").write_text('path\nx.mp4\n"unterminated,\n')
    (tmp_path / "m.jsonl").write_text('{"path": 3}\n{"start": 1}\n')
    assert (
        main(["batch", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "o3"), "--model", "sample"])
        == 2
    )
    assert "m.jsonl:1: 'path' is missing, empty or not a string" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["batch", str(clips), "--model", "sample"])  # no -o
    assert e.value.code == 2


def test_ray_missing_is_one_line(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(VidcamError, match=r"pip install 'vidcam\[ray\]'"):
        run([clips / "a"], tmp_path / "o", model="sample", executor="ray", progress=False)
    assert not (tmp_path / "o" / "index.jsonl").exists()


def test_model_loaded_once(clips, tmp_path, monkeypatch):
    import vidcam.batch.worker as worker

    calls = []
    real = worker.open_model
    monkeypatch.setattr(worker, "open_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    rows = run([clips / "a", clips / "b"], tmp_path / "o", model="sample", progress=False)
    assert [r["status"] for r in rows] == ["done"] * 3 and len(calls) == 1
    assert torch.is_grad_enabled() and os.listdir(tmp_path / "o")
