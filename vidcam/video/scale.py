"""Display scale of the heatmaps: what pass 1 spools, and how pass 2 turns it into heat.

Pass 1 hands every window's maps to :func:`to_spool`: ``maps`` (B, K, T, h, w) in [0, 1]
(the engine's per-window min-max normalised maps) and ``peaks`` (B, K), the un-normalised
maximum of each window's CAM. What is spooled is scale-free in the sense that it keeps the
CAM's own units: ``maps × peaks``, the maximum over targets, area-pooled to the spool size
``store``, as bfloat16 (float32's range: raw CAM values can be tiny, e.g. with ``softmax``).
So one pass 1 serves every display scale, and windows stay comparable.

Pass 2 (:class:`DisplayScale`, built from the spool at its start) turns spooled values into
display heat in [0, 1], per ``normalize``:

- ``"video"`` (default): one scale for the whole video — every value divided by a high
  percentile (``VIDEO_PERCENTILE``) of all spooled values of the video, clipped to [0, 1],
  then raised to ``VIDEO_GAMMA``. The percentile, not the maximum: Grad-CAM++ maps of real
  models are peaked (I3D at Mixed_5c: the top 1 % of voxels hold ~14 % of the energy), and
  one extreme voxel would otherwise flatten every other frame. The gamma lifts the mid-range
  of such peaked maps so the hottest region of every frame with heat is visible, while
  frames with little heat stay faint: intensity follows *when* the model looks.
- ``"clip"``: one scale per window volume (each window's own maximum is 1).
- ``"frame"``: every frame's map min-max normalised on its own (shows *where* in every frame,
  also in frames with almost no heat; the intensity says nothing about *when*).

How heat is then drawn (:func:`opacity`: opacity grows with the heat relative to the frame's
peak, cold pixels untouched) is described in :mod:`vidcam.video.render`.

The percentile is computed in one streaming pass over the spool with a log2 histogram (bins
of 1/64 octave, ~1 % relative resolution), so memory stays flat however long the video.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from vidcam.cam.maps import minmax_normalize
from vidcam.errors import VidcamError
from vidcam.video.to_source import TimeSupport

NORMALIZE = ("video", "clip", "frame")
DEFAULT_NORMALIZE = "video"
VIDEO_PERCENTILE = 99.0
VIDEO_GAMMA = 0.6
#: one short phrase per scale, drawn under the colour legend
SCALE_LEGEND = {
    "video": "scale: whole video",
    "clip": "scale: each window",
    "frame": "scale: each frame",
}
#: the longer explanation, for the preview's header
SCALE_NOTE = {
    "video": f"high = the video's top {100 - VIDEO_PERCENTILE:g}% of heat, one scale for all frames",
    "clip": "high = the peak of each window (frames of a window comparable)",
    "frame": "high = the peak of each frame (where, not when)",
}

#: opacity ramp over heat / the frame's peak: 0 below RAMP[0], full from RAMP[1]
RAMP = (0.45, 0.9)
COLD = 0.05  # heat below this: exact source pixels
FADE = 0.15  # a frame whose peak heat is below this fades out (smoothly from 0)
FLOOR = 0.5  # opacity of a frame's peak: alpha × (FLOOR + (1 − FLOOR) × peak)
_LOG2_RANGE = (-150.0, 130.0)  # covers bfloat16's (and float32's) positive range
_BINS_PER_OCTAVE = 64


def check_normalize(normalize: str) -> str:
    if normalize not in NORMALIZE:
        raise VidcamError(f"normalize {normalize!r} must be one of {', '.join(NORMALIZE)}")
    return normalize


def to_spool(maps: torch.Tensor, peaks: torch.Tensor, store: tuple[int, int]) -> torch.Tensor:
    """(B, K, T, h, w) maps in [0, 1] + (B, K) raw peaks -> (B, T, h', w') bfloat16, in the
    CAM's units: the same for every display scale (``normalize`` is applied in pass 2, by
    :class:`DisplayScale`)."""
    peaks = peaks.to(maps.device, torch.float32).clamp_min(0)
    m = (maps.float() * peaks[:, :, None, None, None]).amax(1)
    if tuple(m.shape[-2:]) != tuple(store):
        m = F.adaptive_avg_pool2d(m, store)
    return m.to(torch.bfloat16)


def percentile(chunks: Iterable[torch.Tensor], q: float) -> float:
    """The ``q``-th percentile (0..100) of all values of ``chunks`` (non-negative), in one
    streaming pass: exact zeros are counted apart, positive values in a log2 histogram."""
    lo, hi = _LOG2_RANGE
    bins = int((hi - lo) * _BINS_PER_OCTAVE)
    hist: torch.Tensor | None = None
    zeros = 0
    total = 0
    for c in chunks:
        v = c.detach().float().flatten()
        pos = v[v > 0]
        total += v.numel()
        zeros += v.numel() - pos.numel()
        h = torch.histc(pos.log2().clamp_(lo, hi - 1e-3), bins=bins, min=lo, max=hi)
        hist = h if hist is None else hist + h
    if total == 0 or hist is None or zeros == total:
        return 0.0
    rank = q / 100.0 * total
    if rank <= zeros:
        return 0.0
    cum = hist.double().cumsum(0) + zeros
    i = int(torch.searchsorted(cum, torch.tensor([rank], dtype=cum.dtype, device=cum.device)))
    i = min(i, bins - 1)
    return float(2.0 ** (lo + (i + 0.5) / _BINS_PER_OCTAVE))


@dataclass
class DisplayScale:
    """Spooled values -> display heat in [0, 1], per panel (see the module docstring).

    :meth:`window` is applied to each window's spooled (T, h, w) maps as they are loaded,
    :meth:`frame` to every frame's blended map. ``ref`` holds the video-level reference
    (the percentile) per panel id; ``gamma`` the display gamma.
    """

    normalize: str = DEFAULT_NORMALIZE
    ref: dict[str, float] = field(default_factory=dict)
    gamma: float = 1.0

    @classmethod
    def from_spool(
        cls,
        spool,
        names: Sequence[str],
        normalize: str = DEFAULT_NORMALIZE,
        *,
        q: float = VIDEO_PERCENTILE,
        gamma: float = VIDEO_GAMMA,
        device: torch.device | str = "cpu",
        supports: Sequence[TimeSupport] | None = None,
    ) -> DisplayScale:
        """Read the spool once (``"video"`` only) for the percentile of each panel in
        ``names`` (heat panels; image panels are shown as they are). With the windows'
        ``supports``, only what frames can show counts: trusted slices, times their scale."""
        check_normalize(normalize)
        if normalize != "video":
            return cls(normalize, {}, 1.0)

        def shown(i: int, v: torch.Tensor) -> torch.Tensor:
            return supports[i].kept(v.float()) if supports is not None else v

        ref = {}
        for name in names:
            chunks = (shown(i, spool.get(i)[name].to(device)) for i in range(len(spool)))
            value = percentile(chunks, q)
            if value <= 0:  # (almost) all zeros: fall back to the maximum, if any
                value = max(
                    (float(shown(i, spool.get(i)[name]).float().max()) for i in range(len(spool))),
                    default=0.0,
                )
            ref[name] = value
        return cls(normalize, ref, gamma)

    def window(
        self, name: str, v: torch.Tensor, support: TimeSupport | None = None
    ) -> torch.Tensor:
        """One window's spooled maps (T, h, w) -> float32: divided by the video's reference
        (``video``) or the window's maximum (``clip``: of what its frames can show, with its
        ``support``), raw (``frame``); images pass through."""
        if v.dtype == torch.uint8:  # a guided-backprop image, already in [0, 255]
            return v.float().div_(255.0)
        v = v.float()
        if v.dim() != 3:
            return v
        if self.normalize == "video":
            ref = self.ref.get(name, 0.0)
            return v.div_(ref).clamp_(0, 1) if ref > 0 else v.zero_()
        if self.normalize == "clip":
            top = float((support.kept(v) if support is not None else v).max()) if v.numel() else 0.0
            return v.div_(top) if top > 0 else v.zero_()
        return v  # "frame": normalised after blending, see :meth:`frame`

    def frame(self, m: torch.Tensor) -> torch.Tensor:
        """A frame's blended heat (h, w) -> display heat: its own min-max (``frame``) or the
        display gamma; images pass through."""
        if m.dim() != 2:
            return m
        if self.normalize == "frame":
            return minmax_normalize(m)[0]  # a constant frame: no heat to show
        if self.gamma == 1.0:
            return m
        return m.clamp_(0, 1).pow_(self.gamma)

    @property
    def legend(self) -> str:
        return SCALE_LEGEND[self.normalize]

    @property
    def note(self) -> str:
        return SCALE_NOTE[self.normalize]


def _smooth(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@lru_cache(maxsize=1024)
def opacity(alpha: float, peak: int) -> np.ndarray:
    """(256,) float32 opacity per uint8 heat level in a frame whose peak level is ``peak``
    (see :mod:`vidcam.video.render`)."""
    if not 0.0 <= alpha <= 1.0:
        raise VidcamError(f"alpha must be between 0 and 1, got {alpha}")
    p = peak / 255.0
    levels = np.arange(256) / 255.0
    rel = levels / max(p, 1e-6)
    frame = (FLOOR + (1.0 - FLOOR) * p) * _smooth(p / FADE)
    out = alpha * frame * _smooth((rel - RAMP[0]) / (RAMP[1] - RAMP[0]))
    out[levels < COLD] = 0.0
    out = out.astype(np.float32)
    out.flags.writeable = False
    return out
