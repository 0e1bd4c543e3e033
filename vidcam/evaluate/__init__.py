"""Explanation quality: faithfulness (Average Drop, Increase in Confidence, Win %, deletion and
insertion AUC) and localization against ground truth (pointing games, coverage, temporal energy,
IoU). The metric modules are pure tensor functions; :mod:`vidcam.evaluate.run` is the loop."""

from vidcam.evaluate.curves import auc, deletion_insertion
from vidcam.evaluate.masking import BASELINES, blend, make_baseline
from vidcam.evaluate.metrics_faithfulness import (
    average_drop,
    increase_in_confidence,
    win_percent,
)
from vidcam.evaluate.metrics_localization import localization

__all__ = [
    "BASELINES",
    "auc",
    "average_drop",
    "blend",
    "deletion_insertion",
    "increase_in_confidence",
    "localization",
    "make_baseline",
    "win_percent",
]
