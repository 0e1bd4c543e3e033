"""Chart geometry for the report, computed in Python; the templates draw it as inline SVG.

:func:`timeline` lays out one video's timeline: per window the probabilities of the top-k
classes (one point per window, at the window's mid time) over the per-frame temporal
importance (a filled area), on one time axis ``[0, duration]`` and one value axis ``[0, 1]``.
Text never overlaps: the time ticks are spaced by the width of their labels
(:func:`time_ticks`), and a window's top-class name is written only where its box is free
(:func:`place_labels`); widths are estimated from DejaVu Sans, a wide font, so narrower
fonts only add space. :func:`sparkline` lays out a small profile (the batch index's
per-class importance).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vidcam.errors import VidcamError

#: line colours of the class series (colour-blind friendly, Okabe–Ito)
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
TICK_FONT, LABEL_FONT = 11.0, 10.0  # px in the viewBox (style.css: svg text, text.toplabel)
ASCENT, DESCENT = 0.93, 0.24  # of the font size: a text's box above and below its baseline
GAP = 6.0  # the least free space between two texts
#: (characters, width in em at most): DejaVu Sans' advance widths rounded up
_WIDTHS = (
    (" ijlIJ.,:;'|!", 0.34),
    ('ftr()[]{}/-\\"`', 0.42),
    ("mwMW%@", 1.0),
    ("ABCDEFGHKLNOPQRSTUVXYZ&", 0.79),
)
_EM = {c: w for chars, w in _WIDTHS for c in chars}
#: time steps (s) the axis may use: 1-2-5 below a minute, then clock-like ones
_SUB_MINUTE = tuple(b * 10.0**e for e in range(-3, 2) for b in (1, 2, 5))
_CLOCK = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def text_width(text: str, size: float) -> float:
    """An upper estimate of ``text``'s width in px at font ``size`` (wide characters 1 em)."""
    em = 0.0
    for c in text:
        if c in _EM:
            em += _EM[c]
        elif c.isascii():
            em += 0.64
        elif unicodedata.combining(c):
            continue
        else:
            em += 1.0 if unicodedata.east_asian_width(c) in "WF" else 0.8
    return em * size


def clock(t: float, step: float) -> str:
    """A tick label: ``"2.5 s"`` on a sub-minute axis, else ``"m:ss"`` or ``"h:mm:ss"``."""
    if step < 60:
        return f"{round(t, 6):g} s"
    s = round(t)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def time_ticks(duration: float, span: float, *, most: int = 10) -> list[tuple[float, str]]:
    """(time, label) of the ticks on a ``span``-px axis over ``[0, duration]``: the smallest
    step (1-2-5 s below a minute, then 1, 2, 5, 10, 15, 30 min, 1 h, ...) that leaves
    :data:`GAP` between the widest labels and gives at most ``most`` + 1 ticks."""
    duration = max(float(duration), 1e-9)
    steps = [*_SUB_MINUTE, *_CLOCK]
    steps += [steps[-1] * 2**k for k in range(1, 64) if steps[-1] * 2**k < duration * 2]
    for step in steps:
        n = int(duration / step + 1e-9)
        if n > most:
            continue
        ticks = [(i * step, clock(i * step, step)) for i in range(n + 1)]
        widest = max(text_width(label, TICK_FONT) for _, label in ticks)
        if step / duration * span >= widest + GAP or n == 0:
            return ticks
    return [(0.0, clock(0.0, steps[-1]))]


@dataclass(frozen=True)
class Label:
    """A text at (x, y) (its baseline's middle) with its estimated box."""

    x: float
    y: float
    text: str
    box: tuple[float, float, float, float]  # (left, top, right, bottom)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def place_labels(
    wanted: Sequence[tuple[float, float, str]],
    bounds: tuple[float, float],
    *,
    size: float = LABEL_FONT,
    gap: float = GAP,
) -> tuple[Label, ...]:
    """The texts of ``wanted`` (x, y, text: centred on x, baseline y) that fit: each is
    moved into ``bounds`` (x from, x to) and dropped when its box would come within ``gap``
    of a kept one. Changes come first (a text unlike the previous one), then the rest, each
    pass left to right; the result is in x order."""
    kept: list[Label] = []
    changes = [i for i, w in enumerate(wanted) if i == 0 or w[2] != wanted[i - 1][2]]
    first = set(changes)
    order = changes + [i for i in range(len(wanted)) if i not in first]
    for i in order:
        x, y, text = wanted[i]
        w = text_width(text, size)
        if not text or w > bounds[1] - bounds[0]:
            continue
        x = min(max(x, bounds[0] + w / 2), bounds[1] - w / 2)
        box = (x - w / 2, y - ASCENT * size, x + w / 2, y + DESCENT * size)
        if not any(_overlaps(box, k.box, gap) for k in kept):
            kept.append(Label(x, y, text, box))
    return tuple(sorted(kept, key=lambda k: k.x))


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    t: float
    value: float
    window: int
    known: bool = True  # False: the class was not among the window's top predictions (0 shown)
    name: str = ""  # the top class series: the window's top label


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: tuple[Point, ...]
    missing: int  # windows where the class was not among the window's top predictions
    kind: str = "class"  # "top": each window's own top class; "class": one class throughout

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.2f},{p.y:.2f}" for p in self.points)


