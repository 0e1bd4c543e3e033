"""Spatial modes: the whole frame (fully convolutional), tiles, the centre crop.

Checked against independent computations: a wide clip whose only moving object is at the left
edge gets its heat there in ``full`` and ``tiles`` modes (and none in ``center``); ``full`` on
a model whose head would give a grid of logits returns their spatial mean; the stitched map of
two overlapping tiles is the hand-computed cross-fade; ``auto`` picks the mode per model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidcam.cam.explainer import Explainer
from vidcam.errors import VidcamError
from vidcam.evaluate.synth import CLASSES, SynthConfig, make_clip, write_mp4
from vidcam.models.open import open_model
from vidcam.models.spec import InputSpec
from vidcam.video import explain_video
from vidcam.video.options import ExplainOptions
from vidcam.video.preprocess import Preprocessor, band_geometry, full_geometry
from vidcam.video.spatial import (
    SpatialMean,
    SpatialPlan,
    full_support,
    is_attention_model,
    plan_spatial,
    split_tiles,
    stitch,
    tile_offsets,
    tile_weights,
)
from vidcam.video.to_source import SourcePlacer

SPEC = InputSpec(clip_len=4, crop=(16, 16), resize_short=16, stride=1)


# -- options, geometry, tiles ----------------------------------------------------------------


def test_spatial_option_is_validated():
    assert ExplainOptions().spatial == "auto"
    with pytest.raises(VidcamError, match="spatial 'wide' must be one of auto, full, tiles"):
        ExplainOptions(spatial="wide")


def test_full_geometry_maps_back_exactly():
    spec = InputSpec(clip_len=8, crop=(224, 224), resize_short=256, fps=25)
    g = full_geometry(272, 640, spec, stride=32)  # 256 x 602.35 -> 256 x 608
    assert (g.resized, g.crop, g.offset) == ((256, 608), (256, 608), (0, 0))
    assert g.covers_source()
    # a map that is linear in x over the model's window lands linearly on the source pixels
    ramp = (torch.arange(608, dtype=torch.float32) + 0.5) / 608
    placed = SourcePlacer(g, (256, 608))(ramp.expand(256, 608))
    want = (torch.arange(640, dtype=torch.float32) + 0.5) / 640
    assert torch.allclose(placed[100, 2:-2], want[2:-2], atol=1e-5)
    pre = Preprocessor(spec, 272, 640, torch.device("cpu"), g)
    assert pre.frame(np.zeros((272, 640, 3), np.uint8)).shape == (256, 608, 3)
    band = band_geometry(272, 640, spec)  # the tiles' window: the whole resized width
    assert (band.resized, band.crop, band.offset) == ((256, 602), (224, 602), (16, 0))
    tall = band_geometry(640, 272, spec)
    assert (tall.crop, tall.offset) == ((602, 224), (0, 16))


def test_tile_offsets_overlap_and_weights():
    assert tile_offsets(112, 112) == [0]
    assert tile_offsets(6, 4) == [0, 2]
    for length, size in [(602, 224), (336, 112), (263, 112), (1000, 160)]:
        off = tile_offsets(length, size)
        assert off[0] == 0 and off[-1] == length - size
        assert (size - np.diff(off)).min() >= 0.25 * size  # >= 25 % overlap ...
        if len(off) > 2:  # ... and one tile fewer could not have it
            assert size - (length - size) / (len(off) - 2) < 0.25 * size
    assert tile_weights(4, [0, 2]).tolist() == [0.25, 0.75, 0.75, 0.25]


@pytest.mark.parametrize("axis", [-1, -2])
def test_stitched_overlap_is_the_hand_computed_blend(axis):
    plan = SpatialPlan("tiles", None, nn.Identity(), offsets=(0, 2), axis=axis, size=4)
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = torch.tensor([10.0, 20.0, 30.0, 40.0])
    hw = (4, 1) if axis == -2 else (1, 4)
    tiles = torch.stack([a, b]).reshape(2, 1, 1, *hw)  # (B * n, K, T, H, W): one window
    out = stitch(tiles, plan).flatten()
    # weights: tile 0 at its columns 2, 3 -> 0.75, 0.25; tile 1 at its columns 0, 1 -> 0.25, 0.75
    want = [1.0, 2.0, 0.75 * 3 + 0.25 * 10, 0.25 * 4 + 0.75 * 20, 30.0, 40.0]
    assert out.tolist() == pytest.approx(want)
    clip = torch.arange(2 * 6.0).reshape(2, 1, 1, 1, 6)  # split_tiles: each window's n tiles
    if axis == -2:
        clip = clip.transpose(-1, -2)
    parts = split_tiles(clip, plan)
    assert parts.shape[0] == 4 and parts.shape[axis] == 4
    assert parts.flatten(1)[1].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert torch.allclose(stitch(parts, plan), clip)  # consistent tiles stitch back exactly


# -- full: heads that give a grid of logits ----------------------------------------------------


class _Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Sequential(nn.Conv3d(3, 5, 3, stride=(1, 2, 2), padding=1), nn.ReLU())
        self.pool = nn.AvgPool3d((4, 8, 8), stride=1)  # pools everything at the crop size


class GridHead(_Features):
    """Fixed-kernel pool + 1x1x1 conv classifier, squeezed: (N, 3) at the crop size, a grid of
    logits (N, 3, 1, h, w) on a larger frame."""

    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Conv3d(5, 3, 1)

    def forward(self, x):
        return self.cls(self.pool(self.feat(x))).squeeze(-1).squeeze(-1).squeeze(-1)


class FlatHead(_Features):
    """Fixed-kernel pool, flatten, linear: fails on a larger frame unless the pool stays
    global."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.pool(self.feat(x)).flatten(1))


