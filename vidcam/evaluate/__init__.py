"""Explanation quality: faithfulness (keep/remove top-k % scores and relative deletion/insertion
curves under natural fills — ROAD imputation, blur —, Average Drop, Increase in Confidence,
Win %, classic deletion and insertion AUC), map size, and localization against ground truth
(pointing games, coverage, temporal energy, IoU). The metric modules are pure tensor functions;
:mod:`vidcam.evaluate.run` is the loop."""

from vidcam.evaluate.curves import (
    MaskedScorer,
    Ranking,
    auc,
    auc_xy,
    deletion_insertion,
    keep_remove_curves,
)
from vidcam.evaluate.fills import FILLS, NATURAL_FILLS, ConstantFill, RoadFill, make_fill
from vidcam.evaluate.masking import BASELINES, blend, make_baseline
from vidcam.evaluate.metrics_faithfulness import (
    average_drop,
    increase_in_confidence,
    win_percent,
)
from vidcam.evaluate.metrics_localization import localization
from vidcam.evaluate.metrics_size import map_size

__all__ = [
    "BASELINES",
    "FILLS",
    "NATURAL_FILLS",
    "ConstantFill",
    "MaskedScorer",
    "Ranking",
    "RoadFill",
    "auc",
    "auc_xy",
    "average_drop",
    "blend",
    "deletion_insertion",
    "increase_in_confidence",
    "keep_remove_curves",
    "localization",
    "make_baseline",
    "make_fill",
    "map_size",
    "win_percent",
]
