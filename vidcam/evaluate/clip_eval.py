"""One clip of ``vidcam evaluate``: decode, explain once, score every map, localize.

:func:`evaluate_clip` takes a :class:`ClipTask` (which video, its ground truth, an explicit
class) and the run's :class:`RunContext` (model, options, engine keywords, the curve sums and
counters it adds to) and returns the clip's :class:`~vidcam.evaluate.records.ClipRecord`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from vidcam.cam.methods import MASKED_SCORE, METHODS, PERTURBATION_METHODS
from vidcam.cam.targets import find_class
from vidcam.errors import VidcamError
from vidcam.evaluate.clip_model import ClipModel
from vidcam.evaluate.clips import Clip, map_truth, read_clip
from vidcam.evaluate.gt import GroundTruth
from vidcam.evaluate.metrics_localization import dilate, localize
from vidcam.evaluate.options import EvalOptions
from vidcam.evaluate.records import ClipRecord, Cost, Localization, MapRecord
from vidcam.evaluate.references import centre_prior, random_map, voxel_noise_map
from vidcam.evaluate.result import Counters
from vidcam.evaluate.scoring import ClipInput, CurveSums, score_clip, seeded_generator
from vidcam.models.handle import ModelHandle
from vidcam.video.memory import check_memory
from vidcam.video.preprocess import Geometry


@dataclass
class RunContext:
    """What every clip of a run shares: the model, the checked options, the engine's extra
    keywords (``softmax``, ``gradients``, ``pooling``, ``perturbation``), and the curve sums
    and counters the clips add to."""

    em: ModelHandle
    opts: EvalOptions
    engine: Mapping[str, Any] | None = None
    sums: CurveSums = field(default_factory=CurveSums)
    counters: Counters = field(default_factory=Counters)


@dataclass(frozen=True)
class ClipTask:
    """One video to evaluate: its position in the run (seeds), path, ground truth (None: none)
    and an explicit class to explain (None: ``opts.target``)."""

    index: int
    path: Path
    gt: GroundTruth | None = None
    cls: int | None = None


@dataclass(frozen=True)
class _Truth:
    """The explained class, the prediction and the ground-truth label's class index."""

    target: int
    pred: int
    gt_index: int | None


def _clip_truth(task: ClipTask, clip_name: str, ctx: RunContext, probs: torch.Tensor) -> _Truth:
    """The class explained in a clip (``task.cls``: an explicit class, else ``opts.target``)."""
    pred = int(probs.argmax())
    target, cls, gt = pred, task.cls, task.gt
    if cls is not None:
        if not 0 <= int(cls) < probs.shape[-1]:
            raise VidcamError(
                f"{clip_name}: class {cls} is not one of the model's {probs.shape[-1]} "
                "outputs; give an index in range or a class name"
            )
        target = int(cls)
    label = gt.label if gt is not None else None
    gt_index = find_class(label, ctx.em.labels) if label is not None else None
    if cls is None and ctx.opts.target == "gt" and label is not None:
        if gt_index is None:
            raise VidcamError(
                f"{clip_name}: ground-truth label {label!r} is not a class of the model; use "
                "--target pred (localization then explains the prediction)"
            )
        target = gt_index
    return _Truth(target, pred, gt_index)


def _open_clip(task: ClipTask, ctx: RunContext) -> tuple[Clip, ClipModel]:
    """Decode the task's clip over the window its spatial plan covers, after checking that
    the clip's activations fit in memory (before any frame is decoded)."""
    em, opts = ctx.em, ctx.opts
    models: list[ClipModel] = []

    def geometry(height: int, width: int) -> Geometry:
        cm = ClipModel(
            em, opts.spatial, height, width, opts.methods, batch=opts.batch, engine=ctx.engine
        )
        check_memory(em.input, em.input.clip_len, 1, (height, width), cm.plan.mode, em.device, em)
        models.append(cm)
        return cm.geometry

    clip = read_clip(task.path, em.input, em.device, geometry)
    return clip, models[0]


