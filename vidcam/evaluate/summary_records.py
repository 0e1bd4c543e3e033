"""Typed summary of an evaluation: per-method means, the ranking, the fills' agreement and the
paired win rates (computed by :mod:`vidcam.evaluate.summary`, :mod:`~vidcam.evaluate.ranking`
and :mod:`~vidcam.evaluate.paired`). The JSON's ``summary`` is :meth:`Summary.to_json`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vidcam.evaluate.keys import Metric, ScoreKey, metric_key
from vidcam.evaluate.records import (
    Cost,
    FillScores,
    Localization,
    MapSize,
    UnitCurves,
    metric_value,
)


@dataclass(frozen=True)
class Stat:
    """One column of one method: mean and sample std over clips, rank of the mean (1 = best;
    None: not ranked)."""

    mean: float | None
    std: float | None
    rank: float | None = None


@dataclass(frozen=True)
class Column:
    """A ranking column: its metric, which way is better (None: shown, not ranked) and whether
    the mean rank averages it."""

    metric: Metric
    better: str | None
    in_mean_rank: bool = False

    @property
    def key(self) -> str:
        return metric_key(self.metric)


@dataclass(frozen=True)
class Flip:
    """Two fills order maps ``first`` and ``second`` oppositely (``fills[0]`` ranks ``first``
    higher); ``supported``: the clips' paired wins back both orders."""

    fills: tuple[str, str]
    first: str
    second: str
    supported: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "fills": list(self.fills),
            "first": self.first,
            "second": self.second,
            "supported": self.supported,
        }


@dataclass(frozen=True)
class FillAgreement:
    """Each map's rank under each fill alone, the pairs two fills order differently, and
    ``agree`` (no supported flip)."""

    ranks: Mapping[str, Mapping[str, float | None]]
    disagree: tuple[Flip, ...]
    agree: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "ranks": {f: dict(r) for f, r in self.ranks.items()},
            "disagree": [d.to_json() for d in self.disagree],
            "agree": self.agree,
        }


@dataclass(frozen=True)
class MethodRanking:
    """Every method's :class:`Stat` per column, its mean rank, the order by mean rank; with the
    headline ``fraction`` and the fills' agreement when the summary made it."""

    columns: tuple[Column, ...]
    stats: Mapping[str, Mapping[Metric, Stat]]
    mean_rank: Mapping[str, float | None]
    order: tuple[str, ...]
    fraction: float | None = None
    fills: FillAgreement | None = None

    def to_json(self) -> dict[str, Any]:
        methods = {
            m: {
                **{metric_key(k): asdict(s) for k, s in stats.items()},
                "mean_rank": self.mean_rank[m],
            }
            for m, stats in self.stats.items()
        }
        out: dict[str, Any] = {} if self.fraction is None else {"fraction": self.fraction}
        out |= {
            "columns": [
                {"key": c.key, "better": c.better, "in_mean_rank": c.in_mean_rank}
                for c in self.columns
            ],
            "methods": methods,
            "order": list(self.order),
        }
        if self.fills is not None:
            out["fills"] = self.fills.to_json()
        return out


@dataclass(frozen=True)
class WinRecord:
    """A paired comparison over ``n`` clips: wins, ties, losses, the win rate (ties count
    half) and its 95 % Wilson interval [lo, hi]."""

    n: int
    wins: int
    ties: int
    losses: int
    rate: float
    lo: float
    hi: float


@dataclass(frozen=True)
class PairedWins:
    """Every method against every reference, per column (a keep / remove score and the better
    direction): ``table[method][reference][score]``."""

    interval: str
    columns: tuple[tuple[ScoreKey, str], ...]
    table: Mapping[str, Mapping[str, Mapping[ScoreKey, WinRecord]]]
    fraction: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.fraction is None else {"fraction": self.fraction}
        return out | {
            "interval": self.interval,
            "columns": [{"key": k.key, "better": b} for k, b in self.columns],
            "methods": {
                m: {r: {k.key: asdict(w) for k, w in cols.items()} for r, cols in refs.items()}
                for m, refs in self.table.items()
            },
        }


@dataclass(frozen=True)
class MethodSummary:
    """One map's means over clips: the paper's Average Drop and Increase in Confidence (%),
    the mean drop, the classic AUCs of every unit (None when not run), the map size, the keep /
    remove scores and relative AUCs per fill, the localization means with the number of clips
    each averages, and the mean cost (methods only)."""

    average_drop: float
    increase_in_confidence: float
    mean_drop: float
    curves: Mapping[str, UnitCurves]
    size: MapSize
    fills: Mapping[str, FillScores]
    localization: Localization
    localization_clips: Mapping[str, int]
    cost: Cost | None = None

    def value(self, metric: Metric) -> float | None:
        if metric in ("average_drop", "increase_in_confidence", "mean_drop"):
            return getattr(self, str(metric))
        return metric_value(self, metric)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "average_drop": self.average_drop,
            "increase_in_confidence": self.increase_in_confidence,
            "mean_drop": self.mean_drop,
        }
        for unit in self.curves.values():
            out.update(unit.items())
        out.update(self.size.items())
        for fill in self.fills.values():
            out.update(fill.items())
        for k, v in self.localization.items():
            out[k] = v
            out[f"{k}_clips"] = self.localization_clips[k]
        if self.cost is not None:
            out["cost"] = self.cost.to_json()
        return out


@dataclass(frozen=True)
class Summary:
    """The run's summary: clip counts, top-1 accuracy (None without ground-truth labels), per
    map its :class:`MethodSummary`, the Win % matrix (row beats column on E = map ⊙ clip), the
    centre prior's localization when it was not among the maps, the ranking and the paired
    win rates (with fills and a headline fraction)."""

    clips: int
    clips_with_gt: int
    accuracy: float | None
    methods: Mapping[str, MethodSummary]
    win_percent: Mapping[str, Mapping[str, float]]
    centre_prior: Localization | None = None
    ranking: MethodRanking | None = None
    paired: PairedWins | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clips": self.clips,
            "clips_with_gt": self.clips_with_gt,
            "accuracy": self.accuracy,
            "methods": {m: s.to_json() for m, s in self.methods.items()},
            "win_percent": {a: dict(row) for a, row in self.win_percent.items()},
        }
        if self.centre_prior is not None:
            out["centre_prior"] = dict(self.centre_prior.items())
        if self.ranking is not None:
            out["ranking"] = self.ranking.to_json()
        if self.paired is not None:
            out["paired"] = self.paired.to_json()
        return out
