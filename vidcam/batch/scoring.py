"""``--evaluate`` for one video: the ground truth checked before any work, then the scores.

:class:`Scoring` holds the model and the run's options; :meth:`Scoring.clip_scores` runs
``vidcam evaluate``'s per-clip metrics for exactly the panels pass 1 rendered (a guided panel:
its CAM), :meth:`Scoring.write` adds the whole video's map metrics and writes
``NAME.metrics.json`` (the numbers: :mod:`vidcam.batch.evaluate`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidcam.batch.attempt import check_regular
from vidcam.batch.inputs import Item
from vidcam.batch.layout import Outputs
from vidcam.batch.maps_io import RawMaps
from vidcam.cam.methods import Method
from vidcam.models.handle import ModelHandle
from vidcam.paths import write_text
from vidcam.video.options import ExplainOptions


def scored_methods(panels: Sequence[Method]) -> list[str]:
    """The engine methods that score ``panels`` (a guided panel: its CAM), each once, in order."""
    return list(dict.fromkeys(p.base.id for p in panels))


class Scoring:
    """The per-video metrics of a run with ``--evaluate``."""

    def __init__(self, handle: ModelHandle, explain: ExplainOptions) -> None:
        self.handle, self.explain = handle, explain

    @staticmethod
    def check_ground_truth(item: Item) -> None:
        """A bad ground truth (.json or .npz) fails the row before any work; a segment's is
        not used (its frames no longer match the ground truth's indices)."""
        if item.gt is not None and not item.start:
            from vidcam.evaluate.gt import read_file_gt

            check_regular(item.gt, "ground truth")  # a FIFO would block the batch
            read_file_gt(Path(item.gt))

    def clip_scores(
        self, src: Path, item: Item, target: str | None, panels: Sequence[Method]
    ) -> dict[str, float]:
        """``vidcam evaluate``'s per-clip scores of ``panels`` (:func:`scored_methods`)."""
        from vidcam.batch.evaluate import clip_metrics

        e = self.explain
        return clip_metrics(
            self.handle,
            src,
            scored_methods(panels),
            target=target,
            gt=item.gt if not item.start else None,
            engine={"softmax": True} if e.softmax else {},
            batch=max(4, e.batch_size or 1),
        )

    @staticmethod
    def write(
        out: Outputs, item: Item, raw: RawMaps, top: list[dict], clip: dict[str, float]
    ) -> dict[str, Any]:
        """The row's ``metrics``: the map metrics of ``raw`` and the per-clip ``clip`` scores,
        also written to ``NAME.metrics.json``."""
        from vidcam.batch.evaluate import map_metrics

        metrics = map_metrics(raw, top, item.label) | clip
        write_text(out.path("metrics"), json.dumps({"key": item.key, "metrics": metrics}, indent=1))
        return metrics
