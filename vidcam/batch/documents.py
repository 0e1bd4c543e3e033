"""A video's documents: the explanation JSON and the HTML page (with the run's settings).

:func:`write_explanation` writes ``NAME.json`` (the explanation, its input and segment);
:func:`page_settings` is what the page lists of the run's
:class:`~vidcam.video.options.ExplainOptions`; :func:`write_page` writes ``NAME.html``
(:mod:`vidcam.report`, imported lazily: without it the row has no ``report`` output).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from vidcam.batch.inputs import Item
from vidcam.batch.layout import Outputs
from vidcam.paths import write_text
from vidcam.video.options import ExplainOptions
from vidcam.video.results import VideoExplanation

#: the options the page lists when set (not None / False), after model, method and target
_SHOWN = ("layer", "clip_len", "stride", "spatial", "normalize", "softmax")


def write_explanation(
    out: Outputs, item: Item, result: VideoExplanation, model: str
) -> dict[str, Any]:
    """``NAME.json``: the explanation of ``item`` by ``model`` (its name); returns the doc."""
    result.model = model
    doc = result.to_json()
    doc["input"] = str(item.path)
    if item.start is not None or item.end is not None:
        doc["segment"] = {"start": item.start or 0.0, "end": item.end}
    write_text(out.path("json"), json.dumps(doc, indent=1))
    return doc


def page_settings(
    o: ExplainOptions, model: str, device: object, target: str | None
) -> dict[str, str]:
    """The settings the page shows: the model's name, the method, the target, the options
    of :data:`_SHOWN` that are set, the device."""
    s = {"model": model, "method": str(o.method), "target": str(target or "top1")}
    for k in _SHOWN:
        v = getattr(o, k)
        if v not in (None, False):
            s[k] = str(v)
    s["device"] = str(device)
    return s


_REPORT_MISSING = False


def write_page(
    out: Outputs,
    doc: dict[str, Any],
    item: Item,
    metrics: dict[str, float] | None,
    settings: dict[str, str],
) -> bool:
    """The per-video HTML page; False when :mod:`vidcam.report` is not installed."""
    global _REPORT_MISSING
    try:
        from vidcam.report import write_video_report
    except ModuleNotFoundError as exc:
        if exc.name not in ("vidcam.report",):
            raise
        if not _REPORT_MISSING:
            warnings.warn("vidcam.report is not available: no HTML pages written", stacklevel=2)
            _REPORT_MISSING = True
        return False
    write_video_report(
        out.path("report"),
        explanation=doc,
        video=out.path("video"),
        source=item.path,
        preview=out.path("preview"),
        settings=settings,
        metrics=metrics,
        overwrite=True,
    )
    return True
