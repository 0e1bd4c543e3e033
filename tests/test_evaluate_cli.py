"""`vidcam evaluate` end to end on the bundled sample clips, and the bundled sample model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import torch

from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.models.sample_net import (
    SAMPLE_CLASSES,
    SAMPLE_INPUT,
    SAMPLE_LAYER,
    SampleNet,
    load_sample_model,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CLIPS = ("moving_right_2x", "growing_1x")
METHODS = ("gradcam", "gradcam++", "random", "random_voxel", "centre", "ones")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One CLI run on two sample clips copied away from their JSON (found through --gt)."""
    tmp = tmp_path_factory.mktemp("evaluate")
    videos = tmp / "videos"
    videos.mkdir()
    for name in CLIPS:
        shutil.copy(SAMPLES / f"{name}.mp4", videos / f"{name}.mp4")
    out_json, out_png, out_md = tmp / "r.json", tmp / "curves.png", tmp / "table.md"
    argv = ["evaluate", str(videos), "--model", "sample", "--device", "cpu", "--gt", str(SAMPLES)]
    argv += ["--steps", "4", "--json", str(out_json), "--plot", str(out_png)]
    argv += ["--markdown", str(out_md), "--quiet", "--methods", "gradcam,gradcam++"]
    assert main(argv) == 0
    return json.loads(out_json.read_text()), out_png, out_md.read_text()


def test_json_records_every_method_and_metric(evaluated):
    data, _, _ = evaluated
    assert [Path(c["video"]).stem for c in data["clips"]] == sorted(CLIPS)
    assert data["options"]["baseline"] == "black"
    assert "softmax" in data["options"]["score"]
    for clip in data["clips"]:
        assert clip["gt_label"] in SAMPLE_CLASSES
        assert set(clip["methods"]) == set(METHODS)
        for m in METHODS:
            rec = clip["methods"][m]
            for key in ("energy_pg", "pointing", "pointing_tol", "coverage", "temporal", "iou"):
                assert 0.0 <= rec[key] <= 1.0
            assert rec["pointing_tol"] >= rec["pointing"]  # a tolerance only adds hits
        # the all-ones map's explanation map is the clip itself: O == Y
        assert clip["methods"]["ones"]["O"] == pytest.approx(clip["Y"], abs=1e-5)
    # the summary is the mean of the per-clip numbers
    for m in METHODS:
        ys = [c["Y"] for c in data["clips"]]
        os_ = [c["methods"][m]["O"] for c in data["clips"]]
        drop = sum(max(0.0, y - o) / y for y, o in zip(ys, os_, strict=True)) / len(ys) * 100
        assert data["summary"]["methods"][m]["average_drop"] == pytest.approx(drop)
    assert data["summary"]["methods"]["ones"]["average_drop"] == pytest.approx(0.0, abs=1e-3)
    wins = data["summary"]["win_percent"]
    assert wins["gradcam++"]["gradcam"] + wins["gradcam"]["gradcam++"] == pytest.approx(100.0)
    # mean curves: 4 voxel steps -> 5 points; frame curves: min(4, 16) steps; deletion starts at
    # the clip's mean score and insertion ends there
    mean_y = sum(c["Y"] for c in data["clips"]) / 2
    for m in METHODS:
        curves = data["mean_curves"][m]
        assert len(curves["deletion_voxel"]) == 5 and len(curves["insertion_frame"]) == 5
        assert curves["deletion_voxel"][0] == pytest.approx(mean_y, abs=1e-5)
        assert curves["insertion_voxel"][-1] == pytest.approx(mean_y, abs=1e-5)