def _grid_logits(model: _Features, x: torch.Tensor, head) -> torch.Tensor:
    """Independent: the (N, 3, t, h, w) logits of every 8 x 8 pooling position, averaged."""
    with torch.no_grad():
        pooled = F.avg_pool3d(model.feat(x), (4, 8, 8), stride=1)  # (N, 5, 1, h, w)
        return head(pooled).flatten(2).mean(2)


@pytest.mark.parametrize("cls", [GridHead, FlatHead])
def test_full_logits_are_the_spatial_mean_of_the_grid(cls):
    torch.manual_seed(0)
    model = cls().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m = open_model(model, spec=SPEC, device="cpu")
    sup = full_support(model, SPEC, 16, 48)
    assert sup.ok and sup.stride == 2
    assert sup.reduce == (cls is GridHead) and (sup.pools == (model.pool,)) == (cls is FlatHead)
    plan = plan_spatial(m, "auto", 16, 48)
    assert plan.mode == "full" and plan.geometry.crop == (16, 48)
    view = plan.module
    assert isinstance(view, SpatialMean) and view is not model
    x = torch.randn(2, 3, 4, 16, 48)
    if cls is GridHead:
        want = _grid_logits(model, x, lambda p: model.cls(p))
    else:
        want = _grid_logits(model, x, lambda p: model.fc(p.movedim(1, -1)).movedim(-1, 1))
    with torch.no_grad():
        got = view(x)
    assert got.shape == (2, 3) and torch.allclose(got, want, atol=1e-5)
    # layer names stay valid, the engine's hooks find them, the user's model is unchanged
    assert [n for n, _ in view.named_modules()] == [n for n, _ in model.named_modules()]
    res = Explainer(view, "feat")(x, target=1)
    assert res.layers == ("feat",) and res.maps.shape == (2, 1, 4, 16, 48)
    assert torch.allclose(res.logits, want, atol=1e-5)
    assert not any(mod._forward_hooks for mod in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if cls is FlatHead:
        with pytest.raises(RuntimeError):
            model(x)  # the user's own module still has its fixed-size head
    else:
        assert model(x).shape == (2, 3, 1, 1, 17)  # its own grid of logits
    assert model.training is False and view.training is False


class Fixed(nn.Module):
    """Flattens conv features into a fixed-size linear layer: no whole-frame run possible."""

    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv3d(3, 2, 3, stride=(1, 4, 4), padding=1)
        self.fc = nn.Linear(2 * 4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.feat(x).flatten(1))


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv3d(3, 8, 1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        t = self.feat(x).flatten(2).transpose(1, 2)
        return self.fc(self.attn(t, t, t)[0].mean(1))


def test_auto_falls_back_to_tiles_then_center():
    fixed = open_model(Fixed(), spec=SPEC, device="cpu")
    assert "fails on a 48x16 frame" in full_support(fixed.module, SPEC, 16, 48).reason
    wide = plan_spatial(fixed, "auto", 16, 48)
    assert (wide.mode, wide.offsets, wide.axis, wide.size) == ("tiles", (0, 11, 21, 32), -1, 16)
    assert wide.module is fixed.module and wide.geometry.crop == (16, 48)
    assert plan_spatial(fixed, "auto", 48, 16).axis == -2  # portrait: tiles stacked
    assert plan_spatial(fixed, "center", 16, 48).geometry.crop == (16, 16)
    with pytest.raises(VidcamError, match="cannot run on the whole frame"):
        plan_spatial(fixed, "full", 16, 48)
    # 17 px wide rounds to 16, the stride's multiple: the model's own size, the whole frame
    nearly = plan_spatial(fixed, "auto", 16, 17)
    assert nearly.mode == "full" and nearly.geometry.covers_source()
    attn = open_model(Attn(), spec=SPEC, device="cpu")
    assert is_attention_model(attn.module)
    assert plan_spatial(attn, "auto", 16, 48).mode == "tiles"
    assert plan_spatial(attn, "auto", 16, 17).mode == "center"  # nothing worth tiling
    assert plan_spatial(attn, "tiles", 16, 17).offsets == (0, 1)  # unless asked for


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("sample", "full"),
        ("i3d", "full"),
        ("r3d_18", "full"),
        ("s3d", "full"),
        ("x3d_xs", "full"),
        ("slowfast_r50", "full"),
        ("mvit_base_16x4", "tiles"),
    ],
)
def test_auto_mode_per_registry_model(name, mode):
    m = open_model(name, pretrained=False, device="cpu", progress=False)
    plan = plan_spatial(m, "auto", 272, 640)
    assert plan.mode == mode
    if mode == "full":  # nothing cut off, sides multiples of the network's stride
        assert plan.geometry.covers_source() and plan.module is m.module
        stride = 8 if name == "sample" else 16 if name == "r3d_18" else 32
        assert all(s % stride == 0 for s in plan.geometry.crop)
    else:
        assert len(plan.offsets) == 4 and plan.geometry.crop == (224, 602)


