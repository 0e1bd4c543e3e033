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
from dataclasses import dataclass, field

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
from vidcam.evaluate.fills import ConstantFill, Fill, make_fill, stable_seed
from vidcam.evaluate.keys import KIND_SUFFIX, SCORE_KINDS, ScoreKey
from vidcam.evaluate.masking import blend, make_baseline
from vidcam.evaluate.metrics_size import map_size
from vidcam.evaluate.options import EvalOptions, fill_grid
from vidcam.evaluate.records import FillScores, MapRecord, MapSize, UnitCurves

__all__ = [
    "KIND_SUFFIX",
    "SCORE_KINDS",
    "ClipInput",
    "ClipScores",
    "CurveSums",
    "score_clip",
    "seeded_generator",
]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def seeded_generator(device: torch.device, *seeds: int) -> torch.Generator:
    """A generator on ``device`` seeded by the sequence ``seeds`` (run seed, clip, purpose)."""
    s = 0
    for v in seeds:
        s = (s * 1_000_003 + int(v)) % (2**62)
    return torch.Generator(device=device).manual_seed(s)


@dataclass(frozen=True)
class ClipInput:
    """One clip as the scorer sees it: ``index`` (seeds the tie-breaks and ROAD's noise),
    ``pixels`` (1, 3, T, H, W) in [0, 1], the explained class ``target``, ``y`` (3,) = the
    target's (probability, log-probability, logit) on the clip, ``score_fn`` (pixels (B, 3, T,
    H, W) -> (B, classes, 3)) and the model's normalisation ``mean`` (the mean baseline)."""

    index: int
    pixels: torch.Tensor
    target: int
    y: torch.Tensor
    score_fn: ScoreFn
    mean: Sequence[float]


@dataclass
class CurveSums:
    """Per map and curve key, the sum over clips of its curve (float64 on the CPU)."""

    sums: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)

    def add(self, m: str, curves: Mapping[str, torch.Tensor]) -> None:
        mine = self.sums.setdefault(m, {})
        for key, c in curves.items():
            c = c.detach().double().cpu()
            mine[key] = mine[key] + c if key in mine else c.clone()

    def means(self, maps: Sequence[str], n: int) -> dict[str, dict[str, list[float]]]:
        """The JSON's ``mean_curves``: per map (in ``maps`` order, maps with curves only) the
        mean curve over ``n`` clips."""
        return {
            m: {k: (v / n).tolist() for k, v in self.sums[m].items()}
            for m in maps
            if self.sums.get(m)
        }


@dataclass(frozen=True)
class ClipScores:
    """Every masked forward's result for one clip: the baseline clip's score, each fill's fully
    filled clip's score, every map's record (no cost, no localization yet) and the counters."""

    baseline_score: float
    empty_scores: dict[str, float]
    maps: dict[str, MapRecord]
    masked_forwards: int
    road_solves: int


@dataclass(frozen=True)
class _Context:
    """What every map of a clip shares: the scorer (one cache), the fills, their grids, the
    rankings of every map."""

    clip: ClipInput
    opts: EvalOptions
    scorer: MaskedScorer
    baseline: torch.Tensor
    base_fill: Fill
    fills: dict[str, Fill]
    grids: dict[str, tuple[float, ...]]
    rankings: dict[tuple[str, str], Ranking]


def score_clip(
    clip: ClipInput, heats: Mapping[str, torch.Tensor], opts: EvalOptions, sums: CurveSums
) -> ClipScores:
    """All masked forwards of one clip (``heats``: map id -> (T, H, W)): E = map ⊙ clip,
    the classic curves, the keep / remove scores. Per-map curves are added to ``sums``. Runs
    in inference mode."""
    with torch.inference_mode():
        return _score(clip, heats, opts, sums)


def _fills(clip: ClipInput, opts: EvalOptions, baseline: torch.Tensor) -> dict[str, Fill]:
    return {
        f: make_fill(
            f,
            clip.pixels,
            clip.mean,
            stable_seed(opts.seed, clip.index, f),
            baseline=(opts.baseline, baseline),
        )
        for f in opts.fills
    }


