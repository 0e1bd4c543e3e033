"""Typed per-clip records of ``vidcam evaluate``: what one clip gave for every map.

:class:`ClipRecord` (one clip) holds a :class:`MapRecord` per map (method or reference): O (the
score on E = map ⊙ clip), its :class:`MapSize`, the classic curves' AUC per unit
(:class:`UnitCurves`), the keep / remove scores and relative curves per fill
(:class:`FillScores`), its :class:`Cost` and its :class:`Localization`. The JSON's ``clips``
are their :meth:`to_json` (keys, order and numbers exactly as schema 2 writes them; see
docs/evaluate_json.md) and :meth:`from_json` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import FILLS, UNITS
from vidcam.evaluate.keys import SCORE_KINDS, Metric, ScoreKey, parse_score_key
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS


@dataclass(frozen=True)
class MapSize:
    """How much of the clip a map covers (:func:`vidcam.evaluate.metrics_size.map_size`):
    ``mean`` (``map_mean``), ``area50`` (``map_area50``), ``peak1`` (``map_peak1``)."""

    mean: float | None = None
    area50: float | None = None
    peak1: float | None = None

    def items(self) -> Iterator[tuple[str, float | None]]:
        yield from (("map_mean", self.mean), ("map_area50", self.area50), ("map_peak1", self.peak1))

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MapSize:
        return cls(d.get("map_mean"), d.get("map_area50"), d.get("map_peak1"))


@dataclass(frozen=True)
class UnitCurves:
    """The classic deletion / insertion AUC of one unit (``voxel`` or ``frame``) under the
    baseline (absolute probabilities)."""

    unit: str
    deletion: float | None
    insertion: float | None

    def items(self) -> Iterator[tuple[str, float | None]]:
        yield f"deletion_{self.unit}", self.deletion
        yield f"insertion_{self.unit}", self.insertion


@dataclass(frozen=True)
class FillScores:
    """One fill's keep / remove scores (every fraction and score kind, in JSON order: kind,
    fraction, remove before keep) and its relative deletion / insertion AUC (score / Y)."""

    fill: str
    scores: Mapping[ScoreKey, float | None]
    deletion_rel: float | None
    insertion_rel: float | None

    def items(self) -> Iterator[tuple[str, float | None]]:
        """(JSON key, value): the probability ratios, the relative AUCs, then the other kinds."""
        for kind in SCORE_KINDS:
            yield from ((k.key, v) for k, v in self.scores.items() if k.kind == kind)
            if kind == "prob":
                yield f"deletion_rel_{self.fill}", self.deletion_rel
                yield f"insertion_rel_{self.fill}", self.insertion_rel


@dataclass(frozen=True)
class Localization:
    """A map against the ground truth (:data:`LOCALIZATION_METRICS`; None: not measurable)."""

    energy_pg: float | None = None
    pointing: float | None = None
    pointing_tol: float | None = None
    coverage: float | None = None
    temporal: float | None = None
    iou: float | None = None

    def items(self) -> Iterator[tuple[str, float | None]]:
        yield from ((k, getattr(self, k)) for k in LOCALIZATION_METRICS)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Localization:
        return cls(**{k: d.get(k) for k in LOCALIZATION_METRICS})


@dataclass(frozen=True)
class Cost:
    """What a method's map cost on one clip (or the mean over clips): model forwards, masked
    clips among them, backwards to the input, seconds of the engine call."""

    forwards: float
    masked_clips: float
    backwards: float
    seconds: float

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def metric_value(rec: MapRecord | Any, metric: Metric) -> float | None:
    """A map's (or a summary row's) value of ``metric``: a keep / remove score, a map size,
    a classic or relative AUC or a localization metric (None when it was not measured)."""
    if isinstance(metric, ScoreKey):
        fill = rec.fills.get(metric.fill)
        return None if fill is None else fill.scores.get(metric)
    for group in (rec.size, *rec.curves.values(), *rec.fills.values()):
        for k, v in group.items():
            if k == metric:
                return v
    if rec.localization is not None and metric in LOCALIZATION_METRICS:
        return getattr(rec.localization, metric)
    return None


@dataclass(frozen=True)
class MapRecord:
    """One map on one clip: ``o`` (the target's probability on E = map ⊙ clip under the
    baseline, the paper's O), ``size``, ``curves`` (unit -> classic AUCs; only the units run),
    ``fills`` (fill -> keep / remove scores), ``cost`` (the methods'; None for references) and
    ``localization`` (None without ground truth)."""

    o: float
    size: MapSize
    curves: Mapping[str, UnitCurves] = field(default_factory=dict)
    fills: Mapping[str, FillScores] = field(default_factory=dict)
    cost: Cost | None = None
    localization: Localization | None = None

    def value(self, metric: Metric) -> float | None:
        return self.o if metric == "O" else metric_value(self, metric)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"O": self.o, **dict(self.size.items())}
        for unit in self.curves.values():
            out.update(unit.items())
        for fill in self.fills.values():
            out.update(fill.items())
        if self.cost is not None:
            out["cost"] = self.cost.to_json()
        if self.localization is not None:
            out.update(self.localization.items())
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MapRecord:
        """Read a map's JSON object back (keys may be missing: they read as not measured)."""
        known = {"O", "cost", "map_mean", "map_area50", "map_peak1", *LOCALIZATION_METRICS}
        scores: dict[str, dict[ScoreKey, float | None]] = {}
        for key, v in d.items():
            sk = parse_score_key(key)
            if sk is not None:
                scores.setdefault(sk.fill, {})[sk] = v
            elif key not in known and not _curve_key(key):
                raise VidcamError(f"evaluation record: unknown map key {key!r} (schema 2)")
        curves = {
            u: UnitCurves(u, d.get(f"deletion_{u}"), d.get(f"insertion_{u}"))
            for u in UNITS
            if f"deletion_{u}" in d or f"insertion_{u}" in d
        }
        fills = {
            f: FillScores(f, s, d.get(f"deletion_rel_{f}"), d.get(f"insertion_rel_{f}"))
            for f, s in scores.items()
        }
        has_loc = any(k in d for k in LOCALIZATION_METRICS)
        return cls(
            o=d.get("O"),
            size=MapSize.from_json(d),
            curves=curves,
            fills=fills,
            cost=Cost(**d["cost"]) if "cost" in d else None,
            localization=Localization.from_json(d) if has_loc else None,
        )


def _curve_key(key: str) -> bool:
    classic = {f"{k}_{u}" for k in ("deletion", "insertion") for u in UNITS}
    relative = {f"{k}_rel_{f}" for k in ("deletion", "insertion") for f in FILLS}
    return key in classic or key in relative


@dataclass(frozen=True)
class ClipRecord:
    """One clip: where it came from (``video``, source ``frames``, ``spatial`` mode,
    ``window`` (h, w)), its ground truth (``gt_label``, ``gt_origin``), the explained class
    ``target``, ``y`` = the target's (probability, log-probability, logit) on the whole clip,
    the score of the baseline clip and of each fill's fully filled clip (``empty_scores``),
    every map's record, the model's prediction (``pred``, ``pred_name``, ``correct`` against
    the ground-truth label, None without one) and, when the centre prior was not among the
    maps, its localization alone (``centre_prior``)."""

    maps: Mapping[str, MapRecord]
    y: tuple[float, float, float]
    video: str = ""
    frames: tuple[int, ...] = ()
    spatial: str = "center"
    window: tuple[int, int] = (0, 0)
    gt_label: str | None = None
    gt_origin: str | None = None
    target: int = 0
    baseline_score: float | None = None
    empty_scores: Mapping[str, float] = field(default_factory=dict)
    pred: int = 0
    pred_name: str = ""
    correct: bool | None = None
    centre_prior: Localization | None = None

    @property
    def y_prob(self) -> float:
        return self.y[0]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "video": self.video,
            "frames": list(self.frames),
            "spatial": self.spatial,
            "window": list(self.window),
            "gt_label": self.gt_label,
            "gt_origin": self.gt_origin,
            "target": self.target,
            "Y": self.y[0],
            "Y_logp": self.y[1],
            "Y_logit": self.y[2],
            "baseline_score": self.baseline_score,
            "empty_scores": dict(self.empty_scores),
            "methods": {m: r.to_json() for m, r in self.maps.items()},
            "pred": self.pred,
            "pred_name": self.pred_name,
            "correct": self.correct,
        }
        if self.centre_prior is not None:
            out["centre_prior"] = dict(self.centre_prior.items())
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ClipRecord:
        """Read a clip's JSON object back (fields other than ``Y`` and ``methods`` may be
        missing: a hand-made record for the summary)."""
        prior = d.get("centre_prior")
        return cls(
            maps={m: MapRecord.from_json(r) for m, r in d["methods"].items()},
            y=(d["Y"], d.get("Y_logp"), d.get("Y_logit")),
            video=d.get("video", ""),
            frames=tuple(d.get("frames", ())),
            spatial=d.get("spatial", "center"),
            window=tuple(d.get("window", (0, 0))),
            gt_label=d.get("gt_label"),
            gt_origin=d.get("gt_origin"),
            target=d.get("target", 0),
            baseline_score=d.get("baseline_score"),
            empty_scores=dict(d.get("empty_scores", {})),
            pred=d.get("pred", 0),
            pred_name=d.get("pred_name", ""),
            correct=d.get("correct"),
            centre_prior=Localization.from_json(prior) if prior else None,
        )
