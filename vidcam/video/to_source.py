"""Map back to source: crop-space window maps -> one heatmap per source frame.

Space: :class:`SourcePlacer` undoes the centre crop and the resize with one ``grid_sample``
(bilinear) from the crop's map onto the source pixel grid. Source pixels outside the crop were
never seen by the model: they get a constant (``fill=0.0``, the default: no evidence; 0.5 suits
guided-backprop images, where mid grey is zero) or the nearest edge value (``fill="edge"``).

Time: a window's T slices belong to the times of the source frames it sampled. A source frame
at time t takes the linear interpolation between the two sampled times around it (slices that
sampled the same frame are averaged). Only a window's *trusted* slices are read
(:func:`trusted_range`): not the outer ones, whose receptive field reaches into the network's
temporal zero padding (DeepMind's I3D puts a hot spot in the corner of every window's last
``Mixed_5c`` slice), and never the samples that repeat the last frame past the video's end. A
frame outside a window's trusted span reads the nearest trusted slice (held). Overlapping
windows are blended with triangular weights that peak at a window's centre and fall to zero half
a sample period beyond its ends, so seams are smooth; the video's first and last frames thus
show the first / last trusted slice instead of the padded edge. A held slice never crosses a
shot cut (``cuts``, :mod:`vidcam.video.shots`): a window whose held slice lies across a cut from
the frame does not weigh on it; a frame no window then explains shows no heat (unexplained).

Importance: the per-frame energy of the explanation (a scalar per slice, e.g. the mean of the
un-normalised CAM), interpolated and blended exactly like the maps. Each slice is divided by the
network's *position gain* (:func:`position_gain`: the median over windows of the energy at that
position in the window, relative to the window's mean), which a window's padding imposes on
every window alike; uncorrected, it repeats at every window hop (a ripple that shows the
tiling, not the content). Maps get the same per-slice factor (``TimeSupport.scale``).

:class:`MapBlender` works as a stream over increasing frame times and keeps only the windows
that can still touch a frame not yet produced. Everything is torch on one device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError
from vidcam.video.preprocess import Geometry
from vidcam.video.shots import crosses

Fill = Literal["edge"] | float
_FLOOR = 1e-3  # smallest blend weight of a window covering the frame


@dataclass
class TimeSupport:
    """Where a window sits in time: sampled frame ``times`` (T,) seconds and the ``margin`` by
    which its influence reaches past its first and last sample (half a sample period).

    ``keep`` = (a, b): the trusted samples a..b (inclusive; default all, see
    :func:`trusted_range`); a frame time outside their span reads the nearest of them.
    ``scale`` (T,): a factor per slice (default 1; the inverse :func:`position_gain`).
    The weights are scalars per (frame, slice), computed in float64 NumPy (cheap, exact); the
    maps they weigh stay torch tensors.
    """

    times: Sequence[float]
    margin: float
    keep: tuple[int, int] | None = None
    scale: Sequence[float] | None = field(default=None, compare=False)
    _unique: np.ndarray = field(init=False, repr=False)
    _avg: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = np.asarray([float(x) for x in self.times], dtype=np.float64)
        if t.size == 0:
            raise VidcamError("a window needs at least one sampled time")
        a, b = self.keep if self.keep is not None else (0, t.size - 1)
        if not 0 <= a <= b < t.size:
            raise VidcamError(f"trusted samples {a}..{b} do not fit a window of {t.size}")
        self.keep = (int(a), int(b))
        f = np.ones(t.size) if self.scale is None else np.asarray(self.scale, np.float64)
        if f.shape != t.shape:
            raise VidcamError(f"slice scale of shape {f.shape} does not match {t.size} slices")
        self.scale = f
        self._unique, inverse = np.unique(t[a : b + 1], return_inverse=True)
        avg = np.zeros((self._unique.size, t.size))
        avg[inverse, np.arange(a, b + 1)] = 1.0
        self._avg = avg / avg.sum(1, keepdims=True)  # (U, T): mean of trusted slices per time
        self.start = float(t.min()) - self.margin
        self.end = float(t.max()) + self.margin

    def slice_weights(self, t: np.ndarray | float, scaled: bool = True) -> np.ndarray:
        """(F,) times -> (F, T) weights over the window's slices: only trusted slices weigh;
        rows sum to 1, then times each slice's ``scale`` (unless ``scaled=False``)."""
        u = self._unique
        t = np.clip(np.atleast_1d(np.asarray(t, dtype=np.float64)), u[0], u[-1])
        hi = np.minimum(np.searchsorted(u, t, side="right"), u.size - 1)
        lo = np.maximum(hi - 1, 0)
        gap = np.maximum(u[hi] - u[lo], 1e-12)
        lam = np.where(hi == lo, 0.0, np.clip((t - u[lo]) / gap, 0.0, 1.0))
        w = np.zeros((t.size, u.size))
        rows = np.arange(t.size)
        np.add.at(w, (rows, lo), 1 - lam)
        np.add.at(w, (rows, hi), lam)
        w = w @ self._avg
        return w * self.scale if scaled else w

    def hold(self, t: np.ndarray | float) -> np.ndarray:
        """(F,) frame times -> (F,) the times of the trusted samples they read: ``t`` inside
        the trusted span, its nearest end outside (held)."""
        u = self._unique
        return np.clip(np.atleast_1d(np.asarray(t, dtype=np.float64)), u[0], u[-1])

    def kept(self, x: torch.Tensor) -> torch.Tensor:
        """A window's (T, ...) slices -> its trusted ones times their ``scale`` (what frames
        can show: e.g. for a display scale's reference)."""
        a, b = self.keep
        f = torch.as_tensor(self.scale[a : b + 1], dtype=x.dtype, device=x.device)
        return x[a : b + 1] * f.reshape(-1, *([1] * (x.dim() - 1)))

    def weight(self, t: np.ndarray | float) -> np.ndarray:
        """(F,) times -> (F,) blend weight: triangular over [start, end], >= _FLOOR inside."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        mid = (self.start + self.end) / 2
        half = max((self.end - self.start) / 2, 1e-12)
        tri = np.maximum(1 - np.abs(t - mid) / half, _FLOOR)
        return np.where((t >= self.start) & (t <= self.end), tri, 0.0)


def trusted_range(samples: int, slices: int, pad: int = 0) -> tuple[int, int]:
    """The trusted samples (a, b) of a window of ``samples`` whose explained layer has
    ``slices`` time steps and whose last ``pad`` samples repeat the video's last frame.

    Upsampled linearly, a slice reaches to the centre of its neighbour; the outer slices see
    the network's temporal zero padding most. So the trusted samples lie between the centres
    of the second and the second-last slice (I3D, 64 samples, 8 slices: 12..51; a layer at
    full temporal resolution: all but the outer sample; two slices or fewer: the centre);
    padded samples are never trusted.
    """
    if samples < 1 or slices < 1 or not 0 <= pad < samples:
        raise VidcamError(f"no trusted range for {samples} samples, {slices} slices, pad {pad}")
    step = samples / slices
    a = math.ceil(1.5 * step - 0.5 - 1e-9)
    b = samples - 1 - a
    if a > b:  # too few slices to drop any: the centre
        a, b = (samples - 1) // 2, samples // 2
    b = min(b, samples - 1 - pad)
    return min(a, b), b


def window_supports(
    windows: Sequence, energies: Sequence[torch.Tensor], samples: int, slices: int, margin: float
) -> list[TimeSupport]:
    """Every window's time support: its trusted samples (:func:`trusted_range` for the
    explained layer's ``slices`` and the window's ``pad``) and the inverse of the
    network's position gain (:func:`position_gain`, from the windows without padding)."""
    keep = trusted_range(samples, slices)
    full = [e for e, w in zip(energies, windows, strict=True) if not w.padded]
    scale = 1.0 / position_gain(full, keep) if full else np.ones(samples)
    return [
        TimeSupport(w.times, margin, trusted_range(samples, slices, w.pad), scale) for w in windows
    ]


