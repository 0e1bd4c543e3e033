"""Pass 1's per-window steps, checked against hand-computed values.

The tiles' prediction is the mean of their logits and of their softmaxes (not the softmax of
the mean); temporal energy is the spatial mean of the max over targets, linearly interpolated
to the clip's length; the top-5 is ordered and cut at the number of classes; only the shown
panels are spooled; the demuxer whitelist takes ``$VIDCAM_DEMUXERS`` once each.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from vidcam.cam.explanation import Explanation
from vidcam.video.demuxers import DEMUXERS, ENV_DEMUXERS, source_options
from vidcam.video.preprocess import Geometry
from vidcam.video.sample import Window
from vidcam.video.spatial import SpatialPlan
from vidcam.video.tile_maps import per_tile, window_maps, window_prediction
from vidcam.video.window_outputs import TOP, WindowOutputs, temporal_energy, top_predictions


def _plan(mode: str, offsets: tuple[int, ...] = (), size: int = 0) -> SpatialPlan:
    geometry = Geometry(source=(8, 8), resized=(8, 8), offset=(0, 0), crop=(8, 8))
    return SpatialPlan(mode, geometry, nn.Identity(), offsets, -1, size)


def _explanation(raw: torch.Tensor, maps: torch.Tensor, logits: torch.Tensor) -> Explanation:
    return Explanation(
        maps=maps,
        raw_per_layer=(raw,),
        weights_per_layer=(),
        logits=logits,
        probs=logits.softmax(1),
        targets=None,
        target_scores=torch.zeros(raw.shape[:2]),
        layers=("layer",),
        method="gradcam",
    )


def test_tiles_prediction_is_the_mean_of_their_logits_and_of_their_softmaxes():
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [3.0, -1.0]])  # 2 windows x 2
    res = _explanation(torch.zeros(4, 1, 1, 2, 2), torch.zeros(4, 1, 1, 2, 2), logits)
    got_logits, got_probs = window_prediction(res, _plan("tiles", (0, 4), 4), windows=2)

    def softmax(row: list[float]) -> list[float]:
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    rows = logits.tolist()
    for w in range(2):
        a, b = rows[2 * w], rows[2 * w + 1]
        want_p = [(x + y) / 2 for x, y in zip(softmax(a), softmax(b), strict=True)]
        assert got_probs[w].tolist() == pytest.approx(want_p, abs=1e-6)
        assert got_logits[w].tolist() == pytest.approx(
            [(x + y) / 2 for x, y in zip(a, b, strict=True)]
        )
    # not tiles: the engine's own prediction, untouched
    whole = window_prediction(res, _plan("center"), windows=4)
    assert whole[0] is res.logits and whole[1] is res.probs


def test_per_tile_repeats_each_windows_classes_for_its_tiles():
    chosen = torch.tensor([[3, 1], [7, 2]])
    got = per_tile(chosen, _plan("tiles", (0, 2, 4), 4))
    assert got.tolist() == [[3, 1], [3, 1], [3, 1], [7, 2], [7, 2], [7, 2]]


def test_window_maps_outside_tiles_are_the_engines_with_raw_peaks():
    raw = torch.tensor([[[[[0.5, 2.0], [1.0, 0.0]]], [[[4.0, 0.0], [0.0, 0.0]]]]])  # (1,2,1,2,2)
    maps = torch.rand(1, 2, 1, 4, 4)
    res = _explanation(raw, maps, torch.zeros(1, 3))
    got_maps, peaks, heat = window_maps(res, _plan("full"))
    assert got_maps is maps and heat is raw
    assert peaks.tolist() == [[2.0, 4.0]]


def test_temporal_energy_is_the_spatial_mean_of_the_max_over_targets_in_time():
    heat = torch.zeros(1, 2, 2, 2, 2)  # (B, K, t, h, w)
    heat[0, 0, 0] = torch.tensor([[1.0, 3.0], [0.0, 0.0]])  # target 0 wins at t=0
    heat[0, 1, 0] = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    heat[0, 1, 1] = torch.tensor([[8.0, 8.0], [8.0, 0.0]])  # target 1 wins at t=1
    # max over targets: t=0 [[1, 3], [2, 0]] -> mean 1.5; t=1 [[8, 8], [8, 0]] -> 6
    assert temporal_energy(heat, 2).tolist() == [[1.5, 6.0]]
    # 2 -> 4 slices, linear, half-pixel centres: sources -0.25 (clamped), 0.25, 0.75, 1.25
    want = [1.5, 0.75 * 1.5 + 0.25 * 6.0, 0.25 * 1.5 + 0.75 * 6.0, 6.0]
    assert temporal_energy(heat, 4)[0].tolist() == pytest.approx(want)


def test_top_predictions_are_ordered_and_cut_at_the_classes():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    logits = torch.tensor([[-1.0, 2.0, 1.0], [0.0, 0.5, 3.0]])
    got = top_predictions(probs, logits, 0)
    assert [c for c, _, _ in got] == [1, 2, 0] and len(got) == 3 < TOP
    assert got[0] == pytest.approx((1, 0.6, 2.0))
    assert top_predictions(probs, logits, 1)[0] == pytest.approx((2, 0.6, 3.0))
    assert top_predictions(None, logits, 0) == ()
    many = torch.arange(8, dtype=torch.float32)[None].softmax(1)
    assert [c for c, _, _ in top_predictions(many, many, 0)] == [7, 6, 5, 4, 3]


def test_window_outputs_spool_only_the_shown_panels_and_count_every_call():
    out = WindowOutputs(["gradcam"])
    raw = torch.ones(2, 1, 3, 2, 2)
    res = _explanation(raw, torch.ones(2, 1, 3, 4, 4), torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    every = {"gradcam": res, "eigencam": res}
    out.count(every, "gradcam")
    out.count(every, "gradcam")
    assert out.cost == {
        "gradcam": {"forwards": 2, "masked_clips": 0, "backwards": 0},
        "eigencam": {"forwards": 2, "masked_clips": 0, "backwards": 0},
    }
    assert (out.layers, out.slices) == (("layer",), 3)
    windows = [
        Window(index=i, frames=(i, i + 1, i + 2), times=tuple(Fraction(i + j, 4) for j in range(3)))
        for i in range(2)
    ]
    panels = {"gradcam": torch.arange(2.0)[:, None], "eigencam": torch.zeros(2, 1)}
    energy = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out.add(windows, panels, energy, torch.tensor([[1], [0]]), (res.logits, res.probs))
    assert [w.targets for w in out.windows] == [(1,), (0,)]
    assert [w.top[0][0] for w in out.windows] == [1, 0]
    assert out.windows[1].times == (0.25, 0.5, 0.75)
    assert [e.dtype for e in out.energies] == [torch.float64] * 2
    assert out.energies[1].tolist() == [4.0, 5.0, 6.0]
    assert [set(out.spool.get(i)) for i in range(2)] == [{"gradcam"}, {"gradcam"}]
    assert out.spool.get(1)["gradcam"].tolist() == [1.0]
    out.spool.close()


def test_demuxer_whitelist_takes_the_environments_extras_once(monkeypatch):
    monkeypatch.setenv(ENV_DEMUXERS, " concat, mov ,,hls ")
    allowed = source_options()["format_whitelist"].split(",")
    assert allowed == [*DEMUXERS, "concat", "hls"]  # mov is already listed: not twice
    assert source_options()["protocol_whitelist"] == "file"
    monkeypatch.delenv(ENV_DEMUXERS)
    assert source_options()["format_whitelist"].split(",") == list(DEMUXERS)
