"""The three worked examples of the README's "Your own model", end to end (issue 24): ``vidcam
explain`` (with --json and --report), ``vidcam batch`` and ``vidcam evaluate`` on

(a) a fine-tuned 7-class ``r3d_18`` checkpoint with a labels file (here at a small input given
    by a card, for speed),
(b) a VideoMAE directory written by ``save_pretrained`` from a small random config (``hf:DIR``),
(c) a network defined in a ``.py`` file, with a model card.

Each checks that the user's class names appear, mapped to the right output index, in the
video's JSON, the report page, the batch index and the evaluation's JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import moving_square, write_video

from vidcam.cli import main

KITCHEN = ["pour", "stir", "chop", "wipe", "open_fridge", "close_fridge", "wash_hands"]
DOUGH = ["knead", "roll", "fold"]
MOTION = ["left_to_right", "right_to_left", "still"]

MYNET = """import torch
from torch import nn


class MyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv3d(16, 32, 3, stride=(1, 2, 2), padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, T, H, W)
        return self.head(self.features(x).mean(dim=(2, 3, 4)))


def build() -> nn.Module:
    torch.manual_seed(0)
    return MyNet().eval()
"""
MYNET_CARD = """clip_len = 8
fps = 12.5
resize_short = 32
crop = [32, 32]
value_range = [0, 1]
mean = [0.45, 0.45, 0.45]
std = [0.225, 0.225, 0.225]
channel_order = "RGB"
layout = "NCTHW"
labels = "mynet_labels.txt"
layer = "features"
"""
SMALL_R3D = "clip_len = 4\nresize_short = 32\ncrop = 32\n"  # r3d_18 at a test-sized input


def _videomae(where: Path) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.VideoMAEConfig(
        image_size=32,
        patch_size=16,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(DOUGH)),
        label2id={n: i for i, n in enumerate(DOUGH)},
    )
    torch.manual_seed(0)
    transformers.VideoMAEForVideoClassification(cfg).save_pretrained(where)


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("own_models")
    clips = root / "clips"
    clips.mkdir()
    frames = moving_square(24, 48, 64, (2, 2, 46, 62), size=10)
    write_video(clips / "clip0.mkv", frames)
    write_video(clips / "clip1.mkv", np.ascontiguousarray(frames[:, :, ::-1]))
    torch.manual_seed(0)
    net = torchvision.models.video.r3d_18(num_classes=7)
    torch.save({"state_dict": net.state_dict(), "epoch": 12}, root / "r3d18_kitchen.pt")
    (root / "kitchen_labels.txt").write_text("\n".join(KITCHEN) + "\n", encoding="utf-8")
    (root / "small.toml").write_text(SMALL_R3D)
    (root / "mynet.py").write_text(MYNET)
    (root / "mynet.toml").write_text(MYNET_CARD)
    (root / "mynet_labels.txt").write_text("\n".join(MOTION) + "\n", encoding="utf-8")
    return root


def _model_args(kit: Path, example: str) -> tuple[list[str], list[str]]:
    """The --model flags of an example, and its class names."""
    if example == "finetuned":
        flags = ["--model", "r3d_18", "--weights", str(kit / "r3d18_kitchen.pt")]
        flags += ["--labels", str(kit / "kitchen_labels.txt"), "--card", str(kit / "small.toml")]
        return flags, KITCHEN
    if example == "hf":
        pytest.importorskip("vidcam.models.hf_auto")
        if not (kit / "videomae_dough").is_dir():
            _videomae(kit / "videomae_dough")
        return ["--model", f"hf:{kit / 'videomae_dough'}"], DOUGH
    return ["--model", f"{kit / 'mynet.py'}:build", "--card", str(kit / "mynet.toml")], MOTION


EXAMPLES = ["finetuned", "hf", "pyfile"]
FAST = ["--device", "cpu", "--spatial", "center", "--quiet"]


def _check_top(top: list[dict], names: list[str]) -> None:
    assert top, "no predictions"
    for entry in top:
        assert entry["label"] == names[entry["index"]]


@pytest.mark.parametrize("example", EXAMPLES)
def test_explain_json_and_report_show_the_users_classes(kit, example, tmp_path, capsys):
    flags, names = _model_args(kit, example)
    out, js, page = tmp_path / "o.mp4", tmp_path / "o.json", tmp_path / "o.html"
    argv = ["explain", str(kit / "clips" / "clip0.mkv"), "-o", str(out), "--json", str(js)]
    rc = main([*argv, "--report", str(page), *flags, *FAST])
    assert rc == 0, capsys.readouterr().err
    assert out.stat().st_size > 0
    data = json.loads(js.read_text())
    assert data["windows"]
    for w in data["windows"]:
        _check_top(w["top"], names)
    best = data["windows"][0]["top"][0]["label"]
    assert best in page.read_text(encoding="utf-8")


@pytest.mark.parametrize("example", EXAMPLES)
def test_batch_index_shows_the_users_classes(kit, example, tmp_path, capsys):
    flags, names = _model_args(kit, example)
    out = tmp_path / "batch"
    rc = main(["batch", str(kit / "clips"), "-o", str(out), *flags, *FAST])
    assert rc == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["done", "done"]
    for r in rows:
        _check_top(r["top"], names)


@pytest.mark.parametrize("example", EXAMPLES)
def test_evaluate_json_shows_the_users_classes(kit, example, tmp_path, capsys):
    flags, names = _model_args(kit, example)
    js = tmp_path / "eval.json"
    few = ["--methods", "gradcam++", "--references", "none", "--fill", "blur"]
    few += ["--fractions", "50", "--units", "none", "--json", str(js)]
    rc = main(["evaluate", str(kit / "clips"), *flags, *few, *FAST])
    assert rc == 0, capsys.readouterr().err
    clips = json.loads(js.read_text())["clips"]
    assert len(clips) == 2
    for c in clips:
        assert c["pred_name"] == names[c["pred"]]
