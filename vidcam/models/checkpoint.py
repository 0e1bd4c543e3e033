"""Reading, verifying and matching model weights, with errors that say what to do.

Every checkpoint is unpickled with ``torch.load(..., weights_only=True)`` (tensors and plain
containers only, never code); files from the torch hub cache are also hash-checked before
they are unpickled (see :mod:`vidcam.models.weights_source`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.hub
from torch import nn

from vidcam.errors import VidcamError

#: keys under which training checkpoints keep the model's state dict
_NESTED_KEYS = ("state_dict", "model_state", "model")
#: torchvision's naming scheme ``name-<first 8+ hex digits of the sha256>.ext`` (as in
#: ``torch.hub``'s ``check_hash``, but requiring at least 8 digits). Only a consistency check
#: of a pinned full digest and of a fresh download: a 32-bit prefix never verifies a file.
_NAME_HASH = re.compile(r"-([a-f0-9]{8,64})\.")
_CHUNK = 1 << 20


def hub_checkpoint_dir() -> Path:
    """Where ``torch.hub`` caches downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def url_file_name(url: str) -> str:
    """The file name ``torch.hub`` gives the download of ``url``."""
    return os.path.basename(url.split("?")[0])


def cached_file(url: str) -> Path:
    """The path ``torch.hub.load_state_dict_from_url(url)`` caches ``url`` under."""
    return hub_checkpoint_dir() / url_file_name(url)


def hash_prefix_of(file_name: str) -> str | None:
    """The sha256 prefix a torchvision-style file name carries (``r3d_18-b3b3357e.pth`` ->
    ``"b3b3357e"``), or None for names without one (e.g. PyTorchVideo's ``X3D_XS.pyth``)."""
    match = _NAME_HASH.search(file_name)
    return match.group(1) if match else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, without any advice to load with
    ``weights_only=False`` (bad advice next to a file that may be malicious)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if "weights_only" in first:
        kept = [p for p in re.split(r"(?<=[.;])\s+", first) if "weights_only" not in p]
        first = " ".join(kept).strip().rstrip(".;")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _refused_global(message: str) -> str | None:
    """The global torch's weights-only unpickler refused, from its (multi-line) message."""
    match = re.search(r"GLOBAL (\S+)", message)
    return match.group(1) if match else None


def _weights_only_detail(message: str) -> str:
    match = re.search(r"(Unsupported [^\n]+)", message)
    return match.group(1).strip().rstrip(".") if match else "not tensors and containers only"


def load_weights_only(src: str | os.PathLike | bytes, *, what: str, fix: str) -> object:
    """``torch.load(src, weights_only=True)`` on CPU; failures become one-line VidcamErrors.

    ``what`` names the file in messages (e.g. ``"weights file '/x.pth'"``), ``fix`` says what
    to do. A pickle that needs more than tensors and containers (e.g. a class whose
    ``__reduce__`` runs code) is refused and never executed.
    """
    f = io.BytesIO(src) if isinstance(src, bytes) else Path(src)
    check_declared(src, what=what, fix=fix)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Detected pickle protocol")
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        refused = _refused_global(message)
        if refused is not None:
            raise VidcamError(
                f"{what} is not a weights-only checkpoint: it pickles the global {refused}, "
                "and vidcam unpickles only tensors and containers (torch.load weights_only=True), "
                f"never code; {fix}"
            ) from None  # torch's own message advises weights_only=False: never show it
        detail = (
            f"weights-only unpickler: {_weights_only_detail(message)}"
            if "weights only" in message.lower()
            else _one_line(exc)
        )
        raise VidcamError(
            f"could not read {what}: corrupt or unreadable PyTorch checkpoint ({detail}); {fix}"
        ) from None
    except (RuntimeError, EOFError, ValueError, TypeError, KeyError, OSError) as exc:
        raise VidcamError(
            f"could not read {what}: corrupt or unreadable PyTorch checkpoint "
            f"({_one_line(exc)}); {fix}"
        ) from exc


