"""Explanation quality: faithfulness (keep/remove top-k % scores — as probability ratios,
log-probability and logit differences — and relative deletion/insertion curves under natural
fills — ROAD imputation, blur —, Average Drop, Increase in Confidence, Win %, classic deletion
and insertion AUC), map size, the methods' ranking per metric and per fill, paired win rates
against reference maps (random, voxel noise, the centre prior, all-ones) with Wilson
intervals, and localization against ground truth — vidcam JSON, per-frame masks or
action-detection annotation pickles (energy in box, pointing games with and without a
tolerance, coverage, temporal energy, IoU) — over the window the spatial mode explains. The
metric modules are pure tensor functions; :mod:`vidcam.evaluate.pipeline` is the loop; its numbers
are typed records (:mod:`vidcam.evaluate.records`, :mod:`vidcam.evaluate.summary_records`),
written as JSON by :class:`vidcam.evaluate.result.EvalResult` (docs/evaluate_json.md).

The names below load on first use (they import torch), so :mod:`vidcam.evaluate.choices` — the
constants of ``vidcam evaluate --help`` — imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "MaskedScorer": "curves",
    "Ranking": "curves",
    "auc": "curves",
    "auc_xy": "curves",
    "deletion_insertion": "curves",
    "keep_remove_curves": "curves",
    "FILLS": "choices",
    "NATURAL_FILLS": "choices",
    "BASELINES": "choices",
    "ConstantFill": "fills",
    "RoadFill": "fills",
    "make_fill": "fills",
    "blend": "masking",
    "make_baseline": "masking",
    "average_drop": "metrics_faithfulness",
    "increase_in_confidence": "metrics_faithfulness",
    "win_percent": "metrics_faithfulness",
    "localization": "metrics_localization",
    "localize": "metrics_localization",
    "map_size": "metrics_size",
    "rank_methods": "ranking",
    "fill_agreement": "ranking",
    "paired_wins": "paired",
    "wilson": "paired",
    "centre_prior": "references",
    "random_map": "references",
    "GroundTruth": "gt",
    "ground_truths": "gt",
    "read_annotation_pickle": "gt_pickle",
    "read_mask_gt": "gt_masks",
    "write_mask_gt": "gt_masks",
    "EvalOptions": "options",
    "evaluate": "run",
    "EvalResult": "result",
    "ScoreKey": "keys",
    "ClipRecord": "records",
    "MapRecord": "records",
    "Summary": "summary_records",
    "summary_of": "summary",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidcam.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vidcam.evaluate.{module}"), name)