GAIN_MIN_WINDOWS = 3  # fewer windows than this: no position gain is estimated (1)
GAIN_CLAMP = 4.0  # the gain is kept within [1 / GAIN_CLAMP, GAIN_CLAMP]


def position_gain(
    energies: Sequence[torch.Tensor | np.ndarray], keep: tuple[int, int]
) -> np.ndarray:
    """(T,) the network's gain per position in a window, from every window's energies (T,).

    A window's padding changes the response at each position the same way in every window,
    whatever the content; the content differs between windows. So the gain at position p is
    the median, over windows, of the window's energy at p divided by its mean over the trusted
    samples ``keep`` = (a, b), normalised to mean 1 there and clamped to [1/4, 4]. Windows
    with no energy are skipped; the gain is 1 outside ``keep``, and everywhere when fewer than
    ``GAIN_MIN_WINDOWS`` windows, or fewer than half of them, have energy (a short video, or a
    model whose evidence is all in a few windows: then their profile is content, not position).
    """
    a, b = keep
    rows = [np.asarray(torch.as_tensor(e).detach().cpu(), np.float64) for e in energies]
    size = rows[0].size if rows else 0
    out = np.ones(size)
    if any(r.shape != (size,) for r in rows) or not 0 <= a <= b < size:
        return out
    prof = [r[a : b + 1] / r[a : b + 1].mean() for r in rows if r[a : b + 1].mean() > 0]
    if len(prof) < max(GAIN_MIN_WINDOWS, len(rows) / 2):  # the few with energy are content
        return out
    g = np.median(np.stack(prof), axis=0)
    g = np.clip(g / g.mean(), 1 / GAIN_CLAMP, GAIN_CLAMP) if g.mean() > 0 else np.ones_like(g)
    out[a : b + 1] = g
    return out


