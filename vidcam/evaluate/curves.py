"""Deletion and insertion curves (Petsiuk et al., RISE, 2018) and keep/remove top-k scores.

Voxel curves rank the T×H×W voxels of a map (most important first) and replace the top share
with a fill (deletion) or keep only the top share and fill the rest (insertion). Frame curves do
the same with whole frames, ranked by the map's mean per frame (``min(steps, T)`` steps). Ties in
a map (e.g. the all-ones map) are broken by a seeded random order, so a constant map behaves like
a random ranking.

:func:`deletion_insertion` is the classic form: ``steps`` equal steps, one constant baseline
clip, the model's score (softmax probability of the target) at each of the ``steps + 1`` points
from 0 to 1; the AUC is the trapezoidal mean. :class:`MaskedScorer` is the engine underneath and
is what ``vidcam evaluate`` uses for every masked forward of a clip: requests (fill, ranking,
count, deletion or insertion) are collected, identical ones scored once, the rest run in batches
of ``batch`` masked clips under :func:`torch.inference_mode` (no autograd), masks built per batch
from the ranking (memory bounded), and a mask-dependent fill (ROAD) solved once per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.choices import UNITS  # noqa: F401 (re-exported)
from vidcam.evaluate.fills import ConstantFill, Fill
from vidcam.evaluate.masking import blend

#: ``score_fn(clips (B, 3, T, H, W) in [0, 1]) -> (B, num_classes)`` probabilities.
ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def rank(importance: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rank of each element of a 1D ``importance`` (0 = most important); ties in random order.

    ``generator`` must live on ``importance``'s device.
    """
    n = importance.numel()
    perm = torch.randperm(n, generator=generator, device=importance.device)
    order = perm[torch.argsort(importance[perm], descending=True, stable=True)]
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(n, device=importance.device)
    return ranks


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under ``curve`` (..., S+1) sampled at 0, 1/S, ..., 1."""
    s = curve.shape[-1] - 1
    if s < 1:
        raise VidcamError("a curve needs at least 2 points")
    return (curve[..., 1:].sum(-1) + curve[..., :-1].sum(-1)) / (2 * s)


def auc_xy(xs: Sequence[float], curve: torch.Tensor) -> torch.Tensor:
    """Trapezoidal area under ``curve`` (..., P) sampled at the increasing ``xs`` (P,) in [0, 1]."""
    x = torch.as_tensor(xs, dtype=torch.float64)
    if x.numel() != curve.shape[-1] or x.numel() < 2:
        raise VidcamError(f"a curve needs >= 2 points and one x per point, got {x.numel()} xs")
    if bool((x[1:] <= x[:-1]).any()):
        raise VidcamError("curve x positions must increase")
    dx = (x[1:] - x[:-1]).to(curve.dtype).to(curve.device)
    return ((curve[..., 1:] + curve[..., :-1]) * dx).sum(-1) / 2


def grid(steps: int, fractions: Iterable[float] = ()) -> tuple[float, ...]:
    """Curve positions: 0, 1/steps, ..., 1 (``steps`` = 0: just 0 and 1) and the ``fractions``."""
    if steps < 0:
        raise VidcamError(f"steps must be >= 0, got {steps}")
    xs = {0.0, 1.0} | {k / steps for k in range(steps + 1)} if steps else {0.0, 1.0}
    for f in fractions:
        if not 0.0 < f < 1.0:
            raise VidcamError(f"fractions must lie strictly between 0 and 1, got {f}")
        xs.add(float(f))
    return tuple(sorted(xs))


def unit_ranks(heat: torch.Tensor, unit: str, generator: torch.Generator | None = None):
    """Ranks of a (T, H, W) map's units, shaped to broadcast over voxels, and the unit count:
    voxels -> ((1, 1, T, H, W), T·H·W); frames -> ((1, 1, T, 1, 1), T)."""
    t, h, w = heat.shape
    if unit == "voxel":
        return rank(heat.reshape(-1), generator).view(1, 1, t, h, w), t * h * w
    if unit == "frame":
        return rank(heat.reshape(t, -1).mean(1), generator).view(1, 1, t, 1, 1), t
    raise VidcamError(f"unit {unit!r} is not one of {', '.join(UNITS)}")


def keep_masks(
    heat: torch.Tensor,
    unit: str,
    steps: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Deletion keep-masks for a (T, H, W) map: (S+1, 1, T, H, W) bool; step k removes the
    ``round(k·n/S)`` top-ranked units (n voxels, or n = T frames with S = min(steps, T)).

    Insertion masks are their complement. Returns the masks and S.
    """
    if steps < 1:
        raise VidcamError(f"steps must be >= 1, got {steps}")
    t, h, w = heat.shape
    r, n = unit_ranks(heat, unit, generator)
    if unit == "frame":
        steps = min(steps, t)
    counts = torch.tensor([round(k * n / steps) for k in range(steps + 1)], device=heat.device)
    return (r >= counts.view(-1, 1, 1, 1, 1)).expand(-1, -1, t, h, w), steps


