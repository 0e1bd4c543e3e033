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
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidcam.cam.rules import PERTURBATION_METHODS
from vidcam.cam.targets import find_class
from vidcam.errors import VidcamError
from vidcam.evaluate.clip_model import ClipModel
from vidcam.evaluate.clips import map_truth, read_clip
from vidcam.evaluate.fills import ROAD_NOISE, ROAD_TOL
from vidcam.evaluate.gt import GroundTruth, ground_truths, read_file_gt
from vidcam.evaluate.metrics_localization import dilate, localize
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
from vidcam.evaluate.references import (  # noqa: F401 (random_map re-exported)
    CENTRE_SIGMA,
    REFERENCE_HELP,
    centre_prior,
    random_map,
    voxel_noise_map,
)
from vidcam.evaluate.scoring import _gen, score_clip
from vidcam.evaluate.summary import METHOD_TITLES, summarize  # noqa: F401 (re-exported)
from vidcam.models.handle import ModelHandle
from vidcam.progress import Progress
from vidcam.video.setup import check_memory

#: the maps of a default run (the cheap methods and the references)
METHODS: tuple[str, ...] = EvalOptions().evaluated
#: the JSON output's schema: ``schema_version`` 2 added the score kinds, paired win rates,
#: per-fill ranks, the spatial mode, ground-truth formats, references and ``pointing_tol``
SCHEMA = "vidcam.evaluate"
SCHEMA_VERSION = 2


@dataclass
class EvalResult:
    """Per-clip records, per-method mean curves and the summary (see :func:`summarize`)."""

    options: dict[str, Any]
    model: dict[str, Any]
    clips: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "options": self.options,
            "model": self.model,
            "summary": self.summary,
            "mean_curves": self.curves,
            "clips": self.clips,
            "timing": self.timing,
        }


def _options_record(opts: EvalOptions) -> dict[str, Any]:
    return {
        "baseline": opts.baseline,
        "steps": opts.steps,
        "seed": opts.seed,
        "target": opts.target,
        "spatial": opts.spatial,
        "score": "softmax probability of the target class (for Y, O and the curves)",
        "score_kinds": {
            "": "probability ratio: score after masking / Y",
            "_dlogp": "log-probability difference: log p(masked) − log p(clip)",
            "_dlogit": "logit difference: logit(masked) − logit(clip)",
        },
        "fills": list(opts.fills),
        "fractions": list(opts.fractions),
        "fill_steps": opts.fill_steps,
        "units": list(opts.units),
        "road_noise": ROAD_NOISE,
        "road_tol": ROAD_TOL,
        "fill_grids": {f: list(fill_grid(f, opts)) for f in opts.fills},
        "relative": "keep_/remove_ scores and *_rel_<fill> curves are the target's score "
        "divided by Y (its score on the whole clip)",
        "batch": opts.batch,
        "methods": list(opts.evaluated),
        "references": {r: REFERENCE_HELP[r] for r in opts.references},
        "centre_sigma": CENTRE_SIGMA,
        "pointing_tolerance": opts.tolerance,
    }


def _model_record(em: ModelHandle) -> dict[str, Any]:
    return {
        "name": em.name,
        "weights": em.weights_source,
        "layers": list(em.layers),
        "clip_len": em.input.clip_len,
        "crop": list(em.input.crop),
    }


def _read_truths(videos, opts, gt_paths) -> list[GroundTruth | None]:
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
    result = EvalResult(options=_options_record(opts), model=_model_record(em))
    evaluated = opts.evaluated
    sums: dict[str, dict[str, torch.Tensor]] = {m: {} for m in evaluated}
    counters = {
        "masked_forwards": 0,
        "road_solves": 0,
        "engine_seconds": 0.0,
        "engine_forwards": 0,
        "scorecam_clips": 0,
        "perturbation_clips": 0,
    }
    t0 = time.perf_counter()
    with Progress(len(videos), unit="clips", desc="evaluate", enabled=not opts.quiet) as bar:
        for ci, path in enumerate(videos):
            cls = classes[ci] if classes is not None else None
            rec = _evaluate_clip(ci, Path(path), truths[ci], cls, em, opts, engine, sums, counters)
            result.clips.append(rec)
            bar.update(1)
    seconds = time.perf_counter() - t0
    n = len(videos)
    result.curves = {
        m: {k: (v / n).tolist() for k, v in sums[m].items()} for m in evaluated if sums[m]
    }
    result.summary = summarize(
        result.clips, fills=opts.fills, fraction=headline_fraction(opts.fractions), units=opts.units
    )
    result.timing = {
        "seconds": seconds,
        "clips_per_minute": 60.0 * n / seconds if seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
        "device": str(em.device),
        **counters,
    }
    return result


