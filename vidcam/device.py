"""The compute device: pick it from a user's string ("auto", "cpu", "cuda", "cuda:1", "mps"),
refuse one vidcam cannot compute on, say how much memory is free on it
(:func:`available_memory`) and how much a model's forward keeps alive (:func:`live_tensor_bytes`).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from vidcam.errors import VidcamError

_KINDS = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(device: str | torch.device, model: nn.Module | None = None) -> torch.device:
    """ "auto" -> the module's device (if given) or cuda when available, else cpu. Any other
    name must be a device vidcam can compute on here (:func:`check_device`)."""
    if isinstance(device, torch.device):
        return check_device(device)
    name = str(device).strip().lower()
    if name == "auto":
        if model is not None:
            p = next(model.parameters(), None)
            if p is not None:
                if p.device.type == "meta":
                    raise VidcamError(
                        "the model's parameters are on the meta device (shapes, no values): "
                        "load its weights first (e.g. module.to_empty(device='cpu') and "
                        "load_state_dict)"
                    )
                return p.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise VidcamError(f"device {device!r} is not one of {_KINDS}") from None
    return check_device(dev)


def check_device(dev: torch.device) -> torch.device:
    """``dev`` if vidcam can compute on it here, else a one-line :class:`VidcamError` saying
    what to use: ``meta`` holds no values; CUDA / MPS must be available (and ``cuda:N`` exist)."""
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = _cuda_devices()
        if not count:
            raise VidcamError(
                f"device {str(dev)!r} requested but CUDA is not available here (no NVIDIA "
                "GPU, or a CPU-only torch build); use --device cpu (or auto)"
            )
        if dev.index is not None and dev.index >= count:
            raise VidcamError(
                f"device {str(dev)!r}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}; give one of them (or --device cuda)"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise VidcamError(
                f"device {str(dev)!r} requested but MPS (Apple silicon GPU) is not available "
                "here; use --device cpu (or auto)"
            )
        return dev
    if dev.type == "meta":
        raise VidcamError(
            "device 'meta' holds shapes but no values: vidcam cannot compute maps on it; "
            "use --device cpu, cuda or auto"
        )
    raise VidcamError(f"device {str(dev)!r}: vidcam computes on {_KINDS}; use one of them")


def _cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    return torch.backends.mps.is_available()


def available_memory(device: str | torch.device | None = None) -> int | None:
    """Bytes free for the run: a CUDA device's free memory, else the host's available memory
    (``MemAvailable``, else free pages), capped by a cgroup limit and by this process's own
    limits (``RLIMIT_AS`` / ``RLIMIT_DATA`` less what it already maps); None when unknown."""
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    sizes = [_meminfo_available(), _cgroup_free(), _rlimit_free()]
    if sizes[0] is None:
        try:
            sizes[0] = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # not on this platform
            sizes[0] = None
    known = [s for s in sizes if s is not None and s >= 0]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    """The room left under a cgroup (v2, else v1) memory limit, None when unlimited."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


def _rlimit_free() -> int | None:
    """The room left under this process's address-space and data-segment limits (``ulimit
    -v`` / ``-d``: what it maps now, ``VmSize`` / ``VmData``, counts against them); None when
    unlimited or unknown."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    used = {}
    for line in status:
        key, _, rest = line.partition(":")
        if key in ("VmSize", "VmData") and rest.split():
            used[key] = int(rest.split()[0]) * 1024
    free = []
    for limit, key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY and key in used:
            free.append(max(0, soft - used[key]))
    return min(free) if free else None


class _LiveTensors(TorchDispatchMode):
    """Logs the memory of every storage an op makes: ``(+bytes, id)`` when made, ``(-bytes,
    id)`` when the last tensor seen holding it is freed. An output sharing a storage already
    logged (a view, ``_unsafe_view``) extends its life; one aliasing an input not logged (a
    view of the clip or of a weight, an in-place op) makes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, int]] = []
        self._held: dict[int, list[int]] = {}  # storage -> [bytes, id, tensors holding it]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        aliases = any(r.alias_info is not None for r in func._schema.returns)
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            key = t.untyped_storage()._cdata
            if key not in self._held:
                if aliases:
                    continue
                self._held[key] = [t.untyped_storage().nbytes(), len(self.log), 0]
                self.log.append(tuple(self._held[key][:2]))
            self._held[key][2] += 1
            weakref.finalize(t, self._release, key).atexit = False
        return out

    def entry(self, t: torch.Tensor | None) -> tuple[int, int]:
        """(bytes, id) of the logged storage holding ``t``; (0, -1) if none is."""
        held = self._held.get(t.untyped_storage()._cdata) if t is not None else None
        return (held[0], held[1]) if held else (0, -1)

    def _release(self, key: int) -> None:
        held = self._held[key]
        held[2] -= 1
        if held[2] == 0:
            self.log.append((-held[0], held[1]))
            del self._held[key]


_CONVS = (nn.Conv2d, nn.Conv3d)


def live_tensor_bytes(
    module: nn.Module,
    layers: Sequence[nn.Module],
    shape: tuple[int, ...],
    device: torch.device | None = None,
) -> tuple[int, int]:
    """``(peak, recorded)`` bytes of one no-grad, eval-mode forward of a zero clip of
    ``shape`` (the clip and the weights not counted): ``peak``, the most bytes of tensors alive
    at once when everything made from the first of ``layers`` to return on is kept (as
    autograd keeps it for a backward from those layers); ``recorded``, the bytes made from
    there on, that layer's output included. ``layers`` empty: the last module with a
    convolution to return a 5D volume with H x W > 1 (vidcam's automatic layer); if none
    does, everything is kept. On the meta device (shapes only: no memory; attention runs
    unfused there, so its matrices count) when ``device`` is None, else for real on
    ``device``. Kernels' own workspaces are not seen. Hooks and every module's train/eval
    flag are restored."""
    convs = {m for m in module.modules() if any(isinstance(c, _CONVS) for c in m.modules())}
    mode, cuts = _LiveTensors(), []

    def mark(m: nn.Module, _inputs: Any, out: Any) -> None:
        t = next((o for o in tree_leaves(out) if isinstance(o, torch.Tensor)), None)
        if m in layers or (
            not layers and m in convs and t is not None and t.dim() == 5
            and t.shape[-1] * t.shape[-2] > 1
        ):  # fmt: skip
            cuts.append((len(mode.log), *mode.entry(t)))

    flags = [(m, m.training) for m in module.modules()]
    handles = [m.register_forward_hook(mark) for m in {*layers, *convs}]
    try:
        module.eval()
        x = torch.zeros(shape, device=device or "meta")
        state = dict(module.named_parameters()) | dict(module.named_buffers())
        fake = {k: torch.empty_like(v, device="meta") for k, v in state.items() if device is None}
        with torch.no_grad(), mode:
            if device is None:
                functional_call(module, fake, (x,), strict=False)
            else:
                module(x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    cut, recorded, output = (min(cuts) if layers else max(cuts)) if cuts else (0, 0, -1)
    live = peak = 0
    for n, i in mode.log:
        if n > 0 or (i < cut and i != output):  # the layer's output and all after it: kept
            live += n
        recorded += n if n > 0 and i >= cut else 0
        peak = max(peak, live)
    return peak, recorded
