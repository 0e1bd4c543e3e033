"""Typed evaluation records: keys, the JSON they write (order and values), reading it back, the
summary from typed records, the one normalisation helper and the JSON comparison tool."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.keys import ScoreKey, parse_score_key, pct
from vidcam.evaluate.records import (
    ClipRecord,
    Cost,
    FillScores,
    Localization,
    MapRecord,
    MapSize,
    UnitCurves,
)
from vidcam.evaluate.summary import summarize, summary_of
from vidcam.models.spec import InputSpec
from vidcam.video.preprocess import Normalization, Preprocessor

ROOT = Path(__file__).resolve().parents[1]


def test_score_keys_spell_and_read_back():
    assert ScoreKey("remove", 0.2, "road").key == "remove_20_road"
    assert ScoreKey("keep", 0.125, "blur", "logit").key == "keep_12.5_blur_dlogit"
    assert ScoreKey("keep", 0.5, "mean", "logp").key == "keep_50_mean_dlogp"
    assert ScoreKey("remove", 0.2, "road").better == "low"
    assert ScoreKey("keep", 0.2, "road").better == "high"
    for key in ("remove_20_road", "keep_12.5_blur_dlogit", "remove_5_black_dlogp"):
        assert parse_score_key(key).key == key
    assert parse_score_key("keep_33.3_mean") == ScoreKey("keep", float("33.3") / 100, "mean")
    for other in ("deletion_rel_road", "map_mean", "remove_20_fog", "keep_20_road_dlog", "O"):
        assert parse_score_key(other) is None
    assert pct(0.2) == "20" and pct(0.333) == "33.3"


def _map(o: float, rem: float, with_loc: bool = True) -> MapRecord:
    scores = {
        ScoreKey("remove", 0.2, "road"): rem,
        ScoreKey("keep", 0.2, "road"): 1 - rem,
        ScoreKey("remove", 0.2, "road", "logp"): math.log(rem),
        ScoreKey("keep", 0.2, "road", "logp"): math.log(1 - rem),
    }
    return MapRecord(
        o=o,
        size=MapSize(0.25, 0.125, 0.5),
        curves={"voxel": UnitCurves("voxel", 0.1, 0.9)},
        fills={"road": FillScores("road", scores, 0.3, 0.7)},
        cost=Cost(1, 0, 0, 0.5) if with_loc else None,
        localization=Localization(0.5, 1.0, 1.0, None, 0.75, 0.25) if with_loc else None,
    )


def test_map_record_json_order_and_values():
    rec = _map(0.4, 0.2)
    assert list(rec.to_json().items()) == [
        ("O", 0.4),
        ("map_mean", 0.25),
        ("map_area50", 0.125),
        ("map_peak1", 0.5),
        ("deletion_voxel", 0.1),
        ("insertion_voxel", 0.9),
        ("remove_20_road", 0.2),
        ("keep_20_road", 0.8),
        ("deletion_rel_road", 0.3),  # the relative AUCs follow the probability ratios
        ("insertion_rel_road", 0.7),
        ("remove_20_road_dlogp", math.log(0.2)),
        ("keep_20_road_dlogp", math.log(0.8)),
        ("cost", {"forwards": 1, "masked_clips": 0, "backwards": 0, "seconds": 0.5}),
        ("energy_pg", 0.5),
        ("pointing", 1.0),
        ("pointing_tol", 1.0),
        ("coverage", None),
        ("temporal", 0.75),
        ("iou", 0.25),
    ]
    assert rec.value(ScoreKey("keep", 0.2, "road")) == 0.8
    assert rec.value("deletion_rel_road") == 0.3 and rec.value("map_area50") == 0.125
    assert rec.value("temporal") == 0.75 and rec.value("O") == 0.4
    assert rec.value(ScoreKey("keep", 0.2, "blur")) is None
    assert MapRecord.from_json(rec.to_json()) == rec


def _clip(y: float, maps: dict[str, MapRecord], correct: bool | None = True) -> ClipRecord:
    return ClipRecord(
        maps=maps,
        y=(y, math.log(y), 0.5),
        video="v.mp4",
        frames=(0, 2),
        spatial="full",
        window=(8, 8),
        gt_label="run",
        gt_origin="'v.json'",
        target=1,
        baseline_score=0.05,
        empty_scores={"road": 0.01},
        pred=1,
        pred_name="run",
        correct=correct,
        centre_prior=Localization(0.1, 0.0, 1.0, 0.0, 0.5, 0.0),
    )


def test_clip_record_round_trips_through_json():
    clip = _clip(0.8, {"gradcam": _map(0.4, 0.2), "random": _map(0.6, 0.7, with_loc=False)})
    data = clip.to_json()
    assert list(data)[:12] == [
        "video", "frames", "spatial", "window", "gt_label", "gt_origin", "target",
        "Y", "Y_logp", "Y_logit", "baseline_score", "empty_scores",
    ]  # fmt: skip
    assert list(data)[12:] == ["methods", "pred", "pred_name", "correct", "centre_prior"]
    assert "cost" not in data["methods"]["random"] and "iou" not in data["methods"]["random"]
    again = ClipRecord.from_json(json.loads(json.dumps(data)))
    assert again == clip and again.to_json() == data


def test_summary_of_typed_records_equals_the_json_path_and_hand_values():
    clips = [
        _clip(0.8, {"gradcam": _map(0.4, 0.2), "random": _map(0.8, 0.6, with_loc=False)}),
        _clip(0.5, {"gradcam": _map(0.5, 0.4), "random": _map(0.25, 0.8, with_loc=False)}, None),
    ]
    s = summary_of(clips, fills=["road"], fraction=0.2, units=("voxel",))
    assert summarize(
        [c.to_json() for c in clips], fills=["road"], fraction=0.2, units=("voxel",)
    ) == (s.to_json())
    g = s.methods["gradcam"]
    assert g.average_drop == pytest.approx(25.0)  # (0.5 + 0) / 2 · 100
    assert g.value(ScoreKey("remove", 0.2, "road")) == pytest.approx(0.3)
    assert g.curves["frame"].deletion is None  # the frame unit was not run
    assert g.localization_clips["coverage"] == 0 and g.localization.coverage is None
    assert g.cost == Cost(1.0, 0.0, 0.0, 0.5)
    assert s.methods["random"].cost is None and s.methods["random"].localization_clips["iou"] == 0
    assert s.accuracy == 1.0 and s.clips_with_gt == 2
    assert s.centre_prior == Localization(0.1, 0.0, 1.0, 0.0, 0.5, 0.0)
    assert s.ranking.order == ("gradcam", "random")
    key = ScoreKey("remove", 0.2, "road")
    assert s.paired.table["gradcam"]["random"][key].wins == 2
    row = s.to_json()["methods"]["gradcam"]
    assert list(row)[:7] == [
        "average_drop", "increase_in_confidence", "mean_drop",
        "deletion_voxel", "insertion_voxel", "deletion_frame", "insertion_frame",
    ]  # fmt: skip
    assert list(row)[-3:] == ["iou", "iou_clips", "cost"]


def test_normalization_apply_undo_and_the_preprocessor():
    spec = InputSpec(
        clip_len=2,
        resize_short=4,
        crop=(4, 4),
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.5),
        stride=1,
    )
    norm = Normalization(spec.mean, spec.std)
    x = torch.rand(1, 3, 2, 4, 4)
    y = norm.apply(x)
    assert torch.allclose(y[0, 1], (x[0, 1] - 0.5) / 0.25)  # channel 1 by hand
    assert torch.allclose(norm.undo(y), x, atol=1e-6)
    last = x[0].permute(1, 2, 3, 0).contiguous()  # channels last
    assert torch.equal(norm.apply(last, dim=-1).permute(3, 0, 1, 2), y[0])
    frames = [torch.randint(0, 256, (4, 4, 3), dtype=torch.uint8) for _ in range(2)]
    pre = Preprocessor(spec, 4, 4, torch.device("cpu"))
    clip = pre.clip(frames)
    by_hand = torch.stack(frames).double().div(255).permute(3, 0, 1, 2)
    mean = torch.tensor(spec.mean, dtype=torch.float64).view(3, 1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float64).view(3, 1, 1, 1)
    assert torch.allclose(clip[0].double(), (by_hand - mean) / std, atol=1e-6)
    assert torch.allclose(pre.normalization.undo(clip)[0].double(), by_hand, atol=1e-6)


def _tool():
    path = ROOT / "tools" / "compare_evaluate_json.py"
    spec = importlib.util.spec_from_file_location("compare_evaluate_json", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_tool_ignores_only_wall_time():
    tool = _tool()
    base = {
        "schema": "vidcam.evaluate",
        "summary": {"methods": {"g": {"O": 0.5, "cost": {"forwards": 1, "seconds": 2.0}}}},
        "clips": [{"Y": 0.25, "frames": [0, 1]}],
        "timing": {"seconds": 10.0},
    }
    same = json.loads(json.dumps(base))
    same["timing"]["seconds"] = 99.0
    same["summary"]["methods"]["g"]["cost"]["seconds"] = 3.0
    assert tool.compare(base, same) == []
    moved = json.loads(json.dumps(base))
    moved["clips"][0] = {"frames": [0, 1], "Y": 0.25}  # the same values in another order
    assert tool.compare(base, moved) and "keys differ" in tool.compare(base, moved)[0]
    nudged = json.loads(json.dumps(base))
    nudged["clips"][0]["Y"] = math.nextafter(0.25, 1.0)  # one ulp
    assert tool.compare(base, nudged) == [f"clips[0].Y: 0.25 != {math.nextafter(0.25, 1.0)!r}"]
    forwards = json.loads(json.dumps(base))
    forwards["summary"]["methods"]["g"]["cost"]["forwards"] = 1.0  # int vs float
    assert tool.compare(base, forwards)


def test_units_both_is_what_the_help_says():
    from vidcam.evaluate.options import parse_units

    assert parse_units("both") == ("voxel", "frame") == parse_units("frame,voxel")
    assert parse_units("none") == ()
    with pytest.raises(VidcamError, match="both or none"):
        parse_units("pixel")
