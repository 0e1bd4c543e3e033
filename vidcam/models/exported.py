"""Model files: ``torch.export`` programs (``.pt2``) are explained; TorchScript is refused.

What was found (torch 2.14):

* **TorchScript** (``torch.jit.script`` / ``trace``, then ``torch.jit.save``): a loaded
  ``ScriptModule`` refuses ``register_forward_hook`` ("not supported on ScriptModules"), and its
  compiled forward cannot be cut at a layer without rewriting its graph through private APIs.
  Grad-CAM needs a layer's activation and gradient, so vidcam refuses these files and says to
  pass the Python module (``file.py:FUNCTION``) or a ``torch.export`` file instead.
* **torch.export** (``torch.export.save``): ``torch.export.unflatten`` rebuilds the module
  hierarchy of a loaded ``ExportedProgram`` (``layer4``, ``layer4.1``, ...), forward hooks on its
  submodules fire, and gradients flow through it: an r3d_18's logits, ``layer4`` activations and
  their gradients equal the eager model's exactly (tests/test_own_model_files.py checks the CAM).
  The program keeps the shapes it was exported with: vidcam needs a dynamic batch dimension
  (windows and tiles are batched); the clip length and crop must be the exported ones (a card
  gives them with mean/std and fps or stride); full-frame mode falls back to tiles or the
  centre crop. ``torch.export.load`` unpickles parts of the file: like a ``.py`` file, load only
  files you trust.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from vidcam.errors import VidcamError
from vidcam.models.sources import Opened

_TORCHSCRIPT = (
    "TorchScript modules refuse forward hooks, so vidcam cannot read a layer's activations "
    "and gradients; pass the Python module instead (--model file.py:FUNCTION returning the "
    "nn.Module, with --weights for its state dict), or save it with torch.export.save to a .pt2"
)


def _entries(p: Path) -> list[str]:
    try:
        with zipfile.ZipFile(p) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def open_model_file(path: Path, *, device: torch.device) -> Opened:
    """The model in the file ``path``: a ``torch.export`` program (unflattened, so its layers
    have their names), or a one-line error for TorchScript and plain checkpoints."""
    p = path.expanduser()
    names = _entries(p)
    if any("/code/__torch__/" in n for n in names) or p.suffix in (".ts", ".jit", ".torchscript"):
        raise VidcamError(f"model file {str(p)!r} is TorchScript: {_TORCHSCRIPT}")
    if not any(n.endswith("/archive_format") or n.endswith("/models/model.json") for n in names):
        raise VidcamError(
            f"model file {str(p)!r} is not a torch.export program (.pt2): for a checkpoint "
            "(weights only) pass --model ARCH_OR_FILE.py:FUNCTION --weights "
            f"{p.name}; for TorchScript: {_TORCHSCRIPT}"
        )
    try:
        program = torch.export.load(str(p))
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a user error
        raise VidcamError(
            f"model file {str(p)!r}: torch.export.load failed ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); export it again with this torch version"
        ) from exc
    _check_inputs(program, p)
    module = torch.export.unflatten(program).to(device)
    return Opened(module, p.name, None, weights_source=f"torch.export program {p}")


def _check_inputs(program: torch.export.ExportedProgram, p: Path) -> None:
    """One clip input whose batch dimension is dynamic."""
    users = set(program.graph_signature.user_inputs)
    shapes = [
        node.meta.get("val").shape
        for node in program.graph.nodes
        if node.op == "placeholder" and node.name in users and node.meta.get("val") is not None
    ]
    if len(users) != 1 or len(shapes) != 1:
        raise VidcamError(
            f"model file {str(p)!r} takes {len(users)} inputs; vidcam feeds one clip tensor"
        )
    if isinstance(shapes[0][0], int):
        raise VidcamError(
            f"model file {str(p)!r} was exported with a fixed batch size {shapes[0][0]}; vidcam "
            "batches windows: export with a dynamic batch, e.g. torch.export.export(model, "
            "(clip,), dynamic_shapes=({0: torch.export.Dim('batch')},))"
        )
