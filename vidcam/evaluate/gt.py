"""Ground truth for ``vidcam evaluate``: what it reads, checked field by field, size-limited.

Formats (see ``docs/evaluate_ground_truth.md``):

- **vidcam JSON** (``<stem>.json``, written by :mod:`vidcam.evaluate.synth`): ``label``,
  ``interval`` [t0, t1) in frames, ``boxes`` (per frame a list of [x0, y0, x1, y1]), optional
  ``width`` / ``height`` (the pixel grid the boxes were drawn on; default the video's);
- **per-frame masks** (``<stem>.npz``): one bool or uint8 (F, H, W) array, optional ``label``
  (a string) and ``interval`` (2 integers); only the frames a clip samples are read
  (:mod:`vidcam.evaluate.gt_masks`);
- **action-detection annotation pickles** (UCF101-24's ``pyannot.pkl``, ACT's
  ``JHMDB-GT.pkl`` / ``UCF101v2-GT.pkl``), read by a restricted unpickler and matched to the
  videos by file name (:mod:`vidcam.evaluate.gt_pickle`).

Every file is checked before it is read: a regular file (a FIFO or a device is refused without
blocking) no larger than its limit. Every error is one line naming the file and the field.
"""

from __future__ import annotations

import json
import math
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidcam.errors import VidcamError
from vidcam.paths import read_limited

#: largest ground-truth JSON read (a 100 000-frame video with 5 boxes a frame is ~12 MiB)
MAX_JSON_BYTES = 16 * 2**20
#: most boxes (instances) in one frame, and most frames, of any ground truth
MAX_BOXES_PER_FRAME = 1000
MAX_FRAMES = 10**7
#: coordinates and sizes are at most this large (pixels)
MAX_COORD = 1e6
#: suffixes of per-video ground-truth files, in lookup order, and of annotation pickles
PER_VIDEO_SUFFIXES = (".json", ".npz")
PICKLE_SUFFIXES = (".pkl", ".pickle")

Box = tuple[float, float, float, float]


@dataclass
class GroundTruth:
    """One video's ground truth on its source frames (0-based frame indices).

    ``label``: class name or None; ``interval``: (t0, t1) half-open, or None (the frames that
    hold a region); ``boxes[f]``: frame f's boxes (x0, y0, x1, y1) in annotation pixels (None
    for a mask file); ``masks(frames)`` -> (len(frames), H, W) bool for a mask file; ``size``:
    (height, width) of the annotation grid, None = the video's own; ``origin``: for messages.
    """

    label: str | None
    interval: tuple[int, int] | None
    boxes: list[list[Box]] | None = None
    masks: Callable[[Sequence[int]], np.ndarray] | None = field(default=None, repr=False)
    size: tuple[float, float] | None = None
    origin: str = ""


# -- files --------------------------------------------------------------------------------------


def check_regular(path: str | Path, what: str = "ground truth") -> Path:
    """``path`` is an existing regular file (not a FIFO, device or folder)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise VidcamError(f"{what} {str(p)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise VidcamError(
            f"{what} {str(p)!r} is not a regular file (a folder, FIFO or device); give a file"
        )
    return p


# -- the vidcam JSON ----------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Schema:
    """Field checks that raise one line naming the file and the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, name: str, want: str, value: Any) -> VidcamError:
        return VidcamError(
            f"ground truth {self.where}: field {name!r} must be {want}, got {_show(value)}"
        )

    def integer(self, name: str, v: Any, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise self.fail(name, f"an integer in [{lo}, {hi}]", v)
        return int(v)

    def number(self, name: str, v: Any, *, positive: bool = False) -> float:
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if ok:
            f = float(v)
            ok = math.isfinite(f) and abs(f) <= MAX_COORD and (f > 0 or not positive)
        if not ok:
            kind = "a positive" if positive else "a"
            raise self.fail(name, f"{kind} finite number of at most {MAX_COORD:g}", v)
        return float(v)

    def interval(self, name: str, v: Any) -> tuple[int, int]:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise self.fail(name, "[t0, t1] (first frame, one past the last)", v)
        t0 = self.integer(f"{name}[0]", v[0], 0, MAX_FRAMES)
        t1 = self.integer(f"{name}[1]", v[1], t0, MAX_FRAMES)
        return t0, t1

    def box(self, name: str, v: Any) -> Box:
        if not isinstance(v, (list, tuple)) or len(v) != 4:
            raise self.fail(name, "[x0, y0, x1, y1] (4 numbers)", v)
        x0, y0, x1, y1 = (self.number(f"{name}[{i}]", c) for i, c in enumerate(v))
        if x1 < x0 or y1 < y0:
            raise self.fail(name, "[x0, y0, x1, y1] with x1 >= x0 and y1 >= y0", v)
        return x0, y0, x1, y1

    def frames(self, name: str, v: Any) -> list[list[Box]]:
        if not isinstance(v, list) or len(v) > MAX_FRAMES:
            raise self.fail(name, f"a list of at most {MAX_FRAMES} per-frame box lists", v)
        out = []
        for f, frame in enumerate(v):
            if not isinstance(frame, list) or len(frame) > MAX_BOXES_PER_FRAME:
                raise self.fail(
                    f"{name}[{f}]", f"a list of at most {MAX_BOXES_PER_FRAME} boxes", frame
                )
            out.append([self.box(f"{name}[{f}][{i}]", b) for i, b in enumerate(frame)])
        return out

    def label(self, name: str, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int)) or not 0 < len(str(v)) <= 1000:
            raise self.fail(name, "a class name (a string)", v)
        return str(v)


