"""`vidcam batch --evaluate`: the per-clip metrics of `vidcam evaluate`, per video."""

from __future__ import annotations

import json
import shutil

import pytest

from vidcam.batch import run
from vidcam.batch.evaluate import explained_class
from vidcam.evaluate.options import EvalOptions
from vidcam.evaluate.run import evaluate
from vidcam.evaluate.synth import write_benchmark
from vidcam.models.record import resolve_model


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
    rec = resolve_model("sample", progress=False)
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
    rec = resolve_model("sample", progress=False)
    assert explained_class(None, rec) is None and explained_class("top1", rec) is None
    assert explained_class("3", rec) == 3
    assert explained_class(rec.labels[2].upper(), rec) == 2
