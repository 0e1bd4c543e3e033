"""The video pipeline: file -> explained frames -> annotated video.

Data flows one way, one module per step::

    decode (frames + times) -> sample (windows) -> preprocess (clips + geometry)
        -> engine (Explainer / guided_cam) -> project (maps on every source frame)
        -> render (overlay, text, importance strip) -> encode (H.264 / GIF)

Two passes over the file, both streaming:

1. **Explain**: decode, crop each frame to the model's size as it arrives, and run every
   window through the engine as soon as its frames are in. Each window's maps (downsampled to
   ~56 px, float16) go to a temporary spool file, its predictions and per-sample energies stay
   in memory. Only the crops a future window can still use are kept.
2. **Render**: decode again; every source frame gets its heatmap from the windows around it
   (:class:`~vidcam.project.MapBlender`), placed on the source pixel grid.

Because the per-frame importance of the whole video is known after pass 1, the importance
strip in the rendered video is complete from the first frame. Memory does not grow with the
video's length (the spool is on disk), and frames are never all held at once. Decoding runs
in a background thread in both passes, and encoding in another, so they overlap the model
and the renderer.

Choices worth knowing:

- Per-frame importance = the spatial mean of the un-normalised CAM of the first explained
  layer (``Explanation.raw``), interpolated and blended over windows like the maps, then
  divided by the video's maximum; so windows are comparable (the displayed maps are min-max
  normalised per window, as Grad-CAM maps usually are).
- ``target="topk:K"`` explains K classes per window; the displayed map is their per-pixel
  maximum (the union of their evidence). Guided methods show the first target's product.
- Heatmaps outside the model's centre crop are 0 (the model never saw those pixels).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import queue
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidcam.decode import DecodedFrame, VideoInfo, check_input, iter_frames, probe
from vidcam.encode import VideoEncoder, check_output_extension
from vidcam.errors import VidcamError
from vidcam.explainer import Explainer
from vidcam.models.spec import InputSpec, Reshape
from vidcam.preprocess import Geometry, Preprocessor
from vidcam.progress import Progress
from vidcam.project import MapBlender, MapSpool, SourcePlacer, TimeSupport, frame_importance
from vidcam.render import Panel, Renderer, colormap_lut, to_u8
from vidcam.sample import ClipSampler, WindowScheduler

METHODS = ("gradcam", "gradcam++", "guided-gradcam", "guided-gradcam++")
TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "guided-gradcam": "Guided Grad-CAM",
    "guided-gradcam++": "Guided Grad-CAM++",
}
_STORE_SIDE = 56  # heatmaps are spooled at about this many pixels on the short side
_TOP = 5  # predictions kept per window
_TOPK = re.compile(r"^topk:(\d+)$")


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowResult:
    """One explained window.

    Attributes:
        index: window number.
        frames: source frame index of each of the clip's samples.
        times: their times (seconds from the first frame).
        padded: the video was shorter than the clip; the last frame fills the rest.
        top: the model's top predictions ``(class index, probability, logit)``.
        targets: the explained class indices (empty when the model output has no classes).
    """

    index: int
    frames: tuple[int, ...]
    times: tuple[float, ...]
    padded: bool
    top: tuple[tuple[int, float, float], ...]
    targets: tuple[int, ...]

    def to_json(self, labels: Sequence[str] | None) -> dict[str, Any]:
        name = _namer(labels)
        return {
            "index": self.index,
            "start": round(self.times[0], 6),
            "end": round(self.times[-1], 6),
            "frames": list(self.frames),
            "padded": self.padded,
            "top": [
                {"index": c, "label": name(c), "prob": round(p, 6), "logit": round(s, 6)}
                for c, p, s in self.top
            ],
            "targets": [{"index": c, "label": name(c)} for c in self.targets],
        }


@dataclass(frozen=True)
class ExplainedFrame:
    """One source frame with its explanation.

    Attributes:
        index, time: frame number and time (seconds from the first frame).
        image: (H, W, 3) uint8 RGB source frame (upright).
        panels: title -> (H, W) heatmap in [0, 1] or (H, W, 3) image in [0, 1] (guided),
            float32 on the pipeline's device. The first is the requested method's.
        importance: the frame's importance in [0, 1] (1 = the video's most important frame).
        window: the window weighing most on this frame (its predictions label the frame).
    """

    index: int
    time: Fraction
    image: np.ndarray
    panels: dict[str, torch.Tensor]
    importance: float
    window: WindowResult

    @property
    def heatmap(self) -> torch.Tensor:
        """(H, W) the first heatmap panel."""
        for v in self.panels.values():
            if v.dim() == 2:
                return v
        raise VidcamError("this explanation has no heatmap panel (guided method only)")


@dataclass
class VideoExplanation:
    """A whole video's explanation.

    Attributes:
        heatmaps: (F, H, W) uint8 (value × 255) of the first heatmap panel, or None when not
            collected (``write_explained_video``).
        panels: title -> (F, H, W) uint8 heatmaps / (F, H, W, 3) uint8 images (all panels).
        times: (F,) frame times in seconds; importance: (F,) in [0, 1].
        windows: per-window predictions and sampled frames.
    """

    path: Path
    model: str
    method: str
    layers: tuple[str, ...]
    labels: Sequence[str] | None
    fps: float
    width: int
    height: int
    times: np.ndarray
    importance: np.ndarray
    windows: list[WindowResult]
    warnings: list[str] = field(default_factory=list)
    heatmaps: torch.Tensor | None = None
    panels: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.times.shape[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "input": str(self.path),
            "model": self.model,
            "method": self.method,
            "layers": list(self.layers),
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "duration": float(self.times[-1]) if self.frames else 0.0,
            "windows": [w.to_json(self.labels) for w in self.windows],
            "times": [round(float(t), 6) for t in self.times],
            "importance": [round(float(v), 6) for v in self.importance],
            "warnings": list(self.warnings),
        }


# -- argument resolution ----------------------------------------------------------------------


def resolve_device(device: str | torch.device, model: nn.Module | None = None) -> torch.device:
    """ "auto" -> the module's device (if given) or cuda when available, else cpu."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if model is not None:
            p = next(model.parameters(), None)
            if p is not None:
                return p.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VidcamError(
            f"device {device!r} requested but CUDA is not available here; use --device cpu"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise VidcamError(f"device {device!r} is not one of auto, cpu, cuda") from None


def resolve_target(target: str | int | None, labels: Sequence[str] | None) -> str | int:
    """ "top1" | "topk:K" | class index | class name (matched against ``labels``)."""
    if target is None:
        return "top1"
    if isinstance(target, int):
        return _check_index(target, labels)
    text = str(target).strip()
    if text.lower() == "top1":
        return "top1"
    m = _TOPK.match(text.lower())
    if m:
        if int(m.group(1)) < 1:
            raise VidcamError(f"target {text!r}: K must be >= 1")
        return f"topk:{int(m.group(1))}"
    if re.fullmatch(r"\d+", text):
        return _check_index(int(text), labels)
    if not labels:
        raise VidcamError(
            f"target {text!r}: this model has no class names; give a class index, top1 or topk:K"
        )
    key = _norm(text)
    for i, name in enumerate(labels):
        if _norm(name) == key:
            return i
    close = difflib.get_close_matches(text, list(labels), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise VidcamError(f"target {text!r} is not a class of this model{hint}")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


def _check_index(i: int, labels: Sequence[str] | None) -> int:
    if i < 0 or (labels and i >= len(labels)):
        n = f" (0..{len(labels) - 1})" if labels else ""
        raise VidcamError(f"target class index {i} is out of range{n}")
    return i


def _namer(labels: Sequence[str] | None):
    def name(c: int) -> str:
        return labels[c] if labels and 0 <= c < len(labels) else f"class {c}"

    return name


@dataclass(frozen=True)
class _Model:
    module: nn.Module
    name: str
    spec: InputSpec
    layer: Any
    reshape: Reshape | None
    labels: Sequence[str] | None


def _load_model(
    model: str | nn.Module,
    spec: InputSpec | None,
    labels: Sequence[str] | None,
    layer: Any,
    weights: str | None,
    pretrained: bool,
    device: str | torch.device,
    progress: bool,
) -> tuple[_Model, torch.device]:
    if isinstance(model, nn.Module):
        if spec is None:
            raise VidcamError(
                "spec: a model passed as nn.Module needs its InputSpec (clip length, crop, "
                "resize, mean/std, fps or stride)"
            )
        dev = resolve_device(device, model)
        module = model.to(dev)
        return _Model(module, type(model).__name__, spec, layer, None, labels), dev
    if not isinstance(model, str):
        raise VidcamError(f"model: expected a name or an nn.Module, got {type(model).__name__}")
    from vidcam.models.registry import load_model

    dev = resolve_device(device)
    loaded = load_model(
        model, weights=weights, pretrained=pretrained, device=dev, progress=progress
    )
    ms = loaded.spec
    chosen = layer if layer is not None else (list(ms.layers) if ms.layers else None)
    if isinstance(chosen, list) and len(chosen) == 1:
        chosen = chosen[0]
    return (
        _Model(
            module=loaded.model,
            name=ms.name,
            spec=spec or ms.input,
            layer=chosen,
            reshape=ms.reshape,
            labels=labels if labels is not None else loaded.labels,
        ),
        dev,
    )


# -- pass 1: explain --------------------------------------------------------------------------


class VideoAnalysis:
    """Pass 1 result: windows, per-frame importance, spooled maps; :meth:`frames` is pass 2.

    Close it (or use ``with``) to delete the spool file.
    """

    def __init__(
        self,
        info: VideoInfo,
        geometry: Geometry,
        device: torch.device,
        model: _Model,
        method: str,
        layers: tuple[str, ...],
        titles: list[str],
        margin: float,
    ) -> None:
        self.info = info
        self.geometry = geometry
        self.device = device
        self.model = model
        self.method = method
        self.layers = layers
        self.titles = titles
        self.margin = margin
        self.windows: list[WindowResult] = []
        self.energies: list[torch.Tensor] = []
        self.times = np.zeros(0)
        self.importance = np.zeros(0)
        self.warnings: list[str] = []
        self.spool = MapSpool()

    @property
    def supports(self) -> list[TimeSupport]:
        return [TimeSupport(w.times, self.margin) for w in self.windows]

    def finish(self, times: list[float]) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        raw = frame_importance(self.supports, self.energies, self.times)
        peak = float(raw.max()) if raw.size else 0.0
        self.importance = (raw / peak if peak > 0 else raw).astype(np.float32)

    def summary(self) -> VideoExplanation:
        return VideoExplanation(
            path=self.info.path,
            model=self.model.name,
            method=self.method,
            layers=self.layers,
            labels=self.model.labels,
            fps=float(self.info.fps),
            width=self.info.width,
            height=self.info.height,
            times=self.times,
            importance=self.importance,
            windows=self.windows,
            warnings=list(self.warnings),
        )

    def blended(
        self, *, progress: bool = False
    ) -> Iterator[tuple[DecodedFrame, dict[str, torch.Tensor], WindowResult]]:
        """Pass 2 core: decode again; per frame, the windows' maps blended in crop space
        ({title: (h, w) heat | (h, w, 3) image}) and the window weighing most on it."""
        dev = self.device
        blender = MapBlender(
            self.supports,
            lambda i: {k: _as_float(v.to(dev)) for k, v in self.spool.get(i).items()},
        )
        n = len(self.times)
        bar = Progress(n, unit="frames", desc="rendering", enabled=progress)
        decoded = _Prefetch(iter_frames(self.info.path, self.info, warn=False))
        try:
            for frame in decoded:
                if frame.index >= n:
                    break
                maps, weights = blender.at(float(frame.time))
                yield frame, maps, self.windows[max(weights, key=weights.get)]
                bar.update(1)
        finally:
            decoded.close()
            bar.close()

    def frames(self, *, progress: bool = False) -> Iterator[ExplainedFrame]:
        """Pass 2 for the API: every frame with its maps on the source grid (torch)."""
        placers: dict[str, SourcePlacer] = {}
        for frame, maps, window in self.blended(progress=progress):
            panels: dict[str, torch.Tensor] = {}
            for title in self.titles:
                m = maps[title]
                image = m.dim() == 3
                if title not in placers:
                    size = tuple(m.shape[:2])
                    placers[title] = SourcePlacer(
                        self.geometry, size, fill=0.5 if image else 0.0, device=self.device
                    )
                if image:  # guided product (h, w, 3), mid grey outside the crop
                    panels[title] = placers[title](m.permute(2, 0, 1)).permute(1, 2, 0)
                else:
                    panels[title] = placers[title](m).clamp_(0, 1)
            yield ExplainedFrame(
                index=frame.index,
                time=frame.time,
                image=frame.image,
                panels=panels,
                importance=float(self.importance[frame.index]),
                window=window,
            )

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> VideoAnalysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_float(v: torch.Tensor) -> torch.Tensor:
    return v.float().div_(255.0) if v.dtype == torch.uint8 else v.float()


class _Prefetch:
    """Runs an iterator in a background thread, up to ``depth`` items ahead (decoding overlaps
    the model and the renderer). Errors re-raise in the consumer; ``close`` stops the thread."""

    _END = object()

    def __init__(self, it: Iterator[Any], depth: int = 8) -> None:
        self._it = it
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidcam-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._it:
                if not self._put((item, None)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put((self._END, exc))
        finally:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, exc = self._q.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _Behind:
    """Calls ``fn(*args)`` in a background thread, in order, up to ``depth`` calls behind (the
    encoder works while the next frame renders). An error in ``fn`` re-raises in the caller."""

    def __init__(self, fn, depth: int = 8) -> None:
        self._fn = fn
        self._q: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidcam-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            args = self._q.get()
            if args is None:
                return
            if self._error is None:
                try:
                    self._fn(*args)
                except BaseException as exc:  # re-raised in the caller
                    self._error = exc

    def __call__(self, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(args)

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._error = self._error or exc  # drop what is queued
        self._q.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error


def analyze(
    path: str | Path,
    *,
    model: str | nn.Module = "i3d",
    spec: InputSpec | None = None,
    labels: Sequence[str] | None = None,
    layer: Any = None,
    method: str = "gradcam++",
    softmax: bool = False,
    target: str | int | None = "top1",
    clip_len: int | None = None,
    stride: int | None = None,
    device: str | torch.device = "auto",
    weights: str | None = None,
    pretrained: bool = True,
    progress: bool = True,
    side_by_side: bool = False,
    batch_size: int = 1,
) -> VideoAnalysis:
    """Pass 1 (see the module docstring). Arguments as in :func:`explain_video`."""
    if method not in METHODS:
        raise VidcamError(f"method {method!r} is not one of {', '.join(METHODS)}")
    if batch_size < 1:
        raise VidcamError(f"batch_size must be >= 1, got {batch_size}")
    info = probe(path)
    m, dev = _load_model(model, spec, labels, layer, weights, pretrained, device, progress)
    sampler = ClipSampler.from_spec(m.spec, clip_len=clip_len, hop=stride)
    tgt = resolve_target(target, m.labels)
    guided = method.startswith("guided-")
    cam_method = method.removeprefix("guided-")
    titles = [TITLES[method]]
    explainers = {
        TITLES[cam_method]: Explainer(
            m.module, m.layer, method=cam_method, softmax=softmax, reshape=m.reshape
        )
    }
    if side_by_side:
        if guided:
            titles = [TITLES[cam_method], TITLES[method]]
        else:
            other = "gradcam" if cam_method == "gradcam++" else "gradcam++"
            explainers[TITLES[other]] = Explainer(
                m.module, m.layer, method=other, reshape=m.reshape
            )
            titles = [TITLES["gradcam"], TITLES["gradcam++"]]
    pre = Preprocessor(m.spec, info.height, info.width, dev)
    if sampler.fps is not None:
        margin = float(sampler.period) / 2
    else:
        margin = float(sampler.stride / info.fps) / 2
    ch, cw = m.spec.crop
    f = max(1, min(ch, cw) // _STORE_SIDE)
    store = (math.ceil(ch / f), math.ceil(cw / f))
    analysis = VideoAnalysis(info, pre.geometry, dev, m, method, (), titles, margin)
    run = _WindowRunner(analysis, m, explainers, titles, tgt, guided, cam_method, softmax, store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _explain_pass(info, pre, sampler, run, batch_size, progress)
        except BaseException:
            analysis.close()
            raise
    seen: dict[str, list] = {}
    for w in caught:
        seen.setdefault(str(w.message), [w, 0])[1] += 1
    for text, (w, count) in seen.items():
        msg = text if count == 1 else f"{text} (x{count})"
        analysis.warnings.append(msg)
        warnings.warn_explicit(msg, w.category, w.filename, w.lineno)
    return analysis


def _explain_pass(info, pre, sampler, run, batch_size: int, progress: bool) -> None:
    sched = WindowScheduler(sampler)
    crops: dict[int, torch.Tensor] = {}
    times: list[float] = []
    pending = []
    bar = Progress(info.frames, unit="frames", desc="explaining", enabled=progress)
    decoded = _Prefetch(iter_frames(info.path, info))
    try:
        for frame in decoded:
            crops[frame.index] = pre.frame(frame.image)
            times.append(float(frame.time))
            pending.extend(sched.push(frame.time))
            while len(pending) >= batch_size:
                run(pending[:batch_size], crops, pre)
                pending = pending[batch_size:]
            keep = min([sched.oldest_needed()] + [w.frames[0] for w in pending])
            for i in [i for i in crops if i < keep]:
                del crops[i]
            sched.drop_before(keep)
            bar.update(1)
        pending.extend(sched.finish())
        while pending:
            run(pending[:batch_size], crops, pre)
            pending = pending[batch_size:]
    finally:
        decoded.close()
        bar.close()
    run.analysis.finish(times)


class _WindowRunner:
    """Runs a batch of windows through the engine and records/spools the results."""

    def __init__(
        self, analysis, m, explainers, titles, target, guided, cam_method, softmax, store
    ) -> None:
        self.analysis = analysis
        self.m = m
        self.explainers = explainers
        self.titles = titles
        self.target = target
        self.guided = guided
        self.cam_method = cam_method
        self.softmax = softmax
        self.store = store

    def __call__(self, batch, crops, pre) -> None:
        clip = torch.cat([pre.clip([crops[i] for i in w.frames]) for w in batch])
        out: dict[str, torch.Tensor] = {}
        first = TITLES[self.cam_method]
        if self.guided:
            from vidcam.guided import guided_cam, normalize_per_clip

            g = guided_cam(
                self.m.module,
                clip,
                self.target,
                layer=self.m.layer,
                method=self.cam_method,
                softmax=self.softmax,
                reshape=self.m.reshape,
            )
            res = g.cam
            out[TITLES["guided-" + self.cam_method]] = (
                torch.stack([normalize_per_clip(g.product[n, 0]) for n in range(clip.shape[0])])
                .mul(255)
                .round()
                .to(torch.uint8)
            )  # (B, T, H, W, 3)
        else:
            res = self.explainers[first](clip, self.target)
        targets = res.targets
        out[first] = self._heat(res.maps)
        for title, ex in self.explainers.items():
            if title != first:
                other = ex(clip, targets if targets is not None else self.target)
                out[title] = self._heat(other.maps)
        if not self.analysis.layers:
            self.analysis.layers = res.layers
        energy = self._energy(res.raw, clip.shape[2])  # (B, T)
        for n, w in enumerate(batch):
            top = ()
            if res.probs is not None:
                p, c = res.probs[n].topk(min(_TOP, res.probs.shape[1]))
                logits = res.logits[n, c]
                top = tuple(
                    (int(ci), float(pi), float(li))
                    for ci, pi, li in zip(c.tolist(), p.tolist(), logits.tolist(), strict=True)
                )
            self.analysis.windows.append(
                WindowResult(
                    index=w.index,
                    frames=w.frames,
                    times=tuple(float(t) for t in w.times),
                    padded=w.padded,
                    top=top,
                    targets=tuple(targets[n].tolist()) if targets is not None else (),
                )
            )
            self.analysis.energies.append(energy[n].double().cpu())
            self.analysis.spool.put({k: v[n] for k, v in out.items() if k in self.titles})

    def _heat(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, K, T, h, w) -> (B, T, h', w') float16 at the spool size (max over targets)."""
        m = maps.amax(1)
        if tuple(m.shape[-2:]) != self.store:
            m = F.adaptive_avg_pool2d(m, self.store)
        return m.half()

    @staticmethod
    def _energy(raw: torch.Tensor, T: int) -> torch.Tensor:
        """(B, K, t, h, w) un-normalised CAM -> (B, T) spatial mean, linear in time."""
        e = raw.amax(1).float().mean(dim=(-2, -1))  # (B, t)
        if e.shape[1] != T:
            e = F.interpolate(e[:, None], size=T, mode="linear", align_corners=False)[:, 0]
        return e


# -- public API -------------------------------------------------------------------------------


def iter_explained_frames(path: str | Path, **kwargs: Any) -> Iterator[ExplainedFrame]:
    """Stream every frame of ``path`` with its explanation (arguments of
    :func:`explain_video`); memory stays bounded however long the video is."""
    progress = kwargs.get("progress", True)
    with analyze(path, **kwargs) as analysis:
        yield from analysis.frames(progress=progress)


def explain_video(
    path: str | Path,
    *,
    model: str | nn.Module = "i3d",
    spec: InputSpec | None = None,
    labels: Sequence[str] | None = None,
    layer: Any = None,
    method: str = "gradcam++",
    softmax: bool = False,
    target: str | int | None = "top1",
    clip_len: int | None = None,
    stride: int | None = None,
    device: str | torch.device = "auto",
    weights: str | None = None,
    pretrained: bool = True,
    progress: bool = True,
    side_by_side: bool = False,
    batch_size: int = 1,
) -> VideoExplanation:
    """Explain a video file: per-frame heatmaps at the source resolution, per-window predictions,
    per-frame importance.

    Args:
        path: the video file.
        model: a registered model name (``vidcam models``) or an ``nn.Module`` (then ``spec``
            is required; ``labels`` optional).
        spec: how to feed the model (overrides the registered model's).
        labels: class names (default: the registered model's).
        layer: layer(s) to explain (default: the model's registered layers, else automatic).
        method: "gradcam", "gradcam++", "guided-gradcam" or "guided-gradcam++".
        softmax: Grad-CAM++'s softmax-score variant.
        target: "top1" (each window's own top class), "topk:K" (maps of the K top classes,
            combined by their per-pixel maximum), a class index or a class name.
        clip_len: samples per window (default: the model's).
        stride: window hop in samples (default: clip_len // 2, i.e. 50 % overlap).
        device: "auto", "cpu" or "cuda".
        weights, pretrained: passed to the model registry.
        progress: progress lines on stderr.
        side_by_side: also compute the companion panel (Grad-CAM | Grad-CAM++, or the CAM next
            to the guided product).
        batch_size: windows per engine call.

    The heatmaps of all frames are collected as uint8 (F, H, W): for long videos use
    :func:`iter_explained_frames` or :func:`write_explained_video`, which stream.
    """
    kwargs = dict(
        model=model,
        spec=spec,
        labels=labels,
        layer=layer,
        method=method,
        softmax=softmax,
        target=target,
        clip_len=clip_len,
        stride=stride,
        device=device,
        weights=weights,
        pretrained=pretrained,
        progress=progress,
        side_by_side=side_by_side,
        batch_size=batch_size,
    )
    with analyze(path, **kwargs) as analysis:
        collected: dict[str, list[torch.Tensor]] = {t: [] for t in analysis.titles}
        for fr in analysis.frames(progress=progress):
            for title, v in fr.panels.items():
                collected[title].append(v.mul(255).round_().to(torch.uint8).cpu())
        result = analysis.summary()
    result.panels = {t: torch.stack(v) for t, v in collected.items() if v}
    heat = [t for t, v in result.panels.items() if v.dim() == 3]
    result.heatmaps = result.panels[heat[0]] if heat else None
    return result


def check_paths(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    json_path: str | Path | None = None,
) -> tuple[Path, Path]:
    """Validate input and output(s) before any work; returns (input, output) paths."""
    src = check_input(path)
    out = Path(output)
    check_output_extension(out)
    targets = [("output", out)] + ([("--json", Path(json_path))] if json_path else [])
    for what, p in targets:
        if p.exists() and p.is_dir():
            raise VidcamError(f"{what} {str(p)!r} is a directory; give a file name")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise VidcamError(f"{what} directory {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise VidcamError(f"{what} directory {str(parent)!r} is not writable")
        if p.resolve() == src.resolve() or (p.exists() and os.path.samefile(p, src)):
            raise VidcamError(f"{what} {str(p)!r} is the input file; choose another name")
        if p.exists() and not overwrite:
            raise VidcamError(f"{what} {str(p)!r} already exists; pass --overwrite to replace it")
    if json_path and Path(json_path).resolve() == out.resolve():
        raise VidcamError("--json and the output video must be different files")
    return src, out


def write_explained_video(
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    alpha: float = 0.5,
    colormap: str = "jet",
    json_path: str | Path | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> VideoExplanation:
    """Explain ``path`` and write the annotated video to ``output`` (.mp4/.mov/.mkv/.gif),
    plus, with ``json_path``, the per-window predictions and per-frame importance as JSON.

    Streams both passes; ``output`` appears only when complete. Other keyword arguments as in
    :func:`explain_video`. Returns the explanation without per-frame heatmaps.
    """
    src, out = check_paths(path, output, overwrite=overwrite, json_path=json_path)
    colormap_lut(colormap)
    if not 0.0 <= alpha <= 1.0:
        raise VidcamError(f"alpha must be between 0 and 1, got {alpha}")
    with analyze(src, progress=progress, **kwargs) as analysis:
        info = analysis.info
        name = _namer(analysis.model.labels)
        renderer = Renderer(
            info.height,
            info.width,
            colormap=colormap,
            alpha=alpha,
            importance=analysis.importance,
            times=analysis.times,
            crop_box=analysis.geometry.crop_box(),
        )
        n_panels = len(analysis.titles)
        with (
            VideoEncoder(
                out,
                width=info.width * n_panels,
                height=info.height,
                fps=info.fps,
                time_base=info.time_base,
                audio_from=src if info.has_audio else None,
                audio_offset=info.start,
            ) as enc,
            _Behind(enc.write) as write,
        ):
            placers: dict[str, SourcePlacer] = {}
            for frame, maps, window in analysis.blended(progress=progress):
                panels = []
                for title in analysis.titles:
                    m = to_u8(maps[title].cpu().numpy())
                    if title not in placers:
                        fill = 0.5 if m.ndim == 3 else 0.0
                        placers[title] = SourcePlacer(analysis.geometry, m.shape[:2], fill=fill)
                    placed = placers[title].place_u8(m)
                    panels.append(
                        Panel(title, image=placed) if m.ndim == 3 else Panel(title, heat=placed)
                    )
                image = renderer(
                    frame.image,
                    panels,
                    time=float(frame.time),
                    frame=frame.index,
                    lines=_caption(window, name),
                )
                write(image, frame.time)
        result = analysis.summary()
    if json_path:
        _write_json(Path(json_path), result.to_json())
    return result


def _caption(w: WindowResult, name) -> list[str]:
    if not w.top:
        return []
    c, p, _ = w.top[0]
    lines = [f"{name(c)} {p:.0%}"]
    probs = {ci: pi for ci, pi, _ in w.top}
    others = [t for t in w.targets if t != c]
    if others:
        shown = ", ".join(
            f"{name(t)}" + (f" {probs[t]:.0%}" if t in probs else "") for t in others[:3]
        )
        lines.append(f"explaining: {shown}")
    return lines


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