def parse_json(data: bytes, where: str) -> Any:
    """JSON text -> Python objects; every failure (bad UTF-8, syntax, nesting) is one line."""
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise VidcamError(f"{where} is nested too deeply to be ground truth") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise VidcamError(f"{where} is not readable JSON: {str(exc).splitlines()[0]}") from None


def check_json_gt(doc: Any, where: str) -> tuple[dict[str, Any], GroundTruth]:
    """Check a parsed vidcam ground-truth JSON; returns it and its :class:`GroundTruth`."""
    s = _Schema(where)
    if not isinstance(doc, dict):
        raise VidcamError(f"ground truth {where} must be a JSON object, not {type(doc).__name__}")
    for key in ("label", "interval", "boxes"):
        if key not in doc:
            raise VidcamError(f"ground truth {where} lacks the field {key!r}")
    label = s.label("label", doc["label"])
    interval = s.interval("interval", doc["interval"])
    boxes = s.frames("boxes", doc["boxes"])
    w = s.number("width", doc["width"], positive=True) if "width" in doc else None
    h = s.number("height", doc["height"], positive=True) if "height" in doc else None
    if (w is None) != (h is None):
        raise VidcamError(f"ground truth {where}: give both 'width' and 'height', or neither")
    size = (h, w) if w is not None and h is not None else None
    return doc, GroundTruth(label, interval, boxes, size=size, origin=where)


def load_gt(path: str | Path) -> dict[str, Any]:
    """Read and check a ground-truth JSON file; returns the parsed object."""
    return read_json_gt(path)[0]


def read_json_gt(path: str | Path) -> tuple[dict[str, Any], GroundTruth]:
    """Read a vidcam ground-truth JSON (size-limited, schema-checked)."""
    where = repr(str(path))
    data = read_limited(path, MAX_JSON_BYTES)
    return check_json_gt(parse_json(data, f"ground truth {where}"), where)


# -- one argument, many videos ------------------------------------------------------------------


def read_file_gt(path: Path) -> GroundTruth:
    """One video's ground truth from a per-video file (.json or .npz)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json_gt(path)[1]
    if suffix == ".npz":
        from vidcam.evaluate.gt_masks import read_mask_gt

        return read_mask_gt(path)
    raise VidcamError(
        f"ground truth {str(path)!r}: give a .json, a .npz mask file or an annotation pickle "
        f"({', '.join(PICKLE_SUFFIXES)})"
    )


def _in_folder(folder: Path, video: Path) -> Path | None:
    found = [folder / f"{video.stem}{s}" for s in PER_VIDEO_SUFFIXES]
    found = [p for p in found if p.exists()]
    if len(found) > 1:
        raise VidcamError(
            f"ground truth for {video.name!r}: both {found[0].name!r} and {found[1].name!r} "
            f"exist in {str(folder)!r}; keep one"
        )
    return found[0] if found else None


def ground_truths(gt: str | Path | None, videos: Sequence[Path]) -> list[GroundTruth | None]:
    """Each video's ground truth (None: none found), from ``gt``:

    - None: ``<stem>.json`` / ``<stem>.npz`` next to the video;
    - a folder: ``<stem>.json`` / ``<stem>.npz`` in it;
    - an annotation pickle: the entry whose key's last part is the video's stem (at least one
      video must match);
    - a .json / .npz file: the ground truth of the one video evaluated.
    """
    if gt is None:
        return [_per_video(v.parent, v) for v in videos]
    p = Path(gt)
    if p.is_dir():
        return [_per_video(p, v) for v in videos]
    check_regular(p, "--gt")
    if p.suffix.lower() in PICKLE_SUFFIXES:
        from vidcam.evaluate.gt_pickle import read_annotation_pickle

        return read_annotation_pickle(p).match(videos)
    if len(videos) != 1:
        raise VidcamError(
            f"--gt {str(p)!r} is one video's ground truth but {len(videos)} videos are "
            "evaluated; give a folder of <stem>.json / <stem>.npz files or an annotation pickle"
        )
    return [read_file_gt(p)]


def _per_video(folder: Path, video: Path) -> GroundTruth | None:
    path = _in_folder(folder, video)
    return None if path is None else read_file_gt(path)
