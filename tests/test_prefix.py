"""The gradient-free prefix: no autograd before the explained layer(s), same numbers as before.

Every equivalence test compares the engine against its own full-recording path
(``Explainer._full_graph = True``: the whole forward under autograd, as before the prefix).
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import vidcam
from vidcam import VidcamError
from vidcam.models.registry import get_spec


class Small3D(nn.Module):
    """Conv3d -> BN -> ReLU stages, then pooling + linear."""

    def __init__(self, inplace: bool = True, classes: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(inplace)
        )
        self.block = nn.Sequential(
            nn.Conv3d(4, 8, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(8), nn.ReLU(inplace)
        )
        self.head = nn.Sequential(nn.Conv3d(8, 8, 1), nn.ReLU(inplace))
        self.fc = nn.Linear(8, classes)
        self.fail = False  # raise in the head, after the explained layers ran

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.block(self.stem(x)))
        if self.fail:
            raise RuntimeError("boom after the layer")
        return self.fc(h.mean((2, 3, 4)))


class TwoBranch(nn.Module):
    """Two parallel branches fused after both ran (SlowFast-like), for multi-layer tests."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 4, 3, padding=1)
        self.a = nn.Sequential(nn.Conv3d(4, 6, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv3d(4, 6, 3, stride=(1, 2, 2), padding=1), nn.ReLU())
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.fc(torch.cat([self.a(s).mean((2, 3, 4)), self.b(s).mean((2, 3, 4))], 1))


class GradModeInside(nn.Module):
    """Sets its own grad mode around the explained layer, which turns recording off again after
    it when the caller's mode was off (the fallback case)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            a = self.conv(x)
        return self.fc(a.relu().mean((2, 3, 4)))


def make(seed: int = 0, **kw) -> Small3D:
    torch.manual_seed(seed)
    model = Small3D(**kw)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm3d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return model.eval()


def clip(n: int = 2, shape: tuple[int, int, int] = (4, 8, 8), seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, *shape, generator=g)


def both(model: nn.Module, x: torch.Tensor, target=None, **kw):
    """(prefix result, full-recording result) of the same explainer configuration."""
    new = vidcam.Explainer(model, **kw)
    old = vidcam.Explainer(model, **kw)
    old._full_graph = True
    return new(x, target), old(x, target)


def assert_same(a: vidcam.Explanation, b: vidcam.Explanation, tol: float = 1e-5) -> None:
    assert a.layers == b.layers and a.method == b.method
    torch.testing.assert_close(a.maps, b.maps, rtol=tol, atol=tol)
    for ra, rb in zip(a.raw_per_layer, b.raw_per_layer, strict=True):
        torch.testing.assert_close(ra, rb, rtol=tol, atol=tol * ra.abs().max().item())
    for wa, wb in zip(a.weights_per_layer, b.weights_per_layer, strict=True):
        torch.testing.assert_close(wa, wb, rtol=tol, atol=tol * wa.abs().max().item())
    torch.testing.assert_close(a.target_scores, b.target_scores, rtol=tol, atol=tol)
    if a.targets is not None:
        assert torch.equal(a.targets, b.targets)
        torch.testing.assert_close(a.logits, b.logits, rtol=tol, atol=tol)


def requires_grad_probe(module: nn.Module) -> tuple[list[bool], object]:
    """Record, for every call of ``module``, whether its output requires grad."""
    seen: list[bool] = []

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        seen.append((out if isinstance(out, torch.Tensor) else out[0]).requires_grad)

    handle = module.register_forward_hook(hook)
    return seen, handle


# --------------------------------------------------------------------------- same numbers


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "gradcam"},
        {"method": "gradcam++"},
        {"method": "gradcam++", "softmax": True},
        {"method": "gradcam++", "pooling": "frame", "gradients": "all"},
    ],
    ids=["gradcam", "gradcam++", "softmax", "frame"],
)
def test_tiny_model_same_maps_and_weights(kw):
    res, ref = both(make(), clip(), "topk:3", layer="block", **kw)
    assert_same(res, ref)


def test_callable_target_and_images():
    model = make()
    res, ref = both(model, clip(), lambda out: out[:, 1] - out[:, 4], layer="block")
    assert_same(res, ref)
    conv2d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    res, ref = both(conv2d.eval(), torch.randn(2, 3, 8, 8), 2, layer="0")
    assert_same(res, ref)


@pytest.mark.parametrize(
    "layers",
    [["stem", "block"], ["block", "block.0"], ["block.0", "block"], ["head", "stem"]],
    ids=["after", "inside", "outer-second", "reversed-order"],
)
def test_layers_that_feed_each_other_are_exact_without_fallback(layers, caplog):
    caplog.set_level(logging.DEBUG, logger="vidcam")
    res, ref = both(make(), clip(), "topk:2", layer=layers)
    assert_same(res, ref)
    assert not any("falling back" in r.getMessage() for r in caplog.records)


def test_parallel_layers_are_exact():
    torch.manual_seed(3)
    model = TwoBranch().eval()
    res, ref = both(model, clip(), "topk:2", layer=["a", "b"])
    assert_same(res, ref)
    stem_seen, handle = requires_grad_probe(model.stem)
    try:
        vidcam.Explainer(model, ["a", "b"])(clip())
    finally:
        handle.remove()
    assert stem_seen == [False]


def test_inplace_relu_after_the_layer_cannot_corrupt_the_activation():
    # BN's output goes straight into ReLU(inplace=True): the captured activation must keep its
    # negative values, exactly as with out-of-place ReLUs
    res = vidcam.Explainer(make(inplace=True), "block.1")(clip(), "topk:2")
    ref = vidcam.Explainer(make(inplace=False), "block.1")(clip(), "topk:2")
    assert_same(res, ref)


def test_frozen_model():
    model = make()
    for p in model.parameters():
        p.requires_grad_(False)
    res, ref = both(model, clip(), "topk:2", layer="block")
    assert_same(res, ref)
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_clip_that_requires_grad():
    x = clip().requires_grad_(True)
    res, ref = both(make(), x, "topk:2", layer="block")
    assert_same(res, ref)
    assert x.grad is None


# --------------------------------------------------------------------------- no graph before


def test_prefix_records_no_graph_and_the_rest_records():
    model = make()
    stem_seen, h1 = requires_grad_probe(model.stem[0])
    head_seen, h2 = requires_grad_probe(model.head[0])
    try:
        vidcam.Explainer(model, "block")(clip())
        assert stem_seen == [False] and head_seen == [True]
        old = vidcam.Explainer(model, "block")
        old._full_graph = True
        old(clip())
        assert stem_seen == [False, True]  # the old path recorded the stem
    finally:
        h1.remove()
        h2.remove()


def test_guided_backprop_still_records_its_whole_forward():
    from vidcam.cam.guided import guided_backprop, guided_cam

    model = make()
    seen, handle = requires_grad_probe(model.stem[0])
    try:
        g = guided_backprop(model, clip(), target=2)
        res = guided_cam(model, clip(), target=2, layer="block")
    finally:
        handle.remove()
    assert seen[0] is True  # guided backprop: the gradient to the clip needs the stem's graph
    assert g.abs().sum() > 0 and res.product.shape == (2, 1, 3, 4, 8, 8)


# --------------------------------------------------------------------------- grad mode


@pytest.mark.parametrize("enabled", [True, False])
def test_grad_mode_restored_after_success_and_errors(enabled):
    model = make()
    ex = vidcam.Explainer(model, "block")
    with torch.set_grad_enabled(enabled):
        ex(clip())
        assert torch.is_grad_enabled() is enabled
        model.fail = True  # raises after the explained layer switched recording on
        with pytest.raises(RuntimeError, match="boom"):
            ex(clip())
        assert torch.is_grad_enabled() is enabled
        model.fail = False
        with pytest.raises(RuntimeError, match="channels"):  # raises before any layer
            ex(torch.randn(1, 2, 4, 8, 8))
        assert torch.is_grad_enabled() is enabled
        model.unused = nn.Conv3d(3, 3, 1)  # never runs: the whole forward without autograd
        with pytest.raises(VidcamError, match="never reached"):
            vidcam.Explainer(model, "unused")(clip())
        assert torch.is_grad_enabled() is enabled


def test_inference_mode_is_a_clear_error():
    model = make()
    with torch.inference_mode():
        with pytest.raises(VidcamError, match="inference_mode"):
            vidcam.explain(model, clip(), layer="block")
        assert torch.is_inference_mode_enabled()
    # a clip made in inference mode, explained outside it, is fine
    with torch.inference_mode():
        x = clip()
    res, ref = both(model, x, "topk:2", layer="block")
    assert_same(res, ref)


def test_model_built_in_inference_mode_is_a_clear_error():
    with torch.inference_mode():
        model = make()
    with pytest.raises(VidcamError, match="inference tensors"):
        vidcam.explain(model, clip(), layer="block")
    assert torch.is_grad_enabled()


def test_model_that_switches_grad_off_falls_back_to_full_recording(caplog):
    caplog.set_level(logging.DEBUG, logger="vidcam")
    torch.manual_seed(0)
    model = GradModeInside().eval()
    res, ref = both(model, clip(), "topk:2", layer="conv")
    assert_same(res, ref)
    assert any("falling back" in r.getMessage() for r in caplog.records)
    assert torch.is_grad_enabled()


# --------------------------------------------------------------------------- registry models


def _registry(name: str) -> tuple[nn.Module, object]:
    spec = get_spec(name)
    torch.manual_seed(0)
    return spec.build(pretrained=False, **spec.test_arch), spec


REGISTRY = {  # name: (a module before the explained layers, one after them)
    "r3d_18": ("stem", "fc"),
    "slowfast_r50": ("net.blocks.0", "net.blocks.6"),
    "mvit_base_16x4": ("patch_embed", "head"),
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_models_same_maps_and_weights(name):
    model, spec = _registry(name)
    x = clip(1, spec.test_input, seed=2)
    before, after = (model.get_submodule(m) for m in REGISTRY[name])
    before_seen, h1 = requires_grad_probe(before)
    after_seen, h2 = requires_grad_probe(after)
    try:
        res, ref = both(model, x, "topk:2", layer=list(spec.layers), reshape=spec.reshape)
    finally:
        h1.remove()
        h2.remove()
    assert_same(res, ref, tol=1e-4)
    assert len(res.raw_per_layer) == len(spec.layers)
    # first call: the prefix explainer, second: full recording
    assert before_seen == [False, True] and after_seen == [True, True]
