"""The in-process executor: one model load, the videos one after another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vidcam.batch.options import BatchOptions
from vidcam.batch.worker import VideoWorker


def run_local(todo: list, options: BatchOptions, on_row: Callable[[dict[str, Any]], None]) -> None:
    """Process ``todo`` = [(item, outputs, fingerprint)] in order; ``on_row`` gets each row."""
    worker = VideoWorker(options)
    for item, out, fp in todo:
        on_row(worker.process(item, out, fp))
