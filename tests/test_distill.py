"""Differentiable CAMs (vidcam.cam.differentiable), distillation losses and the experiment tool."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vidcam.cam import formulas
from vidcam.cam.differentiable import differentiable_cam
from vidcam.cam.explainer import Explainer
from vidcam.distill import ExplanationDistiller, explanation_loss, kd_loss, normalize_map
from vidcam.errors import VidcamError

ROOT = Path(__file__).resolve().parents[1]


class Tiny(nn.Module):
    """conv -> relu -> block(conv, relu) [explained] -> 1×1×1 conv -> relu -> mean -> linear."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv3d(2, 3, (1, 2, 2))
        self.block = nn.Sequential(nn.Conv3d(3, 4, 2), nn.ReLU())
        self.head = nn.Conv3d(4, 5, 1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.block(torch.relu(self.conv1(x)))
        return self.fc(torch.relu(self.head(a)).mean((2, 3, 4)))


def tiny(seed: int = 0) -> Tiny:
    return Tiny(seed).double().eval()


def clips(seed: int = 5, n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 3, 4, 4, generator=g, dtype=torch.float64)


# --- losses ---------------------------------------------------------------------------------


def test_explanation_loss_literal_values():
    a = torch.tensor([3.0, 4.0], dtype=torch.float64).view(1, 1, 1, 1, 2)
    b = torch.tensor([4.0, 3.0], dtype=torch.float64).view(1, 1, 1, 1, 2)
    # n(a) = (0.6, 0.8), n(b) = (0.8, 0.6): 0.2² + 0.2² = 0.08
    assert float(explanation_loss(a, b)) == pytest.approx(0.08, abs=1e-12)
    assert float(explanation_loss(a, a)) == 0.0
    assert float(explanation_loss(a, 7 * a)) == pytest.approx(0.0, abs=1e-12)  # scale-free
    # an all-zero student map: n(0) = 0, so the loss is ‖n(b)‖² = 1
    assert float(explanation_loss(torch.zeros_like(a), b)) == pytest.approx(1.0, abs=1e-12)


def test_explanation_loss_resamples_to_the_finer_grid_and_averages_pairs():
    s = torch.rand(2, 1, 2, 4, 4, dtype=torch.float64)
    t_const = torch.full((2, 1, 1, 2, 2), 3.0, dtype=torch.float64)  # upsamples to a constant
    ns = s / s.flatten(2).norm(dim=2).view(2, 1, 1, 1, 1)
    nt = torch.full_like(s, 1 / math.sqrt(32))
    expected = ((ns - nt) ** 2).sum((2, 3, 4)).mean()
    got = explanation_loss(s, t_const)
    assert float(got) == pytest.approx(float(expected), rel=1e-10)
    two = explanation_loss([s, s], [t_const, s])  # mean of the pair losses
    assert float(two) == pytest.approx(float(expected) / 2, rel=1e-10)
    assert float(explanation_loss(s, s + 0.3)) > 0


def test_explanation_loss_rejects_unpaired_maps():
    m = torch.rand(1, 1, 2, 2, 2)
    with pytest.raises(VidcamError, match="one teacher map per student map"):
        explanation_loss([m, m], [m])
    with pytest.raises(VidcamError, match="equal N, K"):
        explanation_loss(m, torch.rand(2, 1, 2, 2, 2))


def test_normalize_map_is_smooth_at_zero():
    z = torch.zeros(1, 1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    out = normalize_map(z, eps=1e-12)
    (g,) = torch.autograd.grad(out.sum(), z)
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.allclose(g, torch.full_like(g, 1e6))  # 1 / sqrt(eps), finite


def test_kd_loss_matches_an_independent_computation():
    s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    t = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    temp = 2.0
    ps, pt = (s / temp).softmax(1), (t / temp).softmax(1)
    expected = temp**2 * (pt * (pt.log() - ps.log())).sum(1).mean()
    assert float(kd_loss(s, t, temp)) == pytest.approx(float(expected), rel=1e-12)
    assert float(kd_loss(t, t, temp)) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(VidcamError, match="temperature"):
        kd_loss(s, t, 0.0)


# --- the differentiable CAM -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:the map at layer")  # one target's map is all zero
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_differentiable_cam_equals_the_engine(method):
    model, x = tiny(1), clips(7)
    target = torch.tensor([[0, 2], [1, 0]])
    ref = Explainer(model, "block", method=method)(x, target)
    got = differentiable_cam(model, x, target, layer="block", method=method)
    torch.testing.assert_close(got.maps[0].detach(), ref.first_layer_raw, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        got.weights[0].detach(), ref.weights_per_layer[0], rtol=1e-12, atol=0
    )
    assert got.maps[0].requires_grad and got.layers == ("block",)
    assert (
        0 < float((ref.first_layer_raw > 0).double().mean()) < 1
    )  # a map with lit and dark voxels


def test_gradcampp_weights_equal_eq19_from_formulas():
    """The cancelled form equals the engine's alpha · relu(g), channel by channel."""
    g = torch.Generator().manual_seed(3)
    acts = torch.rand(2, 4, 2, 3, 3, generator=g, dtype=torch.float64)
    grads = torch.randn(1, 2, 4, 2, 3, 3, generator=g, dtype=torch.float64)
    grads[0, 0, 0, 0, 0, 0] = 0.0
    from vidcam.cam.differentiable import gradcampp_weights_smooth

    alpha = formulas.gradcampp_alpha(acts, grads, "volume")
    ref = formulas.channel_weights(alpha, grads, positive=True, pooling="volume")
    got = gradcampp_weights_smooth(acts, grads, positive=True, pooling="volume")
    torch.testing.assert_close(got, ref, rtol=1e-13, atol=0)


def _map_loss(model: nn.Module, x: torch.Tensor, teacher: torch.Tensor, method: str):
    cam = differentiable_cam(model, x, torch.tensor([[2], [0]]), layer="block", method=method)
    return explanation_loss(cam.maps[0], teacher)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_map_loss_gradients_match_central_differences(method):
    """Directional derivatives (float64) of the map loss: autograd's g·v against
    (L(p + h v) − L(p − h v)) / 2h, for a random direction v in each parameter tensor alone
    and in all of them at once."""
    model, x = tiny(1), clips(7)
    teacher = torch.rand(2, 1, 2, 2, 2, generator=torch.Generator().manual_seed(2)).double()
    params = list(model.parameters())
    grads = torch.autograd.grad(_map_loss(model, x, teacher, method), params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    gen = torch.Generator().manual_seed(11)
    dirs = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    h = 1e-6
    cases = [
        [d if j == i else torch.zeros_like(d) for j, d in enumerate(dirs)] for i in range(len(dirs))
    ]
    for v in [*cases, dirs]:
        analytic = sum(float((g * d).sum()) for g, d in zip(grads, v, strict=True))
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.add_(h * d)
        up = float(_map_loss(model, x, teacher, method).detach())
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.sub_(2 * h * d)
        down = float(_map_loss(model, x, teacher, method).detach())
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.add_(h * d)
        assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)
    # the loss reaches the layers after the explained one only through create_graph=True
    assert float(grads[-2].abs().sum()) > 0  # fc.weight
    assert float(grads[0].abs().sum()) > 0  # conv1.weight, through the activations


def test_differentiable_cam_leaves_the_model_as_it_was():
    model, x = tiny(), clips()
    model.train()
    model.block[0].eval()
    model.conv1.weight.requires_grad_(False)
    before = {n: (m.training, len(m._forward_hooks)) for n, m in model.named_modules()}
    out = differentiable_cam(model, x, torch.tensor([[0], [1]]), layer="block")
    assert {n: (m.training, len(m._forward_hooks)) for n, m in model.named_modules()} == before
    assert all(p.grad is None for p in model.parameters())
    assert not model.conv1.weight.requires_grad
    with pytest.raises(VidcamError, match="does not exist"):
        differentiable_cam(model, x, 0, layer="nope")
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    assert out.logits.shape == (2, 3)


def test_hooks_are_removed_after_an_error_in_the_forward():
    model = tiny()
    with pytest.raises(RuntimeError):
        differentiable_cam(model, torch.zeros(1, 5, 3, 4, 4, dtype=torch.float64), 0, layer="block")
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


# --- the distiller --------------------------------------------------------------------------


def test_one_training_step_lowers_the_explanation_loss():
    teacher, student = tiny(1), tiny(3)
    x, y = clips(9, 4), torch.tensor([0, 1, 2, 0])
    dist = ExplanationDistiller(teacher, student, "block", "block", ce_weight=0.0, exp_weight=1.0)
    t_out = dist.teacher_outputs(x, y)
    opt = torch.optim.SGD(student.parameters(), lr=0.05)
    first = dist.loss(x, y, t_out)
    before = float(first["exp"].detach())
    assert float(first["ce"]) == 0.0 and float(first["kd"]) == 0.0
    opt.zero_grad()
    first["loss"].backward()
    opt.step()
    second = dist.loss(x, y, t_out)
    assert 0 < float(second["exp"].detach()) < before
    assert all(p.grad is None for p in teacher.parameters())


def test_distiller_combines_the_weighted_terms():
    teacher, student = tiny(1), tiny(3)
    x, y = clips(9, 4), torch.tensor([0, 1, 2, 0])
    dist = ExplanationDistiller(
        teacher, student, "block", "block", ce_weight=0.5, kd_weight=2.0, exp_weight=3.0
    )
    out = dist.loss(x, y)
    t_out = dist.teacher_outputs(x, y)
    ce = nn.functional.cross_entropy(student(x), y)
    kd = kd_loss(student(x), t_out.logits)
    out = {k: v.detach() for k, v in out.items()}
    assert float(out["ce"]) == pytest.approx(float(ce.detach()), rel=1e-12)
    assert float(out["kd"]) == pytest.approx(float(kd.detach()), rel=1e-12)
    assert 0 < float(out["exp"]) < 2
    total = 0.5 * out["ce"] + 2.0 * out["kd"] + 3.0 * out["exp"]
    assert float(out["loss"]) == pytest.approx(float(total), rel=1e-12)
    with pytest.raises(VidcamError, match="layer pairs"):
        ExplanationDistiller(teacher, student, ["block"], ["block", "head"])
    with pytest.raises(VidcamError, match="labels"):
        dist.loss(x, y[:2])


# --- the experiment -------------------------------------------------------------------------


def test_the_quick_experiment_writes_its_table(tmp_path):
    spec = importlib.util.spec_from_file_location("distill_tool", ROOT / "tools" / "distill.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["distill_tool"] = tool  # dataclasses look their module up there
    try:
        spec.loader.exec_module(tool)
    finally:
        sys.modules.pop("distill_tool", None)
    out = tmp_path / "distill.md"
    assert tool.main(["--quick", "--quiet", "--threads", "1", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for arm in ("CE |", "CE + KD |", "CE + exp |", "CE + KD + exp |"):
        assert f"student, {arm}" in text
    assert "| teacher" in text and "Paper's claim" in text and "Wall time" in text
    assert tool.main(["--quick", "--quiet", "--out", str(out)]) == 2  # exists, no --overwrite


def _tool():
    spec = importlib.util.spec_from_file_location("distill_tool", ROOT / "tools" / "distill.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["distill_tool"] = tool
    try:
        spec.loader.exec_module(tool)
    finally:
        sys.modules.pop("distill_tool", None)
    return tool


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
        (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
        (["--temperature", "nan"], "--temperature must be a finite number > 0"),
        (["--kd-weight", "-1"], "--kd-weight must be a finite number >= 0, got -1.0"),
        (["--exp-weight", "inf"], "--exp-weight must be a finite number >= 0, got inf"),
        (["--loc-clips", "-5"], "--loc-clips must be >= 1, got -5"),
        (["--train-clips", "0"], "--train-clips must be >= 1, got 0"),
        (["--train-clips", "4801"], "--train-clips 4801 is over 4800"),
        (["--train-clips", "100000000"], "--train-clips 100000000 is over 4800"),
        (["--test-clips", "100000000"], "--test-clips 100000000 is over 4800"),
        (["--threads", str((os.cpu_count() or 1) + 1)], "CPUs"),
        (["--quick", "--lr", "nan"], "--lr must be a finite number"),  # --quick keeps lr
        (["--quick", "--loc-clips", "-5"], "--loc-clips must be >= 1"),  # checked as given
    ],
)
def test_the_tool_refuses_numbers_no_run_can_use(extra, needle, tmp_path, capsys):
    out = tmp_path / "d.md"
    assert _tool().main(["--quiet", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_the_tool_refuses_clips_that_do_not_fit_the_memory(tmp_path, capsys, monkeypatch):
    tool = _tool()
    # (240 + 240) clips x 16 frames x 112 x 112 x 3 bytes, twice: 578,027,520 B = 0.54 GiB
    need = 2 * 480 * 16 * 112 * 112 * 3
    assert need == 578_027_520
    monkeypatch.setattr(tool, "available_memory", lambda device=None: need - 1)
    out = tmp_path / "d.md"
    assert tool.main(["--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--train-clips 240 and --test-clips 240: their frames need 0.5 GiB" in err, err
    assert len(err.splitlines()) == 1 and not out.exists()
    monkeypatch.setattr(tool, "available_memory", lambda device=None: need)
    args = tool.parse(["--out", str(out)])  # exactly fits
    assert (args.train_clips, args.test_clips, args.loc_clips) == (240, 240, 48)


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"kd_weight": float("nan")}, "kd_weight must be a finite number, got nan"),
        ({"exp_weight": float("inf")}, "exp_weight must be a finite number, got inf"),
        ({"ce_weight": "1"}, "ce_weight must be a finite number, got '1'"),
        ({"ce_weight": True}, "ce_weight must be a finite number, got True"),
        ({"temperature": float("nan")}, "temperature must be a finite number, got nan"),
        ({"temperature": 0}, "temperature must be > 0, got 0"),
        ({"kd_weight": -0.5}, "kd_weight must be >= 0, got -0.5"),
    ],
)
def test_the_distiller_refuses_weights_that_are_not_finite(kw, needle):
    with pytest.raises(VidcamError) as e:
        ExplanationDistiller(tiny(1), tiny(3), "block", "block", **kw)
    assert str(e.value) == needle
