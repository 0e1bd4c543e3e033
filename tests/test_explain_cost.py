"""The explained video's JSON says what each method cost: forwards, masked clips, backwards."""

from __future__ import annotations

import pytest

from vidcam.cam.perturbation import Perturbation
from vidcam.video import explain_video

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

KW = {"model": "sample", "progress": False, "spatial": "center", "clip_len": 8, "stride": 4}


def test_cam_cost_is_one_forward_per_engine_call():
    res = explain_video("samples/moving_right_2x.mp4", batch_size=1, **KW)
    n = len(res.windows)
    assert n >= 2
    assert res.to_json()["cost"] == {
        "gradcam++": {"forwards": n, "masked_clips": 0, "backwards": 0}
    }


def test_rise_cost_counts_every_masked_clip():
    res = explain_video("samples/moving_right_2x.mp4", method="rise", batch_size=1, **KW)
    n = len(res.windows)
    cost = res.to_json()["cost"]["rise"]
    masks = Perturbation().masks
    assert cost["masked_clips"] == n * masks  # every window scores every mask once
    assert cost["forwards"] > n and cost["backwards"] == 0