def _clip_truth(clip_name, gt, em, opts, probs, cls):
    """(target, pred, gt_index) for a clip (``cls``: an explicit class, else ``opts.target``)."""
    pred = int(probs.argmax())
    target = pred
    if cls is not None:
        if not 0 <= int(cls) < probs.shape[-1]:
            raise VidcamError(
                f"{clip_name}: class {cls} is not one of the model's {probs.shape[-1]} "
                "outputs; give an index in range or a class name"
            )
        target = int(cls)
    label = gt.label if gt is not None else None
    gt_index = find_class(label, em.labels) if label is not None else None
    if cls is None and opts.target == "gt" and label is not None:
        if gt_index is None:
            raise VidcamError(
                f"{clip_name}: ground-truth label {label!r} is not a class of the model; use "
                "--target pred (localization then explains the prediction)"
            )
        target = gt_index
    return target, pred, gt_index


def _evaluate_clip(ci, path, gt, cls, em, opts, engine, sums, counters) -> dict[str, Any]:
    models: list[ClipModel] = []

    def geometry(height: int, width: int):
        cm = ClipModel(
            em, opts.spatial, height, width, opts.methods, batch=opts.batch, engine=engine
        )
        # the clip's memory from the model's own activations, before any frame is decoded
        check_memory(em.input, em.input.clip_len, 1, (height, width), cm.plan.mode, em.device, em)
        models.append(cm)
        return cm.geometry

    clip = read_clip(path, em.input, em.device, geometry)
    cm = models[0]
    pixels = clip.pixels
    scores = cm.scores(pixels)[0]  # (classes, 3)
    target, pred, gt_index = _clip_truth(clip.path.name, gt, em, opts, scores[:, 0], cls)
    t_engine = time.perf_counter()
    heats, shapes, cost = cm.maps(pixels, target)
    counters["scorecam_clips"] += sum(c["masked_clips"] for m, c in cost.items() if m == "scorecam")
    counters["perturbation_clips"] += sum(
        c["masked_clips"] for m, c in cost.items() if m in PERTURBATION_METHODS
    )
    counters["engine_forwards"] += len(cm.engines)
    counters["engine_seconds"] += time.perf_counter() - t_engine
    heats.update(_references(opts, tuple(pixels.shape[-3:]), shapes, pixels.device, ci))

    clip_rec, records, used = score_clip(
        ci, pixels, heats, scores[target], target, cm.scores, em.input.mean, opts, sums
    )
    for k, v in used.items():
        counters[k] += v
    for m, c in cost.items():
        records[m]["cost"] = c  # what the method's map cost (forwards per clip, seconds)
    prior = None
    if gt is not None:
        prior = _localize_all(records, heats, gt, clip, opts)
    extra = {} if prior is None else {"centre_prior": prior}
    return {
        "video": str(clip.path),
        "frames": list(clip.frames),
        "spatial": cm.mode,
        "window": list(clip.geometry.crop),
        "gt_label": None if gt is None else gt.label,
        "gt_origin": None if gt is None else gt.origin,
        "target": target,
        **clip_rec,
        "methods": records,
        "pred": pred,
        "pred_name": em.labels[pred] if em.labels else str(pred),
        "correct": None if gt_index is None else pred == gt_index,
        **extra,
    }


def _references(opts, size, shapes, device, ci) -> dict[str, torch.Tensor]:
    out = {}
    for r in opts.references:
        if r == "random":
            out[r] = random_map(shapes, size, _gen(device, opts.seed, ci, 1))
        elif r == "random_voxel":
            out[r] = voxel_noise_map(size, _gen(device, opts.seed, ci, 0))
        elif r == "centre":
            out[r] = centre_prior(size, device=device)
        else:
            out[r] = torch.ones(size, device=device)
    return out


def _localize_all(records, heats, gt: GroundTruth, clip, opts) -> dict[str, Any] | None:
    """Localization of every map against the clip's ground truth (in place in ``records``);
    when the centre prior is not among the maps, its localization alone (no masked forward:
    every localization table has the centre prior), else None."""
    truth = map_truth(gt, clip)
    _, t, h, w = clip.pixels.shape[1:]
    union = truth.union(h, w)
    py, px = truth.px_per_unit
    near = dilate(union, opts.tolerance * math.sqrt(py * px))

    def measure(heat: torch.Tensor) -> dict[str, Any]:
        return localize(heat, union, truth.interval, boxes=truth.boxes, near=near)

    for m, rec in records.items():
        rec.update(measure(heats[m]))
    if "centre" in records:
        return None
    return measure(centre_prior((t, h, w), device=clip.pixels.device))
