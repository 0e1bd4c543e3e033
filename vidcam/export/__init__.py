"""Exports of batch outputs to the tools where video datasets are browsed.

:func:`to_fiftyone` (``vidcam export fiftyone``): a finished ``vidcam batch`` folder as a
FiftyOne dataset, one video sample per clip with per-frame heatmaps, predictions and metrics
(``pip install 'vidcam[fiftyone]'``). :func:`read_batch` reads a batch folder into typed
records. FiftyOne is imported only when an export runs.
"""

from __future__ import annotations

from vidcam.export.batch_reader import BatchRecords, ClipRecord, FailedRow, read_batch
from vidcam.export.fiftyone import ExportSummary, to_fiftyone

__all__ = ["BatchRecords", "ClipRecord", "ExportSummary", "FailedRow", "read_batch", "to_fiftyone"]
