"""Manifests: a CSV (header row) or JSONL file listing the videos of a batch.

Columns / keys: ``path`` (required; relative paths are relative to the manifest's folder) and
optional ``label`` (ground-truth class name), ``gt`` (ground-truth JSON path), ``target``
(``top1``, ``topk:K``, a class name or index), ``start`` / ``end`` (seconds). Every error names
the manifest and its line number.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vidcam.errors import VidcamError
from vidcam.paths import read_regular

MANIFEST_SUFFIXES = (".csv", ".jsonl")
MANIFEST_LIMIT = 256 << 20  # bytes
_KEYS = ("path", "label", "gt", "target", "start", "end")
#: JSON types of the optional fields (CSV cells are strings: always valid here)
_TYPES: dict[str, tuple[type, ...]] = {
    "label": (str, int),
    "gt": (str,),
    "target": (str, int),
    "start": (int, float, str),
    "end": (int, float, str),
}


@dataclass(frozen=True)
class Entry:
    """One listed video: absolute ``path`` and its optional per-clip settings."""

    path: Path
    label: str | None = None
    gt: Path | None = None
    target: str | None = None
    start: float | None = None
    end: float | None = None
    line: int = 0


def normalized(p: str | Path) -> Path:
    """``p`` absolute with ``.`` and ``..`` folded lexically (``ds/../victim/x.mp4`` ->
    ``victim/x.mp4``): keys and output names are built from it, so none climbs out."""
    return Path(os.path.normpath(Path(p).absolute()))


def is_manifest(p: Path) -> bool:
    return p.suffix.lower() in MANIFEST_SUFFIXES


def read_manifest(path: str | Path) -> list[Entry]:
    """Parse a ``.csv`` / ``.jsonl`` manifest into entries (in file order)."""
    p = Path(path)
    try:
        text = read_regular(p, MANIFEST_LIMIT).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VidcamError(f"manifest {str(p)!r}: cannot read it ({exc})") from None
    except VidcamError as exc:
        raise VidcamError(f"manifest {str(p)!r}: cannot read it ({exc})") from None
    rows = _csv_rows(p, text) if p.suffix.lower() == ".csv" else _jsonl_rows(p, text)
    return [_entry(p, line, row) for line, row in rows]


def _csv_rows(p: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    out = []
    for i, cells in enumerate(_cells(p, reader), start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            if "path" not in header:
                raise VidcamError(
                    f"{p}:{i}: the header has no 'path' column (got {', '.join(header)})"
                )
            continue
        if len(cells) > len(header):
            raise VidcamError(
                f"{p}:{i}: {len(cells)} cells but the header has {len(header)} columns"
            )
        out.append((i, {h: c for h, c in zip(header, cells, strict=False) if c.strip() != ""}))
    return out


def _cells(p: Path, reader) -> Iterator[list[str]]:
    """The CSV reader's rows; its errors (a field over csv.field_size_limit, a NUL) one line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise VidcamError(f"{p}:{reader.line_num}: not valid CSV ({exc})") from None


def _jsonl_rows(p: Path, text: str) -> list[tuple[int, dict]]:
    out = []
    for i, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise VidcamError(
                f"{p}:{i}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(row, dict):
            raise VidcamError(f"{p}:{i}: expected a JSON object with a 'path', got {raw[:40]!r}")
        out.append((i, {k: v for k, v in row.items() if v is not None}))
    return out


def _entry(p: Path, line: int, row: dict) -> Entry:
    where = f"{p}:{line}"
    unknown = sorted(set(row) - set(_KEYS))
    if unknown:
        raise VidcamError(
            f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(_KEYS)}"
        )
    if "path" not in row or not isinstance(row["path"], str) or not row["path"].strip():
        raise VidcamError(f"{where}: 'path' is missing, empty or not a string")
    for key, types in _TYPES.items():
        if key in row and (isinstance(row[key], bool) or not isinstance(row[key], types)):
            want = " or ".join(t.__name__ for t in types)
            raise VidcamError(f"{where}: {key} must be a {want}, got {row[key]!r:.40}")
    base = p.parent
    video = normalized(base / str(row["path"]).strip())
    gt = normalized(base / str(row["gt"]).strip()) if "gt" in row else None
    start, end = _seconds(where, row, "start"), _seconds(where, row, "end")
    if start is not None and end is not None and end <= start:
        raise VidcamError(f"{where}: end ({end:g} s) must be after start ({start:g} s)")
    return Entry(
        path=video,
        label=str(row["label"]) if "label" in row else None,
        gt=gt,
        target=str(row["target"]).strip() if "target" in row else None,
        start=start,
        end=end,
        line=line,
    )


def _seconds(where: str, row: dict, key: str) -> float | None:
    if key not in row:
        return None
    v = row[key]
    try:
        if isinstance(v, bool):
            raise ValueError
        s = float(v)
    except (TypeError, ValueError):
        raise VidcamError(f"{where}: {key} must be a number of seconds, got {v!r}") from None
    if not math.isfinite(s) or s < 0:
        raise VidcamError(f"{where}: {key} must be >= 0 seconds, got {v!r}")
    return s
