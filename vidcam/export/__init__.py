"""Exports of batch outputs to the tools where video datasets are browsed.

:func:`to_fiftyone` (``vidcam export fiftyone``): a finished ``vidcam batch`` folder as a
FiftyOne dataset, one video sample per clip with per-frame heatmaps, predictions and metrics
(``pip install 'vidcam[fiftyone]'``). :func:`read_batch` reads a batch folder into typed
records. Names are imported on first use (``python -m vidcam.export.mongod`` stays light);
FiftyOne itself only when an export runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "BatchRecords": "vidcam.export.batch_reader",
    "ClipRecord": "vidcam.export.batch_reader",
    "FailedRow": "vidcam.export.batch_reader",
    "read_batch": "vidcam.export.batch_reader",
    "ExportSummary": "vidcam.export.fiftyone",
    "to_fiftyone": "vidcam.export.fiftyone",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'vidcam.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_NAMES[name]), name)
