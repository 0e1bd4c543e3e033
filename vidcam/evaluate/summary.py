"""The summary of an evaluation run: per-method means over clips, the paper's metrics, Win %,
the methods' ranking per metric and per fill (:mod:`vidcam.evaluate.ranking`), and paired
win rates against each reference map (:mod:`vidcam.evaluate.paired`)."""

from __future__ import annotations

from collections.abc import Sequence
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
from vidcam.evaluate.options import pct
from vidcam.evaluate.paired import paired_columns, paired_wins
from vidcam.evaluate.ranking import fill_agreement, headline_columns, rank_methods
from vidcam.evaluate.references import REFERENCE_HELP

#: display titles of every map an evaluation can compare
METHOD_TITLES: dict[str, str] = {
    **{m.id: m.title for m in CAM_METHODS.values() if not m.guided},
    "random": "random",
    "random_voxel": "random (voxel)",
    "centre": "centre prior",
    "ones": "all-ones",
}


def summarize(
    clips: Sequence[dict[str, Any]],
    *,
    fills: Sequence[str] = (),
    fraction: float | None = None,
    units: Sequence[str] = UNITS,
) -> dict[str, Any]:
    """Per-method means over clips, Average Drop / Increase in Confidence, pairwise Win %, and
    (with ``fills`` and the headline ``fraction``) the ranking of the methods per metric, each
    fill's ranking and where they disagree, and every method's paired win rate against each
    reference map present (:data:`REFERENCE_HELP`)."""
    if not clips:
        raise VidcamError("no clips were evaluated")
    methods = list(clips[0]["methods"])
    y = torch.tensor([c["Y"] for c in clips], dtype=torch.float64)
    o = {
        m: torch.tensor([c["methods"][m]["O"] for c in clips], dtype=torch.float64) for m in methods
    }
    per_method = {m: _method_row(clips, m, y, o[m]) for m in methods}
    win = {a: {b: win_percent(o[a], o[b], y)[0] for b in methods if b != a} for a in methods}
    judged = [c["correct"] for c in clips if c["correct"] is not None]
    with_gt = [c for c in clips if c.get("gt_origin") is not None or c["correct"] is not None]
    out: dict[str, Any] = {
        "clips": len(clips),
        "clips_with_gt": len(with_gt),
        "accuracy": (sum(judged) / len(judged)) if judged else None,
        "methods": per_method,
        "win_percent": win,
    }
    priors = [c["centre_prior"] for c in clips if c.get("centre_prior")]
    if priors:  # the centre prior's localization when it was not among the maps
        out["centre_prior"] = {
            k: _mean([p[k] for p in priors if p.get(k) is not None]) for k in LOCALIZATION_METRICS
        }
    if fills and fraction is not None:
        out.update(_rankings(clips, methods, fills, fraction, units))
    return out


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def _rankings(clips, methods, fills, fraction, units) -> dict[str, Any]:
    """The ranking per metric and per fill, and the paired win rates against the references."""
    p = pct(fraction)
    columns, mean_over = headline_columns(fills, p, units)
    ranking = {"fraction": fraction, **rank_methods(clips, methods, columns, mean_over)}
    ranking["fills"] = fill_agreement(ranking, list(fills), p, clips)
    out: dict[str, Any] = {"ranking": ranking}
    refs = [m for m in methods if m in REFERENCE_HELP]
    own = [m for m in methods if m not in REFERENCE_HELP]
    if refs and own:
        out["paired"] = {
            "fraction": fraction,
            **paired_wins(clips, own, refs, paired_columns(fills, p)),
        }
    return out


def _method_row(clips, m: str, y: torch.Tensor, o: torch.Tensor) -> dict[str, Any]:
    """One map's means over clips: the paper's metrics, the curves, every other number."""
    row: dict[str, Any] = {
        "average_drop": average_drop(y, o),
        "increase_in_confidence": increase_in_confidence(y, o),
        "mean_drop": float(drops(y, o).mean()),
    }
    for key in (f"{k}_{u}" for u in UNITS for k in ("deletion", "insertion")):
        vals = [c["methods"][m].get(key) for c in clips]  # absent with units=()
        row[key] = sum(vals) / len(vals) if None not in vals else None
    extra = [  # map size, keep/remove scores and relative curves: plain means over clips
        k
        for k, v in clips[0]["methods"][m].items()
        if k not in row
        and k not in LOCALIZATION_METRICS
        and k != "O"
        and isinstance(v, (int, float))
    ]
    for key in extra:
        vals = [v for v in (c["methods"][m].get(key) for c in clips) if v is not None]
        row[key] = sum(vals) / len(vals) if vals else None
    for key in LOCALIZATION_METRICS:
        vals = [v for v in (c["methods"][m].get(key) for c in clips) if v is not None]
        row[key] = sum(vals) / len(vals) if vals else None
        row[f"{key}_clips"] = len(vals)
    costs = [c["methods"][m]["cost"] for c in clips if "cost" in c["methods"][m]]
    if costs:  # the map's cost per clip (mean): forwards, masked clips, backwards, seconds
        row["cost"] = {k: sum(x[k] for x in costs) / len(costs) for k in costs[0]}
    return row
