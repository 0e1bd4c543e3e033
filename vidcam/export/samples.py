"""One batch clip -> one FiftyOne video sample: its fields, its frames, the App's colours.

Sample fields: ``vidcam_key`` (the batch key: the dataset's sample key), ``prediction``
(video-level top-1, :class:`fo.Classification`), ``ground_truth`` (the manifest's label),
``target``, ``model``, ``methods`` (the rendered panels' method ids), ``metrics`` (every ``--evaluate`` number, keys made field
names by :func:`field_name`), ``centre_energy``, ``segment_start``, and the links
``annotated_video``, ``report_page``, ``preview`` (absolute paths). Frame fields: one
:class:`fo.Heatmap` per heat method (``gradcam_pp``, ``layercam``, ...), ``prediction`` (the
top-1 of the window weighing most on the frame, as the MP4's caption) and ``importance``.

``fo`` (the ``fiftyone`` module) is passed in: this module never imports FiftyOne itself.
"""

from __future__ import annotations

import mimetypes
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidcam.batch.maps_io import RawMaps, load_maps
from vidcam.errors import VidcamError
from vidcam.export.batch_reader import ClipRecord
from vidcam.export.heatmaps import frame_heatmaps, heat_ids
from vidcam.video.decode import probe
from vidcam.video.render import colormap_lut
from vidcam.video.threads import torch_threads

#: uint8 heat levels 0..255 (FiftyOne draws nothing where a heatmap is 0)
HEAT_RANGE = [0, 255]


def field_name(text: str) -> str:
    """A FiftyOne field name for a method id or metric key: ``gradcam++`` -> ``gradcam_pp``,
    ``gradcam++.remove_20_road`` -> ``gradcam_pp__remove_20_road``."""
    s = text.replace("++", "_pp").replace("+", "_p").replace(".", "__")
    s = re.sub(r"[^0-9A-Za-z_]", "_", s)
    return s if s and not s[0].isdigit() else f"m_{s}"


@dataclass
class PreparedClip:
    """Everything one sample needs, computed before the database is touched: sample
    ``fields``, ``frames`` {frame number: {field: value}} (heatmaps as map paths or arrays),
    and the heat fields {field: method id}."""

    clip: ClipRecord
    metadata: dict[str, Any]
    fields: dict[str, Any]
    frames: dict[int, dict[str, Any]] = field(default_factory=dict)
    heat: dict[str, str] = field(default_factory=dict)
    skipped_panels: list[str] = field(default_factory=list)


def prepare_clip(
    clip: ClipRecord,
    *,
    normalize: str,
    max_side: int,
    maps_dir: Path | None,
) -> PreparedClip:
    """Read the clip's maps and compute every frame's heat: PNG files under ``maps_dir``
    (``FIELD/NNNNNN.png``, frame numbers 1-based as FiftyOne's) or, without it, arrays."""
    raw = load_clip_maps(clip)
    info = probe(clip.source)
    metadata = {
        "size_bytes": clip.source.stat().st_size,
        "mime_type": mimetypes.guess_type(clip.source.name)[0] or "video/mp4",
        "frame_width": info.width,
        "frame_height": info.height,
        "frame_rate": float(info.fps),
        "total_frame_count": info.frames,
        "duration": float(info.duration),
    }
    ids = heat_ids(raw)
    prepared = PreparedClip(
        clip,
        metadata,
        sample_fields(clip) | {"methods": list(raw.panels)},
        heat={field_name(i): i for i in ids},
        skipped_panels=[k for k in raw.panels if k not in ids],
    )
    offset = int(np.ceil(clip.start * clip.fps - 1e-6)) if clip.start else 0
    if maps_dir is not None:
        for f in prepared.heat:
            (maps_dir / f).mkdir(parents=True, exist_ok=True)
    with torch_threads(1):  # one frame's small maps: torch's thread team only costs here
        heats = list(frame_heatmaps(raw, normalize=normalize, max_side=max_side))
    for fh in heats:
        number = offset + fh.index + 1
        top = clip.windows[fh.window] if 0 <= fh.window < len(clip.windows) else None
        frame: dict[str, Any] = {"importance": fh.importance, "prediction": top}
        for f, method in prepared.heat.items():
            frame[f] = _heat_value(fh.maps[method], maps_dir, f, number)
        prepared.frames[number] = frame
    return prepared


