"""Per-frame mask ground truth: ``<stem>.npz`` with one bool (F, H, W) array per video.

The mask array may have any name (``masks`` by convention) and be bool or uint8 (non-zero =
inside); optional members ``label`` (a string) and ``interval`` (two integers, frames
[t0, t1)). Without an interval, the frames whose mask is not empty are the action's.

The array's header is read first (shape, dtype, order): nothing larger than
:data:`MAX_MASK_VOXELS` is accepted, and only the frames a clip samples are ever read —
seeking inside the (possibly compressed) member — so memory stays at those frames whatever
the file declares. ``allow_pickle`` is never on.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidcam.errors import VidcamError
from vidcam.evaluate.gt import MAX_FRAMES, GroundTruth, check_regular
from vidcam.paths import atomic_write

#: most voxels (F·H·W) a mask array may declare (bounds the time to seek through it)
MAX_MASK_VOXELS = 2**33
#: most elements of the small optional members (label, interval)
_SMALL = 4096


def _header(zf: zipfile.ZipFile, name: str, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of member ``name`` from its .npy header only."""
    with zf.open(name) as f:
        try:
            major, _minor = np.lib.format.read_magic(f)
            if major == 1:
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif major in (2, 3):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unknown .npy version {major}")
        except ValueError as exc:
            raise VidcamError(
                f"ground truth {where}: member {name!r} is not an array: {exc}"
            ) from None
        offset = f.tell()
    if fortran and len(shape) > 1:
        raise VidcamError(
            f"ground truth {where}: member {name!r} is in Fortran order; save "
            "np.ascontiguousarray(masks)"
        )
    return tuple(int(s) for s in shape), dtype, offset


def _small(zf: zipfile.ZipFile, name: str, where: str) -> np.ndarray:
    shape, dtype, _ = _header(zf, name, where)
    if int(np.prod(shape)) > _SMALL or dtype.hasobject:
        raise VidcamError(f"ground truth {where}: member {name!r} is too large or not plain data")
    with zf.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


class _MaskReader:
    """Reads frames of a (F, H, W) member on demand (a fresh open per call: no handle kept)."""

    def __init__(self, path: Path, member: str, shape: tuple[int, int, int], offset: int) -> None:
        self.path, self.member, self.shape, self.offset = path, member, shape, offset

    def __call__(self, frames: Sequence[int]) -> np.ndarray:
        f_total, h, w = self.shape
        out = np.zeros((len(frames), h, w), dtype=bool)
        order = sorted((f, i) for i, f in enumerate(frames) if 0 <= f < f_total)
        where = repr(str(self.path))
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as fh:
                for f, i in order:
                    fh.seek(self.offset + f * h * w)
                    buf = fh.read(h * w)
                    if len(buf) != h * w:
                        raise VidcamError(
                            f"ground truth {where}: {self.member!r} ends before frame {f}"
                        )
                    out[i] = np.frombuffer(buf, dtype=np.uint8).reshape(h, w) != 0
        except (OSError, zipfile.BadZipFile) as exc:
            raise VidcamError(f"ground truth {where} cannot be read: {exc}") from None
        return out


def read_mask_gt(path: str | Path) -> GroundTruth:
    """Check a mask file's members and headers; the masks are read later, per clip."""
    p = check_regular(path)
    where = repr(str(p))
    try:
        with zipfile.ZipFile(p) as zf:
            names = [n for n in zf.namelist() if n.endswith(".npy")]
            headers = {n: _header(zf, n, where) for n in names}
            masks = [n for n, (shape, _, _) in headers.items() if len(shape) == 3]
            if len(masks) != 1:
                raise VidcamError(
                    f"ground truth {where} must hold exactly one (F, H, W) mask array, found "
                    f"{len(masks)}"
                )
            member = masks[0]
            shape, dtype, offset = headers[member]
            label = _label(zf, "label.npy", where) if "label.npy" in names else None
            interval = _interval(zf, "interval.npy", where) if "interval.npy" in names else None
    except (OSError, zipfile.BadZipFile) as exc:
        raise VidcamError(f"ground truth {where} is not a readable .npz file: {exc}") from None
    name = member[: -len(".npy")]
    if dtype not in (np.dtype(bool), np.dtype(np.uint8)):
        raise VidcamError(
            f"ground truth {where}: field {name!r} must be bool or uint8, not {dtype}"
        )
    f, h, w = shape
    if not (0 < f <= MAX_FRAMES and 0 < h <= 100_000 and 0 < w <= 100_000):
        raise VidcamError(f"ground truth {where}: field {name!r} has shape {shape}; want (F, H, W)")
    if f * h * w > MAX_MASK_VOXELS:
        raise VidcamError(
            f"ground truth {where}: field {name!r} declares {f * h * w} voxels, over the limit "
            f"of {MAX_MASK_VOXELS}"
        )
    reader = _MaskReader(p, member, (f, h, w), offset)
    return GroundTruth(label, interval, None, masks=reader, size=(float(h), float(w)), origin=where)


def _label(zf: zipfile.ZipFile, name: str, where: str) -> str:
    a = _small(zf, name, where)
    if a.shape != () or a.dtype.kind not in "US" or not 0 < len(str(a[()])) <= 1000:
        raise VidcamError(f"ground truth {where}: field 'label' must be one string")
    v = a[()]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _interval(zf: zipfile.ZipFile, name: str, where: str) -> tuple[int, int]:
    a = _small(zf, name, where)
    if a.shape != (2,) or a.dtype.kind not in "iu":
        raise VidcamError(f"ground truth {where}: field 'interval' must be 2 integers [t0, t1]")
    t0, t1 = int(a[0]), int(a[1])
    if not 0 <= t0 <= t1 <= MAX_FRAMES:
        raise VidcamError(f"ground truth {where}: field 'interval' must have 0 <= t0 <= t1")
    return t0, t1


def write_mask_gt(
    path: str | Path,
    masks: np.ndarray,
    *,
    label: str | None = None,
    interval: tuple[int, int] | None = None,
) -> Path:
    """Write a mask ground-truth file (compressed .npz) that :func:`read_mask_gt` reads."""
    m = np.ascontiguousarray(masks, dtype=bool)
    if m.ndim != 3:
        raise VidcamError(f"masks must be (F, H, W), got shape {m.shape}")
    extra: dict[str, np.ndarray] = {}
    if label is not None:
        extra["label"] = np.array(str(label))
    if interval is not None:
        extra["interval"] = np.array([int(interval[0]), int(interval[1])], dtype=np.int64)
    p = Path(path)
    with atomic_write(p) as tmp, tmp.open("wb") as fh:
        np.savez_compressed(fh, masks=m, **extra)
    return p
