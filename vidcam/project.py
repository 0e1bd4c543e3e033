"""Map back to source: crop-space window maps -> one heatmap per source frame.

Space: :class:`SourcePlacer` undoes the centre crop and the resize with one ``grid_sample``
(bilinear) from the crop's map onto the source pixel grid. Source pixels outside the crop were
never seen by the model: they get a constant (``fill=0.0``, the default: no evidence; 0.5 suits
guided-backprop images, where mid grey is zero) or the nearest edge value (``fill="edge"``).

Time: a window's T slices belong to the times of the source frames it sampled. A source frame
at time t takes the linear interpolation between the two sampled times around it (slices that
sampled the same frame are averaged; before the first / after the last sampled time the edge
slice is held). Overlapping windows are blended with triangular weights that peak at a window's
centre and fall to zero half a sample period beyond its ends, so seams are smooth.

Importance: the per-frame energy of the explanation (a scalar per slice, e.g. the mean of the
un-normalised CAM), interpolated and blended exactly like the maps.

:class:`MapBlender` works as a stream over increasing frame times and keeps only the windows
that can still touch a frame not yet produced. Everything is torch on one device.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError
from vidcam.preprocess import Geometry

Fill = Literal["edge"] | float
_FLOOR = 1e-3  # smallest blend weight of a window covering the frame


@dataclass
class TimeSupport:
    """Where a window sits in time: sampled frame ``times`` (T,) seconds and the ``margin`` by
    which its influence reaches past its first and last sample (half a sample period)."""

    times: Sequence[float]
    margin: float
    _unique: torch.Tensor = field(init=False, repr=False)
    _avg: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = torch.as_tensor([float(x) for x in self.times], dtype=torch.float64)
        if t.numel() == 0:
            raise VidcamError("a window needs at least one sampled time")
        self._unique, inverse = torch.unique(t, sorted=True, return_inverse=True)
        avg = torch.zeros(self._unique.numel(), t.numel(), dtype=torch.float64)
        avg[inverse, torch.arange(t.numel())] = 1.0
        self._avg = avg / avg.sum(1, keepdim=True)  # (U, T): mean of slices sharing a time

    @property
    def start(self) -> float:
        return float(self._unique[0]) - self.margin

    @property
    def end(self) -> float:
        return float(self._unique[-1]) + self.margin

    def slice_weights(self, t: torch.Tensor) -> torch.Tensor:
        """(F,) times -> (F, T) weights over the window's slices (rows sum to 1)."""
        u = self._unique
        t = t.to(torch.float64).clamp(u[0], u[-1])
        hi = torch.searchsorted(u, t, right=True).clamp(max=u.numel() - 1)
        lo = (hi - 1).clamp(min=0)
        gap = (u[hi] - u[lo]).clamp_min(1e-12)
        lam = torch.where(hi == lo, torch.zeros_like(t), (t - u[lo]) / gap).clamp(0, 1)
        w = torch.zeros(t.numel(), u.numel(), dtype=torch.float64)
        w.scatter_add_(1, lo[:, None], (1 - lam)[:, None])
        w.scatter_add_(1, hi[:, None], lam[:, None])
        return w @ self._avg

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """(F,) times -> (F,) blend weight: triangular over [start, end], >= _FLOOR inside."""
        t = t.to(torch.float64)
        mid = (self.start + self.end) / 2
        half = max((self.end - self.start) / 2, 1e-12)
        tri = (1 - (t - mid).abs() / half).clamp_min(_FLOOR)
        inside = (t >= self.start) & (t <= self.end)
        return torch.where(inside, tri, torch.zeros_like(tri))


