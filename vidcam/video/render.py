"""Renderer: heatmaps -> annotated RGB frames at the source resolution (OpenCV).

Each panel is either a heatmap or an image shown as is (a guided-backprop product). A heatmap
is blended onto the original frame with colour and opacity doing two jobs:

- **colour** = the heat on the display scale (``--colormap``; with the default "video" scale,
  the same colour means the same heat in every frame, so hue says *when* the model looks);
- **opacity** grows with the heat relative to the frame's own peak ``P``:
  ``alpha × smoothstep(RAMP over heat / P) × (FLOOR + (1 − FLOOR) × P) × smoothstep(P / FADE)``
  — the hottest region of every frame with heat is clearly visible, stronger frames a little
  more opaque, frames whose peak is below ~``FADE`` fade out, and pixels below ``RAMP[0]`` of
  the peak or below ``COLD`` are the source pixels, bit for bit (no colour wash).

A small colour legend (bottom right: the colour bar from "low" to "high" and what the scale
means) sits on every heat panel.

Panels sit side by side, each titled when there are several. Text: the prediction lines of
the window covering the frame (top left) and the timestamp (bottom left). At the bottom, a
strip shows the whole video's per-frame importance against time with a playhead at the
current frame: rendering happens after the explanation pass, so the strip is complete from
the first frame on. Where the model's centre crop leaves part of the frame unseen, a thin
grey box marks the crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidcam.errors import VidcamError
from vidcam.video.scale import COLD, FADE, FLOOR, RAMP, opacity

__all__ = [  # the opacity constants live with the display scale; re-exported here
    "COLD",
    "COLORMAPS",
    "FADE",
    "FLOOR",
    "RAMP",
    "Panel",
    "Renderer",
    "check_alpha",
    "colormap_lut",
    "opacity",
    "overlay",
    "to_u8",
]

COLORMAPS: dict[str, int] = {
    name[len("COLORMAP_") :].lower(): getattr(cv2, name)
    for name in dir(cv2)
    if name.startswith("COLORMAP_")
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEGEND_MIN_WIDTH = 160  # narrower frames have no room for a legend that covers nothing
_BAR = (255, 190, 40)  # the importance strip's bars


def check_alpha(alpha: float) -> None:
    """The heatmap opacity must lie in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise VidcamError(f"alpha must be between 0 and 1, got {alpha}")


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of the OpenCV colormap ``name`` (case-insensitive)."""
    code = COLORMAPS.get(name.lower())
    if code is None:
        raise VidcamError(f"colormap {name!r} is not one of: {', '.join(sorted(COLORMAPS))}")
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    return np.ascontiguousarray(cv2.applyColorMap(ramp, code)[:, 0, ::-1])


def to_u8(heat: np.ndarray) -> np.ndarray:
    """Heatmap in [0, 1] (float) or already uint8 -> uint8 (H, W)."""
    if heat.dtype == np.uint8:
        return heat
    return np.clip(np.rint(heat * 255.0), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, lut: np.ndarray, alpha: float) -> np.ndarray:
    """Per pixel: ``a`` × colour(heat) + (1 − a) × image with ``a = opacity(alpha, max heat)
    [heat]``; image (H, W, 3) uint8 RGB. Where ``a`` is 0 the result is the image, bit for bit;
    where ``a`` is 1 it is the colour.

    uint8 arithmetic through per-level tables (the kept share ``255 (1 − a)`` and the
    premultiplied colour ``a × colour``, each rounded), so every pixel is within 1.5 levels of
    the exact blend at 1.6× the speed of a float blend; only the bounding box of the lit pixels
    is touched.
    """
    h8 = to_u8(heat)
    table = opacity(float(alpha), int(h8.max()) if h8.size else 0)
    lit = np.flatnonzero(table)  # levels with any opacity: blend only their bounding box
    out = np.array(image, dtype=np.uint8, order="C", copy=True)
    if not lit.size:
        return out
    box = _bbox(h8 >= lit[0])
    if box is None:
        return out
    y, x, h, w = box
    levels = np.ascontiguousarray(h8[y : y + h, x : x + w])
    keep, colour = _blend_tables(table, lut)
    kept = cv2.multiply(
        out[y : y + h, x : x + w],
        cv2.cvtColor(cv2.LUT(levels, keep), cv2.COLOR_GRAY2RGB),
        scale=1 / 255.0,
    )
    out[y : y + h, x : x + w] = cv2.add(kept, cv2.applyColorMap(levels, colour))
    return out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) bounding the True pixels of ``mask`` (H, W); None when there
    are none. (NumPy: OpenCV's ``boundingRect`` of a mask mis-measures rows that are not
    4-byte aligned before 4.10.)"""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0]) + 1, int(cols[-1] - cols[0]) + 1


