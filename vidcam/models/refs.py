"""What kind of ``--model`` a string is, without importing torch (the command line checks it
before anything heavy loads; :mod:`vidcam.models.sources` opens it)."""

from __future__ import annotations

import re

#: entry-point group in which packages register model names
ENTRY_POINT_GROUP = "vidcam.models"
#: file suffixes read as model files (torch.export / TorchScript), not names
MODEL_FILE_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".jit", ".torchscript")
FACTORY = re.compile(r"^(?P<target>.+):(?P<func>[A-Za-z_]\w*)$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def kind_of(ref: str) -> str:
    """``"hf"``, ``"file"`` (file.py:FUNCTION), ``"module"`` (package.module:FUNCTION),
    ``"model_file"`` (.pt2 and the like) or ``"name"``."""
    if ref.startswith("hf:"):
        return "hf"
    m = FACTORY.match(ref)
    if m:
        target = m["target"]
        if target.endswith(".py") or "/" in target or "\\" in target:
            return "file"
        if _DOTTED.match(target):
            return "module"
    if ref.lower().endswith(MODEL_FILE_SUFFIXES):
        return "model_file"
    return "name"
