"""Model cards (issue 24): every key, its one-line errors, precedence (flags > card > the
model's own), value range, channel order and layout, and the printed registry cards."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from vidcam.cam.explainer import Explainer
from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.models.card import format_card, read_card
from vidcam.models.open import open_model
from vidcam.models.registry import MODELS
from vidcam.models.sample_net import SAMPLE_INPUT
from vidcam.video.preprocess import Preprocessor


class TimeMajor(nn.Module):
    """Takes (N, T, C, H, W) like the Hugging Face models."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 3:
            raise RuntimeError(f"expected channels at dim 2, got {tuple(x.shape)}")
        return self.fc(self.features(x.transpose(1, 2)).mean(dim=(2, 3, 4)))


BASE = "clip_len = 4\ncrop = [16, 16]\nresize_short = 20\nmean = [0.1, 0.2, 0.3]\nstd = [0.5, 0.6, 0.7]\nstride = 2\n"


def _card(tmp_path, text: str, name: str = "model.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registry_card_reads_back_as_its_input_spec(name, tmp_path):
    spec = MODELS[name]
    text = format_card(spec.input, layers=spec.layers, labels=spec.labels, name=name)
    card = read_card(_card(tmp_path, text))
    assert card.spec(None) == spec.input
    assert card.layer == (list(spec.layers) if len(spec.layers) > 1 else spec.layers[0])


def test_the_cli_prints_the_card(tmp_path, capsys):
    assert main(["models", "card", "r3d_18"]) == 0
    printed = capsys.readouterr().out
    assert read_card(_card(tmp_path, printed)).spec(None) == MODELS["r3d_18"].input
    assert 'layer = "layer4"' in printed


def test_a_bare_module_takes_its_whole_spec_from_the_card(tmp_path):
    card = read_card(_card(tmp_path, BASE))
    spec = card.spec(None)
    assert (spec.clip_len, spec.crop, spec.resize_short, spec.stride) == (4, (16, 16), 20, 2)
    assert spec.mean == (0.1, 0.2, 0.3) and spec.std == (0.5, 0.6, 0.7) and spec.fps is None
    square = read_card(
        _card(tmp_path, BASE.replace("[16, 16]", "16").replace("resize_short = 20\n", ""))
    )
    assert square.spec(None).crop == (16, 16) and square.spec(None).resize_short == 16


def test_the_card_overrides_the_models_own_and_flags_override_the_card(tmp_path):
    (tmp_path / "names.txt").write_text("\n".join(f"c{i}" for i in range(6)), encoding="utf-8")
    path = _card(tmp_path, 'clip_len = 8\nfps = 10\nlabels = "names.txt"\nlayer = "block2"\n')
    h = open_model("sample", card=path, device="cpu")
    want = dataclasses.replace(SAMPLE_INPUT, clip_len=8, fps=10.0, stride=None)
    assert h.input == want
    assert h.labels == tuple(f"c{i}" for i in range(6)) and h.layer == "block2"
    flags = open_model(
        "sample", card=path, labels=[f"f{i}" for i in range(6)], layer="block3", device="cpu"
    )
    assert flags.labels[0] == "f0" and flags.layer == "block3" and flags.input == want


@pytest.mark.parametrize(
    "text,needle",
    [
        ("clip_length = 4\n", "unknown key 'clip_length'"),
        ("clip_len = '4'\n", "key 'clip_len' must be a positive integer"),
        ("clip_len = 0\n", "key 'clip_len' must be a positive integer"),
        ("fps = true\n", "key 'fps' must be a positive number"),
        ("crop = [16]\n", "key 'crop' must be a positive integer or [height, width]"),
        ("mean = [0.5, 0.5]\n", "key 'mean' must be a list of 3 numbers"),
        ("value_range = [0, 100]\n", "key 'value_range' must be [0, 1] or [0, 255]"),
        ("channel_order = 'RBG'\n", "key 'channel_order' must be 'RGB' or 'BGR'"),
        ("layout = 'NHWC'\n", "key 'layout' must be 'NCTHW' or 'NTCHW'"),
        ("labels = 3\n", "key 'labels' must be a labels file path"),
        ("layer = []\n", "key 'layer' must be a layer name"),
        ("fps = 10\nstride = 2\n", "key 'stride': give fps or stride, not both"),
        ("std = [0.5, 0, 0.5]\n", "std non-zero"),
        ("clip_len = [\n", "not valid UTF-8 TOML"),
        ("labels = 'missing.txt'\n", "labels file"),
    ],
)
def test_card_errors_name_the_file_and_the_key(tmp_path, text, needle):
    path = _card(tmp_path, text)
    with pytest.raises(VidcamError) as e:
        read_card(path).spec(MODELS["sample"].input)
    msg = str(e.value)
    assert "\n" not in msg and needle in msg and str(path) in msg


def test_a_bare_module_card_missing_keys_names_them(tmp_path):
    path = _card(tmp_path, "clip_len = 4\ncrop = 16\n")
    with pytest.raises(VidcamError, match=r"needs mean, std, fps or stride"):
        read_card(path).spec(None)


def test_value_range_255_and_bgr_give_the_models_input_exactly(tmp_path):
    """The card's mean/std are in 0-255 units and BGR order; the preprocessed clip, flipped by
    the adapter, equals (bgr_pixels - mean) / std computed by hand."""
    text = (
        "clip_len = 2\ncrop = 4\nresize_short = 4\nstride = 1\nvalue_range = [0, 255]\n"
        'mean = [104.0, 117.0, 123.0]\nstd = [57.0, 57.5, 58.0]\nchannel_order = "BGR"\n'
    )
    card = read_card(_card(tmp_path, text))
    spec = card.spec(None)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(2)]
    pre = Preprocessor(spec, 4, 4, torch.device("cpu"))
    clip = pre.clip([pre.frame(f) for f in frames])  # (1, 3, T, H, W) RGB

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.mean(dim=(2, 3, 4))

    h = open_model(Probe(), card=card.path, device="cpu")
    h.module(clip)
    bgr = np.stack([f[..., ::-1] for f in frames]).astype(np.float64)  # (T, H, W, 3) BGR
    want = (bgr - [104.0, 117.0, 123.0]) / [57.0, 57.5, 58.0]
    got = seen[-1][0].permute(1, 2, 3, 0).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_value_range_255_without_mean_std_feeds_raw_pixels(tmp_path):
    card = read_card(_card(tmp_path, "value_range = [0, 255]\n"))
    spec = card.spec(SAMPLE_INPUT)
    x = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose((x - spec.mean[0]) / spec.std[0], x * 255)


def test_ntchw_layout_wraps_the_module_and_layer_names_stay_the_users(tmp_path):
    text = BASE + 'layout = "NTCHW"\nlayer = "features"\nlabels = ["a", "b", "c"]\n'
    net = TimeMajor().eval()
    h = open_model(net, card=_card(tmp_path, text), device="cpu")
    assert h.layer == "net.features" and h.module.net is net and h.labels == ("a", "b", "c")
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 16, 16)  # vidcam's layout
    with torch.no_grad():
        assert torch.equal(h.module(x), net(x.transpose(1, 2)))
    ours = Explainer(h.module, h.layer)(x)
    theirs = Explainer(net, "features")(x.transpose(1, 2))
    assert torch.equal(ours.first_layer_raw, theirs.first_layer_raw)


def test_without_the_layout_the_dry_run_says_input_layout(tmp_path):
    with pytest.raises(VidcamError) as e:
        open_model(TimeMajor(), card=_card(tmp_path, BASE), device="cpu")
    assert "input layout" in str(e.value) and 'layout = "NTCHW"' in str(e.value)
