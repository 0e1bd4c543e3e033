"""Display scale of the heatmaps: what pass 1 spools, and how pass 2 turns it into heat.

Pass 1 hands every window's maps to :func:`to_spool`: ``maps`` (B, K, T, h, w) in [0, 1]
(the engine's per-window min-max normalised maps) and ``peaks`` (B, K), the un-normalised
maximum of each window's CAM (so windows can be put on one video-level scale later). The
spooled heat is (B, T, h', w') float16 at the spool size ``store``, the maximum over targets.

``normalize``: "clip" keeps each window's own scale; "frame" min-max normalises every frame
on its own (for peaked maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidcam.cam.maps import normalize_maps


def to_spool(
    maps: torch.Tensor, peaks: torch.Tensor, store: tuple[int, int], normalize: str
) -> torch.Tensor:
    """(B, K, T, h, w) maps + (B, K) peaks -> (B, T, h', w') float16 heat to spool."""
    del peaks  # used by video-level scales
    m = maps.amax(1)
    if normalize == "frame":  # display choice: every frame's own min-max (for peaked maps)
        m = normalize_maps(m)[0]
    if tuple(m.shape[-2:]) != tuple(store):
        m = F.adaptive_avg_pool2d(m, store)
    return m.half()