@torch.inference_mode()
def score_masked(
    score_fn: ScoreFn,
    clip: torch.Tensor,
    baseline: torch.Tensor,
    keep: torch.Tensor,
    target: int,
    batch: int = 16,
) -> torch.Tensor:
    """Target probability for each mask: clip (1,3,T,H,W), keep (M,1,T,H,W) -> (M,)."""
    if keep.shape[0] == 0:  # a one-step curve has no inner points
        return torch.zeros(0, dtype=clip.dtype, device=clip.device)
    out = []
    for i in range(0, keep.shape[0], batch):
        x = blend(clip, baseline, keep[i : i + batch])
        out.append(score_fn(x)[:, target])
    return torch.cat(out)


# -- the batched, cached scorer -----------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """One ordering of a clip's units: ``ranks`` (broadcastable to (1, 1, T, H, W); 0 = most
    important), ``n`` units; ``key`` names it in the cache (e.g. ``("gradcam++", "voxel")``)."""

    key: tuple
    ranks: torch.Tensor
    n: int


@dataclass(frozen=True)
class _Job:
    fill: Fill
    ranking: Ranking
    count: int
    insert: bool  # False: remove the top ``count`` units; True: keep only them


class MaskedScorer:
    """Target scores of masked versions of ONE clip: batched, without autograd, each distinct
    (fill, ranking, count, mode) scored once (see the module docstring).

    ``full`` / ``empty``: the target's score on the clip / per fill name on the fully filled clip,
    when already known (shared by every map of the clip). Use :meth:`scores` for a list of
    requests; the end points (nothing or everything removed) never cost a masked forward beyond
    one "everything filled" forward per fill.

    ``score_fn`` may return (B, classes) scores or (B, classes, K) — K kinds of score per class
    (``vidcam evaluate``: probability, log-probability, logit); every kind is cached and
    :meth:`scores` returns the one asked for (``kind``, default the first).
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        clip: torch.Tensor,
        target: int,
        *,
        batch: int = 16,
        full: float | torch.Tensor | None = None,
    ) -> None:
        if batch < 1:
            raise VidcamError(f"batch must be >= 1, got {batch}")
        self.score_fn = score_fn
        self.clip = clip
        self.target = target
        self.batch = batch
        self._cache: dict[tuple, torch.Tensor] = {}
        self.forwards = 0  # masked clips scored (for the speed report)
        if full is not None:
            self.set_full(full)

    def _value(self, v: float | torch.Tensor) -> torch.Tensor:
        """A score as a (K,) vector (K = 1 for a plain score)."""
        return torch.as_tensor(v, dtype=torch.float32, device=self.clip.device).reshape(-1)

    def set_full(self, value: float | torch.Tensor) -> None:
        """Record the target's score on the unmasked clip (the curves' shared end point)."""
        self._cache[("full",)] = self._value(value)

    def set_empty(self, fill: Fill, value: float | torch.Tensor) -> None:
        """Record the score of the fully filled clip for ``fill`` (e.g. a baseline's score)."""
        self._cache[("empty", fill.name)] = self._value(value)

    @staticmethod
    def _key(job: _Job) -> tuple:
        n, c = job.ranking.n, job.count
        if (c <= 0 and not job.insert) or (c >= n and job.insert):
            return ("full",)  # nothing removed
        if (c >= n and not job.insert) or (c <= 0 and job.insert):
            return ("empty", job.fill.name)  # everything removed
        return (job.fill.name, job.ranking.key, c, job.insert)

    def jobs(self, fill: Fill, ranking: Ranking, counts: Sequence[int]) -> list[_Job]:
        """Deletion and insertion requests at ``counts`` (for :meth:`run`)."""
        return [_Job(fill, ranking, int(c), ins) for ins in (False, True) for c in counts]

    def empty_score(self, fill: Fill, kind: int = 0) -> torch.Tensor:
        """The target's score on the clip with every voxel filled by ``fill``."""
        full = Ranking(("all",), torch.zeros(1, 1, 1, 1, 1, device=self.clip.device), 1)
        return self.scores(fill, full, [1], insert=False, kind=kind)[0]

    def scores(
        self,
        fill: Fill,
        ranking: Ranking,
        counts: Sequence[int],
        *,
        insert: bool,
        kind: int = 0,
    ) -> torch.Tensor:
        """Scores (len(counts),) after removing the top ``counts`` units (``insert`` = False) or
        keeping only them (``insert`` = True); ``kind``: which score (see the class docstring)."""
        jobs = [_Job(fill, ranking, int(c), insert) for c in counts]
        self.run(jobs)
        return torch.stack([self._cache[self._key(j)] for j in jobs])[:, kind]

    def run(self, jobs: Iterable[_Job]) -> None:
        """Score every job not yet in the cache (grouped by fill, ``batch`` clips per forward)."""
        todo: dict[tuple, _Job] = {}
        for job in jobs:
            key = self._key(job)
            if key not in self._cache and key not in todo:
                todo[key] = job
        if not todo:
            return
        with torch.inference_mode():
            by_fill: dict[str, list[tuple[tuple, _Job]]] = {}
            for key, job in todo.items():
                by_fill.setdefault(job.fill.name, []).append((key, job))
            for items in by_fill.values():
                for i in range(0, len(items), self.batch):
                    chunk = items[i : i + self.batch]
                    out = self._forward([(k, j) for k, j in chunk])
                    for (key, _), v in zip(chunk, out, strict=True):
                        self._cache[key] = v

    def _forward(self, chunk: list[tuple[tuple, _Job]]) -> torch.Tensor:
        """Score one chunk (one fill: :meth:`run` groups by fill). The removal masks are written
        into one preallocated (B, 1, T, H, W) bool tensor, the fill makes the batch in one
        call: no per-mask copies or concatenations."""
        t, h, w = self.clip.shape[-3:]
        remove = torch.empty(len(chunk), 1, t, h, w, dtype=torch.bool, device=self.clip.device)
        for i, (key, job) in enumerate(chunk):
            if key == ("full",):
                remove[i] = False
            elif key[0] == "empty":
                remove[i] = True
            else:
                r = job.ranking.ranks[0, 0]
                op = torch.ge if job.insert else torch.lt  # keep only the top / remove it
                if r.shape == (t, h, w):
                    op(r, job.count, out=remove[i, 0])
                else:  # frame ranks (T, 1, 1)
                    remove[i, 0] = op(r, job.count)
        fills = {id(j.fill): j.fill for _, j in chunk}
        if len(fills) == 1:
            fill = next(iter(fills.values()))
            x = fill(self.clip, remove, [k for k, _ in chunk])
        else:  # mixed fills (not produced by run(), kept for completeness)
            x = torch.cat(
                [j.fill(self.clip, remove[i : i + 1], [k]) for i, (k, j) in enumerate(chunk)]
            )
        self.forwards += x.shape[0]
        out = self.score_fn(x)[:, self.target].float()
        return out[:, None] if out.dim() == 1 else out  # (B, K)