def _blend_tables(table: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per heat level: (256,) uint8 ``255 (1 − a)`` and (256, 1, 3) uint8 ``a × colour``."""
    keep = np.rint((1.0 - table) * 255.0).astype(np.uint8)
    colour = np.rint(lut.astype(np.float32) * table[:, None]).astype(np.uint8)
    return keep, colour.reshape(256, 1, 3)


@dataclass(frozen=True)
class Panel:
    """One panel: a ``heat`` map (H, W) in [0, 1] / uint8 to overlay, or an RGB ``image``."""

    title: str
    heat: np.ndarray | None = None
    image: np.ndarray | None = None


class Renderer:
    """Composes annotated frames of ``len(panels)`` × width.

    Args:
        height, width: source frame size.
        colormap, alpha: heatmap look (alpha in [0, 1]: the opacity of full heat).
        importance, times: the video's per-frame importance (F,) in [0, 1] and frame times (F,)
            seconds, for the bottom strip (None: no strip).
        crop_box: (y0, x0, y1, x1) of the model's crop in source pixels, drawn when it does not
            cover the frame.
        legend: what the heat scale means (one short line under the colour bar), None: no
            legend (nor on frames narrower than 160 px: no room that would not hide the picture).
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        colormap: str = "jet",
        alpha: float = 0.6,
        importance: np.ndarray | None = None,
        times: np.ndarray | None = None,
        crop_box: tuple[float, float, float, float] | None = None,
        legend: str | None = None,
    ) -> None:
        check_alpha(alpha)
        self.height, self.width = height, width
        self.lut = colormap_lut(colormap)
        self.alpha = alpha
        self.scale = float(np.clip(min(height, width * 0.6) / 600.0, 0.3, 1.2))
        self.thick = 1 if self.scale < 0.8 else 2
        self.crop_box = crop_box
        if crop_box is not None:
            y0, x0, y1, x1 = crop_box
            if y0 <= 0 and x0 <= 0 and y1 >= height and x1 >= width:
                self.crop_box = None
        self._strip = None
        if importance is not None and times is not None and len(times):
            self._strip = _Strip(importance, times, height)
        self._legend = None
        if legend is not None and width >= _LEGEND_MIN_WIDTH:
            last = float(times[-1]) if times is not None and len(times) else 0.0
            frames = len(times) if times is not None else 1
            clear = self._text_width(f"t={last:.2f}s  frame {frames}") + 3 * self._margin()
            self._legend = _Legend(self, legend, clear)

    def _margin(self) -> int:
        return max(2, int(4 * self.scale))

    def _text_width(self, text: str, scale: float | None = None) -> int:
        return cv2.getTextSize(text, _FONT, scale or self.scale, self.thick)[0][0]

    def __call__(
        self,
        image: np.ndarray,
        panels: Sequence[Panel],
        *,
        time: float,
        frame: int,
        lines: Sequence[str] = (),
    ) -> np.ndarray:
        """One output frame (H, W × len(panels), 3) uint8 RGB."""
        if image.shape != (self.height, self.width, 3):
            raise VidcamError(f"frame shape {image.shape} != ({self.height}, {self.width}, 3)")
        tiles = []
        for p in panels:
            tile = self.tile(image, p)
            title = [p.title] if len(panels) > 1 else []
            self._text(tile, [*title, *lines], top=True)
            if self._strip is not None:
                self._strip.draw(tile, frame)
            self._text(tile, [f"t={time:.2f}s  frame {frame + 1}"], top=False)
            if self._legend is not None and p.heat is not None:
                self._legend.draw(tile)
            tiles.append(tile)
        return tiles[0] if len(tiles) == 1 else np.concatenate(tiles, axis=1)

    def tile(self, image: np.ndarray, p: Panel) -> np.ndarray:
        """One panel without text: the heat overlay (or the image) and the crop box."""
        if p.heat is not None:
            tile = overlay(image, p.heat, self.lut, self.alpha)
        elif p.image is not None:
            tile = np.ascontiguousarray(p.image).copy()
        else:
            tile = image.copy()
        if self.crop_box is not None:
            y0, x0, y1, x1 = (int(round(v)) for v in self.crop_box)
            cv2.rectangle(tile, (x0, y0), (x1 - 1, y1 - 1), (160, 160, 160), 1)
        return tile

    def _text(self, img: np.ndarray, lines: Sequence[str], *, top: bool) -> None:
        if not lines:
            return
        step, th, base = self._line()
        margin = self._margin()
        y = margin + th if top else self.height - margin - base - self._strip_height()
        if not top:
            y -= step * (len(lines) - 1)
        for text in lines:
            self.put(img, text, (margin, y))
            y += step

    def _line(self, scale: float | None = None) -> tuple[int, int, int]:
        """(line step, text height, baseline) at ``scale`` (default: the frame's)."""
        (_, th), base = cv2.getTextSize("Ag", _FONT, scale or self.scale, self.thick)
        return th + base + 2, th, base

    def put(self, img: np.ndarray, text: str, org: tuple[int, int], scale: float | None = None):
        """White text with a 1-px drop shadow of the SAME thickness (OpenCV 5's fonts widen
        with thickness, so a thicker black outline would leave ghost glyphs)."""
        s = scale or self.scale
        for dx, dy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
            shadow = (org[0] + dx, org[1] + dy)
            cv2.putText(img, text, shadow, _FONT, s, (0, 0, 0), self.thick, cv2.LINE_AA)
        cv2.putText(img, text, org, _FONT, s, (255, 255, 255), self.thick, cv2.LINE_AA)

    def _strip_height(self) -> int:
        return self._strip.height if self._strip is not None else 0


