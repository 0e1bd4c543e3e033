"""The summary of an evaluation run: per-method means over clips, the paper's metrics, Win %,
the methods' ranking per metric and per fill (:mod:`vidcam.evaluate.ranking`), and paired
win rates against each reference map (:mod:`vidcam.evaluate.paired`) — a typed
:class:`~vidcam.evaluate.summary_records.Summary` built from the clips' typed records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from vidcam.cam.methods import METHODS as CAM_METHODS
from vidcam.errors import VidcamError
from vidcam.evaluate.choices import UNITS
from vidcam.evaluate.metrics_faithfulness import (
    average_drop,
    drops,
    increase_in_confidence,
    win_percent,
)
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS
from vidcam.evaluate.paired import paired_columns, paired_wins
from vidcam.evaluate.ranking import fill_agreement, headline_columns, rank_methods
from vidcam.evaluate.records import (
    ClipRecord,
    Cost,
    FillScores,
    Localization,
    MapRecord,
    MapSize,
    UnitCurves,
)
from vidcam.evaluate.references import REFERENCE_HELP
from vidcam.evaluate.summary_records import MethodRanking, MethodSummary, PairedWins, Summary

#: display titles of every map an evaluation can compare
METHOD_TITLES: dict[str, str] = {
    **{m.id: m.title for m in CAM_METHODS.values() if not m.guided},
    "random": "random",
    "random_voxel": "random (voxel)",
    "centre": "centre prior",
    "ones": "all-ones",
}


def summary_of(
    clips: Sequence[ClipRecord],
    *,
    fills: Sequence[str] = (),
    fraction: float | None = None,
    units: Sequence[str] = UNITS,
) -> Summary:
    """Per-method means over clips, Average Drop / Increase in Confidence, pairwise Win %, and
    (with ``fills`` and the headline ``fraction``) the ranking of the methods per metric, each
    fill's ranking and where they disagree, and every method's paired win rate against each
    reference map present (:data:`REFERENCE_HELP`)."""
    if not clips:
        raise VidcamError("no clips were evaluated")
    methods = list(clips[0].maps)
    y = torch.tensor([c.y_prob for c in clips], dtype=torch.float64)
    o = {m: torch.tensor([c.maps[m].o for c in clips], dtype=torch.float64) for m in methods}
    win = {a: {b: win_percent(o[a], o[b], y)[0] for b in methods if b != a} for a in methods}
    judged = [c.correct for c in clips if c.correct is not None]
    with_gt = [c for c in clips if c.gt_origin is not None or c.correct is not None]
    priors = [c.centre_prior for c in clips if c.centre_prior is not None]
    prior = None
    if priors:  # the centre prior's localization when it was not among the maps
        prior = Localization(
            **{k: _mean([getattr(p, k) for p in priors]) for k in LOCALIZATION_METRICS}
        )
    ranking = paired = None
    if fills and fraction is not None:
        ranking, paired = _rankings(clips, methods, fills, fraction, units)
    return Summary(
        clips=len(clips),
        clips_with_gt=len(with_gt),
        accuracy=(sum(judged) / len(judged)) if judged else None,
        methods={m: _method_summary(clips, m, y, o[m]) for m in methods},
        win_percent=win,
        centre_prior=prior,
        ranking=ranking,
        paired=paired,
    )


def summarize(
    clips: Sequence[ClipRecord | Mapping[str, Any]],
    *,
    fills: Sequence[str] = (),
    fraction: float | None = None,
    units: Sequence[str] = UNITS,
) -> dict[str, Any]:
    """:func:`summary_of` as the JSON's ``summary`` object; ``clips`` may be the JSON's clip
    objects (read with :meth:`~vidcam.evaluate.records.ClipRecord.from_json`)."""
    records = [c if isinstance(c, ClipRecord) else ClipRecord.from_json(c) for c in clips]
    return summary_of(records, fills=fills, fraction=fraction, units=units).to_json()


def _mean(vals: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None (None when there are none)."""
    present = [v for v in vals if v is not None]
    return sum(present) / len(present) if present else None


def _rankings(
    clips: Sequence[ClipRecord],
    methods: list[str],
    fills: Sequence[str],
    fraction: float,
    units: Sequence[str],
) -> tuple[MethodRanking, PairedWins | None]:
    """The ranking per metric and per fill, and the paired win rates against the references."""
    ranking = rank_methods(clips, methods, headline_columns(fills, fraction, units))
    agreement = fill_agreement(ranking, list(fills), fraction, clips)
    ranking = replace(ranking, fraction=fraction, fills=agreement)
    refs = [m for m in methods if m in REFERENCE_HELP]
    own = [m for m in methods if m not in REFERENCE_HELP]
    paired = None
    if refs and own:
        wins = paired_wins(clips, own, refs, paired_columns(fills, fraction))
        paired = replace(wins, fraction=fraction)
    return ranking, paired


def _method_summary(
    clips: Sequence[ClipRecord], m: str, y: torch.Tensor, o: torch.Tensor
) -> MethodSummary:
    """One map's means over clips: the paper's metrics, the curves, every other number."""
    recs = [c.maps[m] for c in clips]
    curves = {}
    for unit in UNITS:  # every unit: None where a clip did not run it
        per = [r.curves.get(unit) for r in recs]
        dele = [None if u is None else u.deletion for u in per]
        ins = [None if u is None else u.insertion for u in per]
        curves[unit] = UnitCurves(unit, _strict_mean(dele), _strict_mean(ins))
    size = MapSize(
        *(_mean([getattr(r.size, k) for r in recs]) for k in ("mean", "area50", "peak1"))
    )
    locs = {k: [getattr(r.localization, k, None) for r in recs] for k in LOCALIZATION_METRICS}
    costs = [r.cost for r in recs if r.cost is not None]
    cost = None
    if costs:  # the map's cost per clip (mean): forwards, masked clips, backwards, seconds
        cost = Cost(*(_mean([getattr(c, k) for c in costs]) for k in Cost.__dataclass_fields__))
    return MethodSummary(
        average_drop=average_drop(y, o),
        increase_in_confidence=increase_in_confidence(y, o),
        mean_drop=float(drops(y, o).mean()),
        curves=curves,
        size=size,
        fills={f: _fill_means(recs, f) for f in recs[0].fills},
        localization=Localization(**{k: _mean(v) for k, v in locs.items()}),
        localization_clips={k: sum(v is not None for v in vals) for k, vals in locs.items()},
        cost=cost,
    )


def _strict_mean(vals: list[float | None]) -> float | None:
    """The mean, or None when any clip lacks the value (a unit that was not run)."""
    return sum(vals) / len(vals) if None not in vals else None


def _fill_means(recs: Sequence[MapRecord], fill: str) -> FillScores:
    """One fill's scores and relative AUCs averaged over the clips that have them."""
    first = recs[0].fills[fill]
    per = [r.fills.get(fill) for r in recs]
    scores = {k: _mean([None if p is None else p.scores.get(k) for p in per]) for k in first.scores}
    return FillScores(
        fill,
        scores,
        _mean([None if p is None else p.deletion_rel for p in per]),
        _mean([None if p is None else p.insertion_rel for p in per]),
    )
