"""Pass 1, explain: decode -> sample windows -> preprocess -> model + explainer -> spool.

:func:`analyze` crops each frame to the model's size as it arrives (keeping only the crops a
future window can still use) and runs every window through the engine as soon as its frames
are in (:class:`~vidcam.video.explain_windows.WindowExplainer`). It returns the
:class:`~vidcam.video.analysis.VideoAnalysis` that pass 2 renders from. Warnings raised while
explaining (e.g. constant maps) are reported once each, with a count.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcam.cam.explainer import Explainer
from vidcam.cam.targets import resolve_target
from vidcam.errors import VidcamError
from vidcam.models.spec import InputSpec
from vidcam.progress import Progress
from vidcam.video.analysis import VideoAnalysis
from vidcam.video.decode import VideoInfo, iter_frames, probe
from vidcam.video.explain_windows import WindowExplainer
from vidcam.video.preprocess import Preprocessor
from vidcam.video.results import METHODS, TITLES
from vidcam.video.sample import ClipSampler, WindowScheduler
from vidcam.video.setup import load_pipeline_model
from vidcam.video.threads import Prefetch

_STORE_SIDE = 56  # heatmaps are spooled at about this many pixels on the short side


@dataclass(frozen=True)
class ExplainOptions:
    """The keyword arguments of :func:`~vidcam.video.pipeline.explain_video` (documented there)."""

    model: str | nn.Module = "i3d"
    spec: InputSpec | None = None
    labels: Sequence[str] | None = None
    layer: Any = None
    method: str = "gradcam++"
    softmax: bool = False
    target: str | int | None = "top1"
    clip_len: int | None = None
    stride: int | None = None
    device: str | torch.device = "auto"
    weights: str | None = None
    pretrained: bool = True
    progress: bool = True
    side_by_side: bool = False
    batch_size: int = 1
    normalize: str = "clip"

    def __post_init__(self) -> None:
        if self.normalize not in ("clip", "frame"):
            raise VidcamError(f"normalize {self.normalize!r} must be 'clip' or 'frame'")
        if self.method not in METHODS:
            raise VidcamError(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.batch_size < 1:
            raise VidcamError(f"batch_size must be >= 1, got {self.batch_size}")


def analyze(path: str | Path, **options: Any) -> VideoAnalysis:
    """Pass 1 (see the module docstring). Keyword arguments: :class:`ExplainOptions`."""
    o = ExplainOptions(**options)
    info = probe(path)
    m, dev = load_pipeline_model(
        o.model, o.spec, o.labels, o.layer, o.weights, o.pretrained, o.device, o.progress
    )
    sampler = ClipSampler.from_spec(m.spec, clip_len=o.clip_len, hop=o.stride)
    tgt = resolve_target(o.target, m.labels)
    cam_method = o.method.removeprefix("guided-")
    titles = [TITLES[o.method]]
    explainers = {
        TITLES[cam_method]: Explainer(
            m.module, m.layer, method=cam_method, softmax=o.softmax, reshape=m.reshape
        )
    }
    if o.side_by_side:
        if o.method.startswith("guided-"):
            titles = [TITLES[cam_method], TITLES[o.method]]
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
    analysis = VideoAnalysis(info, pre.geometry, dev, m, o.method, (), titles, margin)
    run = WindowExplainer(analysis, explainers, tgt, o.method, o.softmax, store, o.normalize)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _explain_pass(info, pre, sampler, run, o.batch_size, o.progress)
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


def _explain_pass(
    info: VideoInfo,
    pre: Preprocessor,
    sampler: ClipSampler,
    run: WindowExplainer,
    batch_size: int,
    progress: bool,
) -> None:
    sched = WindowScheduler(sampler)
    crops: dict[int, torch.Tensor] = {}
    times: list[float] = []
    pending = []
    bar = Progress(info.frames, unit="frames", desc="explaining", enabled=progress)
    decoded = Prefetch(iter_frames(info.path, info))
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