def _engine_maps(
    cm: ClipModel, pixels: torch.Tensor, target: int, counters: Counters
) -> tuple[dict[str, torch.Tensor], list[tuple[int, int, int]], dict[str, Cost]]:
    """Every method's map (one engine run for the CAMs), the layers' feature shapes and the
    methods' costs; counts the engine's forwards, masked clips and seconds."""
    t_engine = time.perf_counter()
    heats, shapes, cost = cm.maps(pixels, target)
    counters.scorecam_clips += sum(
        c["masked_clips"] for m, c in cost.items() if METHODS[m].kind == MASKED_SCORE
    )
    counters.perturbation_clips += sum(
        c["masked_clips"] for m, c in cost.items() if m in PERTURBATION_METHODS
    )
    counters.engine_forwards += len(cm.engines)
    counters.engine_seconds += time.perf_counter() - t_engine
    return heats, shapes, {m: Cost(**c) for m, c in cost.items()}


def evaluate_clip(task: ClipTask, ctx: RunContext) -> ClipRecord:
    """Decode, explain, score and localize one clip (see :mod:`vidcam.evaluate.pipeline`)."""
    em, opts = ctx.em, ctx.opts
    clip, cm = _open_clip(task, ctx)
    pixels = clip.pixels
    scores = cm.scores(pixels)[0]  # (classes, 3)
    truth = _clip_truth(task, clip.path.name, ctx, scores[:, 0])
    heats, shapes, cost = _engine_maps(cm, pixels, truth.target, ctx.counters)
    size = tuple(pixels.shape[-3:])
    heats.update(reference_maps(opts, size, shapes, pixels.device, task.index))
    inp = ClipInput(
        task.index, pixels, truth.target, scores[truth.target], cm.scores, em.input.mean
    )
    scored = score_clip(inp, heats, opts, ctx.sums)
    ctx.counters.masked_forwards += scored.masked_forwards
    ctx.counters.road_solves += scored.road_solves
    maps = {m: replace(r, cost=cost.get(m)) for m, r in scored.maps.items()}
    prior = None
    if task.gt is not None:
        maps, prior = _localize_all(maps, heats, task.gt, clip, opts)
    gt = task.gt
    return ClipRecord(
        maps=maps,
        y=(float(inp.y[0]), float(inp.y[1]), float(inp.y[2])),
        video=str(clip.path),
        frames=tuple(clip.frames),
        spatial=cm.mode,
        window=tuple(clip.geometry.crop),
        gt_label=None if gt is None else gt.label,
        gt_origin=None if gt is None else gt.origin,
        target=truth.target,
        baseline_score=scored.baseline_score,
        empty_scores=scored.empty_scores,
        pred=truth.pred,
        pred_name=em.labels[truth.pred] if em.labels else str(truth.pred),
        correct=None if truth.gt_index is None else truth.pred == truth.gt_index,
        centre_prior=prior,
    )


def reference_maps(
    opts: EvalOptions,
    size: tuple[int, int, int],
    shapes: Sequence[tuple[int, int, int]],
    device: torch.device,
    ci: int,
) -> dict[str, torch.Tensor]:
    """The reference maps of ``opts.references`` for clip ``ci`` (T, H, W) each: random at the
    layers' feature ``shapes``, voxel noise, the centre prior, all-ones."""
    out = {}
    for r in opts.references:
        if r == "random":
            out[r] = random_map(shapes, size, seeded_generator(device, opts.seed, ci, 1))
        elif r == "random_voxel":
            out[r] = voxel_noise_map(size, seeded_generator(device, opts.seed, ci, 0))
        elif r == "centre":
            out[r] = centre_prior(size, device=device)
        else:
            out[r] = torch.ones(size, device=device)
    return out


def _localize_all(
    maps: dict[str, MapRecord],
    heats: Mapping[str, torch.Tensor],
    gt: GroundTruth,
    clip: Clip,
    opts: EvalOptions,
) -> tuple[dict[str, MapRecord], Localization | None]:
    """Every map's record with its localization against the clip's ground truth; and when the
    centre prior is not among the maps, its localization alone (no masked forward: every
    localization table has the centre prior), else None."""
    truth = map_truth(gt, clip)
    _, t, h, w = clip.pixels.shape[1:]
    union = truth.union(h, w)
    py, px = truth.px_per_unit
    near = dilate(union, opts.tolerance * math.sqrt(py * px))

    def measure(heat: torch.Tensor) -> Localization:
        got = localize(heat, union, truth.interval, boxes=truth.boxes, near=near)
        return Localization(**got)

    out = {m: replace(r, localization=measure(heats[m])) for m, r in maps.items()}
    if "centre" in maps:
        return out, None
    return out, measure(centre_prior((t, h, w), device=clip.pixels.device))
