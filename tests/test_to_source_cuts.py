"""Held slices never cross a shot cut: hand-computed blends of two windows (to_source) and the
frames pass 2 must have decoded before it blends a frame (map_pass.shows_ahead)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcam.errors import VidcamError
from vidcam.video.map_pass import shows_ahead
from vidcam.video.to_source import MapBlender, TimeSupport, frame_importance

# A samples t = 0..3, trusts 1..2; B samples 2..5, trusts 3..4; both reach half a period on.
A = TimeSupport([0.0, 1.0, 2.0, 3.0], 0.5, keep=(1, 2))
B = TimeSupport([2.0, 3.0, 4.0, 5.0], 0.5, keep=(1, 2))
HEAT = [torch.tensor([10.0, 20.0, 30.0, 40.0]), torch.tensor([100.0, 200.0, 300.0, 400.0])]


def blend(sups, t: float, cuts=()):
    """(value, weights) of the (1, 1) heat maps ``HEAT`` blended at ``t``."""
    maps = [{"m": h[:, None, None], "img": h[:, None, None, None].expand(4, 1, 1, 3)} for h in HEAT]
    blender = MapBlender(sups, lambda i: maps[i], cuts=cuts)
    out, weights = blender.at(t)
    return out, weights


def test_hold_is_the_nearest_trusted_time():
    assert A.hold([0.0, 1.0, 1.5, 2.0, 3.4]).tolist() == [1.0, 1.0, 1.5, 2.0, 2.0]


@pytest.mark.parametrize(
    ("t", "cuts", "value", "weights"),
    [
        # t = 3: A holds its slice at 2 (weight 1 - 1.5 / 2), B reads 3 (weight 1 - 0.5 / 2)
        (3.0, (), 0.25 * 30 + 0.75 * 200, {0: 0.25, 1: 0.75}),
        (3.0, (3.0,), 200.0, {1: 1.0}),  # a shot starts at 3: A's hold of 2 crosses it
        (3.0, (2.5,), 200.0, {1: 1.0}),
        (3.0, (2.0,), 0.25 * 30 + 0.75 * 200, {0: 0.25, 1: 0.75}),  # 2 and 3: one shot
        # t = 2: A reads 2 (weight 0.75), B holds its slice at 3 (weight 0.25)
        (2.0, (), 0.75 * 30 + 0.25 * 200, {0: 0.75, 1: 0.25}),
        (2.0, (3.0,), 30.0, {0: 1.0}),  # B's hold of 3 lies across the cut at 3
        (2.0, (4.0,), 0.75 * 30 + 0.25 * 200, {0: 0.75, 1: 0.25}),  # a cut past the hold
    ],
)
def test_a_window_whose_hold_crosses_a_cut_does_not_weigh(t, cuts, value, weights):
    out, w = blend([A, B], t, cuts)
    assert float(out["m"]) == pytest.approx(value)
    assert w == pytest.approx(weights)
    energies = [h / 10 for h in HEAT]
    imp = frame_importance([A, B], energies, np.array([t]), cuts=np.array(cuts))
    assert imp[0] == pytest.approx(value / 10)


def test_a_frame_only_a_hold_across_a_cut_reaches_is_unexplained():
    for t, cut in ((3.0, 2.5), (3.4, 3.0), (0.0, 1.0), (0.0, 0.5)):
        out, w = blend([A], t, (cut,))
        assert w == {}
        assert float(out["m"]) == 0.0  # no heat
        assert out["img"].tolist() == [[[0.5, 0.5, 0.5]]]  # an image: no evidence (mid grey)
        assert frame_importance([A], HEAT[:1], np.array([t]), cuts=[cut])[0] == 0.0
    out, w = blend([A], 3.0, (3.5,))  # the cut comes after the frame: the hold stands
    assert float(out["m"]) == 30.0 and w == {0: 1.0}


def test_frame_importance_without_cuts_is_unchanged():
    t = np.linspace(-0.4, 5.4, 30)
    energies = [h / 10 for h in HEAT]
    old = frame_importance([A, B], energies, t)
    assert np.array_equal(frame_importance([A, B], energies, t, cuts=[]), old)
    assert np.array_equal(frame_importance([A, B], energies, t, cuts=[9.0]), old)


def test_cuts_must_increase():
    blender = MapBlender([A], lambda i: {"m": HEAT[0][:, None, None]}, cuts=[1.0])
    blender.add_cut(2.0)
    assert blender.cuts == [1.0, 2.0]
    with pytest.raises(VidcamError, match="cuts must increase"):
        blender.add_cut(2.0)


def test_shows_ahead_hand_values():
    """Frame 0 and 1 read A's first trusted slice (1); frames 2 and 3 lie before B's first
    trusted slice (3), so their maps wait for the frames up to 3; later frames wait for none."""
    times = np.arange(6, dtype=np.float64)
    assert shows_ahead([A, B], times).tolist() == [1.0, 1.0, 3.0, 3.0, 4.0, 5.0]
