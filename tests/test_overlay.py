"""The overlay as a person sees it: cold regions are the source pixels, hot ones visibly
coloured, a legend in the colormap's colours, and display scales that do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import MOTION_SPEC, MotionNet, moving_square, write_video

from vidcam.cli import build_parser
from vidcam.errors import VidcamError
from vidcam.video import write_explained_video
from vidcam.video.decode import iter_frames
from vidcam.video.render import COLD, FADE, FLOOR, Panel, Renderer, colormap_lut, opacity
from vidcam.video.scale import DisplayScale, percentile, to_spool
from vidcam.video.spool import MapSpool

H, W = 96, 160  # resize 48 x 80, centre crop 48 x 48 = source x 32 .. 128
BOX = (8, 40, 40, 72)  # y0, x0, y1, x1 where the square moves (top left of the crop)
SIZE = 8


def _gradient_frames(n: int) -> np.ndarray:
    """A smooth static background (so 'untouched' is checkable) with a moving bright square."""
    frames = moving_square(n, H, W, box=BOX, size=SIZE)
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([40 + xx * 0.6, 60 + yy * 0.8, 90 + 0 * xx], -1).astype(np.uint8)
    square = frames == 235
    return np.where(square, frames, bg[None]).astype(np.uint8)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("overlay")
    frames = _gradient_frames(24)
    src = write_video(d / "src.mkv", frames, fps=25)
    out = d / "out.mp4"
    write_explained_video(
        src, out, model=MotionNet(), spec=MOTION_SPEC, labels=["motion", "still"], progress=False
    )
    got = np.stack([f.image for f in iter_frames(out)])
    return frames, got


def test_cold_regions_are_the_source_pixels(rendered):
    src, got = rendered
    assert got.shape == src.shape
    # inside the model's crop but far from the moving square, and outside the crop: the
    # source within H.264 noise (the old look blended colormap 0 everywhere: a blue wash)
    # (rows above 50: the legend's text line sits at different heights in OpenCV 4 and 5)
    for ys, xs in ((slice(30, 50), slice(96, 124)), (slice(24, 50), slice(134, 156))):
        diff = np.abs(got[:, ys, xs].astype(int) - src[:, ys, xs].astype(int))
        assert diff.mean() < 2.5, (ys, xs, diff.mean())
        assert np.percentile(diff, 99) < 10


def test_hot_regions_differ_visibly(rendered):
    src, got = rendered
    y0, x0, y1, x1 = BOX
    diff = np.abs(got[2:20, y0:y1, x0:x1].astype(int) - src[2:20, y0:y1, x0:x1].astype(int))
    # per frame: the hottest pixels are clearly coloured
    per_frame = diff.max(axis=(1, 2, 3))
    assert (per_frame > 80).all(), per_frame
    # on the moving square itself (MotionNet's evidence), every frame visibly tinted
    square = (src[2:20] == 235).all(-1)
    d = np.abs(got[2:20].astype(int) - src[2:20].astype(int)).max(-1)
    assert all(d[i][square[i]].mean() > 40 for i in range(len(d))), [
        d[i][square[i]].mean() for i in range(len(d))
    ]


def test_legend_is_drawn_in_the_colormaps_colours(rendered):
    _, got = rendered
    r = Renderer(  # the pipeline's geometry: the same times, a strip, the same legend text
        H,
        W,
        colormap="jet",
        legend="scale: whole video",
        importance=np.zeros(24),
        times=np.arange(24) / 25,
    )
    y0, x0, y1, x1 = r._legend.box
    assert x1 <= W and y0 > H // 2  # bottom right
    lut = colormap_lut("jet")
    want = lut[np.linspace(0, 255, x1 - x0).round().astype(int)]
    # unit: exactly the colormap, left (low) to right (high), on any frame
    img = np.full((H, W, 3), 90, np.uint8)
    out = r(img, [Panel("A", heat=np.zeros((H, W), np.float32))], time=0.0, frame=0)
    np.testing.assert_array_equal(out[y0:y1, x0:x1], np.broadcast_to(want, (y1 - y0, x1 - x0, 3)))
    # in the written video (same geometry): the bar's middle row within chroma noise
    row = got[:, (y0 + y1) // 2, x0 + 2 : x1 - 2].astype(int).mean(0)
    assert np.abs(row - want[2:-2]).mean() < 25
    assert row[:4, 2].mean() > 120 and row[-4:, 0].mean() > 100  # blue end, red end


def test_opacity_ramp():
    a = opacity(0.6, 255)
    levels = np.arange(256) / 255
    assert (a[levels < COLD] == 0).all() and a[255] == pytest.approx(0.6)
    assert (np.diff(a) >= -1e-7).all()  # grows with the heat
    assert (a[: int(0.4 * 255)] == 0).all()  # below ~45 % of the frame's peak: the source
    weak = opacity(0.6, 100)  # a weaker frame: its own peak still shows, a little fainter
    p = 100 / 255
    assert weak[100] == pytest.approx(0.6 * (FLOOR + (1 - FLOOR) * p), rel=1e-5)
    assert opacity(0.6, int(0.5 * FADE * 255)).max() < 0.6 * 0.5  # (almost) no heat: fades
    assert opacity(0.6, 0).max() == 0
    with pytest.raises(VidcamError, match="alpha"):
        opacity(1.2, 255)


def _crafted_spool() -> MapSpool:
    """Two windows of 4 frames: window 0 ten times hotter than window 1; in window 1,
    frame 3 has only a tenth of its heat."""
    spool = MapSpool()
    blob = torch.zeros(4, 8, 8)
    blob[:, 2:4, 2:4] = 1.0
    blob[:, 2, 2] = 2.0
    w1 = blob.clone()
    w1[3] *= 0.1
    spool.put({"gradcam++": (10 * blob).to(torch.bfloat16)})
    spool.put({"gradcam++": w1.to(torch.bfloat16)})
    return spool


def test_normalize_scales_on_a_crafted_spool():
    spool = _crafted_spool()
    names = ["gradcam++"]
    video = DisplayScale.from_spool(spool, names, "video", gamma=1.0)
    clip = DisplayScale.from_spool(spool, names, "clip")
    frame = DisplayScale.from_spool(spool, names, "frame")
    # video: ONE scale; 99th percentile of all 512 values = window 0's blob (10), so window
    # 0 reaches 1 (its 2x peak clipped) and window 1 stays at a tenth
    assert video.ref["gradcam++"] == pytest.approx(10, rel=0.02)
    v = [video.window("gradcam++", spool.get(i)["gradcam++"]) for i in range(2)]
    assert float(v[0].max()) == 1 and float(v[1].amax()) == pytest.approx(0.2, rel=0.02)
    assert float(v[1][3].max()) == pytest.approx(0.02, rel=0.03)  # when: frame 3 is cold
    # clip: every window's own maximum is 1, frames inside a window stay comparable
    c = [clip.window("gradcam++", spool.get(i)["gradcam++"]) for i in range(2)]
    assert float(c[0].max()) == float(c[1].max()) == 1
    assert float(c[1][3].max()) == pytest.approx(0.1, rel=0.02)
    # frame: every frame reaches 1, even window 1's weak frame 3
    f = [frame.frame(frame.window("gradcam++", spool.get(1)["gradcam++"])[t]) for t in range(4)]
    assert all(float(x.max()) == pytest.approx(1.0) for x in f) and float(f[3].min()) == 0
    # the video gamma lifts mid values, keeps 0 and 1
    g = DisplayScale.from_spool(spool, names, "video", gamma=0.5)
    m = torch.tensor([[0.0, 0.25, 1.0]])
    assert g.frame(m.clone()).tolist() == [[0.0, 0.5, 1.0]]
    assert (video.legend, clip.legend, frame.legend) == (
        "scale: whole video",
        "scale: each window",
        "scale: each frame",
    )
    with pytest.raises(VidcamError, match="normalize"):
        DisplayScale.from_spool(spool, names, "pixel")


def test_all_zero_maps_give_no_heat():
    spool = MapSpool()
    spool.put({"gradcam++": torch.zeros(2, 4, 4, dtype=torch.bfloat16)})
    s = DisplayScale.from_spool(spool, ["gradcam++"], "video")
    assert float(s.window("gradcam++", spool.get(0)["gradcam++"]).max()) == 0


def test_percentile_streams_and_matches_quantile():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200_000, generator=g) ** 4 * 30  # peaked, like Grad-CAM++ maps
    x[:50_000] = 0
    chunks = list(x.split(30_000))
    for q in (50, 90, 99, 99.9):
        want = float(torch.quantile(x[::4], q / 100))  # (quantile's size limit)
        assert percentile(chunks, q) == pytest.approx(want, rel=0.02, abs=1e-6), q
    assert percentile([torch.zeros(10)], 99) == 0.0


def test_to_spool_keeps_the_cams_units_and_tiny_values():
    maps = torch.rand(2, 3, 4, 16, 16)
    peaks = torch.tensor([[1e-7, 2e-7, 3e-7], [5.0, 1.0, 0.5]])  # softmax-sized CAMs too
    out = to_spool(maps, peaks, (8, 8))
    assert out.shape == (2, 4, 8, 8) and out.dtype == torch.bfloat16
    want = torch.nn.functional.adaptive_avg_pool2d((maps * peaks[..., None, None, None]).amax(1), 8)
    torch.testing.assert_close(out.float(), want, rtol=1e-2, atol=0)
    spool = MapSpool()
    spool.put({"m": out[0]})
    assert torch.equal(spool.get(0)["m"], out[0])  # bfloat16 round trip, bit for bit


def test_cli_flags_parse():
    p = build_parser()
    a = p.parse_args(["explain", "in.mp4", "-o", "o.mp4"])
    assert (a.normalize, a.spatial, a.preview, a.alpha) == ("video", "auto", None, 0.6)
    a = p.parse_args(
        ["explain", "in.mp4", "--preview", "p.png", "--normalize", "frame", "--spatial", "tiles"]
    )
    assert (a.output, a.preview, a.normalize, a.spatial) == (None, "p.png", "frame", "tiles")
    with pytest.raises(SystemExit):
        p.parse_args(["explain", "in.mp4", "-o", "o.mp4", "--spatial", "left"])
