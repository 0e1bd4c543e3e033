"""`vidcam batch --evaluate`: the per-clip metrics of `vidcam evaluate`, per video."""

from __future__ import annotations

import json
import shutil

import pytest

from vidcam.batch import load_maps, run
from vidcam.batch.evaluate import explained_class
from vidcam.evaluate.options import EvalOptions
from vidcam.evaluate.pipeline import evaluate
from vidcam.evaluate.synth import write_benchmark
from vidcam.models.open import open_model


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    paths = write_benchmark(d / "clips", 2, seed=5)
    truth = d / "truth"
    truth.mkdir()
    for p in paths:  # ground truth away from the videos: only the manifest can find it
        shutil.move(p.with_suffix(".json"), truth / p.with_suffix(".json").name)
    return paths, truth


def test_batch_metrics_equal_vidcam_evaluate(bench, tmp_path):
    paths, truth = bench
    gt0 = truth / paths[0].with_suffix(".json").name
    label0 = json.loads(gt0.read_text())["label"]
    man = tmp_path / "list.jsonl"
    man.write_text(
        json.dumps({"path": str(paths[0]), "label": label0, "gt": str(gt0)})
        + "\n"
        + json.dumps({"path": str(paths[1])})
        + "\n"
    )
    rows = run([man], tmp_path / "out", model="sample", progress=False, evaluate=True)
    assert [r["status"] for r in rows] == ["done", "done"]
    m0, m1 = rows[0]["metrics"], rows[1]["metrics"]

    # the independent computation: vidcam evaluate on the same clip, ground truth by folder
    rec = open_model("sample", progress=False)
    opts = EvalOptions(methods=("gradcam++",), fractions=(0.2,), units=(), gt_dir=truth, quiet=True)
    ref = evaluate([paths[0]], rec, opts).clips[0]
    mine, rnd = ref["methods"]["gradcam++"], ref["methods"]["random"]
    y = ref["Y"]
    assert m0["Y"] == pytest.approx(y, abs=1e-6)
    for key in ("remove_20_road", "keep_20_road", "remove_20_blur", "keep_20_blur"):
        assert m0[key] == pytest.approx(mine[key], abs=1e-5), key
        assert m0[f"random.{key}"] == pytest.approx(rnd[key], abs=1e-5), key
    assert m0["avg_drop"] == pytest.approx(100 * max(0.0, y - mine["O"]) / y, abs=1e-4)
    assert m0["increase"] == (100.0 if mine["O"] > y else 0.0)
    for key in ("energy_pg", "pointing", "coverage", "temporal", "iou"):
        assert m0[key] == pytest.approx(mine[key], abs=1e-6), key
    assert m0["clip_map_mean"] == pytest.approx(mine["map_mean"], abs=1e-6)
    assert m0["label_top1"] == 1.0 and 0 < m0["map_mean"] < 1
    # a map that found the motion beats the random one under the natural fill
    assert m0["remove_20_road"] < m0["random.remove_20_road"]
    # no ground truth in the manifest: faithfulness only, no localization
    assert "remove_20_road" in m1 and "energy_pg" not in m1 and "label_top1" not in m1
    saved = json.loads((tmp_path / "out" / rows[0]["outputs"]["metrics"]).read_text())
    assert saved["metrics"] == m0
    csv_head = (tmp_path / "out" / "summary.csv").read_text().splitlines()[0]
    assert "metrics.remove_20_road" in csv_head and "metrics.random.keep_20_road" in csv_head

    # per-class aggregates: the mean of each class's rows, computed here by hand
    import csv

    classes = list(csv.DictReader((tmp_path / "out" / "classes.csv").open()))
    by_class: dict[str, list] = {}
    for r in rows:
        by_class.setdefault(r["top"][0]["label"], []).append(r)
    assert sorted(c["class"] for c in classes) == sorted(by_class)
    for c in classes:
        rs = by_class[c["class"]]
        assert int(c["videos"]) == len(rs)
        want = sum(r["centre_energy"] for r in rs) / len(rs)
        assert float(c["centre_energy"]) == pytest.approx(want, rel=1e-9)
        want = sum(r["metrics"]["remove_20_road"] for r in rs) / len(rs)
        assert float(c["metrics.remove_20_road"]) == pytest.approx(want, rel=1e-9)
        want = sum(r["temporal_profile"][3] for r in rs) / len(rs)
        assert float(c["profile_03"]) == pytest.approx(want, rel=1e-9)
    page = (tmp_path / "out" / "index.html").read_text()
    assert 'id="class-metrics"' in page and "remove_20_road" in page


