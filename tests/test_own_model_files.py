"""Model files (issue 24): a ``torch.export`` program (.pt2) is explained exactly as the eager
model it was exported from; TorchScript files and plain checkpoints are refused in one line
that says what to do instead."""

from __future__ import annotations

import pytest
import torch
from conftest import moving_square, write_video
from torch import nn

from vidcam.cam.explainer import Explainer
from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.models.spec import InputSpec
from vidcam.video import explain_video

SPEC = InputSpec(
    clip_len=8, crop=(32, 32), resize_short=32, mean=(0.5,) * 3, std=(0.25,) * 3, stride=1
)
CARD = "clip_len = 8\ncrop = 32\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\nstride = 1\n"


class Small(nn.Module):
    """An r3d-like toy: stem, two stages, pool, linear head (4 classes)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv3d(8, 8, 3, stride=(1, 2, 2), padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv3d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, 4)
        with torch.no_grad():
            self.stem[1].running_mean.uniform_(-0.1, 0.1)
            self.stem[1].running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean(dim=(2, 3, 4)))


def _export(path, *, dynamic: bool = True) -> nn.Module:
    net = Small().eval()
    x = torch.randn(2, 3, 8, 32, 32)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=shapes), str(path))
    return net


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("pt2")
    net = _export(d / "small.pt2")
    (d / "small.toml").write_text(CARD + 'labels = ["w", "x", "y", "z"]\nlayer = "layer2"\n')
    return d, net


def test_the_exported_programs_cam_equals_the_eager_models(exported):
    d, net = exported
    h = open_model(str(d / "small.pt2"), card=d / "small.toml", device="cpu")
    assert h.labels == ("w", "x", "y", "z") and h.layer == "layer2" and h.input == SPEC
    torch.manual_seed(3)
    x = torch.randn(3, 3, 8, 32, 32)
    ours = Explainer(h.module, "layer2")(x)
    theirs = Explainer(net, "layer2")(x)
    assert torch.equal(ours.logits, theirs.logits)
    assert torch.equal(ours.first_layer_raw, theirs.first_layer_raw)
    assert ours.first_layer_raw.abs().max() > 0


def test_a_video_explained_through_the_pt2_equals_the_eager_run(exported, tmp_path):
    d, net = exported
    src = write_video(tmp_path / "v.mkv", moving_square(20, 40, 48, (2, 2, 38, 46)))
    kw = dict(progress=False, spatial="center", batch_size=2, device="cpu")
    ours = explain_video(src, model=str(d / "small.pt2"), card=d / "small.toml", **kw)
    theirs = explain_video(src, model=net, spec=SPEC, layer="layer2", labels=list("wxyz"), **kw)
    assert len(ours.windows) == len(theirs.windows) >= 3
    for a, b in zip(ours.windows, theirs.windows, strict=True):
        assert a.top == b.top
    assert torch.equal(ours.heatmaps, theirs.heatmaps)
    assert ours.labels == ("w", "x", "y", "z")


def test_a_fixed_batch_export_is_refused_with_the_fix(tmp_path):
    _export(tmp_path / "fixed.pt2", dynamic=False)
    (tmp_path / "c.toml").write_text(CARD)
    with pytest.raises(VidcamError) as e:
        open_model(str(tmp_path / "fixed.pt2"), card=tmp_path / "c.toml", device="cpu")
    assert "fixed batch size 2" in str(e.value) and "dynamic_shapes" in str(e.value)


def test_torchscript_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Small().eval()), str(path))
    with pytest.raises(VidcamError) as e:
        open_model(str(path), device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "is TorchScript" in msg and "forward hooks" in msg
    assert "file.py:FUNCTION" in msg and "torch.export" in msg


def test_a_state_dict_given_as_a_model_points_to_weights(tmp_path):
    path = tmp_path / "ft.pt"
    torch.save(Small().state_dict(), path)
    with pytest.raises(VidcamError, match="--weights ft.pt"):
        open_model(str(path), device="cpu")


def test_a_model_file_that_does_not_exist(tmp_path):
    with pytest.raises(VidcamError, match="does not exist"):
        open_model(str(tmp_path / "nope.pt2"), device="cpu")
