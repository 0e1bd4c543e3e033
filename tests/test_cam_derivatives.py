"""The closed forms against the paper's general formula (eq. 10) with true derivatives.

For a head that is piecewise linear after the explained layer, autograd gives the exact
elementwise 2nd and 3rd derivatives of Y = exp(S^c) and of Y = softmax(S)^c with respect to
each activation A_i. alpha = d2 / (2 d2 + (Σ A) d3) built from them must equal vidcam's alpha,
and the weights Σ alpha·relu(dY/dA) vidcam's channel weights.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vidcam
from vidcam.cam import formulas

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def float64_default():
    """Exact comparisons on a tiny problem; the default dtype is restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def make_head(seed: int, channels: int = 2, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv3d(channels, 3, kernel_size=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool3d((1, 2, 1)),
        nn.Flatten(),
        nn.Linear(6, classes),
    ).double()


def diag_derivatives(y_fn, acts: torch.Tensor):
    """Elementwise dY/dA_i, d²Y/dA_i², d³Y/dA_i³ by autograd (one element at a time)."""
    a = acts.detach().clone().requires_grad_(True)
    y = y_fn(a)
    (g1,) = torch.autograd.grad(y, a, create_graph=True)
    flat1 = g1.reshape(-1)
    d2 = torch.zeros(a.numel(), dtype=a.dtype)
    d3 = torch.zeros(a.numel(), dtype=a.dtype)
    for i in range(a.numel()):
        (h,) = torch.autograd.grad(flat1[i], a, create_graph=True)
        h_i = h.reshape(-1)[i]
        d2[i] = h_i.detach()
        if h_i.requires_grad:
            (t,) = torch.autograd.grad(h_i, a, retain_graph=True)
            d3[i] = t.reshape(-1)[i]
    return g1.detach(), d2.reshape(a.shape), d3.reshape(a.shape)


def eq10_alpha(acts, d2, d3):
    sums = acts.sum(dim=(-3, -2, -1), keepdim=True)
    den = 2 * d2 + sums * d3
    return torch.where(den != 0, d2 / torch.where(den != 0, den, 1.0), 0.0)


class Split(nn.Module):
    """feat(x) = A (identity layer we explain), then the head."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.feat = nn.Identity()
        self.head = head

    def forward(self, x):
        return self.head(self.feat(x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exp_closed_form_equals_true_derivatives(seed):
    head = make_head(seed)
    torch.manual_seed(100 + seed)
    acts = torch.rand(1, 2, 2, 2, 2) + 0.1  # positive activations, as after a ReLU
    c = int(head(acts).argmax())
    g, d2, d3 = diag_derivatives(lambda a: torch.exp(head(a)[0, c]), acts)
    expected_alpha = eq10_alpha(acts, d2, d3)
    # gradient of the raw score S (what vidcam differentiates)
    a = acts.clone().requires_grad_(True)
    (g_s,) = torch.autograd.grad(head(a)[0, c], a)
    ours = formulas.gradcampp_alpha(acts, g_s[None], "volume")[0]
    torch.testing.assert_close(ours, expected_alpha, rtol=1e-9, atol=1e-12)
    assert (d2 != 0).any() and (d3 != 0).any()  # the test is not vacuous
    # and through the whole explainer: w = Σ alpha relu(dY/dA) = exp(S) Σ alpha relu(g)
    res = vidcam.explain(Split(head), acts, target=c, layer="feat")
    s_c = head(acts)[0, c].detach()
    w_true = (expected_alpha * g.clamp_min(0)).sum(dim=(-3, -2, -1))[0]
    torch.testing.assert_close(
        res.weights_per_layer[0][0, 0, :, 0].double() * torch.exp(s_c),
        w_true,
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("seed", [0, 3])
def test_softmax_closed_form_equals_true_derivatives(seed):
    head = make_head(seed, classes=5)
    torch.manual_seed(200 + seed)
    acts = torch.rand(1, 2, 2, 2, 2) + 0.1
    logits = head(acts)
    for c in range(5):
        g1, d2, d3 = diag_derivatives(lambda a, c=c: torch.softmax(head(a), dim=1)[0, c], acts)
        expected_alpha = eq10_alpha(acts, d2, d3)
        w_true = (expected_alpha * g1.clamp_min(0)).sum(dim=(-3, -2, -1))[0]
        res = vidcam.explain(Split(head), acts, target=c, layer="feat", softmax=True)
        torch.testing.assert_close(
            res.weights_per_layer[0][0, 0, :, 0].double(), w_true, rtol=1e-9, atol=1e-12
        )
        assert res.method == "gradcam++/softmax"
    assert logits.shape == (1, 5)


def test_softmax_moments_with_many_classes_chunked(monkeypatch):
    """Chunked class batches give the same weights as one batch."""
    from vidcam.cam import backward

    head = make_head(5, classes=7)
    acts = torch.rand(2, 2, 2, 2, 2) + 0.1
    full = vidcam.explain(Split(head), acts, target="topk:2", layer="feat", softmax=True)
    monkeypatch.setattr(backward, "CLASS_CHUNK_ELEMENTS", 40)  # forces chunks of 1 class
    chunked = vidcam.explain(Split(head), acts, target="topk:2", layer="feat", softmax=True)
    torch.testing.assert_close(chunked.weights_per_layer[0], full.weights_per_layer[0])
