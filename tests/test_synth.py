"""The synthetic benchmark: deterministic, motion-defined, ground truth matching the pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidcam.errors import VidcamError
from vidcam.evaluate.synth import (
    CLASSES,
    SynthConfig,
    clip_seed,
    make_batch,
    make_clip,
    render,
    to_tensor,
    write_benchmark,
)


def _bbox(diff: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(diff)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _differs(frames: np.ndarray, background) -> np.ndarray:
    return (frames != np.asarray(background, np.uint8)).any(-1)


def test_deterministic_by_seed():
    a, b = make_clip(7), make_clip(7)
    assert np.array_equal(a.frames, b.frames) and a.boxes == b.boxes and a.label == b.label
    assert not np.array_equal(a.frames, make_clip(8).frames)
    fa, la = make_batch(3, 0, 6)
    fb, lb = make_batch(3, 0, 6)
    assert np.array_equal(fa, fb) and la.tolist() == list(range(6))  # labels cycle


@pytest.mark.parametrize("width", [None, 200])
@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_ground_truth_matches_drawn_pixels(label, width):
    for k in range(3):
        clip = make_clip(clip_seed(11, k), label, instances=k + 1, config=SynthConfig(width=width))
        n_t, size, w = clip.frames.shape[:3]
        assert w == (width or size)
        t0, t1 = clip.interval
        acting = [o for o in clip.objects if o.role == "acting"]
        others = [o for o in clip.objects if o.role != "acting"]
        assert len(acting) == k + 1
        full = _differs(clip.frames, clip.background)
        dis = _differs(render(others, clip.background, n_t, size, w), clip.background)
        per_inst = [
            _differs(render([o], clip.background, n_t, size, w), clip.background) for o in acting
        ]
        for t in range(n_t):
            if not t0 <= t < t1:
                assert clip.boxes[t] == []
                continue
            inside = np.zeros((size, w), bool)
            for i, box in enumerate(clip.boxes[t]):
                assert _bbox(per_inst[i][t]) == box  # tight box around the instance's pixels
                x0, y0, x1, y1 = box
                inside[y0:y1, x0:x1] = True
            # inside the boxes: exactly the acting objects' pixels, no distractor pixel
            assert not (dis[t] & inside).any()
            acting_px = np.logical_or.reduce(per_inst)[t]
            assert np.array_equal(full[t] & inside, acting_px)
            # outside the boxes: only distractors
            assert np.array_equal(full[t] & ~inside, dis[t])


def test_motion_defines_the_class():
    for label, name in enumerate(CLASSES):
        clip = make_clip(clip_seed(5, label), label, instances=1)
        t0, t1 = clip.interval
        first, last = np.array(clip.boxes[t0][0]), np.array(clip.boxes[t1 - 1][0])
        cx0, cy0 = (first[0] + first[2]) / 2, (first[1] + first[3]) / 2
        cx1, cy1 = (last[0] + last[2]) / 2, (last[1] + last[3]) / 2
        w0, w1 = first[2] - first[0], last[2] - last[0]
        moved = {
            "moving_left": cx1 < cx0 - 10,
            "moving_right": cx1 > cx0 + 10,
            "moving_up": cy1 < cy0 - 10,
            "moving_down": cy1 > cy0 + 10,
            "growing": w1 > w0 + 5,
            "shrinking": w1 < w0 - 5,
        }
        assert moved[name], name
        # outside the interval the acting object stands still (like a static distractor)
        act = render([o for o in clip.objects if o.role == "acting"], clip.background, 16, 112)
        assert all(np.array_equal(act[t], act[t0]) for t in range(t0))
        assert all(np.array_equal(act[t], act[t1 - 1]) for t in range(t1, 16))
        static = [o for o in clip.objects if o.role == "static"]
        assert static, "every clip has static look-alike distractors"
        st = render(static, clip.background, 16, 112)
        assert all(np.array_equal(st[t], st[0]) for t in range(16))


def test_wide_clips_use_the_whole_width():
    xs = []
    for i in range(30):
        clip = make_clip(clip_seed(2, i), i % len(CLASSES), config=SynthConfig(width=224))
        xs += [b[2] for boxes in clip.boxes for b in boxes]
    assert max(xs) > 150  # objects reach far past a square frame's 112 px


def test_bad_arguments():
    with pytest.raises(VidcamError, match="label"):
        make_clip(0, "jumping")
    with pytest.raises(VidcamError, match="instances"):
        make_clip(0, 0, instances=0)


def test_to_tensor_normalises():
    frames = np.full((2, 16, 8, 8, 3), 255, np.uint8)
    x = to_tensor(frames, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert tuple(x.shape) == (2, 3, 16, 8, 8)
    assert float(x.min()) == pytest.approx(2.0) and float(x.max()) == pytest.approx(2.0)


def test_write_benchmark_round_trip(tmp_path):
    import av

    cfg = SynthConfig()
    paths = write_benchmark(tmp_path, 2, seed=4, config=cfg)
    assert [p.name for p in paths] == sorted(p.name for p in tmp_path.glob("*.mp4"))
    index = json.loads((tmp_path / "index.json").read_text())
    assert [c["video"] for c in index["clips"]] == [p.name for p in paths]
    clip = make_clip(clip_seed(4, 0), 0, config=cfg)
    gt = json.loads(paths[0].with_suffix(".json").read_text())
    assert gt["boxes"] == clip.boxes and gt["interval"] == list(clip.interval)
    assert gt["label"] == CLASSES[0] and gt["num_frames"] == 16
    with av.open(str(paths[0])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.shape == clip.frames.shape
    # low-CRF H.264: close to the drawn pixels (yuv420p chroma blurs only the edges)
    assert np.abs(frames.astype(int) - clip.frames.astype(int)).mean() < 4
