"""The evaluation loop: every clip × every method -> faithfulness, curves and localization.

Methods: the engine's (``opts.methods``; default every cheap one: Grad-CAM, Grad-CAM++,
XGrad-CAM, LayerCAM, HiResCAM, Eigen-CAM — Score-CAM only when asked) at the model's registered
layers, plus two references: a RANDOM map (uniform noise at the explained layer's feature
resolution, upsampled trilinearly like a CAM and min-max normalised; seeded per clip) and the
ALL-ONES map. All maps explain the same class: the model's top-1 prediction on the clip
(``target="pred"``) or the ground-truth label (``target="gt"``, clips without ground truth fall
back to the prediction).

Per clip, the engine runs ONCE for all methods: one forward with hooks and one backward (every
gradient method reads the same A and g; Eigen-CAM needs neither; Score-CAM adds its masked
forwards, batched by ``batch``, without autograd). Every other forward scores a masked clip
under :func:`torch.inference_mode`, through ONE :class:`~vidcam.evaluate.curves.MaskedScorer`
per clip: all requests of the clip (the classic curves under the baseline, the keep/remove
points under every fill, for all maps) are queued first, identical ones scored once, the rest
in full batches of ``batch``. Computed once and reused: the baseline and every constant fill
(per clip), the unit rankings (per map and unit, shared by the classic curves and the fills),
the score on the whole clip and on the fully filled clip (per clip and fill, shared by all
maps), and each ROAD imputation (per map, share and mode: it is both the curve point and the
keep/remove score). Forwards per clip, with M maps: 1 (Y) + M + 1 (E = map ⊙ clip, and the
baseline) + ``2M·(steps − 1)`` (classic voxel curves) + ``2M·(min(steps, T) − 1)`` (classic
frame curves) + ``2M·P + 1`` per fill, with P the fill's inner curve positions (the fractions
by default); with ROAD, ``2M·P + 1`` solves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidcam.cam.targets import find_class
from vidcam.errors import VidcamError
from vidcam.evaluate.clips import find_gt, load_gt, map_gt, read_clip
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
from vidcam.evaluate.fills import (
    ROAD_NOISE,
    ROAD_TOL,
    ConstantFill,
    make_fill,
    stable_seed,
)
from vidcam.evaluate.masking import blend, make_baseline
from vidcam.evaluate.metrics_localization import box_masks, localization
from vidcam.evaluate.metrics_size import map_size
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
from vidcam.evaluate.summary import METHOD_TITLES, summarize  # noqa: F401 (re-exported)
from vidcam.models.handle import ModelHandle
from vidcam.progress import Progress

#: the maps of a default run (the cheap methods and the references)
METHODS: tuple[str, ...] = EvalOptions().evaluated


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
            "options": self.options,
            "model": self.model,
            "summary": self.summary,
            "mean_curves": self.curves,
            "clips": self.clips,
            "timing": self.timing,
        }


def _gen(device: torch.device, *seeds: int) -> torch.Generator:
    s = 0
    for v in seeds:
        s = (s * 1_000_003 + int(v)) % (2**62)
    return torch.Generator(device=device).manual_seed(s)


def random_map(raw_shape: Sequence[int], size: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    """Uniform noise at feature resolution ``raw_shape`` (t, h, w), upsampled to ``size``
    (T, H, W) trilinearly and min-max normalised to [0, 1]."""
    noise = torch.rand(*raw_shape, generator=gen, device=gen.device)
    up = F.interpolate(noise[None, None], size=tuple(size), mode="trilinear", align_corners=False)
    up = up[0, 0]
    lo, hi = up.min(), up.max()
    return (up - lo) / (hi - lo).clamp(min=1e-12)


def _channel(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1, 1)


def evaluate(
    videos: Sequence[Path],
    em: ModelHandle,
    opts: EvalOptions,
    *,
    gt_paths: Sequence[Path | None] | None = None,
    classes: Sequence[int | None] | None = None,
    engine: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Run every method on every video; returns per-clip records and the summary.

    ``gt_paths[i]`` (optional): video i's ground-truth JSON, instead of looking it up by name
    (``opts.gt_dir``); ``classes[i]`` (optional): the class to explain in video i, instead of
    ``opts.target`` (None: as ``opts.target`` says); ``engine``: further keyword arguments of
    :class:`~vidcam.Explainer` (``softmax``, ``gradients``, ``pooling``), so the maps scored are
    the ones a run with those settings renders.
    """
    from vidcam import Explainer

    opts.check()
    for name, seq in (("gt_paths", gt_paths), ("classes", classes)):
        if seq is not None and len(seq) != len(videos):
            raise VidcamError(f"{name}: give one entry per video ({len(videos)}), got {len(seq)}")
    model = em.module
    device = next(model.parameters()).device
    spec = em.input
    mean, std = _channel(spec.mean, device), _channel(spec.std, device)
    scale, shift = 1.0 / std, -mean / std  # (x − mean) / std as one fused pass

    def score_fn(pixels: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities of masked clips: never records autograd (inference mode)."""
        with torch.inference_mode():
            return model(torch.addcmul(shift, pixels, scale)).float().softmax(-1)

    # ONE engine call per clip for all methods: one forward, one backward
    explainer = Explainer(
        model,
        layer=em.layers or None,
        method=opts.methods,
        reshape=em.reshape,
        batch_size=opts.batch,
        **dict(engine or {}),
    )
    evaluated = opts.evaluated
    result = EvalResult(
        options={
            "baseline": opts.baseline,
            "steps": opts.steps,
            "seed": opts.seed,
            "target": opts.target,
            "score": "softmax probability of the target class (for Y, O and the curves)",
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
            "methods": list(evaluated),
        },
        model={
            "name": em.name,
            "weights": em.weights_source,
            "layers": list(em.layers),
            "clip_len": spec.clip_len,
            "crop": list(spec.crop),
        },
    )
    sums: dict[str, dict[str, torch.Tensor]] = {m: {} for m in evaluated}
    counters = {
        "masked_forwards": 0,
        "road_solves": 0,
        "engine_seconds": 0.0,
        "engine_forwards": 0,
        "scorecam_clips": 0,
    }
    t0 = time.perf_counter()
    with Progress(len(videos), unit="clips", desc="evaluate", enabled=not opts.quiet) as bar:
        for ci, path in enumerate(videos):
            gt_path = gt_paths[ci] if gt_paths is not None else find_gt(Path(path), opts.gt_dir)
            cls = classes[ci] if classes is not None else None
            rec = _evaluate_clip(
                ci, path, gt_path, cls, em, opts, score_fn, explainer, sums, counters
            )
            result.clips.append(rec)
            bar.update(1)
    seconds = time.perf_counter() - t0
    n = len(videos)
    result.curves = {
        m: {k: (v / n).tolist() for k, v in sums[m].items()} for m in evaluated if sums[m]
    }
    result.summary = summarize(
        result.clips,
        fills=opts.fills,
        fraction=headline_fraction(opts.fractions),
        units=opts.units,
    )
    result.timing = {
        "seconds": seconds,
        "clips_per_minute": 60.0 * n / seconds if seconds > 0 else None,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        **counters,
    }
    return result


def _clip_truth(clip, gt, em, opts, probs, cls):
    """(target, pred, gt_index) for a clip (``cls``: an explicit class, else ``opts.target``)."""
    pred = int(probs.argmax())
    target = pred
    if cls is not None:
        if not 0 <= int(cls) < probs.shape[-1]:
            raise VidcamError(
                f"{clip.path.name}: class {cls} is not one of the model's {probs.shape[-1]} "
                "outputs; give an index in range or a class name"
            )
        target = int(cls)
    gt_index = None
    if gt is not None:
        gt_index = find_class(str(gt["label"]), em.labels)
    if cls is None and opts.target == "gt" and gt is not None:
        if gt_index is None:
            raise VidcamError(
                f"{clip.path.name}: ground-truth label {gt['label']!r} is not a class of the "
                "model; use --target pred (localization then explains the prediction)"
            )
        target = gt_index
    return target, pred, gt_index


def _evaluate_clip(
    ci, path, gt_path, cls, em, opts, score_fn, explainer, sums, counters
) -> dict[str, Any]:
    clip = read_clip(path, em.input, next(em.module.parameters()).device)
    pixels = clip.pixels
    device = pixels.device
    gt = load_gt(gt_path) if gt_path is not None else None

    probs = score_fn(pixels)[0]
    target, pred, gt_index = _clip_truth(clip, gt, em, opts, probs, cls)
    norm = (pixels - _channel(em.input.mean, device)) / _channel(em.input.std, device)
    heats: dict[str, torch.Tensor] = {}
    raw_shape = None
    t_engine = time.perf_counter()
    # the engine needs autograd: outside inference mode; all methods from one forward/backward
    for m, res in explainer.explain_all(norm, target=[target]).items():
        heats[m] = res.maps[0, 0].detach()
        raw_shape = tuple(res.raw.shape[-3:])
        counters["scorecam_clips"] += res.masked_clips
    counters["engine_forwards"] += 1
    counters["engine_seconds"] += time.perf_counter() - t_engine
    size = tuple(pixels.shape[-3:])
    heats["random"] = random_map(raw_shape, size, _gen(device, opts.seed, ci, 1))
    heats["ones"] = torch.ones(size, device=device)

    with torch.inference_mode():
        rec = _score_clip(ci, clip, gt, em, opts, score_fn, heats, probs, target, sums, counters)
    rec.update(
        pred=pred,
        pred_name=em.labels[pred] if em.labels else str(pred),
        correct=None if gt_index is None else pred == gt_index,
    )
    return rec


def _score_clip(ci, clip, gt, em, opts, score_fn, heats, probs, target, sums, counters):
    """Every masked forward of one clip (inference mode): E = map ⊙ clip, the classic curves
    under the baseline, and keep/remove scores and relative curves under each fill."""
    pixels = clip.pixels
    device = pixels.device
    size = tuple(pixels.shape[-3:])
    baseline = make_baseline(pixels, opts.baseline, em.input.mean)
    y = probs[target]
    methods = opts.evaluated
    stack = torch.stack([heats[m] for m in methods]).unsqueeze(1)  # (M, 1, T, H, W)
    scorer = MaskedScorer(score_fn, pixels, target, batch=opts.batch, full=y)
    base_fill = ConstantFill(opts.baseline, baseline)
    fills = {
        f: make_fill(
            f,
            pixels,
            em.input.mean,
            stable_seed(opts.seed, ci, f),
            baseline=(opts.baseline, baseline),
        )
        for f in opts.fills
    }
    if opts.baseline in fills:  # one fill object per kind: its masked clips are shared
        base_fill = fills[opts.baseline]
    # E = map ⊙ clip for every map and the baseline itself, in one batch
    o_all = score_fn(torch.cat([blend(pixels, baseline, stack), baseline]))[:, target]
    o, base_score = o_all[:-1], o_all[-1]
    counters["masked_forwards"] += o_all.shape[0]
    scorer.set_empty(base_fill, base_score)

    rankings: dict[tuple[str, str], Ranking] = {}
    for mi, m in enumerate(methods):
        for ui, unit in enumerate(UNITS):
            r, n = unit_ranks(heats[m], unit, _gen(device, opts.seed, ci, 2 + mi * len(UNITS) + ui))
            rankings[m, unit] = Ranking((m, unit), r, n)

    # queue every masked clip of this clip first, so batches are full across maps and fills
    jobs = []
    grids = {f: fill_grid(f, opts) for f in fills}
    for m in methods:
        for unit in opts.units:
            rk = rankings[m, unit]
            s = min(opts.steps, rk.n) if unit == "frame" else opts.steps
            counts = [round(k * rk.n / s) for k in range(s + 1)]
            jobs += scorer.jobs(base_fill, rk, counts)
        rk = rankings[m, "voxel"]
        for f, fill in fills.items():
            jobs += scorer.jobs(fill, rk, counts_for(grids[f], rk.n))
    scorer.run(jobs)

    truth = None
    if gt is not None:
        truth = map_gt(gt, clip)
        inst = box_masks(truth.boxes, size[1], size[2], device=device)
    rec: dict[str, Any] = {
        "video": str(clip.path),
        "frames": list(clip.frames),
        "gt_label": None if gt is None else str(gt["label"]),
        "target": target,
        "Y": float(y),
        "baseline_score": float(base_score),
        "empty_scores": {f: float(scorer.empty_score(fill)) for f, fill in fills.items()},
        "methods": {},
    }
    yv = float(y)
    for mi, m in enumerate(methods):
        mrec: dict[str, Any] = {"O": float(o[mi])}
        mrec.update(map_size(heats[m]))
        for unit in opts.units:
            d, ins = deletion_insertion(
                score_fn,
                pixels,
                baseline,
                heats[m],
                target,
                unit=unit,
                steps=opts.steps,
                scorer=scorer,
                fill=base_fill,
                ranking=rankings[m, unit],
            )
            mrec[f"deletion_{unit}"] = float(auc(d))
            mrec[f"insertion_{unit}"] = float(auc(ins))
            _accumulate(sums[m], {f"deletion_{unit}": d, f"insertion_{unit}": ins})
        rk = rankings[m, "voxel"]
        for f, fill in fills.items():
            xs = grids[f]
            d, ins = keep_remove_curves(scorer, fill, rk, xs, yv)
            mrec[f"deletion_rel_{f}"] = float(auc_xy(xs, d))
            mrec[f"insertion_rel_{f}"] = float(auc_xy(xs, ins))
            for k in opts.fractions:
                i = xs.index(k)
                mrec[f"remove_{pct(k)}_{f}"] = float(d[i])
                mrec[f"keep_{pct(k)}_{f}"] = float(ins[i])
            _accumulate(sums[m], {f"deletion_rel_{f}": d, f"insertion_rel_{f}": ins})
        if truth is not None:
            mrec.update(localization(heats[m], inst, truth.interval))
        rec["methods"][m] = mrec
    counters["masked_forwards"] += scorer.forwards
    counters["road_solves"] += sum(getattr(f, "solves", 0) for f in fills.values())
    return rec


def _accumulate(sums: dict[str, torch.Tensor], curves: dict[str, torch.Tensor]) -> None:
    for key, c in curves.items():
        c = c.detach().double().cpu()
        sums[key] = sums[key] + c if key in sums else c.clone()