def test_json_has_fills_keep_remove_and_map_size(evaluated):
    data, _, _ = evaluated
    assert data["options"]["fills"] == ["road", "blur"]  # the natural fills by default
    assert data["options"]["fractions"] == pytest.approx([0.1, 0.2, 0.5])
    assert data["options"]["fill_grids"]["road"] == pytest.approx([0, 0.1, 0.2, 0.5, 1])
    for clip in data["clips"]:
        for m in METHODS:
            rec = clip["methods"][m]
            for fill in ("road", "blur"):
                for p in ("10", "20", "50"):
                    assert rec[f"remove_{p}_{fill}"] >= 0.0 and rec[f"keep_{p}_{fill}"] >= 0.0
                assert f"deletion_rel_{fill}" in rec and f"insertion_rel_{fill}" in rec
            assert 0.0 <= rec["map_area50"] <= 1.0 and 0.0 <= rec["map_mean"] <= 1.0
        assert clip["methods"]["ones"]["map_mean"] == 1.0
        assert clip["methods"]["ones"]["map_area50"] == 1.0
    summary = data["summary"]["methods"]
    for m in METHODS:
        curves = data["mean_curves"][m]
        assert len(curves["deletion_rel_road"]) == 5  # 0, 10, 20, 50, 100 %
        assert curves["deletion_rel_road"][0] == pytest.approx(1.0)  # nothing removed: Y / Y
        assert curves["insertion_rel_blur"][-1] == pytest.approx(1.0)
        vals = [c["methods"][m]["remove_20_road"] for c in data["clips"]]
        assert summary[m]["remove_20_road"] == pytest.approx(sum(vals) / len(vals))
    # on the sample model both CAMs find what it needs: removing their top 20 % (ROAD fill)
    # costs far more confidence than removing a random 20 %
    for cam in ("gradcam", "gradcam++"):
        assert summary[cam]["remove_20_road"] < summary["random"]["remove_20_road"] - 0.3
    timing = data["timing"]
    assert timing["clips_per_minute"] > 0 and timing["masked_forwards"] > 0
    assert timing["road_solves"] == 2 * (6 * 2 * 3 + 1)  # per clip: 6 maps × 2 modes × 3 + 1


def test_table_leads_with_removal_under_natural_fills(evaluated):
    _, _, table = evaluated
    head = table.index("Headline")
    assert table.index("How to read") < head < table.index("| baseline: black")
    for title in (
        "Remove 20 % · road ↓",
        "Keep 20 % · road ↑",
        "Remove 20 % · blur ↓",
        "Mean map",
        "Area ≥ 0.5",
        "Avg Drop % (black) ↓",
        "Mean rank ↓",
        "| fill: road |",
        "| fill: blur |",
        "Remove 50 % ↓",
    ):
        assert title in table, title
    headline = table[head:].split("\n\n")[1].splitlines()
    assert len(headline) == 2 + len(METHODS)
    ones = next(line for line in headline if line.startswith("| all-ones"))
    cells = [c.strip() for c in ones.strip("|").split("|")]
    # map mean and area of the all-ones map (not ranked) ...
    assert cells[6:8] == ["1.000 ± 0.000", "1.000 ± 0.000"]
    assert cells[8] == "0.00 ± 0.00 (1)"  # ... and its perfect Average Drop, ranked first
    # rows are sorted by mean rank; both CAMs beat both references on this model
    ranks = [float(line.split("|")[2]) for line in headline[2:]]
    assert ranks == sorted(ranks)
    names = [line.split("|")[1].strip() for line in headline[2:]]
    assert set(names[:2]) == {"Grad-CAM", "Grad-CAM++"}


def test_ranking_in_json_matches_the_clips(evaluated):
    data, _, table = evaluated
    ranking = data["summary"]["ranking"]
    assert ranking["fraction"] == pytest.approx(0.2)
    assert [c["key"] for c in ranking["columns"]][:4] == [
        "remove_20_road",
        "keep_20_road",
        "remove_20_blur",
        "keep_20_blur",
    ]
    for m in METHODS:
        vals = [c["methods"][m]["remove_20_road"] for c in data["clips"]]
        mean = sum(vals) / 2
        std = (sum((v - mean) ** 2 for v in vals) / 1) ** 0.5
        cell = ranking["methods"][m]["remove_20_road"]
        assert cell["mean"] == pytest.approx(mean) and cell["std"] == pytest.approx(std)
        assert f"{mean:.3f} ± {std:.3f}" in table
        honest = [c["key"] for c in ranking["columns"] if c["in_mean_rank"]]
        ranks = [ranking["methods"][m][k]["rank"] for k in honest]
        assert ranking["methods"][m]["mean_rank"] == pytest.approx(sum(ranks) / len(ranks))
        assert ranking["methods"][m]["map_mean"]["rank"] is None  # size is never ranked
    assert sorted(ranking["order"]) == sorted(METHODS)


