"""The run-level index: ``index.jsonl`` (rows streamed as videos finish; the latest row of a
key wins), ``summary.csv`` (the same rows flattened), ``classes.csv`` (per top-1 class: videos,
mean confidence, mean heat share in the centre crop, mean temporal profile, mean of every
metric) and ``index.html`` (:mod:`vidcam.report`).

Rows follow the shared schema (``key``, ``input``, ``status``, ``error``, ``label``,
``target``, ``outputs``, ``top``, ``frames``, ``duration``, ``seconds``, ``temporal_profile``,
``centre_energy``, ``metrics``). A streamed line is one ``write`` on an ``O_APPEND`` file
(fsynced); at the end the file is rewritten atomically, one row per input, in input order.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidcam.paths import open_regular, read_regular, write_text

LAYOUT_ROWS = ("key", "input", "status", "error", "label", "target")
OUTPUT_KINDS = ("video", "json", "maps", "preview", "report", "metrics")
HTML_EVERY_S = 30.0
INDEX_LIMIT = 1 << 30  # bytes of an index.jsonl read back


def read_index(path: str | Path) -> list[dict[str, Any]]:
    """Every row of an ``index.jsonl`` (a torn last line from a killed run is ignored)."""
    rows = []
    try:
        data = read_regular(path, INDEX_LIMIT)
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "key" in row:
            rows.append(row)
    return rows


def latest(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out[r["key"]] = dict(r)
    return out


class IndexWriter:
    """Streams rows into ``out_dir/index.jsonl`` and writes the run-level files."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / "index.jsonl"
        self._last_html = time.monotonic()

    def append(self, row: Mapping[str, Any]) -> None:
        line = (json.dumps(row, separators=(",", ":")) + "\n").encode()
        # never through a link (its target would get the rows) nor into a FIFO or device
        fd = open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a killed run left a torn line: start a fresh one
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def maybe_html(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Refresh ``index.html`` at most every :data:`HTML_EVERY_S` seconds."""
        if time.monotonic() - self._last_html >= HTML_EVERY_S:
            self.html(rows)

    def html(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        self._last_html = time.monotonic()
        try:
            from vidcam.report import write_batch_index
        except ModuleNotFoundError as exc:
            if exc.name != "vidcam.report":
                raise
            warnings.warn("vidcam.report is not available: no index.html written", stacklevel=2)
            return None
        return write_batch_index(self.out_dir, list(rows), overwrite=True)

    def finish(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """One row per input, in order: ``index.jsonl`` (atomic rewrite), ``summary.csv``,
        ``classes.csv``, ``index.html``."""
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        write_text(self.path, text)
        write_text(self.out_dir / "summary.csv", summary_csv(rows))
        write_text(self.out_dir / "classes.csv", classes_csv(rows))
        self.html(rows)


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """One CSV record: outputs.KIND, top_N_label / top_N_prob, profile_NN, metrics.NAME."""
    flat: dict[str, Any] = {k: row.get(k) for k in LAYOUT_ROWS}
    outputs = row.get("outputs") or {}
    for k in OUTPUT_KINDS:
        flat[f"outputs.{k}"] = outputs.get(k)
    for i in range(5):
        top = row.get("top") or []
        flat[f"top_{i + 1}_label"] = top[i]["label"] if i < len(top) else None
        flat[f"top_{i + 1}_prob"] = top[i]["prob"] if i < len(top) else None
    for k in ("frames", "duration", "seconds", "centre_energy"):
        flat[k] = row.get(k)
    for i, v in enumerate(row.get("temporal_profile") or []):
        flat[f"profile_{i:02d}"] = v
    for k, v in (row.get("metrics") or {}).items():
        flat[f"metrics.{k}"] = v
    return flat


def summary_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    return _csv([flatten(r) for r in rows])


def classes_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per-class aggregates of the done rows (:func:`vidcam.report.batch_page.class_summaries`)."""
    from vidcam.report.batch_page import class_summaries

    flat = []
    for c in class_summaries(rows):
        f: dict[str, Any] = {
            "class": c["label"],
            "videos": c["count"],
            "mean_prob": c["mean_prob"],
            "centre_energy": c["centre_energy"],
        }
        f |= {f"profile_{i:02d}": v for i, v in enumerate(c["profile"])}
        f |= {f"metrics.{k}": v for k, v in c["metrics"].items()}
        flat.append(f)
    return _csv(flat, first=["class", "videos", "mean_prob", "centre_energy"])


def _csv(flat: Sequence[Mapping[str, Any]], first: Sequence[str] = ()) -> str:
    columns: list[str] = list(first)
    for f in flat:
        columns.extend(c for c in f if c not in columns)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for f in flat:
        w.writerow({c: _cell(f.get(c)) for c in columns})
    return buf.getvalue()


#: a text cell starting with one of these is a formula to a spreadsheet (``=cmd|' /C calc'!A1``)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    """A CSV cell: None -> empty; text that a spreadsheet would run as a formula gets a
    leading ``'`` (numbers, negative ones included, stay numbers)."""
    if v is None:
        return ""
    if isinstance(v, str) and v.startswith(_FORMULA):
        return "'" + v
    return v
