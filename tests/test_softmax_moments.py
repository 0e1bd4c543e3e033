"""class_moments (softmax variant's Ḡ, V, M3) against an independent per-class computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidcam.cam import backward
from vidcam.cam.backward import class_moments
from vidcam.errors import VidcamError


def reference(output: torch.Tensor, acts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One autograd.grad per (sample, class), moments by their two-pass definition."""
    n, m = output.shape
    probs = output.detach().softmax(1)
    mean, var, third = (torch.zeros_like(acts) for _ in range(3))
    for i in range(n):
        g = torch.stack(
            [torch.autograd.grad(output[i, j], acts, retain_graph=True)[0][i] for j in range(m)]
        )  # (M, C, t, h, w)
        p = probs[i].reshape(m, 1, 1, 1, 1)
        mean[i] = (p * g).sum(0)
        d = g - mean[i]
        var[i] = (p * d * d).sum(0)
        third[i] = (p * d**3).sum(0)
    return mean, var, third


class NonlinearHead(nn.Module):
    """conv → A → per-position conv-ReLU (X3D-like) → pool → Linear-tanh-Linear."""

    def __init__(self, classes: int = 7) -> None:
        super().__init__()
        self.stem = nn.Conv3d(2, 3, 3, padding=1)
        self.pre = nn.Conv3d(3, 5, 1)
        self.fc1 = nn.Linear(5, 6)
        self.fc2 = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stem(x)
        self.acts = a
        z = torch.relu(self.pre(a)).mean(dim=(2, 3, 4))
        return self.fc2(torch.tanh(self.fc1(z)))


@pytest.fixture
def model() -> NonlinearHead:
    torch.manual_seed(0)
    return NonlinearHead().double()


@pytest.mark.parametrize("chunk_elements", [1 << 25, 100])  # one chunk; one class per chunk
def test_nonlinear_head_matches_per_class_reference(model, monkeypatch, chunk_elements) -> None:
    monkeypatch.setattr(backward, "CLASS_CHUNK_ELEMENTS", chunk_elements)
    x = torch.randn(2, 2, 3, 4, 4, dtype=torch.float64)
    out = model(x)
    got = class_moments(out, [model.acts])[0]
    want = reference(out, model.acts)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float64
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-14)
    assert want[1].min() >= 0 and want[1].max() > 1e-7  # the classes really differ
    assert not torch.allclose(want[1][..., 0, 0, 0], want[1][..., 1, 1, 1])  # per position


def test_linear_head_literal_moments() -> None:
    """S = W·mean(A) + b: G_j = W_j / P at every position, so the moments are W's p-moments."""
    torch.manual_seed(1)
    acts = torch.randn(1, 2, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[4.0, -8.0], [0.0, 12.0], [-4.0, 4.0]], dtype=torch.float64)
    out = acts.mean(dim=(2, 3, 4)) @ w.T + torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    mean, var, third = class_moments(out, [acts])[0]
    p = out.detach().softmax(1)[0]  # (3,)
    g = w / 4  # P = 4 positions
    g_bar = p @ g
    assert torch.allclose(mean[0, :, 0, 0, 0], g_bar) and torch.allclose(mean, mean[..., :1, :1])
    torch.testing.assert_close(var[0, :, 0, 0, 0], p @ (g - g_bar) ** 2, rtol=1e-12, atol=0)
    torch.testing.assert_close(third[0, :, 0, 0, 0], p @ (g - g_bar) ** 3, rtol=1e-12, atol=0)
    # channel 0 by hand: G = (1, 0, -1), Ḡ = p0 - p2
    p0, p1, p2 = p.tolist()
    gb = p0 - p2
    expect = p0 * (1 - gb) ** 2 + p1 * gb**2 + p2 * (1 + gb) ** 2
    assert abs(var[0, 0, 0, 0, 0].item() - expect) < 1e-12


def test_float32_matches_float64_reference(model) -> None:
    x = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64)
    want = reference(model(x), model.acts)
    m32 = model.float()
    got = class_moments(m32(x.float()), [m32.acts])[0]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-6 * w.abs().max().item())


def test_unused_tensor_gives_zero_moments(model) -> None:
    x = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64)
    out = model(x)
    stray = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    got_a, got_stray = class_moments(out, [model.acts, stray])
    for t in got_stray:
        assert t.shape == (1, 3) and not t.any()
    for g, w in zip(got_a, reference(out, model.acts), strict=True):
        torch.testing.assert_close(g, w)


def test_layer_without_batch_axis_is_an_error(model) -> None:
    x = torch.randn(2, 2, 3, 4, 4, dtype=torch.float64)
    out = model(x)
    with pytest.raises(VidcamError, match="batch axis"):
        class_moments(out, [model.acts.flatten(0, 1)])