def counts_for(xs: Sequence[float], n: int) -> list[int]:
    """Units removed (or kept) at each curve position: ``round(x·n)``."""
    return [round(x * n) for x in xs]


def keep_remove_curves(
    scorer: MaskedScorer,
    fill: Fill,
    ranking: Ranking,
    xs: Sequence[float],
    y: float | torch.Tensor,
    *,
    kind: int = 0,
    ratio: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative curves at positions ``xs`` (shares of the ranked units): the score after
    *removing* the top share (deletion: lower = more faithful) and after *keeping only* it
    (insertion: higher = better), each divided by ``y`` (the score on the whole clip; a ratio
    above 1 means the masked clip raised the confidence). "Remove k %" / "Keep k %" are the
    points at x = k. ``ratio=False``: the difference ``score − y`` instead (for log-scores:
    a log-probability difference is the log of the ratio; a logit difference does not
    saturate); ``kind``: which score of the scorer."""
    counts = counts_for(xs, ranking.n)
    removed = scorer.scores(fill, ranking, counts, insert=False, kind=kind)
    kept = scorer.scores(fill, ranking, counts, insert=True, kind=kind)
    if not ratio:
        return removed - float(y), kept - float(y)
    den = max(float(y), 1e-12)
    return removed / den, kept / den


def deletion_insertion(
    score_fn: ScoreFn,
    clip: torch.Tensor,
    baseline: torch.Tensor,
    heat: torch.Tensor,
    target: int,
    *,
    unit: str = "voxel",
    steps: int = 16,
    batch: int = 16,
    generator: torch.Generator | None = None,
    full_score: float | torch.Tensor | None = None,
    base_score: float | torch.Tensor | None = None,
    scorer: MaskedScorer | None = None,
    fill: Fill | None = None,
    ranking: Ranking | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (S+1,) for one clip (1,3,T,H,W) and map (T,H,W).

    ``full_score`` / ``base_score``: the target's score on the clip / on the baseline, when already
    known (they are the curves' end points and are the same for every map of a clip).
    ``scorer`` / ``fill`` / ``ranking``: share one :class:`MaskedScorer` (and its cache), the
    baseline's :class:`Fill` and a precomputed ranking of ``heat`` across calls.
    """
    if steps < 1:
        raise VidcamError(f"steps must be >= 1, got {steps}")
    if ranking is None:
        r, n = unit_ranks(heat, unit, generator)
        ranking = Ranking(("map", unit, object()), r, n)  # a key no other ranking has
    s = min(steps, heat.shape[0]) if unit == "frame" else steps
    if fill is None:
        if scorer is not None:
            raise VidcamError(
                "deletion_insertion: a shared scorer needs its fill (one per baseline)"
            )
        fill = ConstantFill("baseline", baseline)
    if scorer is None:
        scorer = MaskedScorer(score_fn, clip, target, batch=batch, full=full_score)
    elif full_score is not None:
        scorer.set_full(full_score)
    if base_score is not None:
        scorer.set_empty(fill, base_score)
    counts = [round(k * ranking.n / s) for k in range(s + 1)]
    deletion = scorer.scores(fill, ranking, counts, insert=False)
    insertion = scorer.scores(fill, ranking, counts, insert=True)
    return deletion.to(clip.dtype), insertion.to(clip.dtype)
