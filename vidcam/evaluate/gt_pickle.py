"""Action-detection annotation pickles, read by a RESTRICTED unpickler, matched to videos by name.

Two layouts of the action-detection literature:

- **pyannot** (the corrected UCF101-24 annotations' ``pyannot.pkl``, also JHMDB-21 in this
  layout): a dict keyed ``Class/v_Class_gXX_cYY`` -> ``{"numf", "label", "annotations": [{"label",
  "sf", "ef", "boxes"}]}``: a tube per actor, frames [sf, ef) (0-based), ``boxes`` an
  (ef − sf, 4) array of x, y, w, h in video pixels. ``pyannot_with_class_names.pkl`` wraps it
  as ``{"db": ..., "classes": [...], "trainvideos": [...]}``;
- **gttubes** (ACT's ``JHMDB-GT.pkl`` / ``UCF101v2-GT.pkl``): ``{"labels", "gttubes": {key:
  {label: [(n, 5) arrays of frame (1-based), x1, y1, x2, y2]}}, "nframes", "resolution": {key:
  (h, w)}}``.

A video matches the entry whose key's last part is its file stem (``v_Basketball_g01_c01.avi``
-> ``Basketball/v_Basketball_g01_c01``). A pickle can run any code when loaded, so the
unpickler resolves ONLY numpy's array and scalar reconstruction (``_reconstruct``, ``ndarray``,
``dtype``, ``scalar``; ``_frombuffer``, which pickle protocol 5 writes for arrays), builtins
containers, and ``_codecs.encode`` restricted to latin-1 (how protocol 2 from Python 3 writes
bytes); nothing is imported by name, any other global is refused with one line. The file is
size-limited before it is read.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidcam.errors import VidcamError
from vidcam.evaluate.gt import (
    MAX_BOXES_PER_FRAME,
    MAX_COORD,
    MAX_FRAMES,
    Box,
    GroundTruth,
    _Schema,
    read_limited,
)

#: largest annotation pickle read (UCF101-24's pyannot.pkl is 3.5 MB, ACT's UCF101v2-GT 28 MB)
MAX_PICKLE_BYTES = 128 * 2**20


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global the restricted unpickler does not resolve."""


