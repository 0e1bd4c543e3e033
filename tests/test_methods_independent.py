"""The new methods against independent computations on a small random Conv3d net.

A and g come from running the two halves of the net by hand and ``torch.autograd.grad`` in the
test; Score-CAM's weights from explicit masked forwards, one channel at a time; Eigen-CAM's
direction from ``eigh`` of MᵀM. Also: all methods from ONE forward and ONE backward, the
gradient-free methods record no autograd, and the model comes back as it was.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vidcam
from vidcam.cam import explainer as explainer_module
from vidcam.cam.explainer import Explainer
from vidcam.errors import VidcamError

GRADIENT = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam")


def net() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv3d(4, 5, 3, stride=2, padding=1),
        nn.ReLU(),  # "3": the explained layer, (N, 5, 2, 3, 3)
        nn.Flatten(),
        nn.Linear(90, 6),
    )
    with torch.no_grad():  # channel 4 is dead: constant zero after the ReLU
        model[2].weight[4].zero_()
        model[2].bias[4] = -1.0
    return model


def clip(n: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 3, 4, 6, 6)


def a_and_g(model: nn.Sequential, x: torch.Tensor, classes: torch.Tensor):
    """A at model[3] (N, C, t, h, w) and g = ∂S_{classes[:, k]}/∂A as (K, N, C, t, h, w)."""
    a = model[:4](x).detach().requires_grad_(True)
    s = model[4:](a)
    gs = [
        torch.autograd.grad(s.gather(1, classes[:, k : k + 1]).sum(), a, retain_graph=True)[0]
        for k in range(classes.shape[1])
    ]
    return a.detach(), torch.stack(gs), s.detach()


def test_gradient_methods_match_autograd_formulas():
    model, x = net(), clip()
    res = Explainer(model, "3", method=GRADIENT).explain_all(x, target="topk:2")
    a, g, _ = a_and_g(model, x, res["gradcam"].targets)
    sum_a = a.sum(dim=(2, 3, 4), keepdim=True)
    expected = {
        "layercam": (g.clamp_min(0) * a).sum(2),
        "hirescam": (g * a).sum(2),
        "xgradcam": torch.einsum(
            "knc,ncthw->knthw",
            ((g * a).sum(dim=(3, 4, 5)) / sum_a[..., 0, 0, 0].clamp_min(1e-30)).nan_to_num(),
            a,
        ),
        "gradcam": torch.einsum("knc,ncthw->knthw", g.mean(dim=(3, 4, 5)), a),
    }
    for m, want in expected.items():
        want = want.clamp_min(0).transpose(0, 1)  # (N, K, t, h, w)
        torch.testing.assert_close(res[m].first_layer_raw, want, atol=1e-6, rtol=1e-5, msg=m)
    # every Explanation of the call saw the same forward and targets
    for m in GRADIENT:
        assert torch.equal(res[m].logits, res["gradcam"].logits)
        assert torch.equal(res[m].targets, res["gradcam"].targets)


def test_explain_all_equals_single_calls():
    model, x = net(), clip()
    many = Explainer(model, "3", method=(*GRADIENT, "eigencam")).explain_all(x, target=[1, 3])
    for m in (*GRADIENT, "eigencam"):
        one = vidcam.explain(model, x, target=[1, 3], layer="3", method=m)
        torch.testing.assert_close(many[m].first_layer_raw, one.first_layer_raw, msg=m)
        torch.testing.assert_close(many[m].maps, one.maps, msg=m)


def test_all_gradient_methods_cost_one_forward_and_one_backward(monkeypatch):
    model, x = net(), clip()
    forwards, backwards = [], []
    handle = model.register_forward_hook(lambda *_: forwards.append(1))
    real = explainer_module.grads_per_target

    def counted(*args, **kwargs):
        backwards.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(explainer_module, "grads_per_target", counted)
    try:
        res = Explainer(model, "3", method=(*GRADIENT, "eigencam")).explain_all(x)
    finally:
        handle.remove()
    assert len(res) == 6 and forwards == [1] and backwards == [1]


def test_scorecam_weights_against_masked_forwards_one_by_one():
    model, x = net(), clip()
    res = vidcam.explain(model, x, target=[2, 5], layer="3", method="scorecam", batch_size=3)
    a = model[:4](x).detach()
    n, c = a.shape[:2]
    want = torch.zeros(n, 2, c)
    with torch.no_grad():
        for s in range(n):
            for k in range(c):
                up = F.interpolate(
                    a[s : s + 1, k : k + 1], size=(4, 6, 6), mode="trilinear", align_corners=False
                )
                lo, hi = up.min(), up.max()
                if hi - lo <= 0:
                    continue  # constant channel: skipped, weight 0
                probs = model(x[s : s + 1] * (up - lo) / (hi - lo)).softmax(1)[0]
                want[s, :, k] = probs[[2, 5]]
    got = res.weights_per_layer[0][..., 0]  # (N, K, C)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    assert (got[:, :, 4] == 0).all()  # the dead channel
    # channels 0..3 scored in batches of 3: [0,1,2], [3] per sample (the dead one skipped)
    assert res.forwards == 1 + 2 * n and res.masked_clips == 4 * n
    raw = torch.einsum("nkc,ncthw->nkthw", want, a).clamp_min(0)
    torch.testing.assert_close(res.first_layer_raw, raw, atol=1e-6, rtol=1e-5)


def test_scorecam_baseline_subtracts_the_zero_clip_score():
    model, x = net(), clip(1)
    plain = vidcam.explain(model, x, target=2, layer="3", method="scorecam")
    cic = vidcam.explain(model, x, target=2, layer="3", method="scorecam", scorecam_baseline=True)
    with torch.no_grad():
        base = model(torch.zeros_like(x)).softmax(1)[0, 2]
    w, w_cic = plain.weights_per_layer[0][0, 0, :, 0], cic.weights_per_layer[0][0, 0, :, 0]
    torch.testing.assert_close(w_cic[:4], w[:4] - base)
    assert w_cic[4] == 0  # skipped channels stay 0


def test_eigencam_against_eigh():
    model, x = net(), clip()
    res = vidcam.explain(model, x, layer="3", method="eigencam")
    a = model[:4](x).detach().double()
    for s in range(a.shape[0]):
        m = a[s].flatten(1).T  # (L, C)
        _, vecs = torch.linalg.eigh(m.T @ m)
        v = vecs[:, -1]  # largest eigenvalue
        if ((m @ v) * m.mean(1)).sum() < 0:
            v = -v
        torch.testing.assert_close(
            res.weights_per_layer[0][s, 0, :, 0].double(), v, atol=1e-5, rtol=0
        )
        want = (m @ v).clamp_min(0).reshape(a.shape[2:])
        torch.testing.assert_close(res.first_layer_raw[s, 0].double(), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["eigencam", "scorecam"])
def test_gradient_free_methods_record_no_autograd(method):
    model, x = net(), clip(1)
    seen = []
    handle = model[2].register_forward_hook(lambda *_: seen.append(torch.is_grad_enabled()))
    model.train()
    model[0].weight.requires_grad_(False)
    try:
        res = vidcam.explain(model, x, layer="3", method=method)
    finally:
        handle.remove()
    assert seen and not any(seen)
    assert res.maps.shape == (1, 1, 4, 6, 6)
    assert all(m.training for m in model.modules())  # restored
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_errors_name_the_argument():
    model = net()
    with pytest.raises(VidcamError, match="gradients"):
        Explainer(model, method="layercam", gradients="all")
    with pytest.raises(VidcamError, match="pooling"):
        Explainer(model, method="eigencam", pooling="frame")
    with pytest.raises(VidcamError, match="guided"):
        Explainer(model, method="guided-gradcam")
    with pytest.raises(VidcamError, match="batch_size"):
        Explainer(model, method="scorecam", batch_size=0)
    with pytest.raises(VidcamError, match="explain_all"):
        Explainer(model, "3", method=("gradcam", "layercam"))(clip(1))
    with pytest.raises(VidcamError, match="class indices"):
        Explainer(model, "3", method="scorecam")(clip(1), target=lambda out: out[:, 0])
