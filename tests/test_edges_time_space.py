"""No artefacts at the edges of time and space; temporal importance that follows the content.

The model is hand-made so that its evidence is exactly where the picture changes: a temporal
central difference of the summed RGB (zero-padded in time, as every video network pads), |.|
split into two ReLU channels, pooled to half the frame rate. Inside a window its CAM is |Δ|:
heat on what moves, none on static texture. At a window's first and last slice the zero padding
makes it |x| instead (content against zeros): static textured corners light up there, as the
corner of I3D's last ``Mixed_5c`` slice does on real footage. The old blending read those edge
slices alone at the video's first and last frames (and a little everywhere); the tests rebuild
the old blending from the same spooled maps (``TimeSupport(times, margin)``: every slice, no
gain) and show that it fails what the pipeline's blending passes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_video
from torch import nn

from vidcam.models.spec import InputSpec
from vidcam.video.pipeline import analyze
from vidcam.video.to_source import (
    MapBlender,
    TimeSupport,
    frame_importance,
    position_gain,
    trusted_range,
)

SIZE = 64  # frames are SIZE x SIZE
CORNER = 16  # static texture in the four CORNER x CORNER corners
SPEC = InputSpec(
    clip_len=16, crop=(SIZE, SIZE), resize_short=SIZE, mean=(0.5,) * 3, std=(0.5,) * 3, stride=1
)


class PadMotionNet(nn.Module):
    """``feat`` = avg-pool-2-in-time of relu(±(x[t+1] − x[t−1]) summed over RGB), zero-padded in
    time; class 0 ("motion") = the mean of ``feat``, class 1 its negative."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv3d(3, 2, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0, :, 2] = 1.0
            conv.weight[0, :, 0] = -1.0
            conv.weight[1] = -conv.weight[0]
        self.feat = nn.Sequential(conv, nn.ReLU(), nn.AvgPool3d((2, 1, 1)))
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feat(x).mean(dim=(2, 3, 4)))


def scene(n: int, seed: int = 0) -> np.ndarray:
    """(n, SIZE, SIZE, 3) grey frames with static random texture in the four corners."""
    rng = np.random.default_rng(seed)
    out = np.full((n, SIZE, SIZE, 3), 110, np.uint8)
    tex = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    for ys in (slice(0, CORNER), slice(SIZE - CORNER, SIZE)):
        for xs in (slice(0, CORNER), slice(SIZE - CORNER, SIZE)):
            out[:, ys, xs] = tex[ys, xs]
    return out


def square_at(frames: np.ndarray, i: int, y: int, x: int, size: int = 10) -> None:
    """A white ``size`` square with its top-left at (y, x) in frame ``i`` (clipped)."""
    x0, x1 = max(0, x), min(SIZE, x + size)
    if x1 > x0:
        frames[i, y : y + size, x0:x1] = 240


def circling(n: int) -> np.ndarray:
    """The only moving object circles in the centre, away from the corners."""
    f = scene(n)
    for i in range(n):
        a = 2 * np.pi * i / 12
        square_at(f, i, int(27 + 6 * np.cos(a)), int(27 + 6 * np.sin(a)))
    return f


def leaving(n: int) -> np.ndarray:
    """The object starts in the centre, moves right 3 px per frame and leaves the frame."""
    f = scene(n)
    for i in range(n):
        square_at(f, i, 27, 27 + 3 * i)
    return f


def one_action(n: int, t0: int, t1: int) -> np.ndarray:
    """The object stands in the centre and moves only during frames [t0, t1)."""
    f = scene(n)
    for i in range(n):
        square_at(f, i, 27, 20 + 2 * (min(max(i, t0), t1) - t0))
    return f


