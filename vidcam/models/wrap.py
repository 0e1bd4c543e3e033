"""Adapters between vidcam's clip and what a user's model takes."""

from __future__ import annotations

import torch
from torch import nn

#: the attribute an adapter keeps the user's module under (layer names get this prefix)
INNER = "net"


class InputAdapter(nn.Module):
    """The user's module ``net`` fed vidcam's clip ``(N, 3, T, H, W)`` RGB: channels flipped to
    BGR when ``bgr``, and permuted to ``(N, T, 3, H, W)`` when ``layout == "NTCHW"``.

    The wrapped module is not changed; its layers are ``net.<name>`` here.
    """

    def __init__(self, net: nn.Module, *, layout: str = "NCTHW", bgr: bool = False) -> None:
        super().__init__()
        self.net = net
        self.layout = layout
        self.bgr = bgr

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            clip = clip.flip(1)
        if self.layout == "NTCHW":
            clip = clip.transpose(1, 2)
        return self.net(clip)

    def extra_repr(self) -> str:
        return f"layout={self.layout}, channel_order={'BGR' if self.bgr else 'RGB'}"


def inner_name(layer: object) -> object:
    """A layer name of the user's module as a name in its :class:`InputAdapter` (lists too;
    modules and None as they are)."""
    if isinstance(layer, str):
        return f"{INNER}.{layer}"
    if isinstance(layer, list | tuple):
        return [inner_name(x) for x in layer]
    return layer