def test_fill_fraction_and_unit_options(tmp_path, capsys):
    clip = str(SAMPLES / f"{CLIPS[1]}.mp4")
    out = tmp_path / "r.json"
    argv = ["evaluate", clip, "--model", "sample", "--device", "cpu", "--quiet", "--json", str(out)]
    argv += ["--fill", "blur,black", "--fractions", "25", "--units", "none", "--fill-steps", "4"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "Remove 25 % · blur ↓" in table and "Keep 25 % · black ↑" in table
    assert "road" not in table.split("The paper's metrics")[0]
    data = json.loads(out.read_text())
    rec = data["clips"][0]["methods"]["gradcam++"]
    assert "remove_25_black" in rec and "deletion_voxel" not in rec
    assert data["summary"]["methods"]["gradcam++"]["deletion_voxel"] is None
    assert data["options"]["fill_grids"]["blur"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert data["timing"]["road_solves"] == 0
    # the black fill shares its masked clips with the black baseline: remove 100 % = baseline
    assert data["mean_curves"]["ones"]["deletion_rel_black"][-1] == pytest.approx(
        data["clips"][0]["baseline_score"] / data["clips"][0]["Y"], rel=1e-5
    )


def test_bad_fill_options_exit_2(capsys):
    clip = str(SAMPLES / f"{CLIPS[0]}.mp4")
    assert main(["evaluate", clip, "--fill", "white", "--quiet"]) == 2
    assert "not one of" in capsys.readouterr().err
    assert main(["evaluate", clip, "--fractions", "0,150", "--quiet"]) == 2
    assert "between" in capsys.readouterr().err
    assert main(["evaluate", clip, "--units", "pixel", "--quiet"]) == 2
    assert main(["evaluate", clip, "--fill-steps", "-1", "--quiet"]) == 2
    assert main(["evaluate", clip, "--methods", "gradcam,nope", "--quiet"]) == 2
    assert "'nope' is not one of" in capsys.readouterr().err


def test_sample_model_recognises_the_sample_clips(evaluated):
    data, _, _ = evaluated
    assert all(c["correct"] for c in data["clips"])
    assert data["summary"]["accuracy"] == 1.0


def test_plot_and_table_written(evaluated):
    _, png, table = evaluated
    img = cv2.imread(str(png))
    assert img is not None and img.shape == (720, 900, 3)
    assert (img < 250).any(axis=2).mean() > 0.02  # something was drawn
    for title in ("Grad-CAM", "Grad-CAM++", "random", "all-ones", "baseline: black"):
        assert title in table
    assert "Energy in box" in table and "| centre prior |" in table


def test_user_errors_exit_2(tmp_path, capsys):
    clip = str(SAMPLES / f"{CLIPS[0]}.mp4")
    assert main(["evaluate", clip, "--plot", str(tmp_path / "x.jpg")]) == 2
    assert "png" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err


# -- the bundled sample model -------------------------------------------------------------------


def test_sample_model_loads_and_names_match():
    model = load_sample_model()
    assert not model.training
    assert isinstance(dict(model.named_modules())[SAMPLE_LAYER], torch.nn.Module)
    assert SAMPLE_INPUT.clip_len == 16 and SAMPLE_INPUT.crop == (112, 112)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 500_000
    x = torch.zeros(1, 3, 16, 112, 112)
    assert model(x).shape == (1, len(SAMPLE_CLASSES))
    random = load_sample_model(pretrained=False)
    assert not torch.equal(random.fc.weight, model.fc.weight)


def test_sample_model_bad_weights(tmp_path):
    with pytest.raises(VidcamError, match="does not exist"):
        load_sample_model(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(VidcamError, match="could not read"):
        load_sample_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(3)}, other)
    with pytest.raises(VidcamError, match="do not fit"):
        load_sample_model(other)
    ok = tmp_path / "ok.pt"
    torch.save(SampleNet().state_dict(), ok)
    assert isinstance(load_sample_model(ok), SampleNet)


def test_unwritable_outputs_are_refused_before_the_run(tmp_path, capsys):
    clip = Path(__file__).resolve().parents[1] / "samples" / "growing_1x.mp4"
    missing = tmp_path / "no_such_dir" / "r.json"
    rc = main(["evaluate", str(clip), "--model", "sample", "--json", str(missing), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--json directory" in err and "does not exist" in err
    assert not missing.parent.exists()
