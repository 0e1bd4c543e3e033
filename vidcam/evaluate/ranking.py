"""Which method is faithful for this model? Methods ranked per metric, with the spread over clips.

Every column is a per-clip metric (a :class:`~vidcam.evaluate.records.ClipRecord`'s value; Average Drop and Increase in
Confidence from the clip's Y and O: ``max(0, Y − O)/Y · 100`` and ``1[O > Y + tol] · 100``, so
their means are exactly the paper's numbers). Per method and column: the mean over clips, the
sample standard deviation over clips (0 for one clip) and the rank of the mean among the methods
(1 = best; means equal at the printed precision — 3 decimals, 2 for the percentages — share
their average rank, so a difference nobody can see ranks nobody first). Map-size columns are shown but not ranked
(no size is "better"). The **mean rank** averages a method's ranks over the columns that do not
reward coverage — keep / remove the top-k % under the natural fills; the paper's metrics are
ranked in their own columns but left out of it (the all-ones map wins Average Drop).

**Fills that disagree** (:func:`fill_agreement`): each fill ranks the methods on its own
keep / remove columns; two fills disagree on a pair of maps when one ranks it a > b and the
other b > a. ROAD's imputation favours smooth, blurry maps (their removal leaves holes that
interpolate well); black fills favour large maps (they keep more of the clip); blur fills sit
between. A pair that flips between fills is a finding about the fills, not about the maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vidcam.errors import VidcamError
from vidcam.evaluate.keys import PAPER_METRICS, Metric, ScoreKey
from vidcam.evaluate.metrics_faithfulness import TOL
from vidcam.evaluate.records import ClipRecord
from vidcam.evaluate.summary_records import Column, FillAgreement, Flip, MethodRanking, Stat

#: columns printed (and ranked) with 2 decimals; the others with 3
PERCENT_KEYS = frozenset(PAPER_METRICS)


def clip_value(clip: ClipRecord, method: str, metric: Metric) -> float | None:
    """One clip's value of ``metric`` for ``method`` (None: not measured on this clip); the
    paper's metrics from the clip's Y and the map's O."""
    rec = clip.maps[method]
    if metric == "average_drop":
        y, o = clip.y_prob, rec.o
        return 100.0 * max(0.0, y - o) / y if y > 0 else 0.0
    if metric == "increase_in_confidence":
        return 100.0 if rec.o > clip.y_prob + TOL else 0.0
    v = rec.value(metric)
    return None if v is None else float(v)


def clip_values(clips: Sequence[ClipRecord], method: str, metric: Metric) -> list[float]:
    """The per-clip values of ``metric`` for ``method`` (clips without it are left out)."""
    vals = (clip_value(c, method, metric) for c in clips)
    return [v for v in vals if v is not None]


