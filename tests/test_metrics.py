"""Evaluation metrics against hand-computed values on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.evaluate.clips import Clip, map_gt
from vidcam.evaluate.curves import auc, deletion_insertion, keep_masks, rank
from vidcam.evaluate.masking import blend, blur, make_baseline
from vidcam.evaluate.metrics_faithfulness import (
    average_drop,
    increase_in_confidence,
    win_percent,
)
from vidcam.evaluate.metrics_localization import (
    box_masks,
    energy_pointing,
    instance_coverage,
    iou,
    localization,
    pointing_game,
    temporal_energy,
)
from vidcam.evaluate.pipeline import random_map, summarize
from vidcam.video.preprocess import Geometry

T = torch.tensor


# -- faithfulness -------------------------------------------------------------------------------


def test_average_drop_and_increase_in_confidence():
    y = T([0.8, 0.5, 0.4])
    o = T([0.4, 0.6, 0.1])
    # drops: 0.4/0.8 = 0.5, 0 (O > Y), 0.3/0.4 = 0.75 -> mean 0.41667
    assert average_drop(y, o) == pytest.approx(100 * (0.5 + 0 + 0.75) / 3)
    assert increase_in_confidence(y, o) == pytest.approx(100 / 3)
    assert average_drop(y, y) == 0.0
    assert increase_in_confidence(y, y) == 0.0
    # float round-off (the same clip scored in another batch) is no increase
    assert increase_in_confidence(T([0.5]), T([0.5 + 1e-8])) == 0.0


def test_win_percent_counts_ties_half():
    y = T([0.8, 0.5, 0.4, 0.5])
    o_a = T([0.4, 0.6, 0.1, 0.3])
    o_b = T([0.2, 0.6, 0.3, 0.1])
    # clip 1: A drops less (wins); 2: tie; 3: B wins; 4: A wins -> A = (1 + .5 + 0 + 1) / 4
    a, b = win_percent(o_a, o_b, y)
    assert a == pytest.approx(62.5)
    assert b == pytest.approx(37.5)
    # both maps raise the score: the larger rise wins (comparison is unclamped)
    a, b = win_percent(T([0.9]), T([0.7]), T([0.5]))
    assert (a, b) == (100.0, 0.0)
    assert win_percent(T([0.3]), T([0.3 + 1e-9]), T([0.5])) == (50.0, 50.0)


def test_faithfulness_rejects_mismatched_inputs():
    with pytest.raises(VidcamError):
        average_drop(T([0.5, 0.2]), T([0.5]))


# -- curves -------------------------------------------------------------------------------------


def test_auc_trapezoid():
    assert float(auc(T([1.0, 0.5, 0.0]))) == pytest.approx(0.5)
    assert float(auc(T([1.0, 1.0, 0.0, 0.0, 0.0]))) == pytest.approx(0.375)


def test_rank_orders_descending_and_breaks_ties_by_seed():
    assert rank(T([0.1, 0.9, 0.5])).tolist() == [2, 0, 1]
    r1 = rank(torch.ones(6), torch.Generator().manual_seed(3))
    r2 = rank(torch.ones(6), torch.Generator().manual_seed(3))
    assert r1.tolist() == r2.tolist()
    assert sorted(r1.tolist()) == list(range(6))


def test_keep_masks_voxels_and_frames():
    heat = T([0.1, 0.4, 0.3, 0.2]).view(1, 1, 4)
    keep, s = keep_masks(heat, "voxel", 2)
    assert s == 2
    assert keep[:, 0, 0, 0].tolist() == [
        [True, True, True, True],
        [True, False, False, True],  # the top two (0.4, 0.3) removed first
        [False, False, False, False],
    ]
    frames = torch.stack([torch.full((2, 2), v) for v in (0.2, 0.9, 0.5)])
    keep, s = keep_masks(frames, "frame", 8)
    assert s == 3  # at most one step per frame
    assert keep[:, 0, :, 0, 0].tolist() == [
        [True, True, True],
        [True, False, True],
        [True, False, False],
        [False, False, False],
    ]
    four = torch.stack([torch.full((1, 1), v) for v in (0.1, 0.7, 0.3, 0.9)])
    keep, s = keep_masks(four, "frame", 2)  # two frames per step
    assert s == 2
    assert keep[:, 0, :, 0, 0].tolist() == [
        [True, True, True, True],
        [True, False, True, False],
        [False, False, False, False],
    ]


class _MeanScore:
    """score_fn whose class-0 'probability' is the clip's channel-0 sum / 10 (hand-checkable)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = x[:, 0].flatten(1).sum(1) / 10
        return torch.stack([s, 1 - s], 1)


