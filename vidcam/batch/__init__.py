"""Whole datasets: ``vidcam batch`` / :func:`run` — resumable, failure-tolerant, local or Ray.

Per input video, under ``out_dir`` in a layout that mirrors the inputs
(:mod:`vidcam.batch.layout`): the annotated video, its JSON, the raw maps
(:mod:`vidcam.batch.maps_io`), the contact sheet, an HTML page and, with ``evaluate``, metrics;
run-level ``index.jsonl`` / ``summary.csv`` / ``index.html`` (:mod:`vidcam.batch.index`).
Modules: inputs + manifest (what to do), layout + state (where, and what is already done),
worker (one video), executor_local / executor_ray, run (the loop).
"""

from __future__ import annotations

from vidcam.batch.maps_io import RawMaps, load_maps, save_maps
from vidcam.batch.run import run

__all__ = ["RawMaps", "load_maps", "run", "save_maps"]