def test_explained_class():
    rec = open_model("sample", progress=False)
    assert explained_class(None, rec) is None and explained_class("top1", rec) is None
    assert explained_class("3", rec) == 3
    assert explained_class(rec.labels[2].upper(), rec) == 2


def test_a_bad_ground_truth_fails_its_row_before_any_output(bench, tmp_path):
    """Binary, non-object, missing ground truth: a failed row with a one-line error naming the
    file, no output of that video; the good row next to them is done."""
    paths, _ = bench
    binary = tmp_path / "gt.npy"
    binary.write_bytes(b"\x93NUMPY\x01\x00garbage")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    man = tmp_path / "m.jsonl"
    lines = [{"path": str(paths[0]), "gt": str(p)} for p in (binary, listed, tmp_path / "no.json")]
    man.write_text("\n".join(json.dumps(x) for x in [*lines, {"path": str(paths[1])}]) + "\n")
    out = tmp_path / "out"
    rows = run([man], out, model="sample", progress=False, evaluate=True)
    assert [r["status"] for r in rows] == ["failed"] * 3 + ["done"]
    assert "give a .json, a .npz mask file" in rows[0]["error"] and "gt.npy" in rows[0]["error"]
    assert "must be a JSON object, not list" in rows[1]["error"]
    assert "no.json" in rows[2]["error"]
    assert all("\n" not in r["error"] for r in rows[:3])
    done = {p.name for p in out.iterdir()}
    stem = paths[0].stem
    leftovers = [n for n in done if n.startswith(stem) and not n.endswith(".failed.json")]
    assert leftovers == [], leftovers


def test_a_late_failure_leaves_no_output_of_that_video(bench, tmp_path, monkeypatch):
    """Evaluation fails after the video, maps and preview were written: they are removed, the
    row is failed, the next video is done with all its outputs."""
    import vidcam.batch.evaluate as batch_eval

    paths, _ = bench
    real = batch_eval.clip_metrics
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the evaluation broke")
        return real(*a, **k)

    monkeypatch.setattr(batch_eval, "clip_metrics", flaky)
    out = tmp_path / "out"
    rows = run(list(paths), out, model="sample", progress=False, evaluate=True)
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert rows[0]["error"] == "RuntimeError: the evaluation broke"
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert not any(n.startswith(paths[0].stem + ".") and "failed" not in n for n in names)
    for suffix in (".mp4", ".json", ".maps.npz", ".preview.png", ".metrics.json", ".done.json"):
        assert paths[1].stem + suffix in names, suffix


def test_side_by_side_list_is_what_evaluate_scores(bench, tmp_path, monkeypatch):
    """`--side-by-side gradcam,layercam,eigencam --evaluate`: the listed panels are rendered AND
    scored, in that order (issue 25's bug: the default pair Grad-CAM | Grad-CAM++ was scored
    instead)."""
    import vidcam.batch.evaluate as batch_eval

    paths, _ = bench
    listed = ("gradcam", "layercam", "eigencam")
    scored_lists = []
    real = batch_eval.clip_metrics

    def recording(record, video, methods, **kw):
        scored_lists.append(list(methods))
        return real(record, video, methods, **kw)

    monkeypatch.setattr(batch_eval, "clip_metrics", recording)
    rows = run(
        [paths[0]],
        tmp_path / "out",
        model="sample",
        progress=False,
        evaluate=True,
        side_by_side=",".join(listed),
    )
    assert rows[0]["status"] == "done", rows[0]["error"]
    assert scored_lists == [list(listed)]  # exactly the rendered panels, in panel order
    metrics = rows[0]["metrics"]
    scored = {"gradcam"} | {k.split(".", 1)[0] for k in metrics if "." in k}
    assert scored - {"random", "ones", "centre", "random_voxel"} == set(listed)
    assert not any(k.startswith("gradcam++.") for k in metrics)
    raw = load_maps(tmp_path / "out" / rows[0]["outputs"]["maps"])
    assert tuple(raw.panels) == listed
