"""Video RISE and extremal perturbation on hand-made models whose score depends on a known box.

A linear "box" model scores class 0 as Σ w·x with w = 1 inside a box and 0 elsewhere. For such a
score RISE's expectation is computable by hand (p·S(x) + (1 − p)·S(fill) + (1 − p)·w ⊙ (x −
fill) for per-voxel masks), and extremal perturbation's best mask at the box's area is the box.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from vidcam.cam.explainer import Explainer, explain
from vidcam.cam.methods import get_method
from vidcam.cam.perturbation import Perturbation, make_fill
from vidcam.cam.rise import draw_masks, upsample_masks
from vidcam.errors import VidcamError


class BoxModel(nn.Module):
    """Logits (N, 2): class 0 = Σ_box x (a weight map of ones on the box), class 1 = −mean x.
    Takes (N, C, T, H, W), or (N, C, H, W) with ``image=True``."""

    def __init__(self, shape: tuple[int, ...], box: tuple[slice, ...], image: bool = False):
        super().__init__()
        w = torch.zeros(shape)
        w[box] = 1.0
        self.w = nn.Parameter(w)
        self.frozen = nn.Parameter(torch.ones(1), requires_grad=False)
        self.drop = nn.Dropout(0.0)
        self.image = image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x)
        dims = tuple(range(1, x.dim()))
        s0 = (x * self.w).sum(dims) * self.frozen
        return torch.stack([s0, -x.mean(dims)], dim=1)


def box_clip(t: int = 8, h: int = 32, w: int = 32) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """A bright 8×8 box on a dark background in every frame (1, 1, T, H, W), and the box."""
    box = (slice(None), slice(None), slice(12, 20), slice(4, 12))
    clip = torch.zeros(1, 1, t, h, w)
    clip[(slice(None), *box)] = 1.0
    return clip, box


def inside(shape: tuple[int, ...], box: tuple[slice, ...]) -> torch.Tensor:
    m = torch.zeros(shape, dtype=torch.bool)
    m[box] = True
    return m


def test_rise_per_voxel_masks_match_the_hand_computed_expectation():
    # T×H×W = 2×6×6, grid as fine as the clip: iid Bernoulli(p) voxel masks; fill zero, x = 1
    box = (slice(None), slice(None), slice(1, 3), slice(2, 4))  # 2·2·2 = 8 voxels
    clip = torch.ones(1, 1, 2, 6, 6)
    model = BoxModel((1, 2, 6, 6), box)
    opts = Perturbation(
        masks=4000, p=0.5, grid=(2, 6, 6), fill="zero", score="logit", seed=3, centred=False
    )
    res = explain(model, clip, 0, method="rise", perturbation=opts)
    sal = res.first_layer_raw[0, 0]  # the grid is the clip: raw = the saliency itself
    in_box = inside((2, 6, 6), box[1:])
    # E = p·S(x) + (1 − p)·S(0) + (1 − p)·w = 0.5·8 + 0 + 0.5·[in box]
    expected = 4.0 + 0.5 * in_box.float()
    assert (sal - expected).abs().max() < 0.4  # ~5 sigma of one voxel's estimate
    assert abs(float(sal[in_box].mean() - sal[~in_box].mean()) - 0.5) < 0.1
    # exactly the Monte-Carlo sum over the same draws, computed independently
    cells, shifts = draw_masks(4000, (2, 6, 6), (2, 6, 6), 0.5, 3)
    m = upsample_masks(cells, shifts, (2, 6, 6)).double()  # (4000, 2, 6, 6)
    assert torch.equal(m, cells.double())  # per-voxel: the masks are the cells as drawn
    f = (m * in_box).flatten(1).sum(1)  # class-0 logit of every masked clip
    exact = (f[:, None, None, None] * m).sum(0) / (4000 * 0.5)
    torch.testing.assert_close(sal.double(), exact, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(res.weights_per_layer[0][0, 0].double(), f)
    assert res.layers == ("input",) and res.method == "rise"
    # the default, centred estimator: the same expectation
    centred = explain(model, clip, 0, method="rise", perturbation=replace(opts, centred=True))
    assert (centred.first_layer_raw[0, 0] - expected).abs().max() < 0.25


def test_rise_smooth_masks_concentrate_in_the_box_under_the_blur_fill():
    clip, box = box_clip()
    model = BoxModel((1, 8, 32, 32), box)
    opts = Perturbation(masks=600, grid=(2, 8, 8), score="logit", seed=0)  # centred
    res = explain(model, clip, 0, method="rise", perturbation=opts)
    heat = res.maps[0, 0]
    assert heat.shape == (8, 32, 32) and float(heat.min()) == 0.0 and float(heat.max()) == 1.0
    in_box = inside((8, 32, 32), box[1:])
    assert bool(in_box.flatten()[heat.argmax()])  # the peak is in the box
    assert float(heat[in_box].mean()) > 2.5 * float(heat[~in_box].mean())
    assert res.first_layer_raw.shape == (1, 1, 2, 8, 8)
    pooled = res.raw_per_layer[0]  # raw: the saliency averaged over each 4×4×4 grid cell
    plain = explain(model, clip, 0, method="rise", perturbation=replace(opts, centred=False))
    # the control variate: centred − plain = S̄·(1 − Σ_i M_i / (N·p)), S̄ the mean score
    cells, shifts = draw_masks(600, (2, 8, 8), (8, 32, 32), 0.5, 0)
    total = upsample_masks(cells, shifts, (8, 32, 32)).sum(0)
    mean = plain.weights_per_layer[0].mean()
    sal_plain = plain.raw_per_layer[0]
    torch.testing.assert_close(
        pooled - sal_plain,
        mean * (1 - torch.nn.functional.avg_pool3d(total[None, None], 4) / 300),
        rtol=1e-3,
        atol=1e-2,
    )


def test_extremal_mask_covers_the_box_at_its_area():
    clip, box = box_clip()
    model = BoxModel((1, 8, 32, 32), box)
    in_box = inside((8, 32, 32), box[1:])
    area = float(in_box.float().mean())  # 64 / 1024 = 0.0625
    opts = Perturbation(area=area, grid=(4, 16, 16), steps=60, smooth=0.5)
    res = explain(model, clip, 0, method="extremal", perturbation=opts)
    mask = res.maps[0, 0]
    top = mask.flatten().topk(int(in_box.sum())).indices
    assert float(in_box.flatten()[top].float().mean()) > 0.8  # the top a·V voxels: the box
    assert float(mask[in_box].mean()) > 0.7 and float(mask[~in_box].mean()) < 0.1
    score, mean = res.weights_per_layer[0][0, 0].tolist()
    assert abs(mean - area) < 0.05  # the area constraint holds
    fill = make_fill(clip, "blur")
    assert score > 0.7 * float(model(clip)[0, 0] - model(fill)[0, 0]) + float(model(fill)[0, 0])
    assert res.first_layer_raw.shape == (1, 1, 4, 16, 16) and res.backwards == 60


def test_rise_is_seeded_and_batching_changes_nothing():
    clip, box = box_clip(t=4, h=16, w=16)
    model = BoxModel((1, 4, 16, 16), box[:2] + (slice(4, 12), slice(2, 6)))
    opts = Perturbation(masks=20, grid=(2, 4, 4), seed=5)

    def run(batch: int | None, o: Perturbation = opts):
        return Explainer(model, method="rise", batch_size=batch, perturbation=o)(clip, 0)

    one, chunked = run(None), run(3)
    torch.testing.assert_close(chunked.first_layer_raw, one.first_layer_raw, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.maps, one.maps, rtol=1e-5, atol=1e-6)
    assert torch.equal(run(None).maps, one.maps)  # same seed, same masks
    other = run(None, Perturbation(masks=20, grid=(2, 4, 4), seed=6))
    assert not torch.allclose(other.maps, one.maps)
    assert one.forwards == 1 + 1 and chunked.forwards == 1 + math.ceil(20 / 3)
    assert one.masked_clips == chunked.masked_clips == 20


def test_extremal_is_deterministic_and_batching_changes_nothing():
    clip, box = box_clip(t=4, h=16, w=16)
    clips = torch.cat([clip, clip.flip(-1)])  # two samples, two targets each: 4 masks
    model = BoxModel((1, 4, 16, 16), box[:2] + (slice(4, 12), slice(2, 6)))
    opts = Perturbation(steps=6, grid=(2, 4, 4))

    def run(batch: int | None):
        return Explainer(model, method="extremal", batch_size=batch, perturbation=opts)(
            clips, [0, 1]
        )

    one, chunked = run(None), run(3)
    torch.testing.assert_close(chunked.maps, one.maps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(chunked.first_layer_raw, one.first_layer_raw, rtol=1e-4, atol=1e-5)
    assert torch.equal(run(None).maps, one.maps)
    assert one.maps.shape == (2, 2, 4, 16, 16)
    # per batch: clips and fills, 6 steps (each with a backward), the final masks
    assert one.forwards == 1 + 8 and one.backwards == 6  # 4 masks in one batch
    assert chunked.forwards == 1 + 2 * 8 and chunked.backwards == 12
    assert one.masked_clips == chunked.masked_clips == 4 * (2 + 6 + 1)


@pytest.mark.parametrize("method", ["rise", "extremal"])
def test_the_model_comes_back_exactly(method):
    clip, box = box_clip(t=2, h=8, w=8)
    model = BoxModel((1, 2, 8, 8), box[:2] + (slice(2, 5), slice(2, 5)))
    model.train()
    model.drop.eval()  # mixed flags must come back as they were
    model.w.grad = torch.full_like(model.w, 7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = Perturbation(masks=8, steps=3, grid=(1, 2, 2))
    with torch.no_grad():
        res = Explainer(model, method=method, perturbation=opts)(clip, 0)
        assert not torch.is_grad_enabled()  # the caller's grad mode
    assert model.training and not model.drop.training
    assert model.w.requires_grad and not model.frozen.requires_grad
    assert torch.equal(model.w.grad, torch.full_like(model.w, 7.0)) and model.frozen.grad is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for mod in model.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks and not mod._backward_hooks
    assert not res.maps.requires_grad and not res.first_layer_raw.requires_grad


def test_image_models_get_one_time_step():
    box = (slice(None), slice(2, 5), slice(1, 4))
    model = BoxModel((1, 8, 8), box, image=True)
    clip = torch.zeros(2, 1, 8, 8)
    clip[:, :, 2:5, 1:4] = 1.0
    opts = Perturbation(masks=400, grid=(1, 8, 8), fill="zero", score="logit")
    res = explain(model, clip, 0, method="rise", perturbation=opts)
    assert res.maps.shape == (2, 1, 1, 8, 8)
    in_box = inside((8, 8), box[1:])
    assert bool(in_box.flatten()[res.maps[0, 0, 0].argmax()])
    assert torch.equal(res.maps[0], res.maps[1])  # same clip, same masks


def test_refusals():
    clip, box = box_clip(t=2, h=8, w=8)
    model = BoxModel((1, 2, 8, 8), box[:2] + (slice(2, 5), slice(2, 5)))
    with pytest.raises(VidcamError, match="target: rise scores masked clips by class"):
        explain(model, clip, lambda out: out[:, 0], method="rise")
    with pytest.raises(VidcamError, match=r"perturbation area=1\.5"):
        Perturbation(area=1.5)
    with pytest.raises(VidcamError, match="perturbation grid"):
        Perturbation(grid=(2, 0, 2))
    with pytest.raises(VidcamError, match="perturbation fill='black'"):
        Perturbation(fill="black")  # type: ignore[arg-type]
    with pytest.raises(VidcamError, match="perturbation: give"):
        Explainer(model, method="rise", perturbation={"masks": 3})  # type: ignore[arg-type]
    with torch.inference_mode(), pytest.raises(VidcamError, match="inference_mode"):
        explain(model, clip, 0, method="extremal", perturbation=Perturbation(steps=1))
    assert get_method("rise").title == "RISE" and get_method("extremal").cam == "extremal"


def test_rise_refuses_a_model_without_class_scores():
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten()

    clip = torch.ones(1, 1, 2, 4, 4)
    with pytest.raises(VidcamError, match="class scores"):
        explain(Flat(), clip, 0, method="rise", perturbation=Perturbation(masks=2))


def test_rise_next_to_a_cam_explains_the_same_targets():
    model = nn.Sequential(
        nn.Conv3d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    torch.manual_seed(0)
    clip = torch.rand(2, 1, 4, 8, 8)
    ex = Explainer(model, "0", method=("gradcam", "rise"), perturbation=Perturbation(masks=4))
    out = ex.explain_all(clip, "topk:2")
    cam, rise = out["gradcam"], out["rise"]
    assert cam.layers == ("0",) and rise.layers == ("input",)
    assert torch.equal(cam.targets, rise.targets) and torch.equal(cam.logits, rise.logits)
    assert cam.forwards == 1 and rise.forwards == 1 + 2  # one batch of 4 masks per sample
    assert rise.maps.shape == cam.maps.shape == (2, 2, 4, 8, 8)
