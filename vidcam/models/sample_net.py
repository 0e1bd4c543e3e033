"""The bundled sample model: a tiny (2+1)D CNN trained on the synthetic motion benchmark.

It classifies 16-frame 112×112 clips from :mod:`vidcam.evaluate.synth` into :data:`SAMPLE_CLASSES`
(moving left/right/up/down, growing, shrinking). Every block is Conv3d + BatchNorm + ReLU;
blocks 1–3 factorise a 3×3×3 convolution into a spatial (1×3×3) and a temporal (3×1×1) one
(cheap to train on a CPU). ``block3`` (64 × 8 × 14 × 14 for a 16×112×112 clip) is the layer
to explain. The checkpoint ``weights/sample_net.pt`` is produced by
``tools/train_sample_model.py``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vidcam.models.checkpoint import load_into, read_checkpoint
from vidcam.models.labels import load_labels
from vidcam.models.spec import InputSpec

SAMPLE_CLASSES: tuple[str, ...] = tuple(load_labels("sample"))  # the benchmark's motion classes
SAMPLE_INPUT = InputSpec(
    clip_len=16,
    crop=(112, 112),
    resize_short=112,
    mean=(0.24, 0.24, 0.24),
    std=(0.16, 0.16, 0.16),
    stride=1,
)
SAMPLE_LAYER: str = "block3"
WEIGHTS_FILE = "sample_net.pt"


class TemporalConv3d(nn.Conv3d):
    """A ``k×1×1`` Conv3d computed as a 2D convolution over (T, H·W).

    Same parameters and result as :class:`torch.nn.Conv3d`; its backward pass is several times
    faster on CPUs, which keeps training the sample model to a few minutes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        y = F.conv2d(
            x.reshape(n, c, t, h * w),
            self.weight.squeeze(-1),
            self.bias,
            (self.stride[0], 1),
            (self.padding[0], 0),
        )
        return y.reshape(n, y.shape[1], y.shape[2], h, w)


def _cbr(cin: int, cout: int, kernel, stride, padding, conv=nn.Conv3d) -> list[nn.Module]:
    return [
        conv(cin, cout, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    ]


def _sep(cin: int, cout: int, stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    """(2+1)D block: spatial 1×3×3 conv (spatial stride), then temporal 3×1×1 (temporal stride)."""
    st, sh, sw = stride
    return nn.Sequential(
        *_cbr(cin, cout, (1, 3, 3), (1, sh, sw), (0, 1, 1)),
        *_cbr(cout, cout, (3, 1, 1), (st, 1, 1), (1, 0, 0), TemporalConv3d),
    )


class SampleNet(nn.Module):
    """Tiny video classifier: (N, 3, T, 112, 112) normalised clip -> (N, num_classes) logits."""

    def __init__(self, num_classes: int = len(SAMPLE_CLASSES)) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 16, (1, 4, 4), (1, 4, 4), 0))  # -> 16 x T x 28 x 28
        self.block1 = _sep(16, 32)  # -> 32 x T x 28 x 28
        self.block2 = _sep(32, 48, (2, 2, 2))  # -> 48 x T/2 x 14 x 14
        self.block3 = _sep(48, 64)  # -> 64 x T/2 x 14 x 14
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


def load_sample_model(weights: str | Path | None = None, *, pretrained: bool = True) -> nn.Module:
    """Build :class:`SampleNet` in eval mode.

    ``weights``: a checkpoint file to load; when None and ``pretrained`` is True the bundled
    ``vidcam/models/weights/sample_net.pt`` is loaded; ``pretrained=False`` gives random weights.
    """
    model = SampleNet()
    if weights is None and not pretrained:
        return model.eval()
    if weights is not None:
        state, source = read_checkpoint(weights), repr(str(weights))
    else:
        bundled = importlib.resources.files("vidcam.models").joinpath("weights", WEIGHTS_FILE)
        with importlib.resources.as_file(bundled) as path:
            state, source = read_checkpoint(path), "the bundled sample_net.pt"
    load_into(model, state, source=source, model_name="sample")
    return model.eval()
