"""Which method is faithful for this model? Methods ranked per metric, with the spread over clips.

Every column is a per-clip metric (a clip record's value; Average Drop and Increase in
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
from typing import Any

from vidcam.errors import VidcamError
from vidcam.evaluate.metrics_faithfulness import TOL

#: a column: (key in the clip records, "low" | "high" = better, or None = not ranked)
Column = tuple[str, str | None]


def clip_values(clips: Sequence[dict[str, Any]], method: str, key: str) -> list[float]:
    """The per-clip values of ``key`` for ``method`` (clips without it are left out)."""
    out = []
    for c in clips:
        rec = c["methods"][method]
        if key == "average_drop":
            y, o = c["Y"], rec["O"]
            out.append(100.0 * max(0.0, y - o) / y if y > 0 else 0.0)
        elif key == "increase_in_confidence":
            out.append(100.0 if rec["O"] > c["Y"] + TOL else 0.0)
        elif rec.get(key) is not None:
            out.append(float(rec[key]))
    return out


def _mean_std(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


#: columns printed (and ranked) with 2 decimals; the others with 3
PERCENT_KEYS = frozenset({"average_drop", "increase_in_confidence"})


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
    clips: Sequence[dict[str, Any]],
    methods: Sequence[str],
    columns: Sequence[Column],
    mean_over: Sequence[str],
) -> dict[str, Any]:
    """Mean, std and rank of every method in every column, and the mean rank over ``mean_over``.

    Returns ``{"columns": [{"key", "better", "in_mean_rank"}], "methods": {method: {key:
    {"mean", "std", "rank"}, "mean_rank": float | None}}, "order": [methods by mean rank]}``.
    """
    if not clips:
        raise VidcamError("no clips were evaluated")
    table: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for key, better in columns:
        stats = {m: _mean_std(clip_values(clips, m, key)) for m in methods}
        digits = 2 if key in PERCENT_KEYS else 3
        means = {m: s[0] for m, s in stats.items()}
        ranks = _ranks(means, better, digits) if better else {}
        for m in methods:
            mean, std = stats[m]
            table[m][key] = {"mean": mean, "std": std, "rank": ranks.get(m)}
    for m in methods:
        rs = [table[m][k]["rank"] for k in mean_over if table[m].get(k, {}).get("rank")]
        table[m]["mean_rank"] = sum(rs) / len(rs) if rs else None
    index = {m: i for i, m in enumerate(methods)}
    order = sorted(
        methods,
        key=lambda m: (table[m]["mean_rank"] is None, table[m]["mean_rank"] or 0.0, index[m]),
    )
    return {
        "columns": [{"key": k, "better": b, "in_mean_rank": k in mean_over} for k, b in columns],
        "methods": table,
        "order": order,
    }


def headline_columns(
    fills: Sequence[str], fraction_key: str, units: Sequence[str]
) -> tuple[list[Column], list[str]]:
    """The ranking's columns in print order — keep/remove top-k % under each fill, map size,
    the paper's metrics, the classic voxel curves — and the keys of the mean rank."""
    honest: list[Column] = []
    for f in fills:
        honest += [(f"remove_{fraction_key}_{f}", "low"), (f"keep_{fraction_key}_{f}", "high")]
    columns = honest + [("map_mean", None), ("map_area50", None)]
    columns += [("average_drop", "low"), ("increase_in_confidence", "high")]
    if "voxel" in units:
        columns += [("deletion_voxel", "low"), ("insertion_voxel", "high")]
    return columns, [k for k, _ in honest]


def _fill_score(clip: dict[str, Any], m: str, f: str, p: str) -> float | None:
    """A map's score under one fill on one clip: keep − remove at the headline fraction."""
    rec = clip["methods"][m]
    keep, remove = rec.get(f"keep_{p}_{f}"), rec.get(f"remove_{p}_{f}")
    return None if keep is None or remove is None else float(keep) - float(remove)


def _beats(clips: Sequence[dict[str, Any]], a: str, b: str, f: str, p: str) -> bool:
    """Do the clips support "a beats b under fill f" (paired win rate's 95 % interval > 0.5)?"""
    from vidcam.evaluate.paired import compare

    pairs = [(_fill_score(c, a, f, p), _fill_score(c, b, f, p)) for c in clips]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    return bool(pairs) and compare([x for x, _ in pairs], [y for _, y in pairs], "high")["lo"] > 0.5


def fill_agreement(
    ranking: dict[str, Any],
    fills: Sequence[str],
    fraction_key: str,
    clips: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Each method's rank under each fill (the rank of its mean rank over that fill's keep and
    remove columns; ties share their average rank) and the pairs of maps two fills order
    differently. Returns ``{"ranks": {fill: {method: rank}}, "disagree": [{"fills": [f, g],
    "first": a, "second": b, "supported": bool}], "agree": bool}``: under ``f`` a ranks above
    b, under ``g`` b above a; ``supported``: the clips back both orders (per clip, keep − remove
    under each fill; the paired win rate's 95 % Wilson interval lies above 0.5 both ways),
    else the flip is within the clips' noise. ``agree``: no supported disagreement."""
    methods = list(ranking["methods"])
    ranks: dict[str, dict[str, float | None]] = {}
    for f in fills:
        keys = [f"remove_{fraction_key}_{f}", f"keep_{fraction_key}_{f}"]
        means: dict[str, float | None] = {}
        for m in methods:
            rs = [ranking["methods"][m][k]["rank"] for k in keys if k in ranking["methods"][m]]
            rs = [r for r in rs if r is not None]
            means[m] = sum(rs) / len(rs) if rs else None
        ranks[f] = _ranks(means, "low", digits=6)
    disagree = []
    for i, f in enumerate(fills):
        for g in fills[i + 1 :]:
            for ai, a in enumerate(methods):
                for b in methods[ai + 1 :]:
                    fa, fb, ga, gb = ranks[f][a], ranks[f][b], ranks[g][a], ranks[g][b]
                    if None in (fa, fb, ga, gb) or fa == fb or ga == gb or (fa < fb) == (ga < gb):
                        continue
                    first, second = (a, b) if fa < fb else (b, a)
                    supported = _beats(clips, first, second, f, fraction_key) and _beats(
                        clips, second, first, g, fraction_key
                    )
                    disagree.append(
                        {"fills": [f, g], "first": first, "second": second, "supported": supported}
                    )
    return {
        "ranks": ranks,
        "disagree": disagree,
        "agree": not any(d["supported"] for d in disagree),
    }
