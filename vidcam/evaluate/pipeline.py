"""The evaluation loop: every clip × every map -> faithfulness, curves and localization.

Maps: the engine's methods (``opts.methods``; default every cheap one: Grad-CAM, Grad-CAM++,
XGrad-CAM, LayerCAM, HiResCAM, Eigen-CAM — Score-CAM only when asked) at the model's layers,
plus the reference maps of :mod:`vidcam.evaluate.references` (``opts.references``): a RANDOM
map at the explained layer's resolution (smoothness-matched), per-voxel noise, the CENTRE
prior (a centred Gaussian) and the ALL-ONES map. All maps explain the same class: the model's
top-1 prediction on the clip (``target="pred"``) or the ground-truth label (``target="gt"``,
clips without ground truth fall back to the prediction).

Each video gives one clip (:func:`~vidcam.evaluate.clips.read_clip`) over the window the
spatial mode covers (``opts.spatial``, :mod:`vidcam.evaluate.clip_model`: the centre crop, the
whole frame, or tiles across it), so localization is measured where the rendered video shows
heat. Per clip, the engine runs ONCE for all methods (one forward with hooks, one backward);
every other forward scores a masked clip under :func:`torch.inference_mode`, batched and
de-duplicated (:mod:`vidcam.evaluate.scoring`). Forwards per clip, with M maps: 1 (Y) + M + 1
(E = map ⊙ clip, and the baseline) + ``2M·(steps − 1)`` (classic voxel curves) +
``2M·(min(steps, T) − 1)`` (classic frame curves) + ``2M·P + 1`` per fill, with P the fill's
inner curve positions (the fractions by default); with ROAD, ``2M·P + 1`` solves.

Ground truth (:mod:`vidcam.evaluate.gt`): vidcam JSON, per-frame mask files or an
action-detection annotation pickle, resolved for every video before any model work.

One clip's work is :func:`vidcam.evaluate.clip_eval.evaluate_clip`; its numbers are typed
records (:mod:`vidcam.evaluate.records`), summarised by :mod:`vidcam.evaluate.summary` into an
:class:`~vidcam.evaluate.result.EvalResult`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.clip_eval import ClipTask, RunContext, evaluate_clip
from vidcam.evaluate.gt import GroundTruth, ground_truths, read_file_gt
from vidcam.evaluate.options import (  # noqa: F401 (re-exported)
    FRACTIONS,
    EvalOptions,
    fill_grid,
    headline_fraction,
    parse_fractions,
    parse_methods,
    parse_units,
    pct,
)
from vidcam.evaluate.references import random_map  # noqa: F401 (re-exported)
from vidcam.evaluate.result import (  # noqa: F401 (re-exported)
    SCHEMA,
    SCHEMA_VERSION,
    EvalResult,
    ModelInfo,
    Timing,
)
from vidcam.evaluate.summary import METHOD_TITLES, summarize, summary_of  # noqa: F401
from vidcam.models.handle import ModelHandle
from vidcam.progress import Progress

#: the maps of a default run (the cheap methods and the references)
METHODS: tuple[str, ...] = EvalOptions().evaluated


def _read_truths(
    videos: Sequence[Path], opts: EvalOptions, gt_paths: Sequence[Path | None] | None
) -> list[GroundTruth | None]:
    """Every video's ground truth, read before any model work (see :func:`evaluate`)."""
    if gt_paths is not None:
        return [read_file_gt(Path(p)) if p is not None else None for p in gt_paths]
    return ground_truths(opts.gt_dir, [Path(v) for v in videos])


def evaluate(
    videos: Sequence[Path],
    em: ModelHandle,
    opts: EvalOptions,
    *,
    gt_paths: Sequence[Path | None] | None = None,
    classes: Sequence[int | None] | None = None,
    engine: Mapping[str, Any] | None = None,
    truths: Sequence[GroundTruth | None] | None = None,
) -> EvalResult:
    """Run every map on every video; returns per-clip records and the summary.

    Ground truth: ``truths[i]`` (already read, :func:`~vidcam.evaluate.gt.ground_truths`), or
    ``gt_paths[i]`` (a per-video file), else looked up from ``opts.gt_dir`` (a folder or an
    annotation pickle) or next to the video — all read before any model work. ``classes[i]``
    (optional): the class to explain in video i, instead of ``opts.target``; ``engine``:
    further keyword arguments of :class:`~vidcam.Explainer` (``softmax``, ``gradients``,
    ``pooling``), so the maps scored are the ones a run with those settings renders.
    """
    opts.check()
    for name, seq in (("gt_paths", gt_paths), ("classes", classes), ("truths", truths)):
        if seq is not None and len(seq) != len(videos):
            raise VidcamError(f"{name}: give one entry per video ({len(videos)}), got {len(seq)}")
    if truths is None:
        truths = _read_truths(videos, opts, gt_paths)
    ctx = RunContext(em, replace(opts), engine)
    records = []
    t0 = time.perf_counter()
    with Progress(len(videos), unit="clips", desc="evaluate", enabled=not opts.quiet) as bar:
        for ci, path in enumerate(videos):
            cls = classes[ci] if classes is not None else None
            records.append(evaluate_clip(ClipTask(ci, Path(path), truths[ci], cls), ctx))
            bar.update(1)
    seconds = time.perf_counter() - t0
    n = len(videos)
    summary = summary_of(
        records, fills=opts.fills, fraction=headline_fraction(opts.fractions), units=opts.units
    )
    timing = Timing(
        seconds=seconds,
        clips_per_minute=60.0 * n / seconds if seconds > 0 else None,
        torch_threads=torch.get_num_threads(),
        device=str(em.device),
        counters=ctx.counters,
    )
    return EvalResult(
        opts=ctx.opts,
        model_info=ModelInfo.of(em),
        records=tuple(records),
        curves=ctx.sums.means(opts.evaluated, n),
        overview=summary,
        run_timing=timing,
    )