@dataclass(frozen=True)
class Timeline:
    """Coordinates in the SVG's viewBox: the plot spans x0..x1 (time 0..duration) and
    y_top..y_bottom (value 1..0); tick labels sit at ``tick_y`` (baseline)."""

    width: int
    height: int
    x0: float
    x1: float
    y_top: float
    y_bottom: float
    duration: float
    series: tuple[Series, ...] = ()
    importance_area: str = ""  # polygon points of the per-frame importance
    x_ticks: tuple[tuple[float, str], ...] = ()
    y_ticks: tuple[tuple[float, str], ...] = ()
    windows: int = 0
    top_labels: tuple[Label, ...] = ()  # the window top-class names that fit
    radius: float = 3.5  # of a window's point: smaller when windows are dense

    @property
    def tick_y(self) -> float:
        return self.y_bottom + 18

    def x_of(self, t: float) -> float:
        return self.x0 + (self.x1 - self.x0) * min(max(t / self.duration, 0.0), 1.0)

    def y_of(self, v: float) -> float:
        return self.y_bottom - (self.y_bottom - self.y_top) * min(max(v, 0.0), 1.0)


def top_classes(windows: Sequence[Mapping], k: int) -> list[tuple[int, str]]:
    """The ``k`` classes with the highest mean probability over the windows (a class outside
    a window's top predictions counts 0 there), as (index, label)."""
    total: dict[int, float] = {}
    names: dict[int, str] = {}
    for w in windows:
        for e in w.get("top", []):
            total[int(e["index"])] = total.get(int(e["index"]), 0.0) + float(e["prob"])
            names[int(e["index"])] = str(e["label"])
    best = sorted(total, key=lambda c: (-total[c], c))[:k]
    return [(c, names[c]) for c in best]


def _frame(duration: float, width: int, height: int) -> Timeline:
    """The empty timeline: margins that hold the y labels (left) and half the last time
    label (right), the ticks spaced by their labels' widths."""
    x0, x1 = 44.0, width - 14.0
    ticks = time_ticks(duration, x1 - x0)
    half_last = text_width(ticks[-1][1], TICK_FONT) / 2 + 2
    if half_last > width - x1:  # the last label would leave the picture: a wider margin
        x1 = width - half_last
        ticks = time_ticks(duration, x1 - x0)
    tl = Timeline(width, height, x0, x1, 14.0, height - 30.0, duration)
    return Timeline(
        width, height, x0, x1, tl.y_top, tl.y_bottom, duration,
        x_ticks=tuple((tl.x_of(t), label) for t, label in ticks),
        y_ticks=tuple((tl.y_of(v), f"{v:.0%}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)),
    )  # fmt: skip


def timeline(explanation: Mapping, *, k: int = 3, width: int = 900, height: int = 240) -> Timeline:
    """The timeline of one explain JSON (``VideoExplanation.to_json()``)."""
    windows = list(explanation.get("windows", []))
    times = [float(t) for t in explanation.get("times", [])]
    importance = [float(v) for v in explanation.get("importance", [])]
    if len(times) != len(importance):
        raise VidcamError(
            f"explanation: {len(times)} frame times but {len(importance)} importance values; "
            "give the JSON vidcam explain wrote"
        )
    duration = float(explanation.get("duration") or 0.0) or (times[-1] if times else 1.0) or 1.0
    tl = _frame(duration, width, height)
    mids = [(float(w["start"]) + float(w["end"])) / 2 for w in windows]
    firsts = [(w.get("top") or [{}])[0] for w in windows]
    top = tuple(
        Point(tl.x_of(t), tl.y_of(float(e.get("prob", 0.0))), t, float(e.get("prob", 0.0)),
              int(w["index"]), bool(e), str(e.get("label", "")))
        for t, e, w in zip(mids, firsts, windows, strict=True)
    )  # fmt: skip
    series = [Series("the window's top class", "#222222", top, 0, "top")]
    for n, (c, label) in enumerate(top_classes(windows, k)):
        pts, missing = [], 0
        for t, w in zip(mids, windows, strict=True):
            probs = {int(e["index"]): float(e["prob"]) for e in w.get("top", [])}
            missing += c not in probs
            p = probs.get(c, 0.0)
            pts.append(Point(tl.x_of(t), tl.y_of(p), t, p, int(w["index"]), c in probs))
        series.append(Series(label, PALETTE[n % len(PALETTE)], tuple(pts), missing))
    area = [(tl.x_of(t), tl.y_of(v)) for t, v in zip(times, importance, strict=True)]
    if area:
        area = [(area[0][0], tl.y_bottom), *area, (area[-1][0], tl.y_bottom)]
    names = [(p.x, p.y - 8 if p.y > tl.y_top + 20 else p.y + 16, p.name) for p in top]
    spacing = (tl.x1 - tl.x0) / max(len(windows), 1)
    return Timeline(
        width, height, tl.x0, tl.x1, tl.y_top, tl.y_bottom, duration,
        series=tuple(series),
        importance_area=" ".join(f"{x:.2f},{y:.2f}" for x, y in area),
        x_ticks=tl.x_ticks,
        y_ticks=tl.y_ticks,
        windows=len(windows),
        top_labels=place_labels(names, (tl.x0 + 2, tl.x1 - 2)),
        radius=round(min(max(spacing * 0.4, 1.2), 3.5), 2),
    )  # fmt: skip


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    line: str
    area: str


def sparkline(values: Sequence[float], *, width: int = 140, height: int = 30) -> Sparkline:
    """A small profile of ``values`` in [0, 1] (left = start of the video)."""
    n = len(values)
    if n == 0:
        return Sparkline(width, height, "", "")
    pad = 2.0
    xs = [pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    ys = [height - pad - (height - 2 * pad) * min(max(float(v), 0.0), 1.0) for v in values]
    line = " ".join(f"{x:.2f},{y:.2f}" for x, y in zip(xs, ys, strict=True))
    base = f"{xs[-1]:.2f},{height - pad:.2f} {xs[0]:.2f},{height - pad:.2f}"
    return Sparkline(width, height, line, f"{line} {base}")
