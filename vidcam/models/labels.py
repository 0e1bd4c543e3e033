"""Class names of the registered label sets: ``kinetics400`` and ``sample``."""

from __future__ import annotations

import importlib.resources
import warnings

from vidcam.errors import VidcamError

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
