"""Preprocess geometry and the map back to source: hand-computed positions, weights and blends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcam.models.spec import InputSpec
from vidcam.video.preprocess import Preprocessor, geometry_for
from vidcam.video.spool import MapSpool
from vidcam.video.to_source import MapBlender, SourcePlacer, TimeSupport, frame_importance

SPEC = InputSpec(
    clip_len=4, crop=(48, 48), resize_short=48, mean=(0.5,) * 3, std=(0.25,) * 3, stride=1
)


def test_geometry_hand_values():
    g = geometry_for(72, 128, SPEC)
    assert g.resized == (48, 85)  # floor(128 * 48 / 72)
    assert g.offset == (0, 18)  # round((85 - 48) / 2)
    y0, x0, y1, x1 = g.crop_box()
    assert (y0, y1) == (0, 72)
    assert x0 == pytest.approx(18 * 128 / 85)
    assert x1 == pytest.approx(66 * 128 / 85)
    tall = geometry_for(100, 50, SPEC)
    assert tall.resized == (96, 48) and tall.offset == (24, 0)


def test_preprocess_values():
    pre = Preprocessor(SPEC, 48, 48, torch.device("cpu"))  # no resize, no crop offset
    img = np.zeros((48, 48, 3), np.uint8)
    img[..., 0] = 255
    img[..., 1] = 128
    crop = pre.frame(img)
    assert crop.dtype == torch.uint8 and crop.shape == (48, 48, 3)
    clip = pre.clip([crop, crop])
    assert clip.shape == (1, 3, 2, 48, 48)
    assert clip[0, 0, 0, 0, 0].item() == pytest.approx((1.0 - 0.5) / 0.25)
    assert clip[0, 1, 1, 5, 5].item() == pytest.approx((128 / 255 - 0.5) / 0.25, abs=1e-6)
    assert clip[0, 2, 0, 0, 0].item() == pytest.approx(-2.0)


def test_placer_puts_crop_coordinates_where_they_belong():
    """A map equal to its own crop x-coordinate / 48 (linear, so bilinear is exact) lands on
    each source pixel as that pixel's crop coordinate; outside the crop: 0 or the edge."""
    g = geometry_for(72, 128, SPEC)
    h = w = 12  # map at 1/4 of the crop
    xs = (torch.arange(w) + 0.5) * (48 / w) / 48
    ramp = xs[None, :].expand(h, w)
    sx = g.resized[1] / 128
    u = (np.arange(128) + 0.5) * sx - g.offset[1]  # crop x of each source column centre
    for fill in (0.0, "edge"):
        out = SourcePlacer(g, (h, w), fill=fill)(ramp)
        assert out.shape == (72, 128)
        inner = (u > 2) & (u < 46)  # beyond half a map pixel of the crop border
        np.testing.assert_allclose(out[30, inner].numpy(), u[inner] / 48, atol=1e-5)
        outside = (u < 0) | (u > 48)
        if fill == "edge":
            np.testing.assert_allclose(out[30, u < 0].numpy(), xs[0].item(), atol=1e-6)
            np.testing.assert_allclose(out[30, u > 48].numpy(), xs[-1].item(), atol=1e-6)
        else:
            assert out[:, outside].abs().max() == 0


def test_preprocess_then_place_recovers_source():
    """Geometry consistency: crop a smooth source, place the crop back, get the source."""
    H, W = 61, 97
    spec = InputSpec(clip_len=1, crop=(40, 40), resize_short=50, stride=1)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 2, yy * 3, xx + yy], -1).astype(np.uint8)
    pre = Preprocessor(spec, H, W, torch.device("cpu"))
    crop = pre.frame(img).float().permute(2, 0, 1)  # (3, 40, 40)
    back = SourcePlacer(pre.geometry, (40, 40))(crop).permute(1, 2, 0).numpy()
    y0, x0, y1, x1 = pre.geometry.crop_box()
    ys = slice(int(np.ceil(y0)) + 2, int(y1) - 2)
    xs = slice(int(np.ceil(x0)) + 2, int(x1) - 2)
    err = np.abs(back[ys, xs] - img[ys, xs])
    assert err.max() < 2.0
    assert back[:, : int(x0) - 1].max() == 0  # left of the crop: never seen


