"""Every form of ``--model``: what the user has, opened as an :class:`Opened` model.

* a registered name (``vidcam models``), else a name a package registers in the entry-point
  group ``vidcam.models`` (registry names win);
* ``path/to/file.py:FUNCTION`` or ``package.module:FUNCTION``: the function, called with no
  arguments, returns an ``nn.Module``, a :class:`~vidcam.models.handle.ModelHandle` or a mapping
  (:data:`MAPPING_KEYS`). Importing the file runs its code, as ``python file.py`` would; only
  what the user named is imported (a file under its own module name, ``vidcam_user_*``);
* ``hf:DIR`` / ``hf:ORG/NAME``: a Hugging Face video classifier
  (:func:`vidcam.models.hf_auto.open_hf`);
* a ``torch.export`` file (``.pt2``, see :mod:`vidcam.models.exported`); TorchScript files are
  refused with what to do instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.cam.reshape import Reshape
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.labels import labels_arg
from vidcam.models.refs import ENTRY_POINT_GROUP, FACTORY, kind_of
from vidcam.models.spec import InputSpec

#: keys a factory's mapping may hold
MAPPING_KEYS = ("module", "spec", "labels", "layer", "reshape")


@dataclass(frozen=True)
class Opened:
    """A model as its source gives it, before the card and the flags apply.

    ``spec`` None: the source has none (a bare module: a card must give it); ``registry``:
    a registered model (trusted: no dry run needed).
    """

    module: nn.Module
    name: str
    spec: InputSpec | None
    layer: Any = None
    reshape: Reshape | None = None
    labels: tuple[str, ...] | None = None
    weights_source: str = "user module"
    registry: bool = False

    @classmethod
    def of_handle(cls, h: ModelHandle, *, registry: bool = False) -> Opened:
        return cls(
            h.module, h.name, h.input, h.layer, h.reshape, h.labels, h.weights_source, registry
        )


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The ``vidcam.models`` entry points by name (the first one of each name)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def check_ref(ref: str) -> None:
    """Refuse a ``--model`` that cannot be opened, before anything is built or imported: a
    missing file, an unknown name (registry and entry points)."""
    if not isinstance(ref, str) or not ref.strip():
        raise VidcamError("--model: give a registered name, FILE.py:FUNCTION, hf:DIR or a .pt2")
    kind = kind_of(ref)
    if kind == "file":
        _existing(Path(FACTORY.match(ref)["target"]), "model file")
    elif kind == "model_file":
        _existing(Path(ref), "model file")
    elif kind == "name":
        _registered_or_entry_point(ref)


def _existing(p: Path, what: str) -> Path:
    p = p.expanduser()
    if not p.is_file():
        state = "is not a regular file" if p.exists() else "does not exist"
        raise VidcamError(f"{what} {str(p)!r} {state}")
    return p


def _registered_or_entry_point(name: str) -> str | importlib.metadata.EntryPoint:
    """The registry's name for ``name``, else its entry point; unknown: a one-line error."""
    from vidcam.models.registry import MODELS, get_spec

    key = name.strip().lower().replace("-", "_")
    eps = entry_points()
    if name in eps and name not in MODELS and key not in MODELS:
        return eps[name]
    if "/" in name or name.endswith(".py"):
        raise VidcamError(
            f"model {name!r}: a Python file needs the function to call: --model {name}:FUNCTION"
        )
    try:
        return get_spec(name).name
    except VidcamError as exc:
        extra = f" Entry points ({ENTRY_POINT_GROUP}): {', '.join(eps)}." if eps else ""
        raise VidcamError(f"{exc}{extra}") from None


def open_ref(
    ref: str, *, weights: Any, pretrained: bool, device: torch.device, progress: bool
) -> Opened:
    """Open the model ``ref`` names (see the module docstring) on ``device``."""
    check_ref(ref)
    kind = kind_of(ref)
    if kind == "hf":
        try:
            hf_auto = importlib.import_module("vidcam.models.hf_auto")
        except ModuleNotFoundError as exc:
            if exc.name != "vidcam.models.hf_auto":
                raise
            raise VidcamError(
                "--model hf:...: this vidcam cannot open Hugging Face models"
            ) from None
        h = hf_auto.open_hf(
            ref, weights=weights, pretrained=pretrained, device=device, progress=progress
        )
        return Opened.of_handle(h)
    if kind == "model_file":
        from vidcam.models.exported import open_model_file

        if weights is not None:
            raise VidcamError(f"--weights: model file {ref!r} holds its weights already")
        return open_model_file(Path(ref), device=device)
    if kind == "name":
        found = _registered_or_entry_point(ref)
        if isinstance(found, str):
            from vidcam.models.registry import load_model

            h = load_model(
                found, weights=weights, pretrained=pretrained, device=device, progress=progress
            )
            return Opened.of_handle(h, registry=True)
        fn, what = _load_entry_point(found), f"entry point {found.name!r} ({found.value})"
    else:
        m = FACTORY.match(ref)
        fn, what = _factory(kind, m["target"], m["func"]), f"model factory {ref!r}"
    opened = opened_from(_call(fn, what), what, ref, device)
    return load_user_weights(opened, weights) if weights is not None else opened


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> Callable[[], Any]:
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 - the package's code failing is a user error
        raise VidcamError(
            f"entry point {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: "
            f"{_line(exc)}"
        ) from exc


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