def test_deletion_insertion_hand_computed():
    clip = T([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 1, 4).expand(1, 3, 1, 1, 4)
    base = torch.zeros_like(clip)
    heat = T([0.1, 0.4, 0.3, 0.2]).view(1, 1, 4)
    d, i = deletion_insertion(_MeanScore(), clip, base, heat, 0, steps=4, batch=3)
    # order of removal: voxel 1 (2), voxel 2 (3), voxel 3 (4), voxel 0 (1)
    assert d.tolist() == pytest.approx([1.0, 0.8, 0.5, 0.1, 0.0])
    assert i.tolist() == pytest.approx([0.0, 0.2, 0.5, 0.9, 1.0])
    assert float(auc(d)) == pytest.approx(0.475)
    assert float(auc(i)) == pytest.approx(0.525)


class LeftHalfModel(nn.Module):
    """Logits [mean of the left half of the frame, 0]: it ignores the right half entirely."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1]
        left = x[..., : w // 2].mean((1, 2, 3, 4))
        return torch.stack([left, torch.zeros_like(left)], 1)


def test_deleting_the_ignored_half_first_changes_nothing():
    torch.manual_seed(0)
    model = LeftHalfModel()
    clip = (torch.rand(1, 3, 1, 6, 8) + 0.5).expand(1, 3, 4, 6, 8)  # same in every frame
    base = torch.zeros_like(clip)

    def score_fn(x):
        return model(x).softmax(-1)

    full = float(score_fn(clip)[0, 0])
    # a map that ranks every right-half voxel above every left-half voxel
    heat = torch.rand(4, 6, 8) * 0.4
    heat[..., 4:] += 0.5
    d, i = deletion_insertion(score_fn, clip, base, heat, 0, steps=4)
    # steps 1 and 2 delete 25 % and 50 % of the voxels: all from the ignored right half
    assert d[:3].tolist() == pytest.approx([full] * 3, abs=1e-6)
    assert d[3] < full - 0.05 and d[4] == pytest.approx(0.5)  # logits 0, 0 on black
    # insertion reveals the ignored half first: the score stays at the baseline's
    assert i[:3].tolist() == pytest.approx([0.5] * 3, abs=1e-6)
    # the reverse map (left half first) deletes what matters at once
    d_rev, _ = deletion_insertion(score_fn, clip, base, 1 - heat, 0, steps=4)
    assert float(auc(d_rev)) < float(auc(d))
    # frame curves: this model uses every frame equally, so each deleted frame costs the same
    d_f, _ = deletion_insertion(score_fn, clip, base, heat, 0, unit="frame", steps=16)
    assert d_f.numel() == 5
    logits = [float(clip[..., :4].mean()) * (4 - k) / 4 for k in range(5)]
    expected = [1 / (1 + math.exp(-z)) for z in logits]  # softmax of [z, 0]
    assert d_f.tolist() == pytest.approx(expected, abs=1e-5)


# -- masking ------------------------------------------------------------------------------------


def test_baselines_and_blend():
    clip = torch.rand(1, 3, 2, 8, 8)
    assert make_baseline(clip, "black", (0.4, 0.5, 0.6)).abs().sum() == 0
    mean = make_baseline(clip, "mean", (0.4, 0.5, 0.6))
    assert mean[0, :, 1, 3, 3].tolist() == pytest.approx([0.4, 0.5, 0.6])
    keep = torch.full((1, 1, 2, 8, 8), 0.25)
    out = blend(torch.ones_like(clip), torch.zeros_like(clip), keep)
    assert torch.allclose(out, torch.full_like(out, 0.25))
    const = torch.full((1, 3, 1, 16, 16), 0.3)
    assert torch.allclose(blur(const, 1.5), const, atol=1e-6)
    impulse = torch.zeros(1, 1, 1, 21, 21)
    impulse[..., 10, 10] = 1.0
    b = blur(impulse, 1.0)
    assert float(b.sum()) == pytest.approx(1.0, abs=1e-5)  # mass kept away from the borders
    assert float(b[..., 10, 10]) == pytest.approx(1 / (2 * math.pi), rel=0.02)  # 2D Gaussian peak
    with pytest.raises(VidcamError):
        make_baseline(clip, "white", (0.4, 0.5, 0.6))


def test_random_map_is_seeded_and_normalised():
    a = random_map((2, 3, 3), (4, 12, 12), torch.Generator().manual_seed(5))
    b = random_map((2, 3, 3), (4, 12, 12), torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert float(a.min()) == 0.0 and float(a.max()) == pytest.approx(1.0)


# -- localization -------------------------------------------------------------------------------


def _toy():
    heat = torch.zeros(2, 4, 4)
    heat[0, 0, 0] = 1.0
    heat[0, 3, 3] = 0.5
    heat[1] = 0.25
    boxes = [[[0, 0, 2, 2], [2, 0, 4, 2]], []]  # frame 0: top-left and top-right 2x2
    inst = box_masks(boxes, 4, 4)
    interval = T([True, False])
    return heat, inst, interval


def test_box_masks_round_outward_and_clip():
    m = box_masks([[[0.5, 0.2, 1.5, 1.0], [3, 3, 9, 9]]], 4, 4)
    assert m.shape == (1, 2, 4, 4)
    assert m[0, 0].nonzero().tolist() == [[0, 0], [0, 1]]  # x 0..1, y 0
    assert m[0, 1].nonzero().tolist() == [[3, 3]]
    assert box_masks([[], []], 4, 4).shape == (2, 0, 4, 4)


def test_localization_hand_computed():
    heat, inst, interval = _toy()
    union = inst.any(1)
    frames = union.flatten(1).any(1)
    assert energy_pointing(heat, union, frames) == pytest.approx(1.0 / 1.5)
    assert pointing_game(heat, union, frames) == 1.0
    assert instance_coverage(heat, inst) == 0.5  # the top-right box holds no peak
    assert temporal_energy(heat, interval) == pytest.approx(1.5 / 5.5)
    assert iou(heat, union) == pytest.approx(1 / 9)  # {(0,0,0), (0,3,3)} vs 8 box voxels
    out = localization(heat, inst, interval)
    assert out["iou"] == pytest.approx(1 / 9) and out["coverage"] == 0.5


def test_localization_constant_map_and_no_ground_truth():
    ones = torch.ones(1, 4, 4)
    union = box_masks([[[0, 0, 2, 2]]], 4, 4).any(1)
    frames = T([True])
    assert pointing_game(ones, union, frames) == pytest.approx(0.25)  # random tie-break
    assert energy_pointing(ones, union, frames) == pytest.approx(0.25)
    assert instance_coverage(ones, box_masks([[[0, 0, 2, 2]]], 4, 4)) == 0.0  # no peak on a plateau
    none = localization(torch.rand(2, 4, 4), box_masks([[], []], 4, 4), T([False, False]))
    assert all(v is None for v in none.values())


def test_map_gt_follows_frames_resize_and_crop():
    geometry = Geometry(source=(224, 448), resized=(112, 224), crop=(112, 112), offset=(0, 56))
    clip = Clip(
        path=None, pixels=torch.zeros(1, 3, 3, 112, 112), frames=(0, 2, 4), geometry=geometry
    )
    boxes = [[] for _ in range(6)]
    boxes[2] = [[200, 100, 240, 140]]
    boxes[4] = [[120, 0, 130, 10], [300, 20, 320, 40]]
    gt = {"label": "x", "interval": [2, 5], "boxes": boxes, "width": 448, "height": 224}
    truth = map_gt(gt, clip)
    assert truth.interval.tolist() == [False, True, True]
    assert truth.boxes[0] == []
    assert truth.boxes[1] == [[44.0, 50.0, 64.0, 70.0]]  # x0.5, minus the 56 px crop offset
    assert truth.boxes[2] == [[4.0, 0.0, 9.0, 5.0], [94.0, 10.0, 104.0, 20.0]]


def test_summarize_win_matrix_and_means():
    def rec(y, os):
        methods = {
            m: {
                "O": o,
                "deletion_voxel": 0.1,
                "insertion_voxel": 0.2,
                "deletion_frame": 0.3,
                "insertion_frame": 0.4,
            }
            for m, o in zip(("gradcam", "gradcam++", "random", "ones"), os, strict=True)
        }
        return {"Y": y, "correct": True, "methods": methods}

    s = summarize([rec(0.8, [0.4, 0.6, 0.2, 0.8]), rec(0.5, [0.5, 0.25, 0.1, 0.5])])
    assert s["methods"]["gradcam"]["average_drop"] == pytest.approx(25.0)  # (0.5 + 0) / 2
    assert s["methods"]["gradcam++"]["average_drop"] == pytest.approx(37.5)  # (0.25 + 0.5) / 2
    assert s["win_percent"]["gradcam++"]["gradcam"] == pytest.approx(50.0)
    assert s["win_percent"]["ones"]["gradcam"] == pytest.approx(75.0)  # win + tie
    assert s["methods"]["random"]["energy_pg"] is None
    assert s["accuracy"] == 1.0


def test_frame_curves_of_a_single_frame_clip_are_their_end_points():
    from vidcam.evaluate.curves import deletion_insertion

    def score(x):
        m = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([m, -m], 1)

    clip = torch.full((1, 3, 1, 4, 4), 0.5)
    d, i = deletion_insertion(
        score, clip, torch.zeros_like(clip), torch.ones(1, 4, 4), 0, unit="frame"
    )
    assert d.tolist() == [0.5, 0.0] and i.tolist() == [0.0, 0.5]


# -- pointing tolerance, box-list metrics, references ---------------------------------------------


def test_pointing_tolerance_hand_computed():
    from vidcam.evaluate.metrics_localization import box_union, dilate

    union = box_union([[[10, 10, 12, 12]]], 30, 40)  # pixel centres x, y in {10.5, 11.5}
    frames = T([True])
    near = dilate(union, 15.0)
    for x, hit in ((25, 1.0), (26, 1.0), (27, 0.0)):  # centre 25.5: 14 px from 11.5; 27.5: 16
        heat = torch.zeros(1, 30, 40)
        heat[0, 10, x] = 1.0
        assert pointing_game(heat, near, frames) == hit, x
        assert pointing_game(heat, union, frames) == 0.0  # the exact game misses them all
    heat = torch.zeros(1, 30, 40)
    heat[0, 22, 22] = 1.0  # diagonal: (10.5, 10.5) to (11.5, 11.5) -> sqrt(11² + 11²) = 15.56
    assert pointing_game(heat, near, frames) == 0.0
    heat[0, 22, 22], heat[0, 21, 22] = 0.0, 1.0  # sqrt(10² + 11²) = 14.87
    assert pointing_game(heat, near, frames) == 1.0
    assert torch.equal(dilate(union, 0.0), union)


def test_localize_from_box_lists_equals_instance_masks():
    from vidcam.evaluate.metrics_localization import box_union, localize

    torch.manual_seed(3)
    heat = torch.rand(3, 20, 24)
    boxes = [[[1.5, 2, 8, 9.5], [10, 10, 30, 18]], [], [[0, 0, 4, 4]]]
    inst = box_masks(boxes, 20, 24)
    union = box_union(boxes, 20, 24)
    assert torch.equal(union, inst.any(1))
    interval = T([True, False, True])
    a = localization(heat, inst, interval)
    b = localize(heat, union, interval, boxes=boxes)
    assert a == b
    assert a["pointing_tol"] == a["pointing"]  # no tolerance given


def test_centre_prior_and_random_references():
    from vidcam.evaluate.references import centre_prior, random_map, voxel_noise_map

    c = centre_prior((2, 40, 80))
    assert c.shape == (2, 40, 80) and torch.equal(c[0], c[1])
    # even sides: the four centre pixels share the peak 1; sigma = a quarter of each side
    assert float(c[0, 19, 39]) == pytest.approx(1.0) and float(c[0, 20, 40]) == pytest.approx(1.0)
    # row 39 is 19.5 px below the centre, row 19 is 0.5 px above it (same column: its x term
    # cancels): the ratio is exp(-(dy39² - dy19²) / 2) with dy in units of sigma = 10 px
    dy39, dy19 = 19.5 / 10, 0.5 / 10
    expected = math.exp(-0.5 * (dy39**2 - dy19**2))
    assert float(c[0, 39, 39]) == pytest.approx(expected, rel=1e-5)
    g = torch.Generator().manual_seed(1)
    v = voxel_noise_map((2, 5, 6), g)
    assert v.shape == (2, 5, 6) and float(v.min()) >= 0 and float(v.max()) < 1
    # two fused layers: each noise normalised, averaged, normalised again
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    fused = random_map([(1, 2, 2), (2, 4, 4)], (4, 8, 8), g1)
    a = random_map((1, 2, 2), (4, 8, 8), g2)
    b = random_map((2, 4, 4), (4, 8, 8), g2)
    mean = (a + b) / 2
    assert torch.allclose(fused, (mean - mean.min()) / (mean.max() - mean.min()), atol=1e-6)
