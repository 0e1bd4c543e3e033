"""``vidcam layers MODEL``: candidate layers with shapes checked by hand against each
architecture, the explained layer marked, one-line errors; the dry run leaves the model as it
was (train/eval flags, hooks, parameters), also when its forward fails."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from torch import nn

from vidcam.cam.layer_candidates import list_layers
from vidcam.cam.layers import default_layer
from vidcam.cli import main
from vidcam.errors import VidcamError


def conv_out(n: int, k: int, s: int, p: int) -> int:
    """A convolution's output length (PyTorch's formula, no dilation)."""
    return (n + 2 * p - k) // s + 1


def _layers(capsys, *argv: str) -> dict:
    rc = main(["layers", *argv, "--json", "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out)


def _row(data: dict, name: str) -> dict:
    return next(r for r in data["layers"] if r["name"] == name)


def test_r3d_18_lists_its_stages_with_hand_computed_shapes(capsys):
    data = _layers(capsys, "r3d_18", "--random-weights")
    assert data["input"] == [1, 3, 16, 112, 112]  # r3d_18's clip and crop
    assert data["picked"] == ["layer4"] and data["automatic"] is False
    # stem: Conv3d k (3, 7, 7), stride (1, 2, 2), pad (1, 3, 3); layer2-4 halve T, H, W (k 3,
    # stride 2, pad 1); layer1 keeps them
    t, h = conv_out(16, 3, 1, 1), conv_out(112, 7, 2, 3)
    want = {"stem": (64, t, h, h), "layer1": (64, t, h, h)}
    for name, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        t, h = conv_out(t, 3, 2, 1), conv_out(h, 3, 2, 1)
        want[name] = (c, t, h, h)
    assert want["layer4"] == (512, 2, 7, 7)
    assert [r["name"] for r in data["layers"]] == list(want)  # depth 0, execution order
    for name, shape in want.items():
        row = _row(data, name)
        assert tuple(row["output"]) == tuple(row["volume"]) == shape, name
        assert row["picked"] == (name == "layer4")
    # the table: the same rows, the pick starred
    assert main(["layers", "r3d_18", "--random-weights", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "r3d_18: dry run on a zero clip (1, 3, 16, 112, 112)"
    starred = [ln for ln in lines[2:] if ln.startswith("*  ")]
    assert len(starred) == 1 and starred[0].split()[1:] == [
        "layer4", "Sequential", "(512,", "2,", "7,", "7)", "(512,", "2,", "7,", "7)",
    ]  # fmt: skip


def test_all_lists_every_module_with_the_head_unusable(capsys):
    data = _layers(capsys, "r3d_18", "--random-weights", "--all")
    names = [r["name"] for r in data["layers"]]
    assert names.index("layer4") < names.index("layer4.0") < names.index("layer4.0.conv1.0")
    assert _row(data, "layer4.1.conv2.0")["output"] == [512, 2, 7, 7]
    assert _row(data, "avgpool")["volume"] == [512, 1, 1, 1]
    assert _row(data, "avgpool")["usable"] is False
    fc = _row(data, "fc")
    assert fc["output"] == [400] and fc["volume"] is None and fc["module"] == "Linear"


def test_sample_model_marks_block3(capsys):
    data = _layers(capsys, "sample")
    h = conv_out(112, 4, 4, 0)  # stem: 1x4x4 conv, stride 4
    t2, h2 = conv_out(16, 3, 2, 1), conv_out(h, 3, 2, 1)  # block2: stride 2 in T, H, W
    want = {"stem": (16, 16, h, h), "block1": (32, 16, h, h), "block2": (48, t2, h2, h2)}
    want["block3"] = (64, t2, h2, h2)
    assert want["block3"] == (64, 8, 14, 14)  # sample_net's docstring
    assert {r["name"]: tuple(r["output"]) for r in data["layers"]} == want
    assert data["picked"] == ["block3"]


NET = """
from torch import nn

def net():
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv3d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 4),
    )

