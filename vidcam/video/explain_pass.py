"""Pass 1, explain: decode -> sample windows -> preprocess -> model + explainer -> spool.

:func:`explain_pass` picks the spatial mode (:func:`~vidcam.video.spatial.plan_spatial`: the
whole frame, tiles or the centre crop), cuts each frame to that window as it arrives (keeping
only the windows a future clip can still use) and runs every clip through the engine as soon as
its frames are in (:class:`~vidcam.video.window_engine.WindowExplainer`; tiles are split,
explained in one engine call and stitched there; what each window keeps:
:mod:`vidcam.video.window_outputs`). It returns a :class:`~vidcam.video.results.VideoAnalysis`
record (windows, per-frame importance, spooled maps) that pass 2
(:mod:`vidcam.video.map_pass`) reads. Warnings raised while explaining (e.g. constant maps)
are reported once each, with a count.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import torch

from vidcam.cam.maps import ConstantMapWarning
from vidcam.cam.methods import Method
from vidcam.cam.targets import parse_target
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.open import open_model
from vidcam.progress import Progress
from vidcam.video.batching import BatchPlan
from vidcam.video.decode import VideoSource
from vidcam.video.memory import auto_batch_size, check_memory
from vidcam.video.options import ExplainOptions
from vidcam.video.preprocess import Preprocessor
from vidcam.video.results import VideoAnalysis
from vidcam.video.sample import ClipSampler, Window, WindowScheduler
from vidcam.video.shots import CutDetector
from vidcam.video.spatial import SpatialPlan, plan_spatial
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import TimeSupport, frame_importance, window_supports
from vidcam.video.window_engine import WindowExplainer
from vidcam.video.window_outputs import WindowOutputs

__all__ = ["WindowExplainer", "explain_pass"]

_STORE_SIDE = 56  # heatmaps are spooled at about this many pixels on the short side


def explain_pass(source: VideoSource, o: ExplainOptions) -> VideoAnalysis:
    """Pass 1 (see the module docstring) over ``source`` with options ``o``."""
    m = open_model(
        o.model,
        spec=o.spec,
        labels=o.labels,
        layer=o.layer,
        weights=o.weights,
        pretrained=o.pretrained,
        card=o.card,
        device=o.device,
        progress=o.progress,
    )
    panels = _panels(o)
    info = source.info
    sampler = ClipSampler.from_spec(m.input, clip_len=o.clip_len, hop=o.stride)
    target = parse_target(o.target, m.labels)
    plan = plan_spatial(m, o.spatial, info.height, info.width, sampler.clip_len)
    frame_hw = (info.height, info.width)  # the window's memory, from the model's activations:
    check_memory(m.input, sampler.clip_len, o.batch_size or 1, frame_hw, plan.mode, m.device, m)
    pre = Preprocessor(m.input, info.height, info.width, m.device, plan.geometry)
    run = WindowExplainer(m, o, target, _store_size(plan), plan, panels)
    batch = _batch_plan(o, m, sampler.clip_len, frame_hw, plan)
    cuts = CutDetector()  # shot cuts: a held map never crosses one (see to_source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            times = _decode_and_explain(source, pre, sampler, run, batch, o.progress, cuts)
        except BaseException:
            run.outputs.spool.close()
            raise
    messages = _reissue(caught, plan.mode == "tiles")
    out = run.outputs
    supports, frame_times, importance = _importance(out, sampler, info.fps, times, cuts.cuts)
    return VideoAnalysis(
        source=source,
        geometry=pre.geometry,
        model=m,
        method=o.the_method,
        panels=panels,
        layers=out.layers,
        windows=out.windows,
        supports=supports,
        times=frame_times,
        importance=importance,
        spool=out.spool,
        warnings=messages,
        spatial=plan.mode,
        cost=out.cost,
        cuts=tuple(cuts.cuts),
    )


def _panels(o: ExplainOptions) -> tuple[Method, ...]:
    """The panels shown (:attr:`ExplainOptions.panels`); only the main method may be a guided
    one."""
    panels = o.panels
    stray = [p.id for p in panels if p.guided and p != o.the_method]
    if stray:
        raise VidcamError(
            f"side_by_side: the guided panel {stray[0]!r} needs --method {stray[0]} (only the "
            "main method gets a guided pass)"
        )
    return panels


def _store_size(plan: SpatialPlan) -> tuple[int, int]:
    """(h, w) the maps are spooled at: the window the maps cover, about :data:`_STORE_SIDE`
    on its short side."""
    ch, cw = plan.geometry.crop
    f = max(1, min(ch, cw) // _STORE_SIDE)
    return (math.ceil(ch / f), math.ceil(cw / f))


def _batch_plan(
    o: ExplainOptions,
    m: ModelHandle,
    clip_len: int,
    frame_hw: tuple[int, int],
    plan: SpatialPlan,
) -> BatchPlan:
    """Windows per engine call: ``o.batch_size``, or the memory's bound (tuned on the CPU)."""
    if o.batch_size:
        return BatchPlan(o.batch_size, tune=False)
    upper = auto_batch_size(m.input, clip_len, frame_hw, plan.mode, m.device, m)
    return BatchPlan.auto(upper, m.device)


