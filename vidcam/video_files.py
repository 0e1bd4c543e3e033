"""Which files are videos: ONE suffix list and ONE folder-expansion rule (torch-free).

``vidcam evaluate DIR`` (:func:`vidcam.evaluate.clips.list_videos`) and ``vidcam batch DIR``
(:func:`vidcam.batch.inputs.expand_inputs`) both expand a folder with :func:`scan_folder`, so
they pick the same files: the regular files (or links to them) whose suffix is in
:data:`VIDEO_SUFFIXES` (any case), hidden files and files in hidden folders left out, sorted by
their path relative to the folder. A file named explicitly on the command line may have any
suffix (the decoder decides).
"""

from __future__ import annotations

from pathlib import Path

from vidcam.errors import VidcamError

#: the suffixes a folder scan picks up (lower case; matched case-insensitively)
VIDEO_SUFFIXES: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".flv",
    ".ts", ".3gp", ".ogv",
)  # fmt: skip


def is_video_name(path: str | Path) -> bool:
    """True when ``path``'s suffix is a video suffix (the name only; the file is not opened)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def scan_folder(
    folder: str | Path, *, recursive: bool = False, skip: str | Path | None = None
) -> list[Path]:
    """The videos in ``folder`` (``recursive``: in its sub-folders too), sorted by their POSIX
    path relative to ``folder``; hidden names (a part starting with ``.``) are left out, and so
    is everything under ``skip`` (a resolved folder, e.g. a batch's own output folder)."""
    root = Path(folder)
    skip_dir = Path(skip) if skip is not None else None
    out = []
    for f in root.rglob("*") if recursive else root.glob("*"):
        if skip_dir is not None and f.resolve().is_relative_to(skip_dir):
            continue
        if any(part.startswith(".") for part in f.relative_to(root).parts):
            continue
        if is_video_name(f) and f.is_file():
            out.append(f)
    return sorted(out, key=lambda x: x.relative_to(root).as_posix())


def check_input_file(path: str | Path) -> Path:
    """The input as a ``Path``; VidcamError when it is missing or not a regular file (a folder,
    a FIFO, a device, a socket are never read). Torch-free: the command line checks inputs
    with it before loading anything."""
    p = Path(path)
    if not p.exists():
        raise VidcamError(f"input {str(p)!r} does not exist")
    if not p.is_file():
        what = "a folder" if p.is_dir() else "a FIFO, a device or a socket: never read"
        raise VidcamError(f"input {str(p)!r} is not a file ({what}); give a video file")
    return p