# -- end to end: the only moving object is at the left edge of a 3:1 clip ---------------------


@pytest.fixture(scope="module")
def left_edge_clip(tmp_path_factory):
    cfg = SynthConfig(frames=16, distractors=(0, 0), rotating_prob=0.0, action_len=(16, 16))
    clip = make_clip(3, "moving_right", instances=1, config=cfg)
    t, h, w, _ = clip.frames.shape
    wide = np.empty((t, h, 3 * w, 3), np.uint8)
    wide[:] = np.asarray(clip.background, np.uint8)
    wide[:, :, :w] = clip.frames  # the object moves inside the left third only
    path = tmp_path_factory.mktemp("wide") / "left_edge.mp4"
    write_mp4(wide, path, fps=8)
    return path, w


@pytest.mark.parametrize("mode", ["full", "tiles", "center"])
def test_heat_lands_on_the_left_edge_object(left_edge_clip, mode):
    path, third = left_edge_clip
    # a linear display scale ("clip": each window's maximum is 1, no gamma): energy is heat
    res = explain_video(path, model="sample", spatial=mode, normalize="clip", progress=False)
    assert res.spatial == mode and res.to_json()["spatial"] == mode
    json.dumps(res.to_json())
    energy = res.heatmaps.double().sum(dim=(0, 1))  # per source column
    left = float(energy[:third].sum() / energy.sum())
    if mode == "center":  # the crop is the middle third: the object is never seen
        assert float(energy[:third].sum()) == 0.0
    else:
        assert left > 0.85
        assert int(res.heatmaps.double().mean(0).amax(0).argmax()) < third  # the hottest column
        assert CLASSES[res.windows[0].top[0][0]] == "moving_right"


def test_tiles_with_guided_panels_a_fixed_class_and_smaller_batches(left_edge_clip, monkeypatch):
    from vidcam.video.explain_pass import WindowExplainer

    path, third = left_edge_clip
    res = explain_video(
        path,
        model="sample",
        spatial="tiles",
        method="guided-gradcam++",
        side_by_side=True,
        target=CLASSES.index("moving_right"),  # a fixed class: no extra forward for targets
        normalize="clip",
        progress=False,
    )
    assert set(res.panels) == {"gradcam++", "guided-gradcam++"}
    guided, heat = res.panels["guided-gradcam++"], res.panels["gradcam++"].double()
    assert guided.shape == (16, 112, 336, 3) and heat.shape == (16, 112, 336)
    assert float(heat[..., :third].sum() / heat.sum()) > 0.85
    assert all(w.targets == (CLASSES.index("moving_right"),) for w in res.windows)
    # out of memory with 2 windows per call: each window again on its own, same result
    explain = WindowExplainer._explain

    def tight(self, batch, clip):
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return explain(self, batch, clip)

    opts = dict(model="sample", spatial="tiles", clip_len=8, stride=4, progress=False)
    one = explain_video(path, **opts)
    monkeypatch.setattr(WindowExplainer, "_explain", tight)
    two = explain_video(path, batch_size=2, **opts)
    assert len(two.windows) == len(one.windows) == 3
    assert torch.equal(one.heatmaps, two.heatmaps)
