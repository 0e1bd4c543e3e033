"""Keep/remove scores, fills, map size and the masked scorer against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.evaluate.curves import (
    MaskedScorer,
    Ranking,
    auc_xy,
    counts_for,
    grid,
    keep_remove_curves,
    unit_ranks,
)
from vidcam.evaluate.fills import (
    ConstantFill,
    RoadFill,
    make_fill,
    parse_fills,
)
from vidcam.evaluate.metrics_size import map_size
from vidcam.evaluate.pipeline import EvalOptions, evaluate, parse_fractions, parse_units, summarize

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


class RegionSum:
    """score_fn: class 0's "probability" = Σ of channel 0 over a region / 100 (hand-checkable);
    counts its calls and the masked clips it saw."""

    def __init__(self, region: torch.Tensor) -> None:
        self.region = region  # (T, H, W) bool
        self.calls: list[int] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        s = (x[:, 0] * self.region).flatten(1).sum(1) / 100
        return torch.stack([s, 1 - s], 1)


def _toy():
    """A 1×4×5 clip (20 voxels) valued 1..20 in channel 0; the model sums the top row
    (voxels 0..4, values 1..5, Y = 15/100); a map ranking exactly the top row first."""
    t, h, w = 1, 4, 5
    clip = torch.arange(1.0, 21.0).view(1, 1, t, h, w).expand(1, 3, t, h, w).contiguous()
    region = torch.zeros(t, h, w, dtype=torch.bool)
    region[:, 0, :] = True
    heat = torch.linspace(1.0, 0.0, 20).view(t, h, w)  # voxel 0 highest, then 1, 2, ...
    return clip, region, heat


def test_keep_remove_top_k_hand_computed_black_fill():
    clip, region, heat = _toy()
    score = RegionSum(region)
    y = float(score(clip)[0, 0])
    assert y == pytest.approx(0.15)
    black = ConstantFill("black", torch.zeros_like(clip))
    r, n = unit_ranks(heat, "voxel")
    assert n == 20
    ranking = Ranking(("toy",), r, n)
    scorer = MaskedScorer(score, clip, 0, batch=4, full=y)
    xs = (0.0, 0.1, 0.25, 0.5, 1.0)  # 0, 2, 5, 10, 20 voxels
    removed, kept = keep_remove_curves(scorer, black, ranking, xs, y)
    # removing the top 2 voxels (values 1, 2) leaves 3+4+5 = 12 of 15; the top 5 = the whole
    # region: nothing left; keeping only the top 2 keeps 3 of 15, the top 5 all of it
    assert removed.tolist() == pytest.approx([1.0, 12 / 15, 0.0, 0.0, 0.0])
    assert kept.tolist() == pytest.approx([0.0, 3 / 15, 1.0, 1.0, 1.0])
    # the reverse map removes the ignored voxels first: the score does not move until 75 %
    ranking_rev = Ranking(("rev",), unit_ranks(1 - heat, "voxel")[0], n)
    removed_rev, kept_rev = keep_remove_curves(scorer, black, ranking_rev, xs, y)
    assert removed_rev.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.0])
    assert kept_rev.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0, 1.0])
    assert float(auc_xy(xs, removed)) < float(auc_xy(xs, removed_rev))


def test_constant_fill_replaces_removed_voxels_only():
    clip, region, heat = _toy()
    grey = ConstantFill("grey", torch.full_like(clip, 10.0))
    remove = torch.zeros(1, 1, 1, 4, 5, dtype=torch.bool)
    remove[..., 0, :2] = True
    out = grey(clip, remove)
    assert out[0, 0, 0, 0].tolist() == [10.0, 10.0, 3.0, 4.0, 5.0]
    assert torch.equal(out[..., 1:, :], clip[..., 1:, :])
    score = RegionSum(region)
    scorer = MaskedScorer(score, clip, 0)
    ranking = Ranking(("toy",), unit_ranks(heat, "voxel")[0], 20)
    removed, _ = keep_remove_curves(scorer, grey, ranking, (0.0, 0.1, 1.0), 0.15)
    # top 2 voxels become 10 each: (10 + 10 + 3 + 4 + 5) / 15
    assert float(removed[1]) == pytest.approx(32 / 15)


def test_road_fill_of_a_linear_ramp_gives_the_ramp_back():
    """ROAD imputes a removed interior region of a clip linear in (t, h, w) exactly (up to the
    solver's tolerance), so a model that sums the removed region keeps its score; known voxels
    are untouched."""
    t, h, w = 6, 9, 9
    tt, hh, ww = torch.meshgrid(
        torch.arange(t, dtype=torch.float64),
        torch.arange(h, dtype=torch.float64),
        torch.arange(w, dtype=torch.float64),
        indexing="ij",
    )
    ramp = 0.1 + 0.05 * tt + 0.02 * hh + 0.03 * ww  # within [0, 1]
    clip = ramp.expand(1, 3, t, h, w).contiguous()
    region = torch.zeros(t, h, w, dtype=torch.bool)
    region[2:4, 3:6, 3:6] = True  # 18 interior voxels
    remove = region.view(1, 1, t, h, w)
    road = RoadFill(noise=0.0, tol=1e-8)
    out = road(clip, remove, ["k"])
    assert torch.equal(out[:, :, ~region], clip[:, :, ~region])
    assert torch.allclose(out[:, :, region], clip[:, :, region], atol=1e-6)
    # through the scorer: remove exactly the region (heat ranks it first)
    heat = region.double() + 0.01 * torch.rand(t, h, w, dtype=torch.float64)
    score = RegionSum(region)
    y = float(score(clip)[0, 0])
    scorer = MaskedScorer(score, clip, 0, full=y)
    ranking = Ranking(("r",), unit_ranks(heat, "voxel")[0], t * h * w)
    xs = (0.0, 18 / (t * h * w), 1.0)
    removed, _ = keep_remove_curves(scorer, RoadFill(noise=0.0, tol=1e-8), ranking, xs, y)
    assert float(removed[1]) == pytest.approx(1.0, abs=1e-5)
    # the black fill of the same region loses everything
    removed_black, _ = keep_remove_curves(
        scorer, ConstantFill("black", torch.zeros_like(clip)), ranking, xs, y
    )
    assert float(removed_black[1]) == pytest.approx(0.0, abs=1e-9)


def test_road_noise_is_per_mask_and_seeded():
    torch.manual_seed(0)
    clip = torch.rand(1, 3, 2, 6, 6)
    remove = torch.rand(3, 1, 2, 6, 6) < 0.3
    road = RoadFill(seed=7)
    both = road(clip, remove, ["a", "b", "c"])
    alone = RoadFill(seed=7)(clip, remove[1:2], ["b"])
    assert torch.allclose(both[1:2], alone, atol=1e-5)  # batch-mates do not change a fill
    other = RoadFill(seed=8)(clip, remove[1:2], ["b"])
    assert not torch.allclose(other, alone)
    assert torch.equal(
        both[:, :, :][~remove.expand_as(both)], clip.expand_as(both)[~remove.expand_as(both)]
    )
    assert float(both.min()) >= 0.0 and float(both.max()) <= 1.0


def test_scorer_batches_and_scores_each_distinct_mask_once():
    clip, region, heat = _toy()
    score = RegionSum(region)
    scorer = MaskedScorer(score, clip, 0, batch=3, full=0.15)
    black = ConstantFill("black", torch.zeros_like(clip))
    ranking = Ranking(("toy",), unit_ranks(heat, "voxel")[0], 20)
    counts = [0, 2, 4, 6, 8, 10, 20]
    scorer.run(scorer.jobs(black, ranking, counts))
    # 5 inner counts × 2 modes = 10 masks + 1 "everything removed" (shared by both modes);
    # 0 removed / all kept is the clip itself, known: 11 masked clips in batches of <= 3
    assert scorer.forwards == 11
    assert score.calls == [3, 3, 3, 2]
    again = scorer.scores(black, ranking, counts, insert=False)
    assert scorer.forwards == 11 and len(score.calls) == 4  # all from the cache
    assert float(again[0]) == pytest.approx(0.15) and float(again[-1]) == 0.0


def test_masked_forwards_run_in_inference_mode():
    clip, region, heat = _toy()
    seen = []

    def score(x):
        seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return RegionSum(region)(x)

    scorer = MaskedScorer(score, clip, 0, batch=2)
    ranking = Ranking(("toy",), unit_ranks(heat, "voxel")[0], 20)
    with torch.enable_grad():
        scorer.scores(ConstantFill("black", torch.zeros_like(clip)), ranking, [3, 7], insert=True)
    assert seen and all(inf and not grad for inf, grad in seen)


def test_grid_and_auc_xy():
    assert grid(0, (0.1, 0.2, 0.5)) == (0.0, 0.1, 0.2, 0.5, 1.0)
    assert grid(4, (0.5, 0.1)) == (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    with pytest.raises(VidcamError):
        grid(2, (1.0,))
    xs = (0.0, 0.1, 0.2, 0.5, 1.0)
    curve = torch.tensor([1.0, 0.5, 0.5, 0.2, 0.0])
    # trapezoids: 0.1·0.75 + 0.1·0.5 + 0.3·0.35 + 0.5·0.1
    assert float(auc_xy(xs, curve)) == pytest.approx(0.075 + 0.05 + 0.105 + 0.05)
    assert counts_for(xs, 20) == [0, 2, 4, 10, 20]
    with pytest.raises(VidcamError):
        auc_xy((0.0, 0.5, 0.5), torch.zeros(3))


def test_map_size_on_literal_maps():
    heat = torch.zeros(2, 5, 10)  # 100 voxels
    heat[0, 0, :4] = 1.0
    heat[1, 0, :2] = 0.5
    heat[1, 1, :10] = 0.2
    s = map_size(heat)
    # mass 4 + 1 + 2 = 7 over 100 voxels; 6 voxels >= 0.5; the top 1 % (1 voxel) holds 1/7
    assert s["map_mean"] == pytest.approx(0.07)
    assert s["map_area50"] == pytest.approx(0.06)
    assert s["map_peak1"] == pytest.approx(1 / 7)
    ones = map_size(torch.ones(4, 5, 5))
    assert ones == pytest.approx({"map_mean": 1.0, "map_area50": 1.0, "map_peak1": 0.01})
    assert map_size(torch.zeros(2, 2, 2))["map_peak1"] == 0.0


def test_option_parsing():
    assert parse_fills("blur, road,blur") == ("blur", "road")
    with pytest.raises(VidcamError, match="not one of"):
        parse_fills("white")
    assert parse_fractions("50,10,20") == (0.1, 0.2, 0.5)
    with pytest.raises(VidcamError):
        parse_fractions("0,20")
    with pytest.raises(VidcamError):
        parse_fractions("ten")
    assert parse_units("frame,voxel") == ("voxel", "frame")
    assert parse_units("none") == ()
    with pytest.raises(VidcamError):
        parse_units("pixel")
    fill = make_fill("blur", torch.rand(1, 3, 2, 8, 8), (0.5, 0.5, 0.5))
    assert isinstance(fill, ConstantFill) and fill.constant
    base = torch.zeros(1, 3, 2, 8, 8)
    assert make_fill("black", base, (0, 0, 0), baseline=("black", base)).replacement is base


def test_summarize_averages_new_keys_and_tolerates_missing_units():
    def rec(y, o, rem):
        m = {"O": o, "map_mean": 0.2, "remove_20_road": rem, "keep_20_road": 1 - rem}
        return {"Y": y, "correct": None, "methods": {k: dict(m) for k in METHODS}}

    s = summarize([rec(0.8, 0.4, 0.1), rec(0.5, 0.5, 0.3)])
    row = s["methods"]["gradcam"]
    assert row["remove_20_road"] == pytest.approx(0.2)
    assert row["keep_20_road"] == pytest.approx(0.8)
    assert row["map_mean"] == pytest.approx(0.2)
    assert row["deletion_voxel"] is None  # no classic curves were run
    assert s["accuracy"] is None


METHODS = ("gradcam", "gradcam++", "random", "ones")


class _Recording(nn.Module):
    """The bundled sample model, recording the grad/inference mode of every forward."""

    def __init__(self) -> None:
        super().__init__()
        from vidcam.models.sample_net import load_sample_model

        self.net = load_sample_model()
        self.calls: list[tuple[bool, bool, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_meta:  # open_model's shape check runs on the meta device: not a forward
            calls = (torch.is_inference_mode_enabled(), torch.is_grad_enabled(), x.shape[0])
            self.calls.append(calls)
        return self.net(x)


def test_evaluate_runs_masked_forwards_without_autograd_and_batched():
    from vidcam.models.open import open_model
    from vidcam.models.sample_net import SAMPLE_CLASSES, SAMPLE_INPUT, SAMPLE_LAYER

    model = _Recording()
    em = open_model(
        model,
        spec=SAMPLE_INPUT,
        labels=SAMPLE_CLASSES,
        layer=f"net.{SAMPLE_LAYER}",
        device="cpu",
    )
    opts = EvalOptions(
        steps=2,
        batch=8,
        quiet=True,
        fills=("blur", "road"),
        fractions=(0.2,),
        methods=("gradcam", "gradcam++", "layercam"),
    )
    res = evaluate([SAMPLES / "growing_1x.mp4"], em, opts)
    engine = [c for c in model.calls if not c[0]]
    masked = [c for c in model.calls if c[0]]
    # the engine is the only code that runs outside inference mode: ONE forward for all three
    # methods (and one backward)
    assert len(engine) == 1 and res.timing["engine_forwards"] == 1
    assert masked and all(not grad for _, grad, _ in masked)
    # every masked clip is counted, and they run in batches of up to 8 (all full but the last
    # of each fill group): 7 maps (3 methods + 4 references: random, voxel noise, centre prior,
    # all-ones): 1 (Y) + 8 (E for 7 maps and the baseline) + classic 2 units × 7 maps × 2 modes
    # × 1 inner step = 28 + per fill 7 maps × 2 modes × 1 fraction + 1 = 15
    n_masked = sum(b for _, _, b in masked)
    assert n_masked == 1 + 8 + 28 + 15 + 15
    assert res.timing["masked_forwards"] == n_masked - 1
    assert res.timing["road_solves"] == 15
    assert max(b for _, _, b in masked) == 8
    rec = res.clips[0]["methods"]["gradcam++"]
    for key in ("remove_20_road", "keep_20_blur", "deletion_rel_road", "map_mean", "map_area50"):
        assert key in rec
    assert math.isfinite(res.summary["methods"]["random"]["remove_20_blur"])