#: ``torch.save`` stores tensors uncompressed: entries inflating past this ratio (or past the
#: free memory) are a decompression bomb, refused before a byte of them is inflated
MAX_INFLATION = 8.0


def check_declared(src: str | os.PathLike | bytes, *, what: str, fix: str) -> None:
    """A zip checkpoint's declared (uncompressed) size, from its central directory, is at most
    :data:`MAX_INFLATION` times the file and fits the free memory; else a one-line
    :class:`VidcamError` before anything is read. Legacy pickles are bounded by their size."""
    f = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")  # noqa: SIM115
    try:
        if not zipfile.is_zipfile(f):
            return
        f.seek(0, os.SEEK_END)
        stored = f.tell()
        with zipfile.ZipFile(f) as z:
            declared = sum(i.file_size for i in z.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load reports it in its own words
    finally:
        f.close()
    free = _free_memory()
    if declared > MAX_INFLATION * max(stored, 1 << 20) or (free and declared > free):
        room = f", {free / 2**30:.2f} GiB of memory free" if free else ""
        raise VidcamError(
            f"{what} declares {declared / 2**30:.2f} GiB of tensors in a "
            f"{stored / 2**20:.2f} MiB file{room} (torch.save never compresses): not read; {fix}"
        )


def _free_memory() -> int | None:
    """MemAvailable in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as m:
            for line in m:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def extract_state_dict(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a state dict, or a dict holding one under ``state_dict`` /
    ``model_state`` / ``model``; ``module.`` prefixes (DataParallel) are stripped."""
    if isinstance(obj, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise VidcamError(
            f"{source} holds no state dict (expected a dict of tensors, or a dict with a "
            f"'state_dict' or 'model_state' entry); save it with torch.save(model.state_dict(), "
            "PATH)"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. counters or configs stored next to the tensors
        name = str(key)
        while name.startswith("module."):
            name = name[len("module.") :]
        out[name] = value
    if not out:
        raise VidcamError(f"{source} holds no tensors; is it a PyTorch model checkpoint?")
    return out


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a local checkpoint file (tensors only, ``weights_only=True``) as a state dict."""
    p = Path(path).expanduser()
    if not p.is_file():
        state = "is not a regular file" if p.exists() else "does not exist"
        raise VidcamError(f"weights file {str(p)!r} {state}; pass --weights PATH to a file")
    obj = load_weights_only(
        p,
        what=f"weights file {str(p)!r}",
        fix="pass a file written by torch.save(model.state_dict(), PATH) (tensors only)",
    )
    return extract_state_dict(obj, repr(str(p)))


def _match_prefix(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add or strip one wrapper prefix (e.g. ``net.`` of an adapter) when that makes keys fit."""
    want = set(model.state_dict())
    if set(state) <= want:
        return state
    prefixes = {k.split(".", 1)[0] + "." for k in want if "." in k}
    best, best_hits = state, len(want & set(state))
    for prefix in sorted(prefixes):
        added = {prefix + k: v for k, v in state.items()}
        stripped = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
        for cand in (added, stripped):
            hits = len(want & set(cand))
            if hits > best_hits:
                best, best_hits = cand, hits
    return best


def _examples(keys: list[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_into(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str, model_name: str
) -> None:
    """Load ``state`` into ``model`` strictly; mismatches raise a :class:`VidcamError` naming
    a few missing / unexpected / wrongly shaped keys."""
    state = _match_prefix(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} (file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_examples(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_examples(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} keys with another shape: {_examples(wrong, 2)}")
        raise VidcamError(
            f"weights from {source} do not fit model {model_name!r}: "
            + "; ".join(parts)
            + f". Pass a checkpoint of {model_name!r} (or pick the matching --model)"
        )
    model.load_state_dict(state, strict=True)