@contextlib.contextmanager
def _script_dir(folder: Path) -> Iterator[None]:
    """The file's folder first on ``sys.path`` for the block, as ``python file.py`` has it."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def import_file(path: Path) -> Any:
    """Import the Python file ``path`` once per process, as module ``vidcam_user_<hash>_<stem>``."""
    p = _existing(path, "model file").resolve()
    stem = re.sub(r"\W", "_", p.stem)
    name = f"vidcam_user_{hashlib.sha256(str(p).encode()).hexdigest()[:12]}_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise VidcamError(f"model file {str(p)!r} cannot be imported (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _script_dir(p.parent):
            spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's code failing is a user error
        del sys.modules[name]
        raise VidcamError(
            f"model file {str(p)!r} raised while importing: {type(exc).__name__}: {_line(exc)}"
        ) from exc
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _factory(kind: str, target: str, func: str) -> Callable[[], Any]:
    if kind == "file":
        module, where = import_file(Path(target)), f"model file {target!r}"
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name is None or not target.startswith(exc.name):
                raise VidcamError(
                    f"module {target!r} raised while importing: {type(exc).__name__}: {_line(exc)}"
                ) from exc
            raise VidcamError(
                f"no module named {target!r} (is its package installed, or on PYTHONPATH?)"
            ) from None
        except Exception as exc:  # noqa: BLE001
            raise VidcamError(
                f"module {target!r} raised while importing: {type(exc).__name__}: {_line(exc)}"
            ) from exc
        where = f"module {target!r}"
    fn = getattr(module, func, None)
    if fn is None:
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise VidcamError(
            f"{where} has no function {func!r} (it defines: {', '.join(public[:12]) or 'none'})"
        )
    if not callable(fn):
        raise VidcamError(f"{where}: {func!r} is a {type(fn).__name__}, not a function")
    return fn


def _call(fn: Callable[[], Any], what: str) -> Any:
    try:
        return fn()
    except VidcamError as exc:
        raise VidcamError(f"{what}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's function failing is a user error
        raise VidcamError(f"{what} raised {type(exc).__name__}: {_line(exc)}") from exc


def opened_from(result: Any, what: str, name: str, device: torch.device) -> Opened:
    """A factory's return value (module, handle or mapping) as an :class:`Opened` on ``device``."""
    if isinstance(result, ModelHandle):
        return Opened.of_handle(result.to(device))
    if isinstance(result, Mapping):
        return _from_mapping(result, what, name, device)
    _check_module(result, what)
    return Opened(result.to(device).eval(), name, None, weights_source=what)


def _check_module(module: Any, what: str) -> None:
    if isinstance(module, torch.jit.ScriptModule):
        raise VidcamError(
            f"{what} returns a TorchScript module: vidcam cannot hook its layers; return the "
            "Python nn.Module instead"
        )
    if not isinstance(module, nn.Module):
        raise VidcamError(
            f"{what} returns a {type(module).__name__}, not an nn.Module, a ModelHandle or a "
            f"mapping with keys {', '.join(MAPPING_KEYS)}"
        )


def _from_mapping(result: Mapping, what: str, name: str, device: torch.device) -> Opened:
    unknown = [str(k) for k in result if k not in MAPPING_KEYS]
    if unknown:
        raise VidcamError(
            f"{what} returns a mapping with unknown key {unknown[0]!r}; allowed: "
            f"{', '.join(MAPPING_KEYS)}"
        )
    if "module" not in result:
        raise VidcamError(f"{what} returns a mapping without 'module' (the nn.Module)")
    module = result["module"]
    _check_module(module, f"{what} ('module')")
    spec = result.get("spec")
    if isinstance(spec, Mapping):
        try:
            spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        except TypeError as exc:
            raise VidcamError(f"{what}: 'spec' {_line(exc)}") from None
        except VidcamError as exc:
            raise VidcamError(f"{what}: 'spec': {exc}") from None
    elif spec is not None and not isinstance(spec, InputSpec):
        raise VidcamError(f"{what}: 'spec' must be an InputSpec or a dict of its fields")
    reshape = result.get("reshape")
    if reshape is not None and not callable(reshape):
        raise VidcamError(f"{what}: 'reshape' must be callable (activation, output) -> volume")
    return Opened(
        module=module.to(device).eval(),
        name=name,
        spec=spec,
        layer=result.get("layer"),
        reshape=reshape,
        labels=labels_arg(result.get("labels"), what=f"{what}: 'labels'"),
        weights_source=what,
    )


def load_user_weights(opened: Opened, weights: Any) -> Opened:
    """``opened`` with the checkpoint ``weights`` loaded into its module (strictly) and the
    class names stored beside them, if any."""
    from vidcam.models.checkpoint import load_into, read_checkpoint
    from vidcam.models.heads import checkpoint_labels

    state = read_checkpoint(weights)
    load_into(opened.module, state, source=repr(str(weights)), model_name=opened.name)
    stored = checkpoint_labels(weights)
    return Opened(
        opened.module,
        opened.name,
        opened.spec,
        opened.layer,
        opened.reshape,
        stored if stored is not None else opened.labels,
        f"local checkpoint {weights}",
    )
