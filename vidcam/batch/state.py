"""Per-video state files: ``NAME.done.json`` (written LAST, after every output) and
``NAME.failed.json``.

A done marker holds the settings fingerprint, the input's size and mtime, and the size and
sha256 of every output; :func:`verified_row` re-checks all of it, so a rerun skips only
videos whose outputs are complete and unchanged. Anything else (no marker, a missing or
changed output, other settings, a changed input) means: do the video again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vidcam.batch.layout import Outputs
from vidcam.errors import VidcamError
from vidcam.paths import open_regular, read_regular, write_text

DONE_FORMAT = "vidcam-batch-done/1"
FAILED_FORMAT = "vidcam-batch-failed/1"
STATE_LIMIT = 64 << 20  # bytes of a state file read back


def fingerprint(settings: dict[str, Any]) -> str:
    """A stable hash of everything that changes a video's outputs."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_stat(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256(path: Path) -> str:
    """The file's sha256 (a link, a FIFO or a device: :class:`VidcamError`, never followed)."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_done(o: Outputs, row: dict[str, Any], fp: str, src: Path) -> None:
    o.check_inside()
    files = {
        kind: {
            "path": rel,
            "size": (o.out_dir / rel).stat().st_size,
            "sha256": sha256(o.out_dir / rel),
        }
        for kind, rel in row["outputs"].items()
    }
    doc = {
        "format": DONE_FORMAT,
        "fingerprint": fp,
        "input": input_stat(src),
        "outputs": files,
        "row": row,
    }
    o.path("failed").unlink(missing_ok=True)
    write_text(o.path("done"), json.dumps(doc, indent=1))


def write_started(o: Outputs, fp: str, src: Path, planned: list[str]) -> None:
    """Before any output is written: the failed marker in state ``started``, listing the
    ``planned`` output names, so a run killed half-way leaves a record that vidcam wrote
    them (a rerun may replace them without ``--overwrite``); the done marker goes."""
    o.check_inside()
    doc = {
        "format": FAILED_FORMAT,
        "status": "started",
        "fingerprint": fp,
        "input": input_stat(src),
        "outputs": planned,
        "row": None,
    }
    o.path("done").unlink(missing_ok=True)
    o.folder.mkdir(parents=True, exist_ok=True)
    write_text(o.path("failed"), json.dumps(doc, indent=1))


def written_before(o: Outputs) -> set[str]:
    """Output names (relative to ``out_dir``) that an earlier run of this video wrote, from
    its done marker (outputs) and its failed / started marker (planned outputs)."""
    names: set[str] = set()
    done = _read(o.path("done"), DONE_FORMAT)
    files = done.get("outputs") if done else None
    if isinstance(files, dict):  # {kind: {"path": ...}}; a bare name counts too
        for f in files.values():
            name = f.get("path") if isinstance(f, dict) else f
            if _is_str(name):
                names.add(name)
    failed = _read(o.path("failed"), FAILED_FORMAT)
    planned = failed.get("outputs") if failed else None
    if isinstance(planned, list):
        names |= {x for x in planned if _is_str(x)}
    return names


def own_state(o: Outputs) -> set[str]:
    """The state files of ``o`` that are vidcam's own (parse as its formats)."""
    own = set()
    for kind, fmt in (("done", DONE_FORMAT), ("failed", FAILED_FORMAT)):
        if _read(o.path(kind), fmt) is not None:
            own.add(o.rel(kind))
    return own


def _is_str(x: object) -> bool:
    return isinstance(x, str)


def write_failed(
    o: Outputs, row: dict[str, Any], fp: str, src: Path, planned: list[str] | None = None
) -> None:
    """The failure marker; nothing is written or removed when a state file would land
    outside the output folder (:meth:`Outputs.outside`: the row alone reports it).
    ``planned``: output names this attempt may have left (recorded as vidcam's)."""
    if o.outside() is not None:
        return
    doc = {"format": FAILED_FORMAT, "fingerprint": fp, "input": input_stat(src), "row": row}
    if planned:
        doc["outputs"] = planned
    o.path("done").unlink(missing_ok=True)
    o.folder.mkdir(parents=True, exist_ok=True)
    write_text(o.path("failed"), json.dumps(doc, indent=1))


def _read(p: Path, fmt: str) -> dict[str, Any] | None:
    """A state file of format ``fmt``, else None (absent, a link, a FIFO, over the size limit,
    not JSON, another format): never followed through a link, never blocking."""
    try:
        doc = json.loads(read_regular(p, STATE_LIMIT).decode("utf-8"))
    except (OSError, ValueError, VidcamError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == fmt else None


def verified_row(o: Outputs, fp: str, src: Path) -> dict[str, Any] | None:
    """The row of a complete, valid earlier run of this video, else None."""
    if o.outside() is not None:
        return None
    doc = _read(o.path("done"), DONE_FORMAT)
    if doc is None or doc.get("fingerprint") != fp or doc.get("input") != input_stat(src):
        return None
    row = doc.get("row")
    files = doc.get("outputs")
    if (
        not valid_row(row, "done")
        or not isinstance(files, dict)
        or files.keys() != row["outputs"].keys()
    ):
        return None
    for kind, f in files.items():
        try:  # a hand-edited marker of the wrong shape means: do the video again
            if not isinstance(f, dict) or f.get("path") != o.rel(kind):
                return None  # only this video's own output names, never another path
            p = o.out_dir / f["path"]
            if not p.is_file() or p.stat().st_size != f["size"] or sha256(p) != f["sha256"]:
                return None
        except (OSError, VidcamError, KeyError, TypeError):
            return None
    return row


def failed_row(o: Outputs, fp: str, src: Path) -> dict[str, Any] | None:
    """The row of an earlier failure of this video with the same settings and input, else None."""
    if o.outside() is not None:
        return None
    doc = _read(o.path("failed"), FAILED_FORMAT)
    if doc is None or doc.get("fingerprint") != fp or doc.get("input") != input_stat(src):
        return None
    row = doc.get("row")
    return row if valid_row(row, "failed") else None


#: the index row schema: key -> accepted JSON types (a hand-edited state file of another
#: shape is not trusted: the video is done again)
_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "input": (str,),
    "status": (str,),
    "error": (str, type(None)),
    "label": (str, type(None)),
    "target": (str, type(None)),
    "outputs": (dict,),
    "top": (list,),
    "frames": (int,),
    "duration": (int, float),
    "seconds": (int, float),
    "temporal_profile": (list,),
    "centre_energy": (int, float, type(None)),
    "metrics": (dict, type(None)),
}


def valid_row(row: object, status: str) -> bool:
    """``row`` has the index schema (every key, the right JSON types, string outputs, top
    entries with label / prob) and the given ``status``."""
    if not isinstance(row, dict) or row.get("status") != status or set(row) != set(_ROW_TYPES):
        return False
    for key, types in _ROW_TYPES.items():
        if isinstance(row[key], bool) or not isinstance(row[key], types):
            return False
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in row["outputs"].items()):
        return False
    top_ok = all(
        isinstance(t, dict)
        and isinstance(t.get("label"), str)
        and isinstance(t.get("prob"), (int, float))
        for t in row["top"]
    )
    profile_ok = all(isinstance(v, (int, float)) for v in row["temporal_profile"])
    return top_ok and profile_ok and (status == "done") == (row["error"] is None)
