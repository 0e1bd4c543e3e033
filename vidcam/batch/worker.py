"""One video, start to finish: explain, render, write every output, then the done marker.

:class:`VideoWorker` opens the model ONCE (:func:`~vidcam.models.open.open_model`) and passes
its :class:`~vidcam.models.handle.ModelHandle` to the pipeline for every video; both executors
use it (the Ray executor inside its actors). :meth:`VideoWorker.process` never raises for a bad
video: the failure becomes a ``failed`` row with its one-line error (signals and Ctrl-C still
stop). The steps live in their own modules: :mod:`~vidcam.batch.attempt` (refuse, start, undo),
:mod:`~vidcam.batch.scoring` (``--evaluate``), :mod:`~vidcam.batch.documents` (JSON, HTML page),
:mod:`~vidcam.batch.rows` (the index row); explaining, rendering and saving the maps are here.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch

from vidcam.batch.attempt import Attempt, check_regular, output_kinds
from vidcam.batch.documents import page_settings, write_explanation, write_page
from vidcam.batch.inputs import Item
from vidcam.batch.layout import Outputs
from vidcam.batch.maps_io import load_maps, save_maps
from vidcam.batch.options import BatchOptions
from vidcam.batch.rows import base_row, explained_fields, one_line
from vidcam.batch.scoring import Scoring
from vidcam.batch.segment import segment_clip
from vidcam.batch.state import write_done, write_failed
from vidcam.cam.methods import Method
from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.video import analyze, render_analysis
from vidcam.video.decode import time_limit
from vidcam.video.results import VideoAnalysis, VideoExplanation

__all__ = ["VideoWorker", "base_row", "one_line", "set_threads"]


class VideoWorker:
    """Holds the model; :meth:`process` turns one :class:`Item` into its outputs and row."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        e = options.explain
        self.handle = open_model(e.model, **e.model_keywords(), device=e.device, progress=False)
        self.kinds = output_kinds(options.evaluate)
        self.scoring = Scoring(self.handle, e) if options.evaluate else None

    def target_of(self, item: Item) -> str | None:
        t = item.target if item.target is not None else self.options.explain.target
        return None if t is None else str(t)

    def process(self, item: Item, out: Outputs, fp: str) -> dict[str, Any]:
        """Do ``item`` into ``out``; returns its ``done`` or ``failed`` row (``fp``: settings)."""
        started = time.perf_counter()
        row = base_row(item, self.target_of(item))
        attempt = Attempt(item, out, self.kinds, overwrite=self.options.overwrite)
        refused = attempt.refusal()
        if refused is not None:  # nothing is written, replaced or removed for this video
            row["error"] = refused
            return row
        attempt.clear_stale()
        try:
            check_regular(item.path)
        except VidcamError as exc:
            return _failed(row, exc, attempt, fp, started)
        attempt.start(fp)
        try:
            with time_limit(self.options.video_timeout):
                self._run(item, out, row)
        except Exception as exc:  # a bad video is a row, never the end of the run
            attempt.undo()
            return _failed(row, exc, attempt, fp, started)
        row["seconds"] = round(time.perf_counter() - started, 3)
        row["status"] = "done"
        write_done(out, row, fp, item.path)
        return row

    def _run(self, item: Item, out: Outputs, row: dict[str, Any]) -> None:
        """The steps of a video, in order; fills ``row``."""
        if self.scoring is not None:
            self.scoring.check_ground_truth(item)
        target, clip = row["target"], {}
        with warnings.catch_warnings(), segment_clip(item.path, item.start, item.end) as src:
            warnings.simplefilter("ignore")  # they are kept in the explanation's JSON
            result, panels = self._explain_and_render(src, item, out, target)
            if self.scoring is not None:
                clip = self.scoring.clip_scores(src, item, target, panels)
        doc = write_explanation(out, item, result, self.handle.name)
        written = {k: out.rel(k) for k in ("video", "json", "maps", "preview")}
        raw = load_maps(out.path("maps"))
        row.update(explained_fields(result, doc, raw))
        if self.scoring is not None:
            row["metrics"] = self.scoring.write(out, item, raw, row["top"], clip)
            written["metrics"] = out.rel("metrics")
        settings = page_settings(self.options.explain, self.handle.name, self.handle.device, target)
        if write_page(out, doc, item, row["metrics"], settings):
            written["report"] = out.rel("report")
        row["outputs"] = written

    def _explain_and_render(
        self, src: Path, item: Item, out: Outputs, target: str | None
    ) -> tuple[VideoExplanation, tuple[Method, ...]]:
        """Pass 1 with the model opened once, the annotated video and contact sheet, the raw
        maps; returns the explanation and the panels pass 1 rendered."""
        per_video = {} if target is None else {"target": target}
        o = self.options.explain.with_model(self.handle, progress=False, **per_video)
        with analyze(src, allow_partial=self.options.allow_partial, options=o) as analysis:
            result = render_analysis(
                analysis,
                out.path("video"),
                normalize=o.normalize,
                alpha=self.options.alpha,
                colormap=self.options.colormap,
                preview=out.path("preview"),
            )
            save_maps(out.path("maps"), analysis, meta=self._meta(item, analysis))
        return result, analysis.panels

    def _meta(self, item: Item, analysis: VideoAnalysis) -> dict[str, Any]:
        return {
            "input": str(item.path),
            "start": item.start or 0.0,
            "model": self.handle.name,
            "method": analysis.method.id,
            "layers": list(analysis.layers),
            "spatial": analysis.spatial,
            "fps": float(analysis.info.fps),
            # how the MP4 rendered the maps (the FiftyOne export renders them the same way)
            "normalize": str(self.options.explain.normalize),
            "colormap": self.options.colormap,
            "alpha": self.options.alpha,
        }


def _failed(
    row: dict[str, Any], exc: BaseException, attempt: Attempt, fp: str, started: float
) -> dict[str, Any]:
    row.update(status="failed", error=one_line(exc), outputs={})
    row["seconds"] = round(time.perf_counter() - started, 3)
    write_failed(attempt.out, row, fp, attempt.item.path, attempt.planned)
    return row


def set_threads(n: int) -> None:
    """CPU actors share the machine: ``n`` intra-op threads each."""
    torch.set_num_threads(max(1, n))
