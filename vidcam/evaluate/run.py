"""The evaluation loop: every clip × every method -> faithfulness, curves and localization.

Methods: Grad-CAM, Grad-CAM++ (vidcam's engine at the model's registered layers), a RANDOM map
(uniform noise at the explained layer's feature resolution, upsampled trilinearly like a CAM and
min-max normalised; seeded per clip) and the ALL-ONES map. All four maps explain the same class:
the model's top-1 prediction on the clip (``target="pred"``) or the ground-truth label
(``target="gt"``, clips without ground truth fall back to the prediction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from vidcam.cam.targets import find_class
from vidcam.errors import VidcamError
from vidcam.evaluate.clips import find_gt, load_gt, map_gt, read_clip
from vidcam.evaluate.curves import UNITS, auc, deletion_insertion
from vidcam.evaluate.masking import BASELINES, blend, make_baseline
from vidcam.evaluate.metrics_faithfulness import (
    average_drop,
    drops,
    increase_in_confidence,
    win_percent,
)
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS, box_masks, localization
from vidcam.models.record import ModelRecord
from vidcam.progress import Progress

METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "random", "ones")
METHOD_TITLES: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "random": "random",
    "ones": "all-ones",
}


@dataclass
class EvalOptions:
    baseline: str = "black"
    steps: int = 16
    batch: int = 16
    seed: int = 0
    target: str = "pred"
    gt_dir: str | Path | None = None
    quiet: bool = False

    def check(self) -> None:
        if self.baseline not in BASELINES:
            raise VidcamError(f"baseline {self.baseline!r} is not one of {', '.join(BASELINES)}")
        if self.steps < 2:
            raise VidcamError(f"steps must be >= 2, got {self.steps}")
        if self.batch < 1:
            raise VidcamError(f"batch must be >= 1, got {self.batch}")
        if self.target not in ("pred", "gt"):
            raise VidcamError(f"target must be 'pred' or 'gt', got {self.target!r}")


@dataclass
class EvalResult:
    """Per-clip records, per-method mean curves and the summary (see :func:`summarize`)."""

    options: dict[str, Any]
    model: dict[str, Any]
    clips: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "model": self.model,
            "summary": self.summary,
            "mean_curves": self.curves,
            "clips": self.clips,
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


def evaluate(videos: Sequence[Path], em: ModelRecord, opts: EvalOptions) -> EvalResult:
    """Run every method on every video; returns per-clip records and the summary."""
    from vidcam import Explainer

    opts.check()
    model = em.module
    device = next(model.parameters()).device
    spec = em.input
    mean, std = _channel(spec.mean, device), _channel(spec.std, device)

    @torch.no_grad()
    def score_fn(pixels: torch.Tensor) -> torch.Tensor:
        return model((pixels - mean) / std).float().softmax(-1)

    explainers = {
        m: Explainer(model, layer=em.layers or None, method=m, reshape=em.reshape)
        for m in ("gradcam", "gradcam++")
    }
    result = EvalResult(
        options={
            "baseline": opts.baseline,
            "steps": opts.steps,
            "seed": opts.seed,
            "target": opts.target,
            "score": "softmax probability of the target class (for Y, O and the curves)",
        },
        model={
            "name": em.name,
            "weights": em.weights_source,
            "layers": list(em.layers),
            "clip_len": spec.clip_len,
            "crop": list(spec.crop),
        },
    )
    sums: dict[str, dict[str, torch.Tensor]] = {m: {} for m in METHODS}
    with Progress(len(videos), unit="clips", desc="evaluate", enabled=not opts.quiet) as bar:
        for ci, path in enumerate(videos):
            rec = _evaluate_clip(ci, path, em, opts, score_fn, explainers, sums)
            result.clips.append(rec)
            bar.update(1)
    n = len(videos)
    result.curves = {
        m: {k: (v / n).tolist() for k, v in sums[m].items()} for m in METHODS if sums[m]
    }
    result.summary = summarize(result.clips)
    return result


def _evaluate_clip(ci, path, em, opts, score_fn, explainers, sums) -> dict[str, Any]:
    clip = read_clip(path, em.input, next(em.module.parameters()).device)
    pixels = clip.pixels
    device = pixels.device
    gt_path = find_gt(clip.path, opts.gt_dir)
    gt = load_gt(gt_path) if gt_path is not None else None

    probs = score_fn(pixels)[0]
    pred = int(probs.argmax())
    target = pred
    gt_index = None
    if gt is not None:
        gt_index = find_class(str(gt["label"]), em.labels)
    if opts.target == "gt" and gt is not None:
        if gt_index is None:
            raise VidcamError(
                f"{clip.path.name}: ground-truth label {gt['label']!r} is not a class of the "
                "model; use --target pred (localization then explains the prediction)"
            )
        target = gt_index
    norm = (pixels - _channel(em.input.mean, device)) / _channel(em.input.std, device)
    heats: dict[str, torch.Tensor] = {}
    raw_shape = None
    for m, ex in explainers.items():
        res = ex(norm, target=[target])
        heats[m] = res.maps[0, 0].detach()
        raw_shape = tuple(res.raw.shape[-3:])
    size = tuple(pixels.shape[-3:])
    heats["random"] = random_map(raw_shape, size, _gen(device, opts.seed, ci, 1))
    heats["ones"] = torch.ones(size, device=device)

    baseline = make_baseline(pixels, opts.baseline, em.input.mean)
    y = probs[target]
    base_score = score_fn(baseline)[0, target]
    stack = torch.stack([heats[m] for m in METHODS]).unsqueeze(1)  # (M, 1, T, H, W)
    o = score_fn(blend(pixels, baseline, stack))[:, target]  # explanation-map scores

    truth = None
    if gt is not None:
        truth = map_gt(gt, clip)
        inst = box_masks(truth.boxes, size[1], size[2], device=device)
    rec: dict[str, Any] = {
        "video": str(clip.path),
        "frames": list(clip.frames),
        "gt_label": None if gt is None else str(gt["label"]),
        "pred": pred,
        "pred_name": em.labels[pred] if em.labels else str(pred),
        "target": target,
        "correct": None if gt_index is None else pred == gt_index,
        "Y": float(y),
        "baseline_score": float(base_score),
        "methods": {},
    }
    for mi, m in enumerate(METHODS):
        mrec: dict[str, Any] = {"O": float(o[mi])}
        for ui, unit in enumerate(UNITS):
            d, ins = deletion_insertion(
                score_fn,
                pixels,
                baseline,
                heats[m],
                target,
                unit=unit,
                steps=opts.steps,
                batch=opts.batch,
                generator=_gen(device, opts.seed, ci, 2 + mi * len(UNITS) + ui),
                full_score=y,
                base_score=base_score,
            )
            mrec[f"deletion_{unit}"] = float(auc(d))
            mrec[f"insertion_{unit}"] = float(auc(ins))
            for kind, c in (("deletion", d), ("insertion", ins)):
                key = f"{kind}_{unit}"
                sums[m][key] = sums[m][key] + c if key in sums[m] else c.clone()
        if truth is not None:
            mrec.update(localization(heats[m], inst, truth.interval))
        rec["methods"][m] = mrec
    return rec


def summarize(clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-method means over clips, Average Drop / Increase in Confidence and pairwise Win %."""
    if not clips:
        raise VidcamError("no clips were evaluated")
    y = torch.tensor([c["Y"] for c in clips], dtype=torch.float64)
    o = {
        m: torch.tensor([c["methods"][m]["O"] for c in clips], dtype=torch.float64) for m in METHODS
    }
    per_method: dict[str, dict[str, Any]] = {}
    for m in METHODS:
        row: dict[str, Any] = {
            "average_drop": average_drop(y, o[m]),
            "increase_in_confidence": increase_in_confidence(y, o[m]),
            "mean_drop": float(drops(y, o[m]).mean()),
        }
        for key in (f"{k}_{u}" for u in UNITS for k in ("deletion", "insertion")):
            row[key] = sum(c["methods"][m][key] for c in clips) / len(clips)
        for key in LOCALIZATION_METRICS:
            vals = [c["methods"][m].get(key) for c in clips]
            vals = [v for v in vals if v is not None]
            row[key] = sum(vals) / len(vals) if vals else None
            row[f"{key}_clips"] = len(vals)
        per_method[m] = row
    win = {a: {b: win_percent(o[a], o[b], y)[0] for b in METHODS if b != a} for a in METHODS}
    judged = [c["correct"] for c in clips if c["correct"] is not None]
    return {
        "clips": len(clips),
        "clips_with_gt": len(judged),
        "accuracy": (sum(judged) / len(judged)) if judged else None,
        "methods": per_method,
        "win_percent": win,
    }