def frame_importance(
    supports: Sequence[TimeSupport],
    energies: Sequence[torch.Tensor | np.ndarray],
    frame_times: np.ndarray,
    cuts: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Blend per-slice energies (T,) of every window onto each frame time: (F,) float64.
    ``cuts``: sorted times of the first frames of shots; a window's slice held across one
    does not count, and a frame no window then explains gets 0."""
    ft = np.asarray(frame_times, dtype=np.float64)
    num = np.zeros_like(ft)
    den = np.zeros_like(ft)
    es = [np.asarray(torch.as_tensor(e).detach().cpu(), dtype=np.float64) for e in energies]
    for sup, e in zip(supports, es, strict=True):
        lo = int(np.searchsorted(ft, sup.start, side="left"))
        hi = int(np.searchsorted(ft, sup.end, side="right"))
        if hi <= lo:
            continue
        t = ft[lo:hi]
        w = np.where(crosses(cuts, t, sup.hold(t)), 0.0, sup.weight(t))
        num[lo:hi] += w * (sup.slice_weights(t) @ e)
        den[lo:hi] += w
    for i in np.flatnonzero(den == 0):  # frames no window reaches: the nearest window's edge
        j = _nearest(supports, float(ft[i]))
        if not crosses(cuts, ft[i], supports[j].hold(ft[i]))[0]:
            num[i] = (supports[j].slice_weights(ft[i]) @ es[j])[0]
        den[i] = 1.0
    return num / den


def _nearest(supports: Sequence[TimeSupport], t: float) -> int:
    dist = [max(s.start - t, t - s.end, 0.0) for s in supports]
    return min(range(len(supports)), key=dist.__getitem__)


class SourcePlacer:
    """Crop-space maps (..., h, w) -> source grid (..., H, W), undoing resize and crop."""

    def __init__(
        self,
        geometry: Geometry,
        map_size: tuple[int, int],
        *,
        fill: Fill = 0.0,
        device: torch.device | str = "cpu",
    ) -> None:
        if fill != "edge" and not isinstance(fill, (int, float)):
            raise VidcamError(f"fill {fill!r} must be 'edge' or a number")
        self.geometry = geometry
        self.map_size = map_size
        self.fill = fill
        H, W = geometry.source
        sy, sx = geometry.scale
        top, left = geometry.offset
        ch, cw = geometry.crop
        # source pixel centre -> crop coordinate -> grid_sample's [-1, 1] (align_corners=False)
        gy = ((torch.arange(H, dtype=torch.float32) + 0.5) * sy - top) * (2.0 / ch) - 1.0
        gx = ((torch.arange(W, dtype=torch.float32) + 0.5) * sx - left) * (2.0 / cw) - 1.0
        grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)
        self._grid = grid[None].to(device)  # (1, H, W, 2) as (x, y)
        inside = (gy.abs() <= 1)[:, None] & (gx.abs() <= 1)[None, :]
        self._mask = inside.to(device=device, dtype=torch.float32)
        rows = (gy.abs() <= 1).nonzero()
        cols = (gx.abs() <= 1).nonzero()
        self._rows = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        self._cols = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 0)
        # the same mapping as an affine map for OpenCV: source pixel -> map pixel index
        h, w = map_size
        ax, ay = sx * w / cw, sy * h / ch
        self._affine = np.array(
            [[ax, 0, (0.5 * sx - left) * w / cw - 0.5], [0, ay, (0.5 * sy - top) * h / ch - 0.5]],
            dtype=np.float64,
        )

    def __call__(self, maps: torch.Tensor) -> torch.Tensor:
        lead = maps.shape[:-2]
        x = maps.reshape(1, -1, *maps.shape[-2:]).to(self._grid.device, torch.float32)
        out = F.grid_sample(
            x, self._grid, mode="bilinear", padding_mode="border", align_corners=False
        )[0]
        if self.fill != "edge":
            out = out * self._mask
            if self.fill:
                out = out + float(self.fill) * (1 - self._mask)
        return out.reshape(*lead, *self.geometry.source)

    def place_u8(self, maps: np.ndarray) -> np.ndarray:
        """Rendering path: (h, w) or (h, w, 3) uint8 map -> (H, W[, 3]) uint8 on the source grid.

        The same mapping as ``__call__`` (OpenCV bilinear, 1/32-pixel fixed-point positions),
        on the CPU where the frame is composed.
        """
        H, W = self.geometry.source
        out = cv2.warpAffine(
            np.ascontiguousarray(maps),
            self._affine,
            (W, H),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if self.fill != "edge":
            value = int(round(float(self.fill) * 255))
            (r0, r1), (c0, c1) = self._rows, self._cols
            out[:r0] = value
            out[r1:] = value
            out[:, :c0] = value
            out[:, c1:] = value
        return out


class MapBlender:
    """Stream: frame time -> blended crop-space map, loading window maps lazily.

    ``supports`` are the windows' time supports (in window order, starts increasing);
    ``load(i)`` returns window i's named maps {name: (T, h, w) heat or (T, h, w, 3) image}
    (e.g. read from a spool; heat gets the supports' per-slice ``scale``, images not). Call
    :meth:`at` with increasing times; windows whose support ended before it are released.
    Per frame, each map name costs one ``tensordot`` over the active windows' stacked slices.
    ``cuts`` (times of the first frames of shots, increasing; more with :meth:`add_cut`): a
    window whose held slice lies across a cut from the frame does not weigh on it.
    """

    def __init__(
        self,
        supports: Sequence[TimeSupport],
        load: Callable[[int], dict[str, torch.Tensor]],
        cuts: Sequence[float] = (),
    ) -> None:
        if not supports:
            raise VidcamError("no window to blend")
        self.supports = supports
        self._load = load
        self.cuts: list[float] = []
        for c in cuts:
            self.add_cut(c)
        self._active: dict[int, dict[str, torch.Tensor]] = {}
        self._stack: dict[str, torch.Tensor] = {}  # active windows' slices, concatenated
        self._next = 0
        self._last_t = float("-inf")

    @property
    def active(self) -> list[int]:
        return sorted(self._active)

    def add_cut(self, time: float) -> None:
        """A shot starts at ``time`` (after every cut added before)."""
        if self.cuts and time <= self.cuts[-1]:
            raise VidcamError(f"cuts must increase: {time} after {self.cuts[-1]}")
        self.cuts.append(float(time))

    def _set_active(self, keep: list[int], new: list[int]) -> None:
        self._active = {i: self._active[i] for i in keep}
        for i in new:
            self._active[i] = self._load(i)
        order = sorted(self._active)
        names = self._active[order[0]].keys()
        self._stack = {n: torch.cat([self._active[i][n] for i in order]) for n in names}

    def at(self, t: float) -> tuple[dict[str, torch.Tensor], dict[int, float]]:
        """({name: blended map (...)}, {window index: normalised weight}) for time ``t``; no
        window weighs on a frame it could only show across a cut: then the maps are 0 (images
        0.5: no evidence) and the weights empty."""
        if t < self._last_t:
            raise VidcamError(f"MapBlender.at needs increasing times: {t} after {self._last_t}")
        self._last_t = t
        sups = self.supports
        new = []
        while self._next < len(sups) and sups[self._next].start <= t:
            new.append(self._next)
            self._next += 1
        keep = [i for i in self._active if sups[i].end >= t]
        if not keep and not new:  # hold the last window (or, before any, the first)
            keep = list(self._active)
            if not keep:
                new, self._next = [0], max(self._next, 1)
        if new or len(keep) != len(self._active):
            self._set_active(keep, new)
        order = sorted(self._active)
        weights = {i: float(sups[i].weight(t)[0]) for i in order}
        if sum(weights.values()) <= 0:
            j = min(order, key=lambda i: max(sups[i].start - t, t - sups[i].end, 0.0))
            weights = {i: float(i == j) for i in order}
        if self.cuts:
            across = {i for i in order if crosses(self.cuts, t, sups[i].hold(t))[0]}
            weights = {i: 0.0 if i in across else w for i, w in weights.items()}
        total = sum(weights.values())
        if total <= 0:  # unexplained: every window here would hold a slice across a cut
            grey = {torch.uint8: 128}  # an image's "no evidence" (0.5, or 128 in uint8); heat 0
            return {
                n: s[0].clone().fill_(grey.get(s.dtype, 0.5) if s.dim() == 4 else 0)
                for n, s in self._stack.items()
            }, {}
        ws = [sups[i].slice_weights(t, scaled=False)[0] * (weights[i] / total) for i in order]
        # heat maps get each slice's scale, images (..., 3) do not
        scaled = [w * sups[i].scale for w, i in zip(ws, order, strict=True)]
        vecs = [np.concatenate(scaled), np.concatenate(ws)]
        out = {}
        for name, stack in self._stack.items():
            vec = vecs[stack.dim() == 4]
            w = torch.from_numpy(vec).to(stack.device, stack.dtype)
            out[name] = torch.tensordot(w, stack, dims=1)
        return out, {i: w / total for i, w in weights.items() if w > 0}
