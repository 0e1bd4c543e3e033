"""Grad-CAM and Grad-CAM++ against maps computed by hand on a tiny fixed model.

Model: input x (1, 2, T=2, H=1, W=2) -> ``feat`` (identity 1x1x1 Conv3d, so A = x) -> flatten ->
Linear(8 -> 2, no bias). Hence g = dS_c/dA is the Linear row of class c, reshaped like A.

    A ch1 = [1, 2, 3, 0]   (positions (t0,w0) (t0,w1) (t1,w0) (t1,w1)),  sum 6
    A ch2 = [0, 1, 0, 2],                                                 sum 3
    class 0 row: ch1 g = [1, 0, 2, -1], ch2 g = [0, 1, -1, 1]
    S0 = 1*1 + 2*3 + 1*1 + 1*2 = 10 ; S1 = 2 (W1 reads ch1 at (t0,w1)) -> top-1 = class 0

Grad-CAM (mean of all gradients): w1 = 2/4 = 0.5, w2 = 1/4 = 0.25
    map = relu(0.5*ch1 + 0.25*ch2) = [0.5, 1.25, 1.5, 0.5]
Grad-CAM++ (eq. 19, alpha = g²/(2g² + ΣA g³) = 1/(2 + ΣA g) where g != 0):
    ch1 (ΣA=6): g=1 -> 1/8, g=2 -> 1/14, g=-1 -> -1/4; w1 = 1/8*1 + 1/14*2 = 15/56
    ch2 (ΣA=3): g=1 -> 1/5, g=-1 -> -1;               w2 = 1/5 + 1/5 = 2/5
    map = relu(15/56*ch1 + 2/5*ch2) = [15/56, 30/56 + 2/5, 45/56, 4/5]
Grad-CAM++ with all gradients: w1 = 1/8 + 2/14 + (-1/4)(-1) = 29/56, w2 = 1/5 + (-1)(-1) + 1/5 = 7/5
Grad-CAM++ per-frame weights (sums per time slice):
    ch1 t0: g=[1,0], ΣA=3 -> 1/5;   t1: g=[2,-1], ΣA=3 -> 1/8*2 = 1/4
    ch2 t0: g=[0,1], ΣA=1 -> 1/3;   t1: g=[-1,1], ΣA=2 -> 1/4
    map t0 = [1/5, 2/5 + 1/3], t1 = [3/4, 2/4]
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vidcam

X = torch.tensor([[1.0, 2.0, 3.0, 0.0], [0.0, 1.0, 0.0, 2.0]]).reshape(1, 2, 2, 1, 2)
W0 = [1.0, 0.0, 2.0, -1.0, 0.0, 1.0, -1.0, 1.0]
W1 = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv3d(2, 2, 1, bias=False)
        self.head = nn.Linear(8, 2, bias=False)
        with torch.no_grad():
            self.feat.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1, 1))
            self.head.weight.copy_(torch.tensor([W0, W1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feat(x).flatten(1))


def run(**kwargs) -> vidcam.Explanation:
    return vidcam.explain(Tiny(), X.clone(), layer="feat", **kwargs)


def as_list(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).double()


def test_scores_and_top1():
    res = run()
    assert res.logits.tolist() == [[10.0, 2.0]]
    assert res.targets.tolist() == [[0]]


def test_gradcam_literal():
    res = run(method="gradcam")
    torch.testing.assert_close(
        as_list(res.first_layer_raw), torch.tensor([0.5, 1.25, 1.5, 0.5]).double()
    )
    torch.testing.assert_close(
        as_list(res.weights_per_layer[0]), torch.tensor([0.5, 0.25]).double()
    )
    # normalised: (x - 0.5) / 1.0
    torch.testing.assert_close(as_list(res.maps), torch.tensor([0.0, 0.75, 1.0, 0.0]).double())


def test_gradcampp_literal():
    res = run(method="gradcam++")
    torch.testing.assert_close(
        as_list(res.weights_per_layer[0]), torch.tensor([15 / 56, 2 / 5]).double()
    )
    expected = torch.tensor([15 / 56, 30 / 56 + 2 / 5, 45 / 56, 4 / 5]).double()
    torch.testing.assert_close(as_list(res.first_layer_raw), expected)
    lo, hi = expected.min(), expected.max()
    torch.testing.assert_close(as_list(res.maps), (expected - lo) / (hi - lo), atol=1e-6, rtol=0)


def test_gradcampp_all_gradients_literal():
    res = run(method="gradcam++", gradients="all")
    torch.testing.assert_close(
        as_list(res.weights_per_layer[0]), torch.tensor([29 / 56, 7 / 5]).double()
    )


def test_gradcampp_per_frame_literal():
    res = run(method="gradcam++", pooling="frame")
    # weights (N, K, C, t)
    torch.testing.assert_close(
        res.weights_per_layer[0].reshape(2, 2).double(),
        torch.tensor([[1 / 5, 1 / 4], [1 / 3, 1 / 4]]).double(),
    )
    torch.testing.assert_close(
        as_list(res.first_layer_raw), torch.tensor([1 / 5, 2 / 5 + 1 / 3, 3 / 4, 2 / 4]).double()
    )


def test_explicit_second_class_and_two_targets():
    # class 1: g ch1 = [0,1,0,0], ch2 = 0 -> Grad-CAM w = (1/4, 0), map = ch1/4
    res = run(method="gradcam", target=[0, 1])
    assert res.targets.tolist() == [[0, 1]]
    torch.testing.assert_close(
        res.first_layer_raw[0, 1].reshape(-1).double(),
        torch.tensor([0.25, 0.5, 0.75, 0.0]).double(),
    )
    torch.testing.assert_close(
        res.first_layer_raw[0, 0].reshape(-1).double(), torch.tensor([0.5, 1.25, 1.5, 0.5]).double()
    )


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_upsampling_is_trilinear_to_input_size(method):
    # a (1,1,2,2,2) feature map upsampled to (4,4,4) equals F.interpolate of the raw map
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(24, 5)
    )
    x = torch.randn(1, 1, 4, 4, 4)
    res = vidcam.explain(model, x, layer="1", method=method)
    up = torch.nn.functional.interpolate(
        res.first_layer_raw, size=(4, 4, 4), mode="trilinear", align_corners=False
    )
    lo, hi = up.amin(), up.amax()
    torch.testing.assert_close(res.maps, (up - lo) / (hi - lo))
