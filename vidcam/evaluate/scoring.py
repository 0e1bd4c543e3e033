"""Every masked forward of one clip: E = map ⊙ clip, the classic curves, keep / remove scores.

All masked clips of a clip go through ONE :class:`~vidcam.evaluate.curves.MaskedScorer`:
queued first (so batches are full across maps and fills), identical ones scored once. Every
forward yields the target's probability, log-probability and logit (:data:`SCORE_KINDS`), so
the keep / remove scores come three ways at no extra forward:

- ``remove_K_F`` / ``keep_K_F``: probability after the masking / probability on the clip (Y);
- ``remove_K_F_dlogp`` / ``keep_K_F_dlogp``: log-probability difference (the log of that ratio;
  the mean over clips is the log of the geometric-mean ratio, not swayed by one weak clip);
- ``remove_K_F_dlogit`` / ``keep_K_F_dlogit``: logit difference (does not saturate: a clip at
  Y = 0.993 still moves; but a masking can shift every class's logit alike).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from vidcam.evaluate.curves import (
    UNITS,
    MaskedScorer,
    Ranking,
    auc,
    auc_xy,
    counts_for,
    deletion_insertion,
    keep_remove_curves,
    unit_ranks,
)
from vidcam.evaluate.fills import ConstantFill, make_fill, stable_seed
from vidcam.evaluate.masking import blend, make_baseline
from vidcam.evaluate.metrics_size import map_size
from vidcam.evaluate.options import EvalOptions, fill_grid, pct

#: the score kinds of the scorer's last axis (vidcam.evaluate.clip_model.SCORE_KINDS)
SCORE_KINDS: tuple[str, ...] = ("prob", "logp", "logit")
#: suffixes of the keep / remove keys per score kind (the probability's is the plain key)
KIND_SUFFIX: dict[str, str] = {"prob": "", "logp": "_dlogp", "logit": "_dlogit"}

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def _gen(device: torch.device, *seeds: int) -> torch.Generator:
    s = 0
    for v in seeds:
        s = (s * 1_000_003 + int(v)) % (2**62)
    return torch.Generator(device=device).manual_seed(s)


def score_clip(
    ci: int,
    pixels: torch.Tensor,
    heats: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    target: int,
    score_fn: ScoreFn,
    mean: Sequence[float],
    opts: EvalOptions,
    sums: dict[str, dict[str, torch.Tensor]],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, int]]:
    """All masked forwards of clip ``ci`` (pixels (1, 3, T, H, W) in [0, 1]; ``heats``: map
    id -> (T, H, W); ``y``: the target's (prob, log-prob, logit) on the clip). Returns the
    clip-level record, per map its record, and the counters (masked forwards, ROAD solves).
    Per-map mean curves are added to ``sums``. Runs in inference mode."""
    with torch.inference_mode():
        return _score(ci, pixels, heats, y, target, score_fn, mean, opts, sums)


def _score(ci, pixels, heats, y, target, score_fn, mean, opts, sums):
    device = pixels.device
    baseline = make_baseline(pixels, opts.baseline, mean)
    methods = list(heats)
    stack = torch.stack([heats[m] for m in methods]).unsqueeze(1)  # (M, 1, T, H, W)
    scorer = MaskedScorer(score_fn, pixels, target, batch=opts.batch, full=y)
    base_fill = ConstantFill(opts.baseline, baseline)
    fills = {
        f: make_fill(
            f, pixels, mean, stable_seed(opts.seed, ci, f), baseline=(opts.baseline, baseline)
        )
        for f in opts.fills
    }
    if opts.baseline in fills:  # one fill object per kind: its masked clips are shared
        base_fill = fills[opts.baseline]
    # E = map ⊙ clip for every map and the baseline itself, in one batch
    o_all = score_fn(torch.cat([blend(pixels, baseline, stack), baseline]))[:, target]
    o, base_score = o_all[:-1, 0], o_all[-1, 0]
    forwards = int(o_all.shape[0])
    scorer.set_empty(base_fill, o_all[-1])  # every score kind of the fully filled clip

    rankings = _rankings(heats, ci, opts, device)
    grids = {f: fill_grid(f, opts) for f in fills}
    scorer.run(_queue(scorer, rankings, methods, base_fill, fills, grids, opts))

    clip_rec = {
        "Y": float(y[0]),
        "Y_logp": float(y[1]),
        "Y_logit": float(y[2]),
        "baseline_score": float(base_score),
        "empty_scores": {f: float(scorer.empty_score(fill)) for f, fill in fills.items()},
    }
    ctx = (scorer, base_fill, baseline, fills, grids, rankings, y, target, score_fn, pixels, opts)
    records = {
        m: _map_record(m, heats[m], float(o[mi]), ctx, sums[m]) for mi, m in enumerate(methods)
    }
    solves = sum(getattr(f, "solves", 0) for f in fills.values())
    return clip_rec, records, {"masked_forwards": forwards + scorer.forwards, "road_solves": solves}


def _map_record(m, heat, o, ctx, sums) -> dict[str, Any]:
    """One map's record: O, its size, the classic curves' AUC, keep / remove under each fill."""
    scorer, base_fill, baseline, fills, grids, rankings, y, target, score_fn, pixels, opts = ctx
    rec: dict[str, Any] = {"O": o}
    rec.update(map_size(heat))
    for unit in opts.units:
        d, ins = deletion_insertion(
            score_fn,
            pixels,
            baseline,
            heat,
            target,
            unit=unit,
            steps=opts.steps,
            scorer=scorer,
            fill=base_fill,
            ranking=rankings[m, unit],
        )
        rec[f"deletion_{unit}"] = float(auc(d))
        rec[f"insertion_{unit}"] = float(auc(ins))
        _accumulate(sums, {f"deletion_{unit}": d, f"insertion_{unit}": ins})
    for f, fill in fills.items():
        _fill_scores(rec, sums, scorer, fill, rankings[m, "voxel"], grids[f], y, opts)
    return rec


def _rankings(heats, ci, opts, device) -> dict[tuple[str, str], Ranking]:
    """Every map's voxel and frame ranking (ties broken by a seeded order)."""
    rankings = {}
    for mi, m in enumerate(heats):
        for ui, unit in enumerate(UNITS):
            g = _gen(device, opts.seed, ci, 2 + mi * len(UNITS) + ui)
            r, n = unit_ranks(heats[m], unit, g)
            rankings[m, unit] = Ranking((m, unit), r, n)
    return rankings


def _queue(scorer, rankings, methods, base_fill, fills, grids, opts) -> list:
    """Every masked clip of the clip, queued first so batches are full across maps and fills."""
    jobs = []
    for m in methods:
        for unit in opts.units:
            rk = rankings[m, unit]
            s = min(opts.steps, rk.n) if unit == "frame" else opts.steps
            jobs += scorer.jobs(base_fill, rk, [round(k * rk.n / s) for k in range(s + 1)])
        rk = rankings[m, "voxel"]
        for f, fill in fills.items():
            jobs += scorer.jobs(fill, rk, counts_for(grids[f], rk.n))
    return jobs


def _fill_scores(rec, sums, scorer, fill, rk, xs, y, opts) -> None:
    """Keep / remove scores under one fill, in every score kind, and the relative curves."""
    f = fill.name
    for ki, kind in enumerate(SCORE_KINDS):
        ratio = kind == "prob"
        d, ins = keep_remove_curves(scorer, fill, rk, xs, float(y[ki]), kind=ki, ratio=ratio)
        suffix = KIND_SUFFIX[kind]
        for k in opts.fractions:
            i = xs.index(k)
            rec[f"remove_{pct(k)}_{f}{suffix}"] = float(d[i])
            rec[f"keep_{pct(k)}_{f}{suffix}"] = float(ins[i])
        if ratio:
            rec[f"deletion_rel_{f}"] = float(auc_xy(xs, d))
            rec[f"insertion_rel_{f}"] = float(auc_xy(xs, ins))
            _accumulate(sums, {f"deletion_rel_{f}": d, f"insertion_rel_{f}": ins})


def _accumulate(sums: dict[str, torch.Tensor], curves: dict[str, torch.Tensor]) -> None:
    for key, c in curves.items():
        c = c.detach().double().cpu()
        sums[key] = sums[key] + c if key in sums else c.clone()
