"""Guided backprop and Guided Grad-CAM(++): hand-computed values and independent backward passes."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidcam import Explainer
from vidcam.cam.guided import (
    GuidedBackpropWarning,
    GuidedExplanation,
    guided_backprop,
    guided_cam,
    normalize_per_clip,
)
from vidcam.errors import VidcamError

# ---------------------------------------------------------------------------------------------
# A hand-checkable model. Input x (1, 1, 1, 1, 3) = [x0, x1, x2] along W.
# conv (1 -> 2 channels, kernel (1, 1, 2), no bias): filter a = [1, 1], filter b = [1, -1]
#   h_a = [x0 + x1, x1 + x2],  h_b = [x0 - x1, x1 - x2]
# activation, flatten to [a0, a1, b0, b1], fc (no bias):
#   class 0 weights [2, -1, 1, 3],  class 1 weights [-1, 2, -2, 1]
# ---------------------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, act: str = "relu") -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, kernel_size=(1, 1, 2), bias=False)
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]).view(2, 1, 1, 1, 2))
            self.fc.weight.copy_(torch.tensor([[2.0, -1.0, 1.0, 3.0], [-1.0, 2.0, -2.0, 1.0]]))
        self.mode = act
        modules = {
            "relu": nn.ReLU(),
            "relu_inplace": nn.ReLU(inplace=True),
            "relu6": nn.ReLU6(),
            "leaky": nn.LeakyReLU(0.1),
            "hardtanh": nn.Hardtanh(-1.0, 1.0),
        }
        self.act = modules.get(act, nn.Identity())
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if self.mode == "functional":
            r = F.relu(h)
        elif self.mode == "method":
            r = h.relu()
        elif self.mode == "torch_inplace":
            r = torch.relu_(h)
        else:
            r = self.act(h)
        if self.fail:
            raise RuntimeError("forward failed on purpose")
        return self.fc(r.flatten(1))


X = torch.tensor([1.0, -2.0, 3.0]).view(1, 1, 1, 1, 3)
# h_a = [1 - 2, -2 + 3] = [-1, 1]; h_b = [1 + 2, -2 - 3] = [3, -5]
# ReLU masks (h > 0): a [0, 1], b [1, 0]; logits: c0 = -1*1 + 1*3 = 2, c1 = 2*1 - 2*3 = -4
#
# class 0: grad at ReLU outputs [2, -1, 1, 3] -> relu -> [2, 0, 1, 3] -> * mask [0, 0, 1, 0]
#   -> only h_b[0] = x0 - x1 gets 1:  dx = [1, -1, 0]
# class 1: [-1, 2, -2, 1] -> relu -> [0, 2, 0, 1] -> * mask [0, 1, 1, 0] -> only h_a[1] = x1 + x2
#   gets 2:  dx = [0, 2, 2]
GUIDED_RELU = torch.tensor([[1.0, -1.0, 0.0], [0.0, 2.0, 2.0]])
# Plain gradient, class 0: [0, -1, 1, 0] at h -> h_a[1]: dx1, dx2 -= 1; h_b[0]: dx0 += 1, dx1 -= 1
PLAIN_RELU_C0 = torch.tensor([1.0, -2.0, -1.0])


def _flat(g: torch.Tensor) -> torch.Tensor:
    return g.reshape(g.shape[0], g.shape[1], -1)  # (N, K, 3)


@pytest.mark.parametrize("act", ["relu", "relu_inplace", "functional", "method", "torch_inplace"])
def test_hand_computed_relu(act: str) -> None:
    model = Tiny(act)
    g = guided_backprop(model, X, target=[0, 1])
    assert g.shape == (1, 2, 1, 1, 1, 3)
    torch.testing.assert_close(_flat(g)[0], GUIDED_RELU)


def test_hand_computed_leaky_relu() -> None:
    # LeakyReLU(0.1): local derivative at h = [-1, 1, 3, -5] is [0.1, 1, 1, 0.1]
    # class 0: [2, 0, 1, 3] * [0.1, 1, 1, 0.1] = [0.2, 0, 1, 0.3] at (a0, a1, b0, b1)
    #   a0 = x0 + x1: dx0 += 0.2, dx1 += 0.2; b0 = x0 - x1: dx0 += 1, dx1 -= 1;
    #   b1 = x1 - x2: dx1 += 0.3, dx2 -= 0.3   ->  dx = [1.2, -0.5, -0.3]
    g = guided_backprop(Tiny("leaky"), X, target=0)
    torch.testing.assert_close(_flat(g)[0, 0], torch.tensor([1.2, -0.5, -0.3]))


def test_hand_computed_relu6() -> None:
    # x = [5, -2, 3]: h_a = [3, 1], h_b = [7, -5]; ReLU6 derivative (0 < h < 6): [1, 1, 0, 0]
    # class 0: [2, 0, 1, 3] * [1, 1, 0, 0] = [2, 0, 0, 0] -> a0 = x0 + x1: dx = [2, 2, 0]
    # (with a plain ReLU b0 = 7 would pass too and give [3, 1, 0])
    x = torch.tensor([5.0, -2.0, 3.0]).view(1, 1, 1, 1, 3)
    g = guided_backprop(Tiny("relu6"), x, target=0)
    torch.testing.assert_close(_flat(g)[0, 0], torch.tensor([2.0, 2.0, 0.0]))


def test_hardtanh_is_passed_through_with_a_warning() -> None:
    # Hardtanh(-1, 1) is no rectifier: its gradient is the plain one, derivative (-1 < h < 1)
    # at h = [-1, 1, 3, -5] is [0, 0, 0, 0] -> everything zero; use x = [0.2, 0.1, -0.3]:
    # h_a = [0.3, -0.2], h_b = [0.1, 0.4], all inside: plain class 0 grad at h = [2, -1, 1, 3]
    #   a0: dx0 += 2, dx1 += 2; a1: dx1 -= 1, dx2 -= 1; b0: dx0 += 1, dx1 -= 1; b1: dx1 += 3,
    #   dx2 -= 3  ->  dx = [3, 3, -4]
    x = torch.tensor([0.2, 0.1, -0.3]).view(1, 1, 1, 1, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = guided_backprop(Tiny("hardtanh"), x, target=0)
    messages = " ".join(str(w.message) for w in caught)
    assert "unguided: hardtanh" in messages and "no ReLU" in messages
    torch.testing.assert_close(_flat(g)[0, 0], torch.tensor([3.0, 3.0, -4.0]))


# ---------------------------------------------------------------------------------------------
# Random small 3D CNN with in-place ReLUs and a residual add, against a manual backward.
# ---------------------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self, inplace: bool = True, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
        self.relu = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv3d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(4, classes)
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r1 = self.relu(self.bn(self.conv1(x)))
        out = self.conv2(r1)
        out += r1
        if self.fail:
            raise RuntimeError("forward failed on purpose")
        r2 = self.relu2(out)
        return self.fc(r2.mean((2, 3, 4)))


def _small_cnn(inplace: bool = True) -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN(inplace)
    with torch.no_grad():  # non-trivial eval statistics
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


def _clip(n: int = 2, t: int = 3, hw: int = 5) -> torch.Tensor:
    return torch.randn(n, 3, t, hw, hw, generator=torch.Generator().manual_seed(1))


def _manual_guided(model: SmallCNN, x: torch.Tensor, k: int) -> torch.Tensor:
    """Forward and backward written out by hand: VJPs of convs are transposed convs."""
    bn = model.bn
    gain = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        a1 = (model.conv1(x) - bn.running_mean.view(1, -1, 1, 1, 1)) * gain + bn.bias.view(
            1, -1, 1, 1, 1
        )
        r1 = a1.clamp(min=0)
        s = F.conv3d(r1, model.conv2.weight, model.conv2.bias, padding=1) + r1
        volume = s.shape[2] * s.shape[3] * s.shape[4]
        g_r2 = model.fc.weight[k].view(1, -1, 1, 1, 1).expand_as(s) / volume
        g_s = g_r2.clamp(min=0) * (s > 0)  # guided rule at relu2
        g_r1 = F.conv_transpose3d(g_s, model.conv2.weight, padding=1) + g_s  # conv + skip
        g_a1 = g_r1.clamp(min=0) * (a1 > 0)  # guided rule at relu, on the summed gradient
        return F.conv_transpose3d(g_a1 * gain, model.conv1.weight, padding=1)


@pytest.mark.parametrize("inplace", [True, False])
def test_matches_manual_backward(inplace: bool) -> None:
    model = _small_cnn(inplace)
    x = _clip()
    g = guided_backprop(model, x, target=[1, 3])
    assert g.shape == (2, 2, 3, 3, 5, 5)
    for j, k in enumerate([1, 3]):
        torch.testing.assert_close(g[:, j], _manual_guided(model, x, k), rtol=1e-4, atol=1e-6)
    # and it is not the plain gradient
    xx = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(model(xx)[:, 1].sum(), xx)
    assert not torch.allclose(plain, g[:, 0], atol=1e-6)


def test_batched_targets_equal_single_runs() -> None:
    model = _small_cnn()
    x = _clip(n=3)
    batched = guided_backprop(model, x, target=[0, 2, 4])
    for j, k in enumerate([0, 2, 4]):
        torch.testing.assert_close(batched[:, j], guided_backprop(model, x, target=k)[:, 0])
    # topk: per-sample classes, equal to per-sample single runs with those indices
    logits = model(x)
    top = logits.topk(2, dim=1).indices
    g = guided_backprop(model, x, target="topk:2")
    per_sample = torch.tensor([[2, 0], [1, 1], [4, 3]])
    g2 = guided_backprop(model, x, target=per_sample)
    for n in range(3):
        for j in range(2):
            single = guided_backprop(model, x[n : n + 1], target=int(top[n, j]))
            torch.testing.assert_close(g[n, j], single[0, 0])
            single2 = guided_backprop(model, x[n : n + 1], target=int(per_sample[n, j]))
            torch.testing.assert_close(g2[n, j], single2[0, 0])
    # None = top1; a callable gets the model output
    torch.testing.assert_close(guided_backprop(model, x), g[:, :1])
    by_fn = guided_backprop(model, x, target=lambda out: out[:, 2] - out[:, 0])
    assert by_fn.shape == (3, 1, 3, 3, 5, 5)


def test_forward_output_identical_and_state_restored() -> None:
    model = _small_cnn()
    model.train()
    model.conv1.bias.requires_grad_(False)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    x = _clip()
    x_copy = x.clone()
    model.eval()
    before = model(x).detach()
    model.train()
    seen = []

    def target(out: torch.Tensor) -> torch.Tensor:
        seen.append(out.detach().clone())
        return out[:, 0]

    guided_backprop(model, x, target=target)
    assert torch.equal(seen[0], before)  # bit-identical forward under the guided mode
    assert all(m.training for m in model.modules())
    assert model.conv1.bias.requires_grad is False
    assert model.conv1.weight.requires_grad is True
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert model.conv1.weight.grad is None
    assert torch.equal(x, x_copy) and not x.requires_grad and x.grad is None
    model.eval()
    assert torch.equal(model(x).detach(), before)


def _hook_counts(model: nn.Module) -> list[int]:
    return [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    ]


def _plain_grad_c0(model: nn.Module) -> torch.Tensor:
    x = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x)[:, 0].sum(), x)
    return g.flatten()


@pytest.mark.parametrize("act", ["relu_inplace", "functional"])
def test_nothing_left_after_success_or_exception(act: str) -> None:
    model = Tiny(act)
    counts = _hook_counts(model)
    guided_backprop(model, X, target=0)
    assert _hook_counts(model) == counts
    assert torch._C._len_torch_function_stack() == 0
    torch.testing.assert_close(_plain_grad_c0(model), PLAIN_RELU_C0)  # the normal gradient

    model.fail = True
    with pytest.raises(RuntimeError, match="on purpose"):
        guided_backprop(model, X, target=0)
    model.fail = False
    assert _hook_counts(model) == counts
    assert torch._C._len_torch_function_stack() == 0
    torch.testing.assert_close(_plain_grad_c0(model), PLAIN_RELU_C0)

    def bad_target(out: torch.Tensor) -> torch.Tensor:
        raise KeyError("target failed on purpose")

    with pytest.raises(KeyError, match="on purpose"):
        guided_backprop(model, X, target=bad_target)
    with pytest.raises(VidcamError, match="out of range"):
        guided_backprop(model, X, target=9)
    assert _hook_counts(model) == counts
    assert torch._C._len_torch_function_stack() == 0
    torch.testing.assert_close(_plain_grad_c0(model), PLAIN_RELU_C0)
    assert all(p.grad is None for p in model.parameters())


def test_works_under_no_grad_and_for_images() -> None:
    with torch.no_grad():
        g = guided_backprop(Tiny("relu"), X, target=[0, 1])
    torch.testing.assert_close(_flat(g)[0], GUIDED_RELU)

    # (N, C, H, W): the same hand example as a 2D model -> (N, K, C, 1, H, W)
    model2d = nn.Sequential(nn.Conv2d(1, 2, (1, 2), bias=False), nn.ReLU(), nn.Flatten())
    model2d.append(nn.Linear(4, 2, bias=False))
    tiny = Tiny("relu")
    with torch.no_grad():
        model2d[0].weight.copy_(tiny.conv.weight[:, :, 0])
        model2d[3].weight.copy_(tiny.fc.weight)
    g2 = guided_backprop(model2d, X[:, :, 0], target=[0, 1])
    assert g2.shape == (1, 2, 1, 1, 1, 3)
    torch.testing.assert_close(_flat(g2)[0], GUIDED_RELU)


def test_bad_inputs_raise_vidcam_errors() -> None:
    model = Tiny("relu")
    with pytest.raises(VidcamError, match="float"):
        guided_backprop(model, X.long(), target=0)
    with pytest.raises(VidcamError, match="shape"):
        guided_backprop(model, X[0, 0], target=0)
    with pytest.raises(VidcamError, match="topk"):
        guided_backprop(model, X, target="best")
    with pytest.raises(VidcamError, match="model"):
        guided_backprop(lambda t: t, X, target=0)

    class Detached(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).detach()

    with pytest.raises(VidcamError, match="differentiabl"):
        guided_backprop(Detached(), X, target=0)


class Swish(nn.Module):  # a custom activation module (like pytorchvideo's)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class Mixed(nn.Module):
    def __init__(self, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.acts = nn.Sequential(nn.GELU(), nn.SiLU(), nn.Tanh(), Swish())
        self.relu = nn.ReLU() if relu else nn.Identity()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.acts(self.conv(x))).mean((2, 3, 4)))


def test_warning_lists_passed_through_activations() -> None:
    x = _clip(n=1, t=2, hw=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guided_backprop(Mixed(), x, target=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, GuidedBackpropWarning)]
    assert len(messages) == 1  # once per call, not once per module
    assert "unguided: gelu, sigmoid, silu, Swish, tanh (only ReLU" in messages[0]
    assert caught[0].filename == __file__  # points at the caller

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guided_backprop(Mixed(relu=False), x, target=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, GuidedBackpropWarning)]
    assert any("no ReLU" in m for m in messages)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an all-ReLU model warns nothing
        guided_backprop(_small_cnn(), x, target=0)


# ---------------------------------------------------------------------------------------------
# Guided Grad-CAM(++)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam++", "gradcam", "guided-gradcam++"])
def test_guided_cam_parts_and_product(method: str) -> None:
    model = _small_cnn()
    x = _clip()
    res = guided_cam(model, x, target="topk:2", layer="conv2", method=method)
    assert isinstance(res, GuidedExplanation)
    top = model(x).topk(2, dim=1).indices
    assert torch.equal(res.targets, top)
    # guided part = guided backprop for the same classes
    torch.testing.assert_close(res.guided, guided_backprop(model, x, target=top))
    # CAM part = the engine's normal (unguided) CAM for the same classes
    plain = method.removeprefix("guided-")
    cam = Explainer(model, layer="conv2", method=plain)(x, target=top)
    torch.testing.assert_close(res.cam.maps, cam.maps)
    assert res.cam.method == plain
    assert res.product.shape == (2, 2, 3, 3, 5, 5)
    torch.testing.assert_close(res.product, res.guided * res.cam.maps[:, :, None])


def test_guided_cam_callable_target_and_bad_method() -> None:
    model = _small_cnn()
    x = _clip()
    res = guided_cam(model, x, target=lambda out: out[:, 1], layer="conv2")
    assert res.targets is None
    torch.testing.assert_close(res.guided, guided_backprop(model, x, target=1))
    cam = Explainer(model, layer="conv2")(x, target=1)
    torch.testing.assert_close(res.cam.maps, cam.maps)
    with pytest.raises(VidcamError, match="method"):
        guided_cam(model, x, method="saliency")


# ---------------------------------------------------------------------------------------------
# normalize_per_clip
# ---------------------------------------------------------------------------------------------


def test_normalize_per_clip_literal_and_one_scale_for_all_frames() -> None:
    # C=1, T=2, H=1, W=2: frame 0 = [1, -1], frame 1 = [2, -2] (twice as strong)
    # mean 0, std = sqrt((1 + 1 + 4 + 4) / 4) = sqrt(2.5) = 1.58114
    # 0.5 + 0.1 * x / 1.58114: frame 0 = [0.563246, 0.436754], frame 1 = [0.626491, 0.373509]
    x = torch.tensor([[[[1.0, -1.0]], [[2.0, -2.0]]]])
    out = normalize_per_clip(x)
    assert out.shape == (2, 1, 2, 1)
    expected = torch.tensor([[0.563246, 0.436754], [0.626491, 0.373509]])
    torch.testing.assert_close(out[:, 0, :, 0], expected, rtol=0, atol=1e-6)
    # per-frame normalisation would make both frames identical; per-clip keeps frame 1 twice
    # as far from grey
    torch.testing.assert_close(out[1] - 0.5, 2 * (out[0] - 0.5))


def test_normalize_per_clip_properties() -> None:
    g = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float32)
    out = normalize_per_clip(g)
    assert out.shape == (4, 5, 6, 3) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # invariant to the gradient's scale (no absolute epsilon), also for tiny gradients
    torch.testing.assert_close(normalize_per_clip(g * 1e-9), out)
    # channels stay in place: channel c of the output is channel c of the input
    torch.testing.assert_close(out.permute(3, 0, 1, 2), normalize_per_clip(g).permute(3, 0, 1, 2))
    rgb = torch.zeros(3, 1, 1, 4)
    rgb[0] = 1.0
    rgb[2] = -1.0
    px = normalize_per_clip(rgb)[0, 0, 0]
    assert px[0] > 0.5 and px[2] < 0.5 and abs(float(px[1]) - 0.5) < 1e-6
    # outliers saturate: one value 100x the rest clips to 1
    spike = torch.zeros(1, 2, 10, 10)
    spike[0, 1, 0, 0] = 100.0
    assert float(normalize_per_clip(spike)[1, 0, 0, 0]) == 1.0
    # a constant clip is mid grey
    assert torch.equal(
        normalize_per_clip(torch.full((3, 2, 2, 2), 4.0)), torch.full((2, 2, 2, 3), 0.5)
    )
    with pytest.raises(VidcamError, match="C, T, H, W"):
        normalize_per_clip(torch.zeros(1, 3, 2, 2, 2))
