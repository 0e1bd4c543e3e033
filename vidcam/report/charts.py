"""Chart geometry for the report, computed in Python; the templates draw it as inline SVG.

:func:`timeline` lays out one video's timeline: per window the probabilities of the top-k
classes (one point per window, at the window's mid time) over the per-frame temporal
importance (a filled area), on one time axis ``[0, duration]`` and one value axis ``[0, 1]``.
:func:`sparkline` lays out a small profile (the batch index's per-class importance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vidcam.errors import VidcamError

#: line colours of the class series (colour-blind friendly, Okabe–Ito)
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")


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
    y_top..y_bottom (value 1..0)."""

    width: int
    height: int
    x0: float
    x1: float
    y_top: float
    y_bottom: float
    duration: float
    series: tuple[Series, ...]
    importance_area: str  # polygon points of the per-frame importance
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    windows: int

    def x_of(self, t: float) -> float:
        return self.x0 + (self.x1 - self.x0) * min(max(t / self.duration, 0.0), 1.0)

    def y_of(self, v: float) -> float:
        return self.y_bottom - (self.y_bottom - self.y_top) * min(max(v, 0.0), 1.0)


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / max(target, 1)
    for exp in range(-3, 6):
        for base in (1, 2, 5):
            step = base * 10.0**exp
            if step >= raw:
                return step
    return raw


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
    tl = Timeline(
        width, height, 44.0, width - 14.0, 14.0, height - 30.0, duration, (), "", (), (), 0
    )
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
    step = _nice_step(duration)
    x_ticks = tuple(
        (tl.x_of(i * step), f"{i * step:g} s") for i in range(int(duration / step + 1e-9) + 1)
    )
    y_ticks = tuple((tl.y_of(v), f"{v:.0%}") for v in (0.0, 0.25, 0.5, 0.75, 1.0))
    return Timeline(
        width,
        height,
        tl.x0,
        tl.x1,
        tl.y_top,
        tl.y_bottom,
        duration,
        tuple(series),
        " ".join(f"{x:.2f},{y:.2f}" for x, y in area),
        x_ticks,
        y_ticks,
        len(windows),
    )


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
