"""``vidcam evaluate`` options: the fills, fractions, units and steps of one run, validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import (
    BASELINES,
    DEFAULT_METHODS,
    ENGINE_METHODS,
    NATURAL_FILLS,
    POINTING_TOLERANCE,
    REFERENCES,
    SPATIAL,
    UNITS,
)
from vidcam.evaluate.curves import grid
from vidcam.evaluate.fills import parse_fills
from vidcam.evaluate.keys import pct  # noqa: F401 (re-exported)

FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.5)
#: the headline keeps/removes this share of voxels when it is among the fractions (else the
#: nearest one): the share the issue's and ROAD's comparisons use
HEADLINE_FRACTION = 0.2


def headline_fraction(fractions: Sequence[float]) -> float:
    """The fraction the headline table shows (see :data:`HEADLINE_FRACTION`)."""
    return min(fractions, key=lambda f: (abs(f - HEADLINE_FRACTION), f))


def parse_fractions(text: str | Sequence[float]) -> tuple[float, ...]:
    """``"10,20,50"`` (percent) or fractions -> sorted unique fractions in (0, 1)."""
    if isinstance(text, str):
        try:
            vals = [float(v) / 100.0 for v in text.split(",") if v.strip()]
        except ValueError:
            raise VidcamError(f"--fractions {text!r}: give percentages, e.g. 10,20,50") from None
    else:
        vals = [float(v) for v in text]
    if not vals or any(not 0.0 < v < 1.0 for v in vals):
        raise VidcamError(f"fractions must lie strictly between 0 and 100 %, got {text!r}")
    return tuple(sorted(set(vals)))


@dataclass
class EvalOptions:
    """``baseline``: the paper's E = map ⊙ clip and the classic curves (``deletion_voxel`` ...);
    ``fills``: the fills of the keep/remove scores and of the relative deletion/insertion curves;
    ``fractions``: the keep/remove shares; ``fill_steps``: equal steps added to the fills' curve
    positions (0: only 0, the fractions and 1, see :func:`fill_grid`); ``units``: the units of
    the classic curves under ``baseline`` (``()``: none, the fastest run); ``methods``: the
    engine's methods compared; ``references``: the reference maps scored beside them (all by
    default, :mod:`vidcam.evaluate.references`; ``vidcam batch --evaluate`` keeps only the
    random one); ``spatial``: which part of each frame is explained and scored (``center``:
    the model's crop, the library's default; ``vidcam evaluate`` uses ``auto`` like
    ``vidcam explain``); ``gt_dir``: a folder of per-video ground truth or an annotation
    pickle; ``tolerance``: the pointing game's tolerance in source pixels."""

    baseline: str = "black"
    steps: int = 16
    batch: int = 16
    seed: int = 0
    target: str = "pred"
    gt_dir: str | Path | None = None
    quiet: bool = False
    fills: tuple[str, ...] = NATURAL_FILLS
    fractions: tuple[float, ...] = FRACTIONS
    fill_steps: int = 0
    units: tuple[str, ...] = UNITS
    methods: tuple[str, ...] = DEFAULT_METHODS
    references: tuple[str, ...] = REFERENCES
    spatial: str = "center"
    tolerance: float = POINTING_TOLERANCE

    def check(self) -> None:
        if self.baseline not in BASELINES:
            raise VidcamError(f"baseline {self.baseline!r} is not one of {', '.join(BASELINES)}")
        if self.steps < 2:
            raise VidcamError(f"steps must be >= 2, got {self.steps}")
        if self.batch < 1:
            raise VidcamError(f"batch must be >= 1, got {self.batch}")
        if self.target not in ("pred", "gt"):
            raise VidcamError(f"target must be 'pred' or 'gt', got {self.target!r}")
        if self.fill_steps < 0:
            raise VidcamError(f"fill steps must be >= 0, got {self.fill_steps}")
        self.units = parse_units(self.units)
        self.fills = parse_fills(self.fills) if self.fills else ()
        self.fractions = parse_fractions(self.fractions)
        self.methods = parse_methods(self.methods)
        self.references = parse_references(self.references)
        if self.spatial not in SPATIAL:
            raise VidcamError(f"spatial {self.spatial!r} must be one of {', '.join(SPATIAL)}")
        t = self.tolerance
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 10_000:
            raise VidcamError(f"pointing tolerance must be between 0 and 10000 pixels, got {t!r}")

    @property
    def evaluated(self) -> tuple[str, ...]:
        """Every map of the run, in table order: the methods, then the references."""
        return (*self.methods, *self.references)


def parse_methods(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"gradcam,layercam"`` (or a sequence) -> engine method ids, de-duplicated, in order
    (``"all"``: every method, Score-CAM too; ``"random"``/``"ones"`` are always evaluated)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        name = str(raw).strip().lower()
        if not name or name in REFERENCES:
            continue
        if name == "all":
            out += [m for m in ENGINE_METHODS if m not in out]
            continue
        if name not in ENGINE_METHODS:
            raise VidcamError(
                f"--methods: {name!r} is not one of {', '.join(ENGINE_METHODS)} (or all)"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise VidcamError(f"--methods: give at least one of {', '.join(ENGINE_METHODS)}")
    return tuple(out)


def parse_references(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"random,centre"``, ``"none"`` or a sequence -> reference maps, in REFERENCES order."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {str(v).strip().lower() for v in items if str(v).strip()}
    if names == {"none"}:
        return ()
    bad = sorted(names - set(REFERENCES))
    if bad:
        raise VidcamError(f"references: {bad[0]!r} is not one of {', '.join(REFERENCES)} or none")
    return tuple(r for r in REFERENCES if r in names)


def parse_units(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"voxel,frame"``, ``"both"``, ``"none"`` or a sequence -> the classic curves' units, in
    UNITS order."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {v.strip().lower() for v in items if v.strip()}
    if names == {"none"}:
        return ()
    if "both" in names:
        names = (names - {"both"}) | set(UNITS)
    bad = names - set(UNITS)
    if bad:
        raise VidcamError(f"unit {sorted(bad)[0]!r} is not one of {', '.join(UNITS)}, both or none")
    return tuple(u for u in UNITS if u in names)


def fill_grid(fill: str, opts: EvalOptions) -> tuple[float, ...]:
    """Positions (shares of the map's top voxels removed, or kept) of a fill's relative curves:
    0, the fractions and 1, plus ``fill_steps`` equal steps.

    Every position costs one masked forward per map and mode, and for ROAD one sparse solve
    too, so by default the fills are scored only where the keep/remove scores need them (their
    AUC is then a coarse trapezoid over 0, the fractions and 1); ``--fill-steps`` refines the
    curves. The classic curves (``--steps``, under ``--baseline``) are separate.
    """
    return grid(opts.fill_steps, opts.fractions)