def frame_importance(
    supports: Sequence[TimeSupport], energies: Sequence[torch.Tensor], frame_times: torch.Tensor
) -> torch.Tensor:
    """Blend per-slice energies (T,) of every window onto each frame time: (F,) float64."""
    ft = frame_times.to(torch.float64).cpu()
    num = torch.zeros_like(ft)
    den = torch.zeros_like(ft)
    for sup, e in zip(supports, energies, strict=True):
        lo = int(torch.searchsorted(ft, torch.tensor(sup.start, dtype=torch.float64)))
        hi = int(torch.searchsorted(ft, torch.tensor(sup.end, dtype=torch.float64), right=True))
        if hi <= lo:
            continue
        t = ft[lo:hi]
        w = sup.weight(t)
        num[lo:hi] += w * (sup.slice_weights(t) @ e.detach().to("cpu", torch.float64))
        den[lo:hi] += w
    missing = den == 0
    if bool(missing.any()):  # frames no window reaches: the nearest window's edge value
        for i in missing.nonzero()[:, 0].tolist():
            j = _nearest(supports, float(ft[i]))
            t = ft[i : i + 1]
            num[i] = (supports[j].slice_weights(t) @ energies[j].to("cpu", torch.float64))[0]
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
    ``load(i)`` returns window i's named maps {name: (T, ...)} (e.g. read from a spool). Call
    :meth:`at` with increasing times; windows whose support ended before it are released.
    """

    def __init__(
        self,
        supports: Sequence[TimeSupport],
        load: Callable[[int], dict[str, torch.Tensor]],
    ) -> None:
        if not supports:
            raise VidcamError("no window to blend")
        self.supports = supports
        self._load = load
        self._active: dict[int, dict[str, torch.Tensor]] = {}
        self._next = 0
        self._last_t = float("-inf")

    @property
    def active(self) -> list[int]:
        return sorted(self._active)

    def at(self, t: float) -> tuple[dict[str, torch.Tensor], dict[int, float]]:
        """({name: blended map (...)}, {window index: normalised weight}) for time ``t``."""
        if t < self._last_t:
            raise VidcamError(f"MapBlender.at needs increasing times: {t} after {self._last_t}")
        self._last_t = t
        sups = self.supports
        while self._next < len(sups) and sups[self._next].start <= t:
            self._active[self._next] = self._load(self._next)
            self._next += 1
        for i in [i for i in self._active if sups[i].end < t]:
            if len(self._active) > 1 or self._next < len(sups):
                del self._active[i]
        if not self._active:  # t before the first window's reach
            self._active[0] = self._load(0)
        tt = torch.tensor([t], dtype=torch.float64)
        weights = {i: float(sups[i].weight(tt)[0]) for i in self._active}
        if sum(weights.values()) <= 0:
            j = min(self._active, key=lambda i: max(sups[i].start - t, t - sups[i].end, 0.0))
            weights = {j: 1.0}
        total = sum(weights.values())
        weights = {i: w / total for i, w in weights.items() if w > 0}
        out: dict[str, torch.Tensor] = {}
        for i, w in weights.items():
            sw = sups[i].slice_weights(tt)[0]
            for name, maps in self._active[i].items():
                part = torch.tensordot(sw.to(maps.device, maps.dtype), maps, dims=1) * w
                out[name] = part if name not in out else out[name] + part
        return out, weights


class MapSpool:
    """Per-window tensors kept on disk (an anonymous temporary file) until rendering.

    ``put(arrays)`` appends one window's named tensors (stored as their CPU bytes; use float16 or
    uint8 to keep it small) and returns its index; ``get(i)`` reads them back. Memory stays flat
    however long the video is.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="vidcam-maps-")  # noqa: SIM115 (lives with us)
        self._index: list[dict[str, tuple[int, tuple[int, ...], np.dtype]]] = []
        self._end = 0

    def __len__(self) -> int:
        return len(self._index)

    def put(self, arrays: dict[str, torch.Tensor]) -> int:
        entry = {}
        self._file.seek(self._end)
        for name, t in arrays.items():
            a = t.detach().contiguous().cpu().numpy()
            self._file.write(a.tobytes())
            entry[name] = (self._end, a.shape, a.dtype)
            self._end += a.nbytes
        self._index.append(entry)
        return len(self._index) - 1

    def get(self, i: int) -> dict[str, torch.Tensor]:
        out = {}
        for name, (offset, shape, dtype) in self._index[i].items():
            self._file.seek(offset)
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            a = np.frombuffer(self._file.read(n), dtype=dtype).reshape(shape)
            out[name] = torch.from_numpy(a.copy())
        return out

    def close(self) -> None:
        self._file.close()