def _allowed() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray as ma
        from numpy._core import numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
        from numpy.core import numeric  # type: ignore[no-redef]
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = ma._reconstruct
        out[(f"{core}.multiarray", "scalar")] = ma.scalar
        # protocol 5 writes arrays as frombuffer(bytes).reshape(...): data only, no code
        out[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    for mod in ("builtins", "__builtin__"):
        for obj in (dict, list, tuple, set, frozenset):
            out[(mod, obj.__name__)] = obj
    out[("_codecs", "encode")] = _latin1  # protocol 2 from Python 3 writes bytes this way
    return out


def _latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` restricted to what protocol-2 pickles use: a str to latin-1 bytes."""
    if not isinstance(text, str) or encoding.replace("_", "-").lower() not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of :func:`_allowed` (nothing is imported by name)."""

    ALLOWED = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        obj = self.ALLOWED.get((module, name))
        if obj is None:
            raise RefusedGlobal(f"{module}.{name}")
        return obj


def restricted_loads(data: bytes, where: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any failure is one line."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedGlobal as exc:
        raise VidcamError(
            f"{where} refers to {exc}, which an annotation pickle never needs; refused (loading "
            "it could run code). Only numpy arrays, numbers, strings and containers are read"
        ) from None
    except RecursionError:
        raise VidcamError(f"{where} is nested too deeply to be an annotation pickle") from None
    except Exception as exc:  # noqa: BLE001 - any malformed pickle: one line, never a traceback
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise VidcamError(
            f"{where} is not a readable annotation pickle ({type(exc).__name__}: {text})"
        ) from None


def _key(k: Any) -> str:
    return k.decode("latin1") if isinstance(k, bytes) else str(k)


def _array(s: _Schema, name: str, v: Any, cols: int) -> np.ndarray:
    if (
        not isinstance(v, np.ndarray)
        or v.dtype.kind not in "iuf"
        or v.ndim != 2
        or v.shape[1] != cols
    ):
        shape = getattr(v, "shape", type(v).__name__)
        raise s.fail(name, f"an (n, {cols}) numeric array", f"{shape}")
    a = v.astype(np.float64)
    if not np.isfinite(a).all() or np.abs(a).max(initial=0.0) > MAX_COORD:
        raise s.fail(name, f"finite values of at most {MAX_COORD:g}", "a non-finite or huge value")
    return a


@dataclass
class AnnotationFile:
    """A loaded annotation pickle: ``entries`` key -> raw entry; ``layout`` "pyannot" or
    "gttubes"; ``classes``: class names by label index, if the file has them."""

    path: Path
    entries: dict[str, Any]
    layout: str
    classes: list[str] | None
    top: dict[str, Any]

    def match(self, videos: Sequence[Path]) -> list[GroundTruth | None]:
        """Each video's ground truth (None when no key matches its stem); at least one must."""
        by_stem: dict[str, list[str]] = {}
        for k in self.entries:
            by_stem.setdefault(k.replace("\\", "/").rsplit("/", 1)[-1], []).append(k)
        out: list[GroundTruth | None] = []
        for v in videos:
            keys = by_stem.get(Path(v).stem, [])
            if len(keys) > 1:
                raise VidcamError(
                    f"--gt {str(self.path)!r}: {Path(v).name!r} matches several keys "
                    f"({keys[0]!r}, {keys[1]!r}); rename the video after one key"
                )
            out.append(self.entry(keys[0]) if keys else None)
        if videos and all(g is None for g in out):
            example = next(iter(self.entries), "Class/v_Class_g01_c01")
            raise VidcamError(
                f"--gt {str(self.path)!r}: no video's file name matches a key (keys look like "
                f"{example!r}); name each video after its key's last part"
            )
        return out

    def entry(self, key: str) -> GroundTruth:
        where = f"{str(self.path)!r}[{key!r}]"
        if self.layout == "gttubes":
            return _gttubes(key, self.entries[key], self.top, self.classes, where)
        return _pyannot(key, self.entries[key], self.classes, where)


def read_annotation_pickle(path: str | Path) -> AnnotationFile:
    """Load and check the top level of an annotation pickle (entries are checked when used)."""
    p = Path(path)
    where = f"--gt {str(p)!r}"
    top = restricted_loads(read_limited(p, MAX_PICKLE_BYTES, "--gt"), where)
    if not isinstance(top, dict):
        raise VidcamError(f"{where} must hold a dict of videos, not {type(top).__name__}")
    if "gttubes" in top:
        entries, layout, classes = top["gttubes"], "gttubes", top.get("labels")
    elif isinstance(top.get("db"), dict):
        entries, layout, classes = top["db"], "pyannot", top.get("classes")
    else:
        entries, layout, classes = top, "pyannot", None
    if not isinstance(entries, dict):
        raise VidcamError(f"{where}: field 'gttubes' must be a dict of videos")
    if classes is not None and (
        not isinstance(classes, (list, tuple))
        or not all(isinstance(c, (str, bytes)) for c in classes)
    ):
        raise VidcamError(f"{where}: field 'classes' / 'labels' must be a list of names")
    names = [_key(c) for c in classes] if classes is not None else None
    return AnnotationFile(p, {_key(k): v for k, v in entries.items()}, layout, names, top)


def _label_name(label: int, classes: list[str] | None, key: str) -> str:
    if classes is not None and 0 <= label < len(classes):
        return classes[label]
    folder = key.replace("\\", "/").rsplit("/", 1)
    return folder[0] if len(folder) == 2 else str(label)


def _frames(boxes: dict[int, list[Box]], last: int) -> list[list[Box]]:
    return [boxes.get(f, []) for f in range(last)]


def _pyannot(key: str, entry: Any, classes: list[str] | None, where: str) -> GroundTruth:
    s = _Schema(where)
    if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
        raise s.fail("annotations", "a list of tubes", type(entry).__name__)
    tubes = entry["annotations"]
    if len(tubes) > MAX_BOXES_PER_FRAME:
        raise s.fail("annotations", f"at most {MAX_BOXES_PER_FRAME} tubes", len(tubes))
    per_frame: dict[int, list[Box]] = {}
    spans, labels = [], []
    for i, tube in enumerate(tubes):
        name = f"annotations[{i}]"
        if not isinstance(tube, dict):
            raise s.fail(name, "a dict with sf, ef, boxes, label", type(tube).__name__)
        sf = s.integer(f"{name}.sf", tube.get("sf"), 0, MAX_FRAMES)
        ef = s.integer(f"{name}.ef", tube.get("ef"), sf, MAX_FRAMES)
        b = _array(s, f"{name}.boxes", tube.get("boxes"), 4)
        if b.shape[0] != ef - sf:
            raise s.fail(f"{name}.boxes", f"{ef - sf} rows (frames sf..ef)", f"{b.shape[0]} rows")
        if (b[:, 2:] < 0).any():
            raise s.fail(f"{name}.boxes", "x, y, w, h with w, h >= 0", "a negative size")
        for j, (x, y, w, h) in enumerate(b.tolist()):
            per_frame.setdefault(sf + j, []).append((x, y, x + w, y + h))
        spans.append((sf, ef))
        if "label" in tube:
            labels.append(s.integer(f"{name}.label", tube["label"], 0, 10**6))
    label = s.integer("label", entry["label"], 0, 10**6) if "label" in entry else None
    label = label if label is not None else (labels[0] if labels else None)
    interval = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
    last = interval[1] if interval else 0
    name = _label_name(label, classes, key) if label is not None else None
    return GroundTruth(name, interval, _frames(per_frame, last), origin=where)


def _gttubes(
    key: str, entry: Any, top: dict[str, Any], classes: list[str] | None, where: str
) -> GroundTruth:
    s = _Schema(where)
    if not isinstance(entry, dict):
        raise s.fail("gttubes", "a dict {label: [tubes]}", type(entry).__name__)
    per_frame: dict[int, list[Box]] = {}
    first, last, label = MAX_FRAMES, 0, None
    for lab, tubes in entry.items():
        lab = s.integer("label", lab, 0, 10**6)
        label = lab if label is None else label
        if not isinstance(tubes, list) or len(tubes) > MAX_BOXES_PER_FRAME:
            raise s.fail(f"{lab}", f"a list of at most {MAX_BOXES_PER_FRAME} tubes", "another")
        for i, tube in enumerate(tubes):
            a = _array(s, f"{lab}[{i}]", tube, 5)
            for f, x0, y0, x1, y1 in a.tolist():
                fi = s.integer(f"{lab}[{i}] frame", int(f), 1, MAX_FRAMES) - 1  # 1-based
                if x1 < x0 or y1 < y0:
                    raise s.fail(f"{lab}[{i}]", "x1 >= x0 and y1 >= y0", [x0, y0, x1, y1])
                per_frame.setdefault(fi, []).append((x0, y0, x1, y1))
                first, last = min(first, fi), max(last, fi + 1)
    size = None
    res = top.get("resolution")
    if isinstance(res, dict) and key in {_key(k) for k in res}:
        hw = next(v for k, v in res.items() if _key(k) == key)
        if not isinstance(hw, (tuple, list)) or len(hw) != 2:
            raise s.fail("resolution", "(height, width)", str(hw))
        size = (
            s.number("resolution[0]", hw[0], positive=True),
            s.number("resolution[1]", hw[1], positive=True),
        )
    interval = (first, last) if last else None
    name = _label_name(label, classes, key) if label is not None else None
    return GroundTruth(name, interval, _frames(per_frame, last), size=size, origin=where)


def write_pyannot(path: str | Path, db: dict[str, Any], **extra: Any) -> Path:
    """Write a pyannot-layout pickle (``db``: key -> entry; ``extra``: e.g. classes=[...])
    that :func:`read_annotation_pickle` reads (for tests and synthetic benchmarks)."""
    from vidcam.paths import atomic_write

    obj = {"db": db, **extra} if extra else db
    with atomic_write(path) as tmp:
        tmp.write_bytes(pickle.dumps(obj, protocol=4))
    return Path(path)