def flat():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 32 * 32, 5))
"""
CARD = """
clip_len = 8
stride = 1
resize_short = 36
crop = [32, 32]
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]
"""


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "mynet.py").write_text(textwrap.dedent(NET))
    (tmp_path / "card.toml").write_text(CARD)
    return tmp_path


def test_module_in_a_py_file_uses_the_automatic_rule_or_the_given_layer(user_files, capsys):
    ref, card = f"{user_files / 'mynet.py'}:net", str(user_files / "card.toml")
    data = _layers(capsys, ref, "--card", card)
    assert data["input"] == [1, 3, 8, 32, 32] and data["automatic"] is True
    # the last module that contains a convolution and returns a volume: the second Conv3d
    # (the ReLUs contain none); shapes by hand
    t, h = conv_out(8, 3, 2, 1), conv_out(32, 3, 2, 1)
    want = {"0": (8, 8, 32, 32), "1": (8, 8, 32, 32), "2": (16, t, h, h), "3": (16, t, h, h)}
    assert {r["name"]: tuple(r["volume"]) for r in data["layers"]} == want
    assert data["picked"] == ["2"] == [r["name"] for r in data["layers"] if r["picked"]]
    given = _layers(capsys, "--model", ref, "--card", card, "--layer", "0")
    assert given["picked"] == ["0"] and given["automatic"] is False


def test_no_usable_layer_is_exit_2_and_one_line_naming_candidates(user_files, capsys):
    rc = main(
        ["layers", f"{user_files / 'mynet.py'}:flat", "--card", str(user_files / "card.toml")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("vidcam layers: error: ")
    assert "could not pick a layer" in err and "--layer NAME" in err
    assert f"0 ({3 * 8 * 32 * 32},)" in err and "1 (5,)" in err  # the candidates' shapes


def test_model_given_twice_is_one_line(capsys):
    assert main(["layers", "sample", "--model", "r3d_18"]) == 2
    err = capsys.readouterr().err
    assert "given twice" in err and err.count("\n") == 1


def test_hf_directory_lists_token_layers_with_their_grid(tmp_path, monkeypatch, capsys):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cases = {
        # name: (model, tokens = class tokens + T' * H' * W', (T', H', W'), the explained block)
        "vmae": (
            transformers.VideoMAEForVideoClassification(
                transformers.VideoMAEConfig(
                    image_size=48, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=32,
                    num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    num_labels=3,
                )
            ),
            0 + 4 * 3 * 3, (4, 3, 3), "net.videomae.encoder.layer.1",
        ),
        "tsf": (
            transformers.TimesformerForVideoClassification(
                transformers.TimesformerConfig(
                    image_size=32, patch_size=8, num_frames=6, hidden_size=32,
                    num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    num_labels=3,
                )
            ),
            1 + 6 * 4 * 4, (6, 4, 4), "net.timesformer.encoder.layer.0",
        ),
    }  # fmt: skip
    for name, (model, tokens, grid, block) in cases.items():
        model.save_pretrained(tmp_path / name)
        capsys.readouterr()
        data = _layers(capsys, f"hf:{tmp_path / name}", "--random-weights")
        assert data["picked"] == [block] and data["automatic"] is False
        row = _row(data, block)
        assert row["output"] == [tokens, 32] and row["volume"] == [32, *grid]
        assert row["module"].endswith("Layer")
        blocks = [r["name"] for r in data["layers"] if r["module"] == row["module"]]
        assert blocks == [block[:-1] + "0", block[:-1] + "1"]


class Probe(nn.Module):
    """A conv net with Dropout/BatchNorm (train-mode sensitive) that can fail on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm3d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 2)
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.norm(self.conv(x)))
        if self.fail:
            raise RuntimeError("boom")
        return self.fc(y.mean((2, 3, 4)))


def test_dry_run_leaves_the_model_as_it_was_also_on_failure():
    torch.manual_seed(0)
    model = Probe().train()
    model.drop.eval()  # a mixed state must come back as it was
    model.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(m, m.training) for m in model.modules()]
    example = torch.zeros(1, 3, 4, 8, 8)
    listing = list_layers(model, example)
    assert listing.picked == ("conv",) and listing.automatic
    assert {c.name: c.volume for c in listing.candidates}["norm"] == (4, 4, 8, 8)
    model.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        list_layers(model, example, layer="conv")
    for _ in range(2):
        assert all(m.training == f for m, f in flags)
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
        assert not model.fc.weight.requires_grad and all(p.grad is None for p in model.parameters())
        for k, v in model.state_dict().items():  # BatchNorm's running stats untouched
            assert torch.equal(v, before[k]), k
        model.fail = False
        list_layers(model, example)


def test_default_layer_error_is_one_line_with_volume_candidates():
    model = nn.Sequential(nn.AvgPool3d(2), nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 2))
    with pytest.raises(VidcamError) as err:
        default_layer(model, torch.zeros(1, 3, 4, 8, 8))
    msg = str(err.value)
    assert "\n" not in msg and "the last 4D/5D outputs: 0 (3,2,4,4)" in msg
