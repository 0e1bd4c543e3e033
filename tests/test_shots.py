"""Shot-cut detection (vidcam.video.shots) on synthetic clips with known cuts, and the rule
that decides whether a held slice crosses one (``crosses``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidcam.errors import VidcamError
from vidcam.video.shots import (
    CUT_DISTANCE,
    FLASH,
    GRID,
    CutDetector,
    crosses,
    distance,
    find_cuts,
    signature,
)

H, W = 96, 128


def texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8 smooth random colour texture (noise upsampled from a coarse grid)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(20, 235, (max(2, h // 12), max(2, w // 12), 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(
        np.uint8
    )


def noisy(frames: list[np.ndarray], sigma: float, seed: int = 7) -> list[np.ndarray]:
    """Camera noise: independent Gaussian noise of ``sigma`` grey levels on every frame."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        n = rng.normal(0, sigma, f.shape)
        out.append(np.clip(f.astype(np.float64) + n, 0, 255).astype(np.uint8))
    return out


def test_signature_hand_values():
    """Left half black, right half 200: the cells are 0 / 200, mean 100, std 100, so the
    standardised thumbnail is -+100 / (100 + 8)."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, 16:] = 200
    s = signature(img)
    assert s.shape == (GRID, GRID) and s.dtype == torch.float32
    sign = np.broadcast_to(np.where(np.arange(GRID) < GRID // 2, -1.0, 1.0), (GRID, GRID))
    np.testing.assert_allclose(s.numpy(), sign * 100 / 108, rtol=1e-6)
    # torch input and a negative-stride view (np.rot90 twice): the same; half the contrast:
    # +-50 / (50 + 8), nearly the same (the 8 grey levels keep flat frames near 0)
    assert torch.equal(signature(torch.from_numpy(img)), s)
    assert torch.equal(signature(np.rot90(np.rot90(img))[::-1, ::-1]), s)
    brighter = (img.astype(np.float64) * 0.5 + 50).astype(np.uint8)  # 50 | 150: std 50
    np.testing.assert_allclose(signature(brighter).numpy(), sign * 50 / 58, rtol=1e-6)


def test_signature_refuses_what_is_not_a_frame():
    with pytest.raises(VidcamError, match=r"\(H, W, 3\)"):
        signature(np.zeros((8, 8), np.uint8))


def test_distance_hand_values():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(GRID, GRID)).astype(np.float32))
    assert distance(a, a) == 0.0
    shifted = torch.roll(a, 1, dims=1)  # a pan by one cell: the inner cells match exactly
    assert distance(a, shifted) == 0.0
    b = a + 0.25  # no shift explains a constant offset: mean |diff| = 0.25
    assert distance(a, b) == pytest.approx(0.25, abs=1e-6)


def test_hard_cut_between_two_static_shots_is_found_at_its_frame():
    a, b = texture(1), texture(2)
    frames = noisy([a] * 20 + [b] * 20, sigma=6)
    assert find_cuts(frames) == [20]
    # the frames of each shot are far below the threshold, the cut far above it
    sigs = [signature(f) for f in frames]
    d = [distance(sigs[i - 1], sigs[i]) for i in range(1, 40)]
    assert max(d[:19] + d[20:]) < 0.1 * CUT_DISTANCE and d[19] > 1.5 * CUT_DISTANCE


def test_cuts_near_the_ends_and_close_together():
    a, b, c = texture(1), texture(2), texture(3)
    assert find_cuts([a] * 2 + [b] * 30) == [2]  # right after the first frames
    assert find_cuts([a] * 30 + [b] * 2) == [30]  # two frames before the end
    assert find_cuts([a] * 30 + [b]) == [30]  # the very last frame
    assert find_cuts([a] * 10 + [b] * 3 + [c] * 10) == [10, 13]  # a 3-frame shot


@pytest.mark.parametrize("speed", [2, 6, 12])
def test_a_pan_is_no_cut(speed):
    """A pan over a wide texture, ``speed`` px per frame (12 px: 1.5 thumbnail cells)."""
    wide = texture(4, H, W + 40 * speed)
    frames = [wide[:, i * speed : i * speed + W] for i in range(40)]
    assert find_cuts(noisy(frames, sigma=4)) == []


def test_a_slow_fade_and_a_dissolve_are_no_cuts():
    a, b = texture(1).astype(np.float64), texture(2).astype(np.float64)
    to_black = [a * max(0.0, 1 - i / 24) for i in range(40)]  # then black for 16 frames
    dissolve = [a * (1 - min(i, 15) / 15) + b * (min(i, 15) / 15) for i in range(30)]
    for frames in (to_black, dissolve):
        assert find_cuts(noisy([f.astype(np.uint8) for f in frames], sigma=2)) == []


def test_camera_noise_is_no_cut():
    assert find_cuts(noisy([texture(5)] * 60, sigma=25)) == []


@pytest.mark.parametrize("kind", ["white", "two white", "bright"])
def test_a_flash_is_no_cut(kind):
    """A flash: one or two white frames, or one frame brightened x2 and saturating. The shot
    goes on after it, so there is no cut that would end a hold."""
    a = texture(6)
    frames = [a.copy() for _ in range(30)]
    if kind == "bright":
        frames[15] = np.clip(a.astype(np.float64) * 2 + 40, 0, 255).astype(np.uint8)
    else:
        frames[15] = np.full_like(a, 255)
        if kind == "two white":
            frames[16] = frames[15]
    frames = noisy(frames, sigma=3)
    assert find_cuts(frames) == []
    d = distance(signature(frames[14]), signature(frames[15]))
    if kind == "bright":  # the standardised thumbnail barely moves
        assert d < CUT_DISTANCE
    else:  # a cut-sized change: only the spike / return rules keep it out
        assert d > CUT_DISTANCE


def test_streaming_settles_each_frame_flash_frames_later():
    a, b = texture(1), texture(2)
    frames = [a] * 12 + [b] * 12
    det = CutDetector()
    found = []
    for k, f in enumerate(frames, start=1):
        found += det.push(f)
        assert det.settled == max(0, k - FLASH)
        if det.settled > 12:
            assert found == [12]  # settled as soon as FLASH frames after it are in
    found += det.finish()
    assert det.settled == len(frames) and found == det.cuts == [12]
    with pytest.raises(VidcamError, match="after finish"):
        det.push(a)


def test_crosses_hand_values():
    cuts = [1.0, 2.0]  # shots start at t = 1 and t = 2
    a = [0.5, 1.0, 1.5, 0.9, 2.5, 1.0]
    b = [1.5, 1.5, 1.5, 1.0, 0.5, 1.0]
    assert crosses(cuts, a, b).tolist() == [True, False, False, True, True, False]
    assert crosses([], a, b).tolist() == [False] * 6
    assert crosses(None, 0.0, 5.0).tolist() == [False]
    assert crosses(np.array([3.0]), 2.0, 3.0).tolist() == [True]  # scalars, the cut frame itself
