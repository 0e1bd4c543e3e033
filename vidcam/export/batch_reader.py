"""A finished ``vidcam batch`` output folder read back as typed records (no maps decoded).

:func:`read_batch` checks, before anything is exported, that the folder is a batch output
(``index.jsonl``), that the batch is not running (its run-level files are written last, see
:mod:`vidcam.batch.index`, and agree), and that every done row still has its files (``NAME.json``,
``NAME.maps.npz``, the done marker, inside the folder, with the sizes the marker recorded).
Each done row becomes a :class:`ClipRecord` (what its ``NAME.json`` and index row say); each
failed row a :class:`FailedRow`.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from vidcam.batch.index import latest, read_index
from vidcam.batch.layout import SUFFIXES, Outputs
from vidcam.errors import VidcamError

#: the outputs a done row needs for an export (the others are linked when present)
NEEDED = ("json", "maps")
#: rendering settings read from a maps file's meta when the batch recorded them
RENDER = ("normalize", "colormap", "alpha")


@dataclass(frozen=True)
class Prediction:
    """One class and its probability."""

    label: str
    prob: float


@dataclass(frozen=True)
class ClipRecord:
    """One explained video of the batch.

    Attributes:
        key: the batch key (unique in the batch; the dataset's sample key).
        source: the input video (the sample's media).
        label: the manifest's ground-truth label (None without one).
        target: what was explained ("top1" or a class).
        top: the video-level top-k (mean probability over windows), best first.
        windows: each window's top-1, in window order (``NAME.json``).
        frames, width, height, fps, duration: of the explained video (a segment's own).
        start: a manifest segment's start in the source (s; 0.0 for a whole video).
        metrics: the ``--evaluate`` numbers (flat keys as in ``NAME.metrics.json``).
        centre_energy: the row's heat share in the centre crop (None for guided-only runs).
        files: output kind -> absolute path (``maps``, ``json``; ``video``, ``report``,
            ``preview``, ``metrics`` when written).
        model, method: what explained it.
        render: the batch's ``normalize`` / ``colormap`` / ``alpha`` when its maps record them.
    """

    key: str
    source: Path
    label: str | None
    target: str | None
    top: tuple[Prediction, ...]
    windows: tuple[Prediction, ...]
    frames: int
    width: int
    height: int
    fps: float
    duration: float
    start: float
    metrics: dict[str, float] = field(default_factory=dict)
    centre_energy: float | None = None
    files: dict[str, Path] = field(default_factory=dict)
    model: str = ""
    method: str = ""
    render: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FailedRow:
    """A video the batch could not explain, with its one-line error."""

    key: str
    source: str
    error: str


@dataclass(frozen=True)
class BatchRecords:
    """A finished batch: its folder, its explained clips and its failed rows (input order)."""

    folder: Path
    clips: tuple[ClipRecord, ...]
    failed: tuple[FailedRow, ...]


def read_batch(batch_dir: str | Path) -> BatchRecords:
    """Read a finished batch output folder (see the module docstring); a
    :class:`VidcamError` naming the folder, row or file for anything that cannot be exported."""
    folder = _folder(batch_dir)
    rows = latest(read_index(folder / "index.jsonl"))
    if not rows:
        raise VidcamError(
            f"batch folder {str(batch_dir)!r}: index.jsonl has no rows; run vidcam batch again"
        )
    clips, failed = [], []
    for key, row in rows.items():
        if row.get("status") in ("done", "skipped"):
            clips.append(_clip(folder, key, row))
        else:
            failed.append(FailedRow(key, str(row.get("input")), str(row.get("error"))))
    return BatchRecords(folder, tuple(clips), tuple(failed))


def _folder(batch_dir: str | Path) -> Path:
    folder = Path(batch_dir).absolute()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise VidcamError(f"batch folder {str(batch_dir)!r} {what}; give a vidcam batch output")
    index = folder / "index.jsonl"
    if not index.is_file():
        raise VidcamError(
            f"batch folder {str(batch_dir)!r} is not a vidcam batch output (no index.jsonl); "
            f"run vidcam batch INPUTS -o {batch_dir} first"
        )
    if _running(folder, index):
        raise VidcamError(
            f"batch folder {str(batch_dir)!r}: the batch is still running (or was killed "
            "before it finished): wait for it to end, or rerun the same vidcam batch command"
        )
    return folder


def _running(folder: Path, index: Path) -> bool:
    """A finished batch rewrites ``index.jsonl`` with one row per input, then writes
    ``summary.csv`` with the same rows. While a batch runs, ``summary.csv`` is missing (a first
    run) or ``index.jsonl`` has rows appended to the last finished state (repeated keys, or more
    rows than the summary). By content, not file times: a copied folder is still finished."""
    summary = folder / "summary.csv"
    if not summary.is_file():
        return True
    keys = [r["key"] for r in read_index(index)]
    if len(keys) != len(set(keys)):
        return True
    try:
        with open(summary, newline="", encoding="utf-8") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1  # minus the header
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VidcamError(
            f"batch folder {str(folder)!r}: summary.csv cannot be read ({exc}); rerun vidcam batch"
        ) from None
    return rows != len(keys)


def _clip(folder: Path, key: str, row: dict[str, Any]) -> ClipRecord:
    outputs = row.get("outputs")
    if not isinstance(outputs, dict):
        raise _row_error(key, "has no outputs")
    files = {k: _inside(folder, key, k, v) for k, v in outputs.items() if k in SUFFIXES}
    for kind in NEEDED:
        if kind not in files:
            raise _row_error(key, f"has no {kind} output")
    _check_done_marker(folder, key, files)
    doc = _read_json(files["json"], key)
    windows = tuple(_prediction(w.get("top", [None])[0], key, "json") for w in _list(doc, key))
    if not windows:
        raise _row_error(key, f"{files['json'].name} has no windows")
    segment = doc.get("segment") if isinstance(doc.get("segment"), dict) else {}
    return ClipRecord(
        key=key,
        source=Path(str(row.get("input") or doc.get("input"))),
        label=None if row.get("label") is None else str(row["label"]),
        target=None if row.get("target") is None else str(row["target"]),
        top=tuple(_prediction(t, key, "index") for t in row.get("top") or []),
        windows=windows,
        frames=_number(doc, "frames", key, int),
        width=_number(doc, "width", key, int),
        height=_number(doc, "height", key, int),
        fps=_number(doc, "fps", key, float),
        duration=_number(doc, "duration", key, float),
        start=float(segment.get("start") or 0.0),
        metrics=_metrics(row.get("metrics"), key),
        centre_energy=_optional_float(row.get("centre_energy")),
        files=files,
        model=str(doc.get("model", "")),
        method=str(doc.get("method", "")),
        render=_render(files["maps"], key),
    )


def _render(maps: Path, key: str) -> dict[str, Any]:
    """The rendering settings a maps file's ``meta`` records (batches that record them)."""
    try:
        with np.load(maps, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise _row_error(key, f"{maps.name} cannot be read: {exc}") from None
    if not isinstance(meta, dict):
        raise _row_error(key, f"{maps.name} has no meta object")
    return {k: meta[k] for k in RENDER if meta.get(k) is not None}


def _inside(folder: Path, key: str, kind: str, rel: object) -> Path:
    """An output path of a row, which must name a file inside the batch folder."""
    if not isinstance(rel, str) or PurePosixPath(rel).is_absolute() or ".." in rel.split("/"):
        raise _row_error(key, f"output {kind!r} {rel!r} is not a path inside the batch folder")
    p = folder / rel
    if not p.resolve().is_relative_to(folder.resolve()):
        raise _row_error(key, f"output {kind!r} {rel!r} leads outside the batch folder")
    if not p.is_file():
        raise _row_error(
            key, f"{kind} file {rel!r} is missing; rerun vidcam batch on this folder to redo it"
        )
    return p


def _check_done_marker(folder: Path, key: str, files: dict[str, Path]) -> None:
    """The row's done marker exists and records the sizes the needed files still have."""
    rel = files["maps"].relative_to(folder).as_posix()
    base = rel[: -len(SUFFIXES["maps"])]
    marker = Outputs(folder, base).path("done")
    doc = _read_json(marker, key) if marker.is_file() else None
    if doc is None:
        raise _row_error(key, f"{marker.name} is missing: the video was not finished")
    recorded = doc.get("outputs") if isinstance(doc.get("outputs"), dict) else {}
    for kind in NEEDED:
        entry = recorded.get(kind)
        size = entry.get("size") if isinstance(entry, dict) else None
        if size != files[kind].stat().st_size:
            raise _row_error(
                key,
                f"{files[kind].name} changed since the batch wrote it; rerun vidcam batch",
            )


def _read_json(p: Path, key: str) -> dict[str, Any]:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _row_error(key, f"{p.name} cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise _row_error(key, f"{p.name} is not a JSON object")
    return doc


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    windows = doc.get("windows")
    if not isinstance(windows, list) or not all(isinstance(w, dict) for w in windows):
        raise _row_error(key, "its JSON field 'windows' is not a list of objects")
    return windows


def _prediction(t: object, key: str, where: str) -> Prediction:
    if not isinstance(t, dict) or "label" not in t or "prob" not in t:
        raise _row_error(key, f"a prediction in its {where} is not {{label, prob}}")
    prob = _optional_float(t["prob"])
    if prob is None:
        raise _row_error(key, f"a probability in its {where} is not a number")
    return Prediction(str(t["label"]), prob)


def _number(doc: dict[str, Any], name: str, key: str, kind: type) -> Any:
    v = doc.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise _row_error(key, f"its JSON field {name!r} is not a number >= 0 ({v!r})")
    return kind(v)


def _metrics(m: object, key: str) -> dict[str, float]:
    if m is None:
        return {}
    if not isinstance(m, dict):
        raise _row_error(key, "its metrics are not an object")
    out = {}
    for k, v in m.items():
        f = _optional_float(v)
        if f is None:
            raise _row_error(key, f"metric {k!r} is not a number ({v!r})")
        out[str(k)] = f
    return out


def _optional_float(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _row_error(key: str, what: str) -> VidcamError:
    return VidcamError(f"batch row {key!r} {what}")
