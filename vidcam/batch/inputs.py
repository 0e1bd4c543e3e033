"""Batch inputs: video files, folders and manifests -> :class:`Item` s with unique keys.

A key is the video's path relative to its input root (a folder given on the command line, a
file's folder, a manifest's folder); when the inputs have several roots, keys are relative to
their common ancestor, so ``a/clip.mp4`` and ``b/clip.mp4`` never collide. A file listed twice
with the same settings is kept once; listed with different settings (e.g. two segments of
one video in a manifest) it gets ``~2``, ``~3`` before its extension.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from vidcam.batch.manifest import Entry, is_manifest, normalized, read_manifest
from vidcam.errors import VidcamError
from vidcam.video_files import VIDEO_SUFFIXES, scan_folder  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Item:
    """One video of a batch.

    Attributes:
        key: POSIX path relative to the input root, unique in the run ("sub/dir/clip.mp4").
        path: the absolute input path (it may not exist: that is a failed row, not a usage error).
        label, gt, target, start, end: per-clip settings from a manifest (None otherwise).
    """

    key: str
    path: Path
    label: str | None = None
    gt: Path | None = None
    target: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def settings(self) -> tuple:
        return (self.label, str(self.gt) if self.gt else None, self.target, self.start, self.end)


def expand_inputs(
    inputs: Sequence[str | Path], *, recursive: bool = False, exclude: str | Path | None = None
) -> list[Item]:
    """Files, folders (``recursive``: their sub-folders too) and manifests -> items in order.

    ``exclude``: a folder never scanned (the batch's own output folder)."""
    if not inputs:
        raise VidcamError("inputs: give at least one video file, folder or manifest")
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[Path, Entry]] = []  # (root, entry)
    for raw in inputs:
        p = normalized(raw)
        if p.is_dir():
            videos = scan_folder(p, recursive=recursive, skip=skip)
            if not videos:
                how = "" if recursive else " (sub-folders need --recursive)"
                raise VidcamError(f"input folder {str(raw)!r} holds no video file{how}")
            found.extend((p, Entry(path=v)) for v in videos)
        elif is_manifest(p) and p.is_file():
            for e in read_manifest(p):
                root = p.parent if e.path.is_relative_to(p.parent) else e.path.parent
                found.append((root, e))
        else:  # a file, or a missing path: a failed row later, the run goes on
            found.append((p.parent, Entry(path=p)))
    roots = {r for r, _ in found}
    common = Path(os.path.commonpath([str(r) for r in roots])) if roots else Path("/")
    return _unique([_item(common, e) for _, e in found])


def _item(common: Path, e: Entry) -> Item:
    parts = e.path.relative_to(common).parts
    if not parts or ".." in parts:  # cannot happen for normalized paths: never let one through
        raise VidcamError(f"input {str(e.path)!r}: cannot place its outputs (path has '..')")
    key = PurePosixPath(*parts).as_posix()
    return Item(key, e.path, e.label, e.gt, e.target, e.start, e.end)


def _unique(items: list[Item]) -> list[Item]:
    out: list[Item] = []
    seen: dict[str, Item] = {}
    for it in items:
        if it.key in seen and seen[it.key].path == it.path and seen[it.key].settings == it.settings:
            continue  # the same video with the same settings, listed twice
        key, n = it.key, 1
        stem, suffix = _split(it.key)
        while key in seen:
            n += 1
            key = f"{stem}~{n}{suffix}"
        it = replace(it, key=key)
        seen[key] = it
        out.append(it)
    return out


def _split(key: str) -> tuple[str, str]:
    p = PurePosixPath(key)
    return (key[: -len(p.suffix)], p.suffix) if p.suffix else (key, "")
