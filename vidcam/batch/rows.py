"""A video's index row: its schema with nothing computed, the explained fields, a one-line error.

Every row of ``index.jsonl`` has the keys of :func:`base_row`; a ``done`` row fills the
explained ones from the explanation and its saved maps (:func:`explained_fields`), a ``failed``
row carries :func:`one_line` of its error.
"""

from __future__ import annotations

from typing import Any

from vidcam.batch.aggregates import centre_energy, temporal_profile, video_top
from vidcam.batch.inputs import Item
from vidcam.batch.maps_io import RawMaps
from vidcam.errors import VidcamError
from vidcam.video.results import VideoExplanation


def base_row(item: Item, target: str | None) -> dict[str, Any]:
    """A row of the index schema with nothing computed yet."""
    return {
        "key": item.key,
        "input": str(item.path),
        "status": "failed",
        "error": None,
        "label": item.label,
        "target": target,
        "outputs": {},
        "top": [],
        "frames": 0,
        "duration": 0.0,
        "seconds": 0.0,
        "temporal_profile": [],
        "centre_energy": None,
        "metrics": None,
    }


def explained_fields(result: VideoExplanation, doc: dict[str, Any], raw: RawMaps) -> dict[str, Any]:
    """The row's ``top``, ``frames``, ``duration`` (from the JSON ``doc``),
    ``temporal_profile`` and ``centre_energy`` (from the saved maps ``raw``)."""
    heat = raw.heat
    return {
        "top": video_top(result.windows, result.labels),
        "frames": result.frames,
        "duration": round(float(doc["duration"]), 6),
        "temporal_profile": temporal_profile(result.importance),
        "centre_energy": centre_energy(heat, raw.geometry, raw.model_crop)
        if heat is not None
        else None,
    }


def one_line(exc: BaseException) -> str:
    """A failed row's ``error``: the message on one line (other than a VidcamError: its type
    first)."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, VidcamError) else f"{type(exc).__name__}: {text}"