def _mean_std(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def _ranks(means: dict[str, float | None], better: str, digits: int = 3) -> dict[str, float | None]:
    """1 = best; means equal at ``digits`` decimals share their average rank; missing: None."""
    present = [(m, round(v, digits)) for m, v in means.items() if v is not None]
    order = sorted(present, key=lambda mv: mv[1] if better == "low" else -mv[1])
    ranks: dict[str, float | None] = {m: None for m in means}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and order[j + 1][1] == order[i][1]:
            j += 1
        for m, _ in order[i : j + 1]:
            ranks[m] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def rank_methods(
    clips: Sequence[ClipRecord], methods: Sequence[str], columns: Sequence[Column]
) -> MethodRanking:
    """Mean, std and rank of every method in every column, and the mean rank over the columns
    ``in_mean_rank``; the order: by mean rank (missing last), then as given."""
    if not clips:
        raise VidcamError("no clips were evaluated")
    stats: dict[str, dict[Metric, Stat]] = {m: {} for m in methods}
    for col in columns:
        ms = {m: _mean_std(clip_values(clips, m, col.metric)) for m in methods}
        digits = 2 if col.metric in PERCENT_KEYS else 3
        ranks = _ranks({m: s[0] for m, s in ms.items()}, col.better, digits) if col.better else {}
        for m in methods:
            stats[m][col.metric] = Stat(*ms[m], ranks.get(m))
    mean_rank: dict[str, float | None] = {}
    for m in methods:
        rs = [stats[m][c.metric].rank for c in columns if c.in_mean_rank]
        rs = [r for r in rs if r]
        mean_rank[m] = sum(rs) / len(rs) if rs else None
    index = {m: i for i, m in enumerate(methods)}
    order = sorted(methods, key=lambda m: (mean_rank[m] is None, mean_rank[m] or 0.0, index[m]))
    return MethodRanking(tuple(columns), stats, mean_rank, tuple(order))


def headline_columns(fills: Sequence[str], fraction: float, units: Sequence[str]) -> list[Column]:
    """The ranking's columns in print order — keep/remove top-k % under each fill (these make
    the mean rank), map size, the paper's metrics, the classic voxel curves."""
    columns: list[Column] = []
    for f in fills:
        for mode in ("remove", "keep"):
            key = ScoreKey(mode, fraction, f)
            columns.append(Column(key, key.better, in_mean_rank=True))
    columns += [Column("map_mean", None), Column("map_area50", None)]
    columns += [Column("average_drop", "low"), Column("increase_in_confidence", "high")]
    if "voxel" in units:
        columns += [Column("deletion_voxel", "low"), Column("insertion_voxel", "high")]
    return columns


def fill_score(clip: ClipRecord, m: str, fill: str, fraction: float) -> float | None:
    """A map's score under one fill on one clip: keep − remove at ``fraction``."""
    rec = clip.maps[m]
    keep = rec.value(ScoreKey("keep", fraction, fill))
    remove = rec.value(ScoreKey("remove", fraction, fill))
    return None if keep is None or remove is None else float(keep) - float(remove)


def _beats(clips: Sequence[ClipRecord], a: str, b: str, f: str, fraction: float) -> bool:
    """Do the clips support "a beats b under fill f" (paired win rate's 95 % interval > 0.5)?"""
    from vidcam.evaluate.paired import compare

    pairs = [(fill_score(c, a, f, fraction), fill_score(c, b, f, fraction)) for c in clips]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    return bool(pairs) and compare([x for x, _ in pairs], [y for _, y in pairs], "high").lo > 0.5


def _fill_ranks(ranking: MethodRanking, fill: str, fraction: float) -> dict[str, float | None]:
    """Each method's rank under one fill: the rank of its mean rank over that fill's keep and
    remove columns (ties share their average rank)."""
    keys = [ScoreKey("remove", fraction, fill), ScoreKey("keep", fraction, fill)]
    means: dict[str, float | None] = {}
    for m, stats in ranking.stats.items():
        rs = [stats[k].rank for k in keys if k in stats]
        rs = [r for r in rs if r is not None]
        means[m] = sum(rs) / len(rs) if rs else None
    return _ranks(means, "low", digits=6)


def fill_agreement(
    ranking: MethodRanking,
    fills: Sequence[str],
    fraction: float,
    clips: Sequence[ClipRecord] = (),
) -> FillAgreement:
    """Each method's rank under each fill and the pairs of maps two fills order differently:
    under ``f`` a ranks above b, under ``g`` b above a; ``supported``: the clips back both
    orders (per clip, keep − remove under each fill; the paired win rate's 95 % Wilson interval
    lies above 0.5 both ways), else the flip is within the clips' noise. ``agree``: no
    supported disagreement."""
    methods = list(ranking.stats)
    ranks = {f: _fill_ranks(ranking, f, fraction) for f in fills}
    disagree = []
    for i, f in enumerate(fills):
        for g in fills[i + 1 :]:
            for ai, a in enumerate(methods):
                for b in methods[ai + 1 :]:
                    fa, fb, ga, gb = ranks[f][a], ranks[f][b], ranks[g][a], ranks[g][b]
                    if None in (fa, fb, ga, gb) or fa == fb or ga == gb or (fa < fb) == (ga < gb):
                        continue
                    first, second = (a, b) if fa < fb else (b, a)
                    supported = _beats(clips, first, second, f, fraction) and _beats(
                        clips, second, first, g, fraction
                    )
                    disagree.append(Flip((f, g), first, second, supported))
    return FillAgreement(ranks, tuple(disagree), not any(d.supported for d in disagree))
