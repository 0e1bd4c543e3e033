"""`vidcam evaluate` ranks the perturbation methods (Video RISE, extremal perturbation) beside
the CAMs, each with what its map cost per clip."""

from __future__ import annotations

import json
from pathlib import Path

from vidcam.cam.perturbation import Perturbation
from vidcam.cli import main
from vidcam.evaluate.options import EvalOptions
from vidcam.evaluate.outputs import format_table
from vidcam.evaluate.pipeline import evaluate
from vidcam.models.open import open_model

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_rise_and_extremal_are_scored_with_their_cost():
    em = open_model("sample", device="cpu", progress=False)
    opts = EvalOptions(
        methods=("gradcam", "rise", "extremal"),
        fills=("blur",),
        fractions=(0.2,),
        units=(),
        references=("random",),
        batch=8,
        quiet=True,
    )
    engine = {"perturbation": Perturbation(masks=24, steps=3)}
    res = evaluate([SAMPLES / "growing_1x.mp4"], em, opts, engine=engine)
    methods = res.clips[0]["methods"]
    # every method's map is scored like the others (keep/remove, map size, localization)
    for m in ("gradcam", "rise", "extremal"):
        assert 0.0 <= methods[m]["map_mean"] <= 1.0 and "remove_20_blur_dlogit" in methods[m]
        assert methods[m]["energy_pg"] is not None  # samples/growing_1x.json is found
    # cost: the CAM one forward; RISE one + 24 masked clips in batches of 8; extremal 3 steps
    assert methods["gradcam"]["cost"]["forwards"] == 1
    assert methods["gradcam"]["cost"]["masked_clips"] == 0
    assert methods["rise"]["cost"]["masked_clips"] == 24
    assert methods["rise"]["cost"]["forwards"] == 1 + 3
    assert methods["extremal"]["cost"]["backwards"] >= 3
    assert "cost" not in methods["random"]
    t = res.timing
    assert t["engine_forwards"] == 3  # the CAMs' call, RISE's, extremal's
    assert t["perturbation_clips"] == 24 + methods["extremal"]["cost"]["masked_clips"]
    table = format_table(res)
    assert "RISE 4 forwards (24 masked clips)" in table
    assert res.summary["methods"]["rise"]["cost"]["masked_clips"] == 24
    assert "rise" in res.summary["paired"]["methods"]  # compared with the references too


def test_cli_perturbation_options(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["evaluate", str(SAMPLES / "growing_1x.mp4"), "--methods", "rise", "--quiet"]
    argv += ["--rise-masks", "8", "--fill", "none", "--units", "none", "--json", str(out)]
    assert main(argv + ["--references", "none", "--device", "cpu"]) == 0
    data = json.loads(out.read_text())
    assert data["clips"][0]["methods"]["rise"]["cost"]["masked_clips"] == 8
    assert main(argv[:-2] + ["--rise-masks", "0", "--quiet"]) == 2
    assert "masks" in capsys.readouterr().err