def test_slice_weights_hand_values():
    s = TimeSupport([0.0, 0.1, 0.2, 0.2, 0.3], margin=0.05)
    w = s.slice_weights(np.array([0.05, 0.2, 0.25, -1.0, 0.5]))
    expected = [
        [0.5, 0.5, 0, 0, 0],
        [0, 0, 0.5, 0.5, 0],
        [0, 0, 0.25, 0.25, 0.5],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ]
    np.testing.assert_allclose(w, expected, atol=1e-12)
    bw = s.weight(np.array([0.15, 0.05, 0.4, 0.35, -0.05]))
    np.testing.assert_allclose(bw, [1.0, 0.5, 0.0, 1e-3, 1e-3], atol=1e-9)


def test_frame_importance_hand_blend():
    a = TimeSupport([0.0, 1.0], margin=0.5)  # support [-0.5, 1.5], peak at 0.5
    b = TimeSupport([1.0, 2.0], margin=0.5)  # support [0.5, 2.5], peak at 1.5
    ea = torch.tensor([2.0, 4.0], dtype=torch.float64)
    eb = torch.tensor([10.0, 10.0], dtype=torch.float64)
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    got = frame_importance([a, b], [ea, eb], times)
    # t=0: only a (value 2); t=.5: a weight 1 (value 3), b floor 1e-3 (10)
    # t=1: both weight .5, values 4 and 10 -> 7; t=1.5: b weight 1, a floor -> ~10; t=2: b
    want = [2.0, (3 + 1e-3 * 10) / (1 + 1e-3), 7.0, (10 + 1e-3 * 4) / (1 + 1e-3), 10.0]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_blender_streams_and_matches_direct_blend():
    rng = np.random.default_rng(0)
    n_win, T = 6, 4
    supports, maps = [], []
    for k in range(n_win):
        times = [0.1 * (2 * k + j) for j in range(T)]  # 50 % overlap
        supports.append(TimeSupport(times, margin=0.05))
        maps.append(torch.from_numpy(rng.random((T, 3, 5))).float())
    loads = []

    def load(i):
        loads.append(i)
        return {"m": maps[i]}

    blender = MapBlender(supports, load)
    frame_times = np.arange(0, 1.35, 0.033)
    for t in frame_times:
        got, weights = blender.at(float(t))
        assert len(blender.active) <= 3
        ws = np.array([s.weight(t)[0] for s in supports])
        ws = ws / ws.sum()
        direct = sum(
            float(ws[i])
            * torch.tensordot(torch.from_numpy(supports[i].slice_weights(t)[0]).float(), maps[i], 1)
            for i in range(n_win)
            if ws[i] > 0
        )
        torch.testing.assert_close(got["m"], direct, atol=1e-5, rtol=1e-5)
        assert sum(weights.values()) == pytest.approx(1.0)
    assert loads == list(range(n_win))  # each window read once, in order


def test_spool_roundtrip():
    spool = MapSpool()
    a = torch.rand(4, 7, 9).half()
    b = (torch.rand(4, 6, 6, 3) * 255).to(torch.uint8)
    spool.put({"heat": a, "img": b})
    spool.put({"heat": a * 0})
    got = spool.get(0)
    assert torch.equal(got["heat"], a) and torch.equal(got["img"], b)
    assert torch.equal(spool.get(1)["heat"], a * 0)
    spool.close()


def test_opencv_placement_matches_torch_placement():
    """The renderer's OpenCV path and the API's grid_sample path put maps in the same place."""
    rng = np.random.default_rng(1)
    g = geometry_for(61, 97, InputSpec(clip_len=1, crop=(40, 40), resize_short=45, stride=1))
    small = torch.from_numpy(rng.random((10, 10))).float()
    placer = SourcePlacer(g, (10, 10))
    ref = placer(small).numpy() * 255
    got = placer.place_u8(np.rint(small.numpy() * 255).astype(np.uint8)).astype(float)
    # uint8 rounding + OpenCV's fixed-point remap (1/32 pixel; OpenCV 4.x, which FiftyOne pins,
    # also quantises the bilinear weights: up to 4.8 levels here, 3 under OpenCV 5)
    assert np.abs(got - ref).max() <= 5.0
    assert np.abs(got - ref).mean() <= 1.0
    assert np.abs(got - ref).mean() <= 0.6
    img = (rng.random((10, 10, 3)) * 255).astype(np.uint8)
    grey = SourcePlacer(g, (10, 10), fill=0.5)
    out = grey.place_u8(img)
    assert out.shape == (61, 97, 3)
    y0, x0, y1, x1 = g.crop_box()
    assert (out[:, : int(x0) - 1] == 128).all() and (out[:, int(np.ceil(x1)) + 1 :] == 128).all()
