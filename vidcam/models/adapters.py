"""Adapters that make zoo models explainable: SlowFast's two pathways, token layers.

* :class:`SlowFastAdapter` turns PyTorchVideo's SlowFast (``forward([slow, fast])``) into a model
  taking one ``(N, C, T, H, W)`` clip.
* :class:`TokensToVolume`, :class:`TokenGrid` and :func:`channels_last_to_volume` are
  ``Reshape`` callables (``reshape(activation, module_output) -> (N, C, T, H, W)``) for
  transformer layers (MViT, Hugging Face video transformers, Swin3D).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vidcam.errors import VidcamError


class SlowFastAdapter(nn.Module):
    """SlowFast taking one clip ``(N, C, T, H, W)``: fast = all T frames, slow = T // alpha frames.

    The slow frames are ``linspace(0, T - 1, T // alpha)`` (rounded down), the sampling of the
    official ``PackPathway`` the pretrained weights were evaluated with (for T=32, alpha=4:
    frames 0, 4, 8, 13, 17, 22, 26, 31). The wrapped model is the submodule ``net``, so its
    layers are named ``net.blocks...`` and its state dict keys carry a ``net.`` prefix
    (:func:`vidcam.models.checkpoint.load_into` adds/strips it as needed).
    """

    def __init__(self, net: nn.Module, alpha: int = 4) -> None:
        super().__init__()
        if alpha < 1:
            raise VidcamError(f"alpha must be >= 1, got {alpha}")
        self.net = net
        self.alpha = alpha

    def pathways(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """``(N, C, T, H, W)`` -> ``[slow (N, C, T//alpha, H, W), fast (N, C, T, H, W)]``."""
        if clip.dim() != 5:
            raise VidcamError(
                f"SlowFast needs a clip of shape (N, C, T, H, W), got {tuple(clip.shape)}"
            )
        t = clip.shape[2]
        if t < self.alpha:
            raise VidcamError(
                f"SlowFast needs at least alpha={self.alpha} frames per clip, got T={t}"
            )
        index = torch.linspace(0, t - 1, t // self.alpha, device=clip.device).long()
        return [clip.index_select(2, index), clip]

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(self.pathways(clip))


def _thw_of(module_output: Any) -> tuple[int, int, int] | None:
    """The ``thw`` of an MViT block output ``(tokens, thw)`` (tuple or list of 3 ints), if any."""
    if isinstance(module_output, tuple | list) and len(module_output) >= 2:
        thw = module_output[1]
        if isinstance(thw, tuple | list | torch.Size) and len(thw) == 3:
            return int(thw[0]), int(thw[1]), int(thw[2])
    return None


class TokensToVolume:
    """Reshape MViT tokens ``(N, cls + T*H*W, C)`` into ``(N, C, T, H, W)``, dropping class tokens.

    ``thw`` is read from the module output when the block returns ``(tokens, thw)`` (torchvision
    and PyTorchVideo MViT blocks do); otherwise the ``thw`` given here is used. The number of
    class tokens is whatever precedes the ``T*H*W`` patch tokens.
    """

    def __init__(self, thw: Sequence[int] | None = None) -> None:
        self.thw = tuple(int(v) for v in thw) if thw is not None else None

    def __call__(self, activation: torch.Tensor, module_output: Any) -> torch.Tensor:
        if isinstance(activation, tuple | list):
            activation = activation[0]
        thw = _thw_of(module_output) or self.thw
        if thw is None:
            raise VidcamError(
                "cannot reshape tokens to (N, C, T, H, W): the layer did not return (tokens, thw) "
                "and no thw was given; pick an MViT block (e.g. 'blocks.14') as the layer"
            )
        if activation.dim() != 3:
            raise VidcamError(
                f"expected tokens (N, L, C), got shape {tuple(activation.shape)}; pick an MViT "
                "block as the layer"
            )
        n, length, c = activation.shape
        t, h, w = thw
        n_cls = length - t * h * w
        if n_cls < 0:
            raise VidcamError(
                f"{length} tokens cannot hold a {t}x{h}x{w} grid; is the layer an MViT block?"
            )
        return activation[:, n_cls:, :].reshape(n, t, h, w, c).permute(0, 4, 1, 2, 3)

    def __repr__(self) -> str:
        return f"TokensToVolume(thw={self.thw})"


class TokenGrid:
    """Reshape tokens ``(N, cls + T*H*W, C)`` laid out in a fixed ``order`` into ``(N, C, T, H, W)``.

    ``grid`` is ``(T, H, W)`` (time in tubelets or frames, space in patches); ``cls`` leading
    class tokens are dropped. ``order`` names the token order, slowest axis first: ``"thw"``
    (a Conv3d tubelet embedding flattened: VideoMAE, ViViT) or ``"hwt"`` (TimeSformer, whose
    embeddings and blocks keep each patch's frames together): patch token ``i`` (after the
    class tokens) is ``i = (t*H + h)*W + w`` for ``"thw"`` and ``i = (h*W + w)*T + t`` for
    ``"hwt"``.
    """

    ORDERS = ("thw", "hwt")

    def __init__(self, grid: Sequence[int], *, order: str = "thw", cls: int = 0) -> None:
        if order not in self.ORDERS:
            raise VidcamError(f"TokenGrid order {order!r}: use one of {', '.join(self.ORDERS)}")
        self.grid = tuple(int(v) for v in grid)
        if len(self.grid) != 3 or min(self.grid) < 1 or cls < 0:
            raise VidcamError(f"TokenGrid: grid {grid} needs 3 positive sizes, cls {cls} >= 0")
        self.order = order
        self.cls = int(cls)

    def __call__(self, activation: torch.Tensor, module_output: Any = None) -> torch.Tensor:
        if isinstance(activation, tuple | list):
            activation = activation[0]
        t, h, w = self.grid
        if activation.dim() != 3 or activation.shape[1] != self.cls + t * h * w:
            raise VidcamError(
                f"expected tokens (N, {self.cls} + {t}*{h}*{w}, C), got "
                f"{tuple(activation.shape)}; pick an encoder block of the model as the layer"
            )
        n, _, c = activation.shape
        x = activation[:, self.cls :, :]
        if self.order == "thw":
            return x.reshape(n, t, h, w, c).permute(0, 4, 1, 2, 3)
        return x.reshape(n, h, w, t, c).permute(0, 4, 3, 1, 2)

    def __repr__(self) -> str:
        return f"TokenGrid(grid={self.grid}, order={self.order!r}, cls={self.cls})"


def channels_last_to_volume(activation: torch.Tensor, module_output: Any = None) -> torch.Tensor:
    """Swin3D's channels-last ``(N, T, H, W, C)`` -> ``(N, C, T, H, W)``."""
    if isinstance(activation, tuple | list):
        activation = activation[0]
    if activation.dim() != 5:
        raise VidcamError(
            f"expected a channels-last volume (N, T, H, W, C), got {tuple(activation.shape)}"
        )
    return activation.permute(0, 4, 1, 2, 3)


def drop_head_softmax(model: nn.Module) -> nn.Module:
    """Remove the ``Softmax`` PyTorchVideo puts in some heads (X3D, R(2+1)D) so the model
    returns logits: Grad-CAM / Grad-CAM++ differentiate pre-softmax class scores. At the
    model's native input size the head pools to one position, so softmax(logits) equals the
    original output exactly."""
    head = model.blocks[-1]
    if isinstance(getattr(head, "activation", None), nn.Softmax):
        head.activation = None
    return model
