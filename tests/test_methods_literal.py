"""XGrad-CAM, LayerCAM, HiResCAM, Eigen-CAM and Score-CAM against values computed by hand.

Model: input x (1, 2, T=2, H=1, W=2) -> ``feat`` (identity 1x1x1 Conv3d, so A = x) -> flatten ->
Linear(8 -> 2, no bias); g = dS_0/dA is the Linear row of class 0 reshaped like A.
Positions: (t0,w0) (t0,w1) (t1,w0) (t1,w1).

    A ch1 = [1, 2, 3, 0] (sum 6)     g ch1 = [1, -1,  2,  0]
    A ch2 = [0, 1, 0, 2] (sum 3)     g ch2 = [2,  1, -1, -1]
    S0 = (1 - 2 + 6 + 0) + (0 + 1 + 0 - 2) = 4;  S1 = A ch2 (t1,w1) = 2  -> top-1 = class 0

HiResCAM  relu(Σ g ⊙ A):       ch1 [1,-2,6,0] + ch2 [0,1,0,-2] = [1,-1,6,-2] -> [1, 0, 6, 0]
LayerCAM  relu(Σ relu(g) ⊙ A): ch1 [1, 0,6,0] + ch2 [0,1,0, 0]              -> [1, 1, 6, 0]
XGrad-CAM w = Σ gA / Σ A:      w1 = 5/6, w2 = -1/3
          map = relu(5/6 ch1 - 1/3 ch2) = [5/6, 4/3, 5/2, 0]
XGrad-CAM per frame:           ch1 t0 -1/3, t1 6/3 = 2; ch2 t0 1/1 = 1, t1 -2/2 = -1
          map t0 = relu(-1/3 [1,2] + [0,1]) = [0, 1/3]; t1 = relu(2 [3,0] - [0,2]) = [6, 0]

Score-CAM (feat is at the input's resolution, so the upsampling is the identity):
    H1 = ch1 / 3 = [1/3, 2/3, 1, 0], H2 = ch2 / 2 = [0, 1/2, 0, 1]
    X ⊙ H1: ch1 [1/3, 4/3, 3, 0], ch2 [0, 2/3, 0, 0] -> S0 = -1 + 6 + 2/3 = 17/3, S1 = 0
    X ⊙ H2: ch1 [0, 1, 0, 0],     ch2 [0, 1/2, 0, 2] -> S0 = -1 + 1/2 - 2 = -5/2, S1 = 2
    two classes: softmax_0 = sigmoid(S0 - S1): w = [sigmoid(17/3), sigmoid(-9/2)]
    baseline X_b = 0: S = (0, 0), p0 = 1/2 -> w = [sigmoid(17/3) - 1/2, sigmoid(-9/2) - 1/2]

Eigen-CAM on its own input  A ch1 = [1, 0, 2, 1], ch2 = [0, 1, 2, 1]:
    M (positions x channels), MᵀM = [[6, 5], [5, 6]]: eigenvalues 11, 1; v1 = (1, 1)/√2
    (sign: M v1 = [1, 1, 4, 2]/√2 correlates positively with the channel mean [.5, .5, 2, 1])
    map = relu(M v1) = [1, 1, 4, 2]/√2, normalised (x - 1)/3 = [0, 0, 1, 1/3]
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import vidcam

X = torch.tensor([[1.0, 2.0, 3.0, 0.0], [0.0, 1.0, 0.0, 2.0]]).reshape(1, 2, 2, 1, 2)
XE = torch.tensor([[1.0, 0.0, 2.0, 1.0], [0.0, 1.0, 2.0, 1.0]]).reshape(1, 2, 2, 1, 2)
W0 = [1.0, -1.0, 2.0, 0.0, 2.0, 1.0, -1.0, -1.0]
W1 = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


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


def run(x: torch.Tensor = X, **kwargs) -> vidcam.Explanation:
    return vidcam.explain(Tiny(), x.clone(), layer="feat", **kwargs)


def flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).double()


def close(a: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(flat(a), torch.tensor(expected).double(), atol=1e-6, rtol=1e-6)


def test_scores_and_top1():
    res = run(method="hirescam")
    assert res.logits.tolist() == [[4.0, 2.0]]
    assert res.targets.tolist() == [[0]]


def test_hirescam_literal():
    res = run(method="hirescam")
    close(res.first_layer_raw, [1, 0, 6, 0])
    close(res.weights_per_layer[0], W0)  # elementwise weights: g itself
    close(res.maps, [1 / 6, 0, 1, 0])


def test_layercam_literal():
    res = run(method="layercam")
    close(res.first_layer_raw, [1, 1, 6, 0])
    close(res.weights_per_layer[0], [max(v, 0.0) for v in W0])
    close(res.maps, [1 / 6, 1 / 6, 1, 0])


def test_xgradcam_literal():
    res = run(method="xgradcam")
    close(res.weights_per_layer[0], [5 / 6, -1 / 3])
    close(res.first_layer_raw, [5 / 6, 4 / 3, 5 / 2, 0])


def test_xgradcam_per_frame_literal():
    res = run(method="xgradcam", pooling="frame")
    close(res.weights_per_layer[0], [-1 / 3, 2, 1, -1])  # (N, K, C, t): ch1 t0 t1, ch2 t0 t1
    close(res.first_layer_raw, [0, 1 / 3, 6, 0])


def test_xgradcam_positive_gradients_literal():
    # relu(g): ch1 [1,0,2,0] -> (1 + 6)/6 = 7/6; ch2 [2,1,0,0] -> 1/3
    res = run(method="xgradcam", gradients="positive")
    close(res.weights_per_layer[0], [7 / 6, 1 / 3])


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_scorecam_literal():
    res = run(method="scorecam")
    w = [sigmoid(17 / 3), sigmoid(-9 / 2)]
    close(res.weights_per_layer[0], w)
    close(
        res.first_layer_raw,
        [w[0] * a + w[1] * b for a, b in zip([1, 2, 3, 0], [0, 1, 0, 2], strict=True)],
    )
    assert res.forwards == 2 and res.masked_clips == 2  # the plain forward + one batch of two


def test_scorecam_baseline_literal_and_one_clip_per_forward():
    res = run(method="scorecam", scorecam_baseline=True, batch_size=1)
    close(res.weights_per_layer[0], [sigmoid(17 / 3) - 0.5, sigmoid(-9 / 2) - 0.5])
    # w2 < 0: map = relu(w1 ch1 + w2 ch2)
    w1, w2 = sigmoid(17 / 3) - 0.5, sigmoid(-9 / 2) - 0.5
    close(res.first_layer_raw, [w1, 2 * w1 + w2, 3 * w1, max(0.0, 2 * w2)])
    assert res.forwards == 1 + 2 + 1 and res.masked_clips == 3  # plain, 2 masked, baseline


def test_eigencam_literal():
    res = run(XE, method="eigencam")
    s = 1 / math.sqrt(2)
    close(res.weights_per_layer[0], [s, s])
    close(res.first_layer_raw, [s, s, 4 * s, 2 * s])
    close(res.maps, [0, 0, 1, 1 / 3])


def test_eigencam_is_class_agnostic():
    res = run(XE, method="eigencam", target=[0, 1])
    torch.testing.assert_close(res.first_layer_raw[:, 0], res.first_layer_raw[:, 1])
    assert res.targets.tolist() == [[0, 1]]


def test_eigencam_sign_follows_the_mean_activation():
    # for -XE the direction that correlates positively with the (negative) channel mean is
    # still +(1, 1)/√2 (M v1 = -[1, 1, 4, 2]/√2 and the mean -[.5, .5, 2, 1] agree), whatever
    # sign the SVD returns; the map relu(M v1) is then zero everywhere
    s = 1 / math.sqrt(2)
    with pytest.warns(RuntimeWarning, match="constant"):
        res = run(-XE, method="eigencam")
    close(res.weights_per_layer[0], [s, s])
    close(res.first_layer_raw, [0, 0, 0, 0])