def _score(
    clip: ClipInput, heats: Mapping[str, torch.Tensor], opts: EvalOptions, sums: CurveSums
) -> ClipScores:
    pixels, target = clip.pixels, clip.target
    baseline = make_baseline(pixels, opts.baseline, clip.mean)
    methods = list(heats)
    stack = torch.stack([heats[m] for m in methods]).unsqueeze(1)  # (M, 1, T, H, W)
    scorer = MaskedScorer(clip.score_fn, pixels, target, batch=opts.batch, full=clip.y)
    fills = _fills(clip, opts, baseline)
    # one fill object per kind: its masked clips are shared
    if opts.baseline in fills:
        base_fill = fills[opts.baseline]
    else:
        base_fill = ConstantFill(opts.baseline, baseline)
    # E = map ⊙ clip for every map and the baseline itself, in one batch
    o_all = clip.score_fn(torch.cat([blend(pixels, baseline, stack), baseline]))[:, target]
    scorer.set_empty(base_fill, o_all[-1])  # every score kind of the fully filled clip
    rankings = _rankings(heats, clip.index, opts, pixels.device)
    ctx = _Context(clip, opts, scorer, baseline, base_fill, fills, {}, rankings)
    ctx.grids.update({f: fill_grid(f, opts) for f in fills})
    scorer.run(_queue(ctx, methods))
    maps = {
        m: _map_record(ctx, m, heats[m], float(o_all[mi, 0]), sums) for mi, m in enumerate(methods)
    }
    return ClipScores(
        baseline_score=float(o_all[-1, 0]),
        empty_scores={f: float(scorer.empty_score(fill)) for f, fill in fills.items()},
        maps=maps,
        masked_forwards=int(o_all.shape[0]) + scorer.forwards,
        road_solves=sum(getattr(f, "solves", 0) for f in fills.values()),
    )


def _map_record(ctx: _Context, m: str, heat: torch.Tensor, o: float, sums: CurveSums) -> MapRecord:
    """One map's record: O, its size, the classic curves' AUC, keep / remove under each fill."""
    opts, clip = ctx.opts, ctx.clip
    curves = {}
    for unit in opts.units:
        d, ins = deletion_insertion(
            clip.score_fn,
            clip.pixels,
            ctx.baseline,
            heat,
            clip.target,
            unit=unit,
            steps=opts.steps,
            scorer=ctx.scorer,
            fill=ctx.base_fill,
            ranking=ctx.rankings[m, unit],
        )
        curves[unit] = UnitCurves(unit, float(auc(d)), float(auc(ins)))
        sums.add(m, {f"deletion_{unit}": d, f"insertion_{unit}": ins})
    fills = {f: _fill_scores(ctx, m, f, sums) for f in ctx.fills}
    size = map_size(heat)
    return MapRecord(
        o=o,
        size=MapSize(size["map_mean"], size["map_area50"], size["map_peak1"]),
        curves=curves,
        fills=fills,
    )


def _rankings(
    heats: Mapping[str, torch.Tensor], ci: int, opts: EvalOptions, device: torch.device
) -> dict[tuple[str, str], Ranking]:
    """Every map's voxel and frame ranking (ties broken by a seeded order)."""
    rankings = {}
    for mi, m in enumerate(heats):
        for ui, unit in enumerate(UNITS):
            g = seeded_generator(device, opts.seed, ci, 2 + mi * len(UNITS) + ui)
            r, n = unit_ranks(heats[m], unit, g)
            rankings[m, unit] = Ranking((m, unit), r, n)
    return rankings


def _queue(ctx: _Context, methods: Sequence[str]) -> list:
    """Every masked clip of the clip, queued first so batches are full across maps and fills."""
    jobs, opts, scorer = [], ctx.opts, ctx.scorer
    for m in methods:
        for unit in opts.units:
            rk = ctx.rankings[m, unit]
            s = min(opts.steps, rk.n) if unit == "frame" else opts.steps
            jobs += scorer.jobs(ctx.base_fill, rk, [round(k * rk.n / s) for k in range(s + 1)])
        rk = ctx.rankings[m, "voxel"]
        for f, fill in ctx.fills.items():
            jobs += scorer.jobs(fill, rk, counts_for(ctx.grids[f], rk.n))
    return jobs


def _fill_scores(ctx: _Context, m: str, f: str, sums: CurveSums) -> FillScores:
    """Keep / remove scores under one fill, in every score kind, and the relative curves."""
    fill, rk, xs = ctx.fills[f], ctx.rankings[m, "voxel"], ctx.grids[f]
    scores: dict[ScoreKey, float] = {}
    rel: tuple[float, float] = (0.0, 0.0)
    for ki, kind in enumerate(SCORE_KINDS):
        ratio = kind == "prob"
        y = float(ctx.clip.y[ki])
        d, ins = keep_remove_curves(ctx.scorer, fill, rk, xs, y, kind=ki, ratio=ratio)
        for k in ctx.opts.fractions:
            i = xs.index(k)
            scores[ScoreKey("remove", k, f, kind)] = float(d[i])
            scores[ScoreKey("keep", k, f, kind)] = float(ins[i])
        if ratio:
            rel = (float(auc_xy(xs, d)), float(auc_xy(xs, ins)))
            sums.add(m, {f"deletion_rel_{f}": d, f"insertion_rel_{f}": ins})
    return FillScores(f, scores, *rel)