def load_clip_maps(clip: ClipRecord) -> RawMaps:
    """The clip's ``NAME.maps.npz`` (a one-line :class:`VidcamError` when it is damaged)."""
    try:
        return load_maps(clip.files["maps"])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged compressed members
        raise VidcamError(
            f"batch row {clip.key!r}: {clip.files['maps'].name} is damaged ({exc}); "
            "rerun vidcam batch on this folder to redo it"
        ) from None


def check_clip(clip: ClipRecord) -> None:
    """What :func:`prepare_clip` reads can be read: the maps file and the source video."""
    load_clip_maps(clip)
    probe(clip.source)


def _heat_value(level: np.ndarray, maps_dir: Path | None, f: str, number: int) -> Any:
    if maps_dir is None:
        return level
    p = maps_dir / f / f"{number:06d}.png"
    if not cv2.imwrite(str(p), level):
        raise VidcamError(f"cannot write heatmap image {str(p)!r}; is the folder writable?")
    return p


def sample_fields(clip: ClipRecord) -> dict[str, Any]:
    """The sample-level values (labels as (label, prob) pairs; see the module docstring)."""
    links = {"video": "annotated_video", "report": "report_page", "preview": "preview"}
    return {
        "vidcam_key": clip.key,
        "prediction": clip.top[0] if clip.top else None,
        "ground_truth": clip.label,
        "target": clip.target,
        "model": clip.model,
        "metrics": {field_name(k): v for k, v in clip.metrics.items()} or None,
        "centre_energy": clip.centre_energy,
        "segment_start": clip.start,
    } | {name: str(clip.files[k]) if k in clip.files else None for k, name in links.items()}


def to_sample(fo: Any, p: PreparedClip) -> Any:
    """A new ``fo.Sample`` (with frames) from a prepared clip."""
    sample = fo.Sample(filepath=str(p.clip.source))
    fill_sample(fo, sample, p)
    return sample


def fill_sample(fo: Any, sample: Any, p: PreparedClip) -> None:
    """Set ``sample``'s fields and frames from ``p`` (its old frames must be cleared first)."""
    sample.metadata = fo.VideoMetadata(**p.metadata)
    for k, v in p.fields.items():
        if v is not None or sample.has_field(k):  # no type can be inferred from None
            sample[k] = _fo_value(fo, k, v)
    for number, values in p.frames.items():
        sample.frames[number] = fo.Frame(**dict(_frame_values(fo, values)))


def _fo_value(fo: Any, name: str, v: Any) -> Any:
    if name == "prediction" and v is not None:
        return fo.Classification(label=v.label, confidence=v.prob)
    if name == "ground_truth" and v is not None:
        return fo.Classification(label=v)
    if name == "metrics" and v is not None:
        return fo.DynamicEmbeddedDocument(**v)
    return v


def _frame_values(fo: Any, values: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for k, v in values.items():
        if k == "prediction":
            yield k, None if v is None else fo.Classification(label=v.label, confidence=v.prob)
        elif isinstance(v, Path):
            yield k, fo.Heatmap(map_path=str(v), range=HEAT_RANGE)
        elif isinstance(v, np.ndarray):
            yield k, fo.Heatmap(map=v, range=HEAT_RANGE)
        else:
            yield k, v


def color_scheme(fo: Any, heat_fields: list[str], colormap: str, alpha: float) -> Any:
    """The App's colours: every heat field in ``colormap``'s exact 256 colours (level i of a
    heatmap is the MP4's colour for heat i/255), coloured by value, at the MP4's ``alpha``."""
    lut = colormap_lut(colormap)
    scale = [
        {"value": i / 255.0, "color": f"rgb({r}, {g}, {b})"} for i, (r, g, b) in enumerate(lut)
    ]
    scale[-1]["value"] = 1.0
    return fo.ColorScheme(
        color_by="value",
        opacity=float(alpha),
        colorscales=[{"path": f"frames.{f}", "list": scale} for f in heat_fields],
    )