def _reissue(caught: list[warnings.WarningMessage], tiles: bool) -> list[str]:
    """Warn once per distinct text of ``caught``, with a count; returns the texts issued."""
    seen: dict[str, list] = {}
    for w in caught:
        text, count = str(w.message), 1
        if isinstance(w.message, ConstantMapWarning):  # per engine call -> per window (tile)
            text, count = _per_window(w.message, tiles)
        seen.setdefault(text, [w, 0])[1] += count
    messages = []
    for text, (w, count) in seen.items():
        msg = text if count == 1 else f"{text} (x{count})"
        messages.append(msg)
        warnings.warn_explicit(msg, w.category, w.filename, w.lineno)
    return messages


def _importance(
    out: WindowOutputs, sampler: ClipSampler, fps: Fraction, times: list[float], cuts: list[int]
) -> tuple[list[TimeSupport], np.ndarray, np.ndarray]:
    """(each window's time support, (F,) float64 frame times, (F,) float32 per-frame
    importance in [0, 1]) from the windows' temporal energy; ``cuts``: frame indices where a
    shot starts (a held slice does not cross one)."""
    if sampler.fps is not None:
        margin = float(sampler.period) / 2
    else:
        margin = float(sampler.stride / fps) / 2
    T = sampler.clip_len
    supports = window_supports(out.windows, out.energies, T, out.slices or T, margin)
    frame_times = np.asarray(times, dtype=np.float64)
    raw = frame_importance(
        supports, out.energies, frame_times, frame_times[np.asarray(cuts, dtype=int)]
    )
    peak = float(raw.max()) if raw.size else 0.0
    return supports, frame_times, (raw / peak if peak > 0 else raw).astype(np.float32)


def _per_window(w: ConstantMapWarning, tiles: bool) -> tuple[str, int]:
    """The engine's constant-map warning (indexed by sample in one call) as a video's: its text
    and how many windows (tiles) it concerns, so the count does not depend on batching."""
    where = "a tile of a window; that tile shows" if tiles else "a window; it shows"
    text = (
        f"the map at layer(s) {', '.join(w.layers)} is constant (e.g. zero gradients) in "
        f"{where} no heat"
    )
    return text, len({n for n, _ in w.pairs})


def _decode_and_explain(
    source: VideoSource,
    pre: Preprocessor,
    sampler: ClipSampler,
    run: WindowExplainer,
    batch: BatchPlan,
    progress: bool,
    cuts: CutDetector,
) -> list[float]:
    """Stream the frames, explain windows as they complete (``batch`` says how many per engine
    call) and find the shot cuts (``cuts``); returns every frame's time."""
    sched = WindowScheduler(sampler)
    crops: dict[int, torch.Tensor] = {}
    times: list[float] = []
    pending: list[Window] = []
    bar = Progress(source.info.frames, unit="frames", desc="explaining", enabled=progress)
    decoded = Prefetch(source.frames())
    try:
        for frame in decoded:
            crops[frame.index] = pre.frame(frame.image)
            times.append(float(frame.time))
            cuts.push(frame.image)
            pending.extend(sched.push(frame.time))
            while len(pending) >= batch.size():
                pending = _run_batch(run, batch, pending, crops, pre)
            keep = min([sched.oldest_needed()] + [w.frames[0] for w in pending])
            for i in [i for i in crops if i < keep]:
                del crops[i]
            sched.drop_before(keep)
            bar.update(1)
        cuts.finish()
        pending.extend(sched.finish())
        while pending:
            pending = _run_batch(run, batch, pending, crops, pre)
    finally:
        decoded.close()
        bar.close()
    return times


def _run_batch(
    run: WindowExplainer,
    batch: BatchPlan,
    pending: list[Window],
    crops: dict[int, torch.Tensor],
    pre: Preprocessor,
) -> list[Window]:
    """Explain the next ``batch.size()`` pending windows (timed for the plan); the rest."""
    n = batch.size()
    windows, rest = pending[:n], pending[n:]
    began = batch.clock()
    run(windows, crops, pre)
    batch.done(len(windows), batch.clock() - began)
    if run.fits < n:
        batch.cap(int(run.fits))
    return rest