def scrolling(n: int) -> np.ndarray:
    """Constant in time: a 32x32 patch of vertical stripes (period 8) scrolls 1 px per frame;
    every frame has the same amount of change (the patch holds whole periods)."""
    f = scene(n)
    x = np.arange(32)
    for i in range(n):
        stripes = ((x + i) // 4) % 2 == 1
        f[i, 16:48, 16:48] = np.where(stripes[None, :, None], 230, 40)
    return f


def run(tmp_path, frames: np.ndarray, stride: int = 8, model=None, **kw):
    """analyze() of the clip; returns (analysis, per-frame (F, SIZE, SIZE) CAM-unit maps
    blended the new way and the old way, per-window energies (T,))."""
    path = write_video(tmp_path / f"clip{stride}.mkv", frames, fps=25)
    opts = dict(model=model or PadMotionNet(), progress=False, stride=stride, spatial="full")
    if model is None:
        opts |= dict(spec=SPEC, method="gradcam")
    an = analyze(path, **(opts | kw))
    name = an.panels[0].id
    spooled = [an.spool.get(i)[name].float() for i in range(len(an.spool))]
    old = [TimeSupport(s.times, s.margin) for s in an.supports]
    out = []
    for sups in (an.supports, old):
        blender = MapBlender(sups, lambda i: {"m": spooled[i]})
        out.append(torch.stack([blender.at(float(t))[0]["m"] for t in an.times]).numpy())
    energies = [m.mean(dim=(1, 2)).double() for m in spooled]
    return an, out[0], out[1], energies


def corner_heat(maps: np.ndarray) -> np.ndarray:
    """(F,) the hottest static corner's mean heat per frame, relative to the video's heat
    scale (the 99th percentile of all frames' values, as the display's ``video`` scale)."""
    ref = np.percentile(maps, 99)
    c = CORNER
    boxes = [
        maps[:, ys, xs]
        for ys in (slice(0, c), slice(-c, None))
        for xs in (slice(0, c), slice(-c, None))
    ]
    return np.max([b.mean(axis=(1, 2)) for b in boxes], axis=0) / ref


def test_trusted_range_hand_values():
    assert trusted_range(64, 8) == (12, 51)  # I3D Mixed_5c: between the centres of slices 1 and 6
    assert trusted_range(16, 8) == (3, 12)  # centres 2.5 and 12.5, rounded inwards
    assert trusted_range(16, 16) == (1, 14)  # full temporal resolution: the outer samples go
    assert trusted_range(16, 2) == (7, 8)  # two slices (r3d_18 layer4): the centre
    assert trusted_range(15, 1) == (7, 7)
    assert trusted_range(16, 8, pad=6) == (3, 9)  # padded samples are never trusted
    assert trusted_range(16, 8, pad=14) == (1, 1)  # 2 real samples: the last real one


def test_support_reads_only_trusted_slices_and_holds_them():
    s = TimeSupport([0.0, 1.0, 2.0, 3.0, 4.0], margin=0.5, keep=(1, 3), scale=[9, 2, 1, 4, 9])
    w = s.slice_weights(np.array([0.0, 1.5, 3.0, 4.0]), scaled=False)
    np.testing.assert_allclose(
        w, [[0, 1, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0]], atol=1e-12
    )
    np.testing.assert_allclose(s.slice_weights(1.5), [[0, 1.0, 0.5, 0, 0]], atol=1e-12)
    assert (s.start, s.end) == (-0.5, 4.5)  # the blend weight still spans every sample
    x = torch.arange(5.0)[:, None] * torch.ones(5, 2)
    torch.testing.assert_close(s.kept(x), torch.tensor([[2.0, 2.0], [2.0, 2.0], [12.0, 12.0]]))


def test_blender_scales_heat_but_not_images():
    sups = [TimeSupport([0.0, 1.0, 2.0], 0.5, keep=(1, 1), scale=[5.0, 2.0, 5.0])]
    heat = torch.ones(3, 2, 2)
    image = torch.full((3, 2, 2, 3), 0.5)
    out, weights = MapBlender(sups, lambda i: {"h": heat, "g": image}).at(0.0)
    assert weights == {0: 1.0}
    torch.testing.assert_close(out["h"], torch.full((2, 2), 2.0))  # the trusted slice, x2
    torch.testing.assert_close(out["g"], image[1])  # a guided image keeps its grey


def test_position_gain_is_the_median_profile():
    rng = np.random.default_rng(0)
    gain = np.array([0.0, 0.5, 1.0, 1.5, 0.0])  # positions 0 and 4 are not trusted
    energies = [gain * (1 + 4 * rng.random()) for _ in range(5)]  # windows of any strength
    energies[2] = np.array([0.0, 0.1, 0.1, 3.0, 0.0])  # one window of real content
    got = position_gain(energies, (1, 3))
    np.testing.assert_allclose(got, [1.0, 0.5, 1.0, 1.5, 1.0], rtol=1e-12)
    assert (position_gain(energies[:2], (1, 3)) == 1).all()  # too few windows: no gain
    zeros = [np.zeros(5)] * 4 + energies[:3]  # most windows without energy: no gain either
    assert (position_gain(zeros, (1, 3)) == 1).all()


@pytest.mark.parametrize("clip", ["circling", "leaving"])
def test_no_frame_has_heat_in_a_static_corner(tmp_path, clip):
    frames = circling(50) if clip == "circling" else leaving(60)
    _, new, old, _ = run(tmp_path, frames)
    got, before = corner_heat(new), corner_heat(old)
    # the model's evidence is |Δ|: none on static texture wherever no padding is read (measured
    # 0 at every frame); threshold: 1 % of the video's heat scale
    assert got.max() < 0.01, np.round(got, 3)
    # the old blending: the edge slices' content-against-padding, 0.2 (circling) / 0.6
    # (leaving) at the first and last frames, and some in between (edge slices at low weight)
    assert before[0] > 0.1 and before[-1] > 0.1, np.round(before, 3)
    assert (before[1:-1] > 0.01).any()


def test_start_and_end_of_a_clip_whose_object_leaves(tmp_path):
    n = 60
    frames = leaving(n)
    _, new, old, _ = run(tmp_path, frames)
    # start: the heat lies on the object (where it is over the first trusted samples)
    near = np.zeros((SIZE, SIZE), bool)
    near[25:39, 25 : 27 + 3 * 6 + 12] = True
    for m in (new[0], new[1]):
        assert m[near].sum() > 0.99 * m.sum() > 0
    # end: the object left the frame at frame 13 (x >= 64): nothing moves, nothing is hot
    ref = np.percentile(new, 99)
    assert new[-12:].max() < 1e-3 * ref
    assert old[-1].max() > 0.5 * ref  # the old blending: the padded edge, all texture


def old_importance(an, energies) -> np.ndarray:
    """The old blending of the same energies (every slice, no gain), scaled to max 1."""
    old = [TimeSupport(s.times, s.margin) for s in an.supports]
    imp = frame_importance(old, energies, an.times)
    return imp / imp.max()


@pytest.mark.parametrize("stride", [4, 8])
def test_constant_content_gives_flat_importance(tmp_path, stride):
    an, _, _, energies = run(tmp_path, scrolling(60), stride=stride)
    imp = an.importance
    assert imp.max() == pytest.approx(1.0)
    assert imp.min() > 0.97, np.round(imp, 3)  # measured: 1.000 at every frame
    before = old_importance(an, energies)
    assert before.min() < 0.8, np.round(before, 3)  # the padded ends: 1.4x the rest (0.73)


@pytest.mark.parametrize("stride", [4, 8])
def test_one_short_action_gives_one_peak_there(tmp_path, stride):
    n, t0, t1 = 72, 28, 36
    an, _, _, energies = run(tmp_path, one_action(n, t0, t1), stride=stride)
    for imp, old in ((an.importance, False), (old_importance(an, energies), True)):
        high = np.flatnonzero(imp >= 0.5 * imp.max())
        one = bool(high.size) and high[-1] - high[0] + 1 == high.size  # one run of frames
        there = t0 - 4 <= int(np.argmax(imp)) < t1 + 4 and high[0] >= t0 - 4 and high[-1] < t1 + 4
        far = np.r_[0 : t0 - SPEC.clip_len, t1 + SPEC.clip_len : n]
        quiet = imp[far].max() < 0.05 * imp.max()
        if old:  # the old blending: the padded edges light up the first and last frames too
            assert not (one and there and quiet), np.round(imp, 2)
        else:
            assert one and there and quiet, np.round(imp, 2)


def test_real_network_importance_is_flat_on_constant_content(tmp_path):
    """The bundled sample model (a trained (2+1)D CNN) weighs the positions of a window
    unequally (its padding), the same way in every window; the position gain takes it out."""
    frames = scrolling(64)
    for stride in (8, 4):
        an, _, _, energies = run(tmp_path, frames, stride=stride, model="sample")
        imp = an.importance
        assert imp.min() > 0.95, (stride, np.round(imp, 2))  # measured: 1.00 (8), 0.97 (4)
        assert old_importance(an, energies).min() < 0.7  # measured: 0.55 (both strides)
