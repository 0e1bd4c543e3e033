"""Class names of the registered label sets: ``kinetics400`` and ``sample``."""

from __future__ import annotations

import importlib.resources
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from vidcam.errors import VidcamError
from vidcam.paths import read_limited

#: label sets stored as ``labels/<name>.txt`` -> their number of classes
LABEL_FILES: dict[str, int] = {"kinetics400": 400, "sample": 6}
#: every label set name load_labels accepts
LABEL_SETS: tuple[str, ...] = tuple(LABEL_FILES)


def _from_file(name: str, count: int) -> list[str]:
    res = importlib.resources.files("vidcam.models").joinpath("labels", f"{name}.txt")
    if not res.is_file():
        warnings.warn(
            f"label file vidcam/models/labels/{name}.txt is missing; using placeholder names "
            f"class_0 ... class_{count - 1}",
            stacklevel=3,
        )
        return [f"class_{i}" for i in range(count)]
    labels = [line.strip() for line in res.read_text(encoding="utf-8").splitlines()]
    labels = [line for line in labels if line]
    if len(labels) != count:
        raise VidcamError(
            f"label file {name}.txt has {len(labels)} names, expected {count}; reinstall vidcam"
        )
    return labels


def load_labels(name: str) -> list[str]:
    """Class names, index-aligned with the model's outputs.

    ``"kinetics400"``: the 400 Kinetics classes (alphabetical, the order of torchvision's,
    PyTorchVideo's and DeepMind's checkpoints); ``"sample"``: the bundled sample model's classes.
    """
    if name in LABEL_FILES:
        return _from_file(name, LABEL_FILES[name])
    raise VidcamError(f"unknown label set {name!r}; known: {', '.join(sorted(LABEL_SETS))}")


#: the most bytes a labels file may hold (Kinetics-700's names take about 15 KB)
MAX_LABELS_BYTES = 4 << 20


def read_labels_file(path: str | os.PathLike, *, what: str = "labels file") -> list[str]:
    """Class names from a UTF-8 text file, one per line (blank lines and surrounding spaces
    ignored); at most :data:`MAX_LABELS_BYTES` are read."""
    p = Path(path).expanduser()
    if not p.is_file():
        state = "is not a regular file" if p.exists() else "does not exist"
        raise VidcamError(f"{what} {str(p)!r} {state}; give a text file with one class per line")
    data = read_limited(p, MAX_LABELS_BYTES, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VidcamError(
            f"{what} {str(p)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8, one "
            "class name per line"
        ) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise VidcamError(f"{what} {str(p)!r} holds no class names (one per line)")
    return names


def labels_arg(
    labels: Sequence[str] | str | os.PathLike | None, *, what: str = "labels"
) -> tuple[str, ...] | None:
    """``labels`` as a tuple of class names: a sequence of names as is, a path (``str`` or
    ``PathLike``) read with :func:`read_labels_file`, None as None."""
    if labels is None:
        return None
    if isinstance(labels, str | os.PathLike):
        return tuple(read_labels_file(labels, what=f"{what} file"))
    if not isinstance(labels, Sequence) or not all(isinstance(x, str) for x in labels):
        raise VidcamError(
            f"{what}: expected a labels file path or a sequence of class names (str), got "
            f"{type(labels).__name__}"
        )
    if not labels:
        raise VidcamError(f"{what}: the list of class names is empty")
    return tuple(labels)
