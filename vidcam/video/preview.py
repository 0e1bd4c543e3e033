"""The preview: one PNG contact sheet of a video's explanation (``--preview PATH.png``).

``rows × cols`` frames spread evenly over the video (the centres of equal segments), each the
heat overlay of its frame (every panel, side by side) with a caption band under it: time,
frame number, the top prediction of the window covering it, and the frame's importance as a
small bar. A header names the video, model and method and carries the colour legend (what
the scale means); a footer shows the whole video's importance against time, with the picked
frames marked. It is what a person looks at before opening the video.

:class:`ContactSheet` collects the tiles while pass 2 renders (see
:func:`vidcam.video.pipeline.write_explained_video` and
:func:`~vidcam.video.pipeline.write_preview`) and writes the PNG atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vidcam.errors import VidcamError
from vidcam.paths import atomic_write, check_output

PREVIEW_EXTENSIONS = (".png", ".jpg", ".jpeg")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (28, 28, 28)
_BAR = (255, 190, 40)  # the importance colour of the video's strip


def check_preview(path: str | Path, *, inputs: Sequence[str | Path] = (), overwrite: bool = False):
    """Validate a preview path before any work (extension, directory, overwrite)."""
    p = Path(path)
    if p.suffix.lower() not in PREVIEW_EXTENSIONS:
        raise VidcamError(
            f"--preview {str(p)!r} must end in {', '.join(PREVIEW_EXTENSIONS)} (an image file)"
        )
    return check_output("--preview", p, inputs=inputs, overwrite=overwrite)


def preview_indices(frames: int, count: int) -> list[int]:
    """``count`` frame indices spread over ``frames`` frames (centres of equal segments)."""
    if frames <= 0:
        return []
    picks = ((np.arange(min(count, frames)) + 0.5) * frames / min(count, frames)).astype(int)
    return sorted({int(min(i, frames - 1)) for i in picks})


class ContactSheet:
    """Tiles of picked frames -> one PNG.

    Args:
        frames: number of source frames; rows, cols: the grid.
        title: the header's first line; legend: what the heat scale means.
        lut: (256, 3) RGB colormap of the heat (for the legend).
        importance, times: the video's per-frame importance and times (the footer).
        tile_width: width of a tile (all panels of a frame together) in pixels.
    """

    def __init__(
        self,
        frames: int,
        *,
        rows: int = 3,
        cols: int = 4,
        title: str = "",
        legend: str = "",
        lut: np.ndarray | None = None,
        importance: np.ndarray | None = None,
        times: np.ndarray | None = None,
        tile_width: int = 360,
    ) -> None:
        if rows < 1 or cols < 1:
            raise VidcamError(f"a preview needs at least one row and column, got {rows}x{cols}")
        self.rows, self.cols = rows, cols
        self.picks = preview_indices(frames, rows * cols)
        self.title, self.legend, self.lut = title, legend, lut
        self.importance = None if importance is None else np.asarray(importance, np.float64)
        self.times = None if times is None else np.asarray(times, np.float64)
        self.tile_width = tile_width
        self.tiles: dict[int, np.ndarray] = {}

    def wants(self, index: int) -> bool:
        return index in self.picks and index not in self.tiles

    def add(
        self, index: int, image: np.ndarray, *, time: float, label: str, importance: float
    ) -> None:
        """One picked frame: ``image`` (H, W, 3) uint8 RGB, the overlay without text."""
        h, w = image.shape[:2]
        th = max(1, int(round(h * self.tile_width / w)))
        interp = cv2.INTER_AREA if w > self.tile_width else cv2.INTER_LINEAR
        tile = cv2.resize(image, (self.tile_width, th), interpolation=interp)
        band = np.full((34, self.tile_width, 3), _BG, np.uint8)
        _put(band, f"t={time:.2f}s  #{index + 1}", (4, 13), 0.4)
        _put(band, _fit(label, self.tile_width - 8, 0.4), (4, 28), 0.4, (255, 220, 120))
        bw = int(round((self.tile_width * 0.3) * float(np.clip(importance, 0, 1))))
        x0 = self.tile_width - 4 - int(self.tile_width * 0.3)
        cv2.rectangle(band, (x0, 4), (self.tile_width - 4, 13), (70, 70, 70), 1)
        if bw > 0:
            band[5:13, x0 + 1 : x0 + 1 + bw] = _BAR
        _put(band, "importance", (x0 - 6 - _width("importance", 0.35), 13), 0.35, (170, 170, 170))
        self.tiles[index] = np.vstack([tile, band])

    def image(self) -> np.ndarray:
        """The sheet (RGB uint8)."""
        if not self.tiles:
            raise VidcamError("the preview has no frames")
        shape = next(iter(self.tiles.values())).shape
        gap = 6
        cells = [self.tiles.get(i, np.full(shape, _BG, np.uint8)) for i in self.picks]
        cells += [np.full(shape, _BG, np.uint8)] * (self.rows * self.cols - len(cells))
        width = self.cols * shape[1] + (self.cols + 1) * gap
        rows = []
        for r in range(self.rows):
            row = np.full((shape[0], width, 3), _BG, np.uint8)
            for c in range(self.cols):
                x = gap + c * (shape[1] + gap)
                row[:, x : x + shape[1]] = cells[r * self.cols + c]
            rows.append(row)
            rows.append(np.full((gap, width, 3), _BG, np.uint8))
        return np.vstack([self._header(width), *rows, self._footer(width, shape[1], gap)])

    def write(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Encode the sheet and write it to ``path`` atomically (``overwrite=False``: fail
        rather than replace a file that appeared meanwhile)."""
        p = Path(path)
        ok, data = cv2.imencode(p.suffix.lower(), self.image()[..., ::-1])
        if not ok:
            raise VidcamError(f"cannot encode the preview as {p.suffix}")
        with atomic_write(p, overwrite=overwrite) as tmp:
            tmp.write_bytes(data.tobytes())
        return p

    def _header(self, width: int) -> np.ndarray:
        head = np.full((44, width, 3), _BG, np.uint8)
        _put(head, _fit(self.title, width // 2, 0.5), (8, 18), 0.5)
        note = _fit("cold = the source, untouched; heat blended in colour", width // 2 - 12, 0.4)
        _put(head, note, (8, 36), 0.4)
        if self.lut is not None:
            bar_w = min(200, width // 4)
            lw = _width("high", 0.4)
            x1 = width - 8 - lw - 6
            x0 = x1 - bar_w
            ramp = np.linspace(0, 255, bar_w).round().astype(np.uint8)
            head[8:20, x0:x1] = self.lut[ramp][None]
            _put(head, "low", (x0 - 6 - _width("low", 0.4), 18), 0.4)
            _put(head, "high", (x1 + 6, 18), 0.4)
            legend = _fit(self.legend, width // 2 - 12, 0.4)
            _put(head, legend, (width - 8 - _width(legend, 0.4), 36), 0.4)
        return head

    def _footer(self, width: int, tile_w: int, gap: int) -> np.ndarray:
        foot = np.full((40, width, 3), _BG, np.uint8)
        if self.importance is None or self.times is None or not len(self.times):
            return foot[:0]
        x0, x1 = 8, width - 8
        t0, t1 = self.times[0], self.times[-1]
        span = max(t1 - t0, 1e-9)
        cols = t0 + (np.arange(x1 - x0) + 0.5) / (x1 - x0) * span
        v = np.clip(np.interp(cols, self.times, self.importance), 0, 1)
        sh = 22
        bars = np.arange(sh)[:, None] >= (sh - np.rint(v * sh))[None, :]
        region = foot[4 : 4 + sh, x0:x1]
        region[bars] = _BAR
        for i in self.picks:
            x = x0 + int(np.clip((self.times[i] - t0) / span * (x1 - x0), 0, x1 - x0 - 1))
            foot[2 : 6 + sh, x] = (255, 255, 255)
        _put(foot, "importance over time (white: the frames above)", (8, 38), 0.35)
        return foot


def _width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def _fit(text: str, width: int, scale: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    if _width(text, scale) <= width:
        return text
    while text and _width(text + "...", scale) > width:
        text = text[:-1]
    return text + "..."


def _put(img, text, org, scale, color=(235, 235, 235)) -> None:
    cv2.putText(img, text, org, _FONT, scale, color, 1, cv2.LINE_AA)
