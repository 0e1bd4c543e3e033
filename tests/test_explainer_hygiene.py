"""Hooks, model state, targets and errors of the explainer."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import vidcam
from vidcam import VidcamError


class Small3D(nn.Module):
    """Conv3d -> BN -> ReLU(inplace) stages, then pooling + linear."""

    def __init__(self, inplace: bool = True, classes: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(inplace)
        )
        self.block = nn.Sequential(
            nn.Conv3d(4, 8, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(8), nn.ReLU(inplace)
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(self.block(self.stem(x))).flatten(1)))


def make(seed: int = 0, **kw) -> Small3D:
    torch.manual_seed(seed)
    m = Small3D(**kw)
    with torch.no_grad():  # non-trivial BN statistics
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm3d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return m


def clip(n: int = 2, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(n, 3, 4, 8, 8)


def hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def state(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "tensors": {k: v.clone() for k, v in model.state_dict().items()},
    }


def assert_same_state(a: dict, b: dict) -> None:
    assert a["training"] == b["training"]
    assert a["requires_grad"] == b["requires_grad"]
    for ga, gb in zip(a["grads"], b["grads"], strict=True):
        assert (ga is None and gb is None) or torch.equal(ga, gb)
    for k in a["tensors"]:
        assert torch.equal(a["tensors"][k], b["tensors"][k]), k


def test_model_comes_back_exactly_after_success():
    model = make()
    model.train()  # user left it training: BN stats must not move, mode must come back
    model.stem[0].weight.requires_grad_(False)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 3.0)
    before = state(model)
    x = clip()
    x_before = x.clone()
    vidcam.explain(model, x, target="topk:2", layer="block")
    assert_same_state(before, state(model))
    assert hook_count(model) == 0
    assert torch.equal(x, x_before) and not x.requires_grad


def test_hooks_removed_when_target_raises():
    model = make()
    before = state(model)

    def bad_target(out):
        raise RuntimeError("boom in target")

    with pytest.raises(RuntimeError, match="boom in target"):
        vidcam.explain(model, clip(), target=bad_target, layer="block")
    assert hook_count(model) == 0
    assert_same_state(before, state(model))


def test_hooks_removed_when_forward_raises():
    class Exploding(Small3D):
        def forward(self, x):
            self.block(self.stem(x))
            raise ValueError("forward failed")

    torch.manual_seed(0)
    model = Exploding()
    model.train()
    with pytest.raises(ValueError, match="forward failed"):
        vidcam.explain(model, clip(), layer="block")
    assert hook_count(model) == 0
    assert all(m.training for m in model.modules())


def test_k_targets_equal_k_single_runs():
    model = make()
    x = clip()
    for method in ("gradcam", "gradcam++"):
        multi = vidcam.explain(model, x, target=[4, 0, 2], layer="block", method=method)
        for k, c in enumerate([4, 0, 2]):
            single = vidcam.explain(model, x, target=c, layer="block", method=method)
            torch.testing.assert_close(multi.first_layer_raw[:, k], single.first_layer_raw[:, 0])
            torch.testing.assert_close(multi.maps[:, k], single.maps[:, 0])


def test_per_sample_targets_and_topk():
    model = make()
    x = clip()
    res = vidcam.explain(model, x, target="topk:3", layer="block")
    expected = res.logits.topk(3, dim=1).indices
    assert torch.equal(res.targets, expected)
    per = vidcam.explain(model, x, target=expected, layer="block")
    torch.testing.assert_close(per.maps, res.maps)
    torch.testing.assert_close(res.target_scores, res.logits.gather(1, expected))


def test_inplace_relu_model_matches_out_of_place():
    x = clip()
    for layer in ("block", "block.1", "stem"):
        a = vidcam.explain(make(inplace=True), x, target=[1, 3], layer=layer)
        b = vidcam.explain(make(inplace=False), x, target=[1, 3], layer=layer)
        torch.testing.assert_close(a.first_layer_raw, b.first_layer_raw)
        torch.testing.assert_close(a.logits, b.logits)


def test_explained_logits_equal_plain_eval_forward():
    model = make()
    x = clip()
    res = vidcam.explain(model, x, layer="block")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(res.logits, model(x))
    torch.testing.assert_close(res.probs, model(x).softmax(1))


def test_frozen_model_works():
    model = make()
    for p in model.parameters():
        p.requires_grad_(False)
    res = vidcam.explain(model, clip(), layer="block")
    ref = vidcam.explain(make(), clip(), layer="block")
    torch.testing.assert_close(res.maps, ref.maps)
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.filterwarnings("ignore:the map at layer")
def test_callable_target_is_linear_for_gradcam():
    model = make()
    x = clip()
    diff = vidcam.explain(
        model, x, target=lambda out: out[:, 1] - out[:, 2], layer="block", method="gradcam"
    )
    both = vidcam.explain(model, x, target=[1, 2], layer="block", method="gradcam")
    w = both.weights_per_layer[0]
    torch.testing.assert_close(diff.weights_per_layer[0][:, 0], w[:, 0] - w[:, 1])
    assert diff.targets is None
    assert diff.target_scores.shape == (2, 1)


def test_zero_gradient_map_is_zeros_with_warning():
    model = make()
    with torch.no_grad():
        model.fc.weight.zero_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = vidcam.explain(model, clip(), layer="block")
    assert torch.equal(res.maps, torch.zeros_like(res.maps))
    assert not torch.isnan(res.maps).any()
    assert any("constant" in str(w.message) for w in caught)


def test_default_layer_known_and_traced():
    import torchvision

    r3d = torchvision.models.video.r3d_18(num_classes=5)
    res = vidcam.explain(r3d, torch.randn(1, 3, 4, 32, 32))
    assert res.layers == ("layer4",)
    # unknown model: the last conv-containing module returning a volume, widened to its block
    res = vidcam.explain(make(), clip())
    assert res.layers == ("block",)


def test_image_model_is_t_of_one():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    x = torch.randn(2, 3, 6, 6)
    res = vidcam.explain(model, x, layer="1", target=[0, 2])
    assert res.maps.shape == (2, 2, 1, 6, 6)
    assert res.first_layer_raw.shape == (2, 2, 1, 6, 6)
    # the same numbers as the 5D path on x[:, :, None] with the 2D layers replaced by their
    # 3D equivalents (kernel 1 in time): an independent computation of the same CAM
    conv3 = nn.Conv3d(3, 4, (1, 3, 3), padding=(0, 1, 1))
    with torch.no_grad():
        conv3.weight.copy_(model[0].weight[:, :, None])
        conv3.bias.copy_(model[0].bias)
    model3 = nn.Sequential(conv3, nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), model[4])
    res3 = vidcam.explain(model3, x[:, :, None], layer="1", target=[0, 2])
    torch.testing.assert_close(res.logits, res3.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res.first_layer_raw, res3.first_layer_raw, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(res.maps, res3.maps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        res.weights_per_layer[0], res3.weights_per_layer[0], rtol=1e-4, atol=1e-9
    )


def test_multi_layer_maps_are_fused():
    model = make()
    x = clip()
    fused = vidcam.explain(model, x, layer=["stem", "block"], target=2)
    a = vidcam.explain(model, x, layer="stem", target=2).maps
    b = vidcam.explain(model, x, layer="block", target=2).maps
    mean = (a + b) / 2
    flat = mean.flatten(2)
    lo, hi = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
    torch.testing.assert_close(fused.maps, ((flat - lo) / (hi - lo)).reshape(mean.shape))
    assert fused.layers == ("stem", "block")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip": torch.randn(4, 8, 8)}, "clip: expected shape"),
        ({"clip": torch.zeros(1, 3, 4, 8, 8, dtype=torch.uint8)}, "float tensor"),
        ({"layer": "blok"}, "did you mean 'block'"),
        ({"layer": "fc2"}, "does not exist"),
        ({"target": 6}, "out of range"),
        ({"target": -1}, "out of range"),
        ({"target": "top0"}, "not understood"),
        ({"target": "topk:99"}, "only 6 classes"),
        ({"target": torch.tensor([[1.0]])}, "must be integer"),
        ({"target": lambda out: out.argmax(1).float()}, "not differentiable"),
        ({"target": lambda out: out.detach()[:, 0]}, "not differentiable"),
        ({"method": "gradcam+++"}, "method 'gradcam\\+\\+\\+' is not one of"),
        ({"pooling": "time"}, "pooling"),
        ({"gradients": "neg"}, "gradients"),
    ],
)
def test_bad_input_errors_name_the_argument(kwargs, match):
    args = {"clip": clip(), "layer": "block", "target": None}
    args.update(kwargs)
    x = args.pop("clip")
    with pytest.raises(VidcamError, match=match):
        vidcam.explain(make(), x, **args)


def test_layer_never_reached():
    model = make()
    model.unused = nn.Conv3d(3, 3, 1)
    with pytest.raises(VidcamError, match="never reached"):
        vidcam.explain(model, clip(), layer="unused")
    assert hook_count(model) == 0


def test_layer_as_module_and_foreign_module():
    model = make()
    res = vidcam.explain(model, clip(), layer=model.block)
    assert res.layers == ("block",)
    with pytest.raises(VidcamError, match="not a submodule"):
        vidcam.explain(model, clip(), layer=nn.Conv3d(1, 1, 1))
