"""Explanation quality: faithfulness (keep/remove top-k % scores and relative deletion/insertion
curves under natural fills — ROAD imputation, blur —, Average Drop, Increase in Confidence,
Win %, classic deletion and insertion AUC), map size, the methods' ranking per metric, and
localization against ground truth (pointing games, coverage, temporal energy, IoU). The metric
modules are pure tensor functions; :mod:`vidcam.evaluate.run` is the loop.

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
    "map_size": "metrics_size",
    "rank_methods": "ranking",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidcam.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vidcam.evaluate.{module}"), name)