class _Legend:
    """The colour bar ("low" [colours] "high") and, where it fits, the scale's meaning under
    it, right-aligned at the bottom of a panel above the strip; one text line higher when the
    time text (``clear`` pixels wide) would run into it."""

    def __init__(self, r: Renderer, text: str, clear: int) -> None:
        self.r, self.fs = r, r.scale * 0.8
        step, th, base = r._line(self.fs)
        m = r._margin()
        self.text = text if r._text_width(text, self.fs) <= 0.45 * r.width else ""
        self.bar_w = int(np.clip(r.width * 0.16, 24, 200))
        self.bar_h = max(4, th)
        w_lo, w_hi = r._text_width("low", self.fs), r._text_width("high", self.fs)
        width = max(w_lo + self.bar_w + w_hi + 2 * m, r._text_width(self.text, self.fs))
        y = r.height - r._strip_height() - m - base  # baseline of the lowest line
        if clear + width + m > r.width:  # shares no line with the time text
            y -= r._line()[0]
        self.text_org = (r.width - m - r._text_width(self.text, self.fs), y)
        if self.text:
            y -= step
        x0 = r.width - m - w_hi - m - self.bar_w
        self.box = (y - self.bar_h, x0, y, x0 + self.bar_w)  # (y0, x0, y1, x1) of the bar
        self.lo_org, self.hi_org = (x0 - m - w_lo, y), (x0 + self.bar_w + m, y)
        ramp = np.linspace(0, 255, self.bar_w).round().astype(np.uint8)
        self.colors = np.broadcast_to(r.lut[ramp][None], (self.bar_h, self.bar_w, 3))

    def draw(self, img: np.ndarray) -> None:
        y0, x0, y1, x1 = self.box
        if y0 < 1 or self.lo_org[0] < 0:
            return  # too small a frame for a legend
        cv2.rectangle(img, (x0 - 1, y0 - 1), (x1, y1), (0, 0, 0), 1)
        img[y0:y1, x0:x1] = self.colors
        self.r.put(img, "low", self.lo_org, self.fs)
        self.r.put(img, "high", self.hi_org, self.fs)
        if self.text:
            self.r.put(img, self.text, self.text_org, self.fs)


class _Strip:
    """Importance against time, precomputed per column; the playhead is drawn per frame."""

    def __init__(self, importance: np.ndarray, times: np.ndarray, frame_height: int) -> None:
        self.importance = np.asarray(importance, dtype=np.float64)
        self.times = np.asarray(times, dtype=np.float64)
        if self.importance.shape != self.times.shape:
            raise VidcamError("importance and times must have the same length")
        self.height = int(np.clip(round(frame_height * 0.08), 6, 48))
        self._cache: dict[int, np.ndarray] = {}
        self._masks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _columns(self, width: int) -> np.ndarray:
        """Bar height per column in [0, 1] (max of the frames that fall in the column)."""
        if width not in self._cache:
            t0, t1 = self.times[0], self.times[-1]
            span = max(t1 - t0, 1e-9)
            centres = t0 + (np.arange(width) + 0.5) / width * span
            v = np.interp(centres, self.times, self.importance)
            cols = np.clip(((self.times - t0) / span * width).astype(int), 0, width - 1)
            np.maximum.at(v, cols, self.importance)
            self._cache[width] = np.clip(v, 0.0, 1.0)
        return self._cache[width]

    def _bars(self, width: int, sh: int) -> tuple[np.ndarray, np.ndarray]:
        """(bar pixels (sh, width, 3) uint8 in the bar colour, their mask (sh, width) uint8)."""
        key = (width, sh)
        if key not in self._masks:
            bars = np.rint(self._columns(width) * sh).astype(int)
            mask = np.arange(sh)[:, None] >= (sh - bars)[None, :]
            colour = np.zeros((sh, width, 3), np.uint8)
            colour[mask] = _BAR
            self._masks[key] = (colour, mask.view(np.uint8))
        return self._masks[key]

    def x_of(self, frame: int, width: int) -> int:
        t0, t1 = self.times[0], self.times[-1]
        span = max(t1 - t0, 1e-9)
        return int(np.clip((self.times[frame] - t0) / span * width, 0, width - 1))

    def draw(self, img: np.ndarray, frame: int) -> None:
        h, w = img.shape[:2]
        sh = min(self.height, h)
        region = img[h - sh :]
        cv2.convertScaleAbs(region, dst=region, alpha=0.4)  # darken to 40 %
        colour, mask = self._bars(w, sh)
        cv2.copyTo(colour, mask, region)
        x = self.x_of(frame, w)
        region[:, max(0, x - 1) : x + 1] = (255, 255, 255)
