"""Pass 1, explain: decode -> sample windows -> preprocess -> model + explainer -> spool.

:func:`explain_pass` crops each frame to the model's size as it arrives (keeping only the
crops a future window can still use) and runs every window through the engine as soon as its
frames are in (:class:`WindowExplainer`). It returns a :class:`~vidcam.video.results.VideoAnalysis`
record (windows, per-frame importance, spooled maps) that pass 2
(:mod:`vidcam.video.map_pass`) reads. Warnings raised while explaining (e.g. constant maps)
are reported once each, with a count.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidcam.cam.explainer import Explainer
from vidcam.cam.methods import Method
from vidcam.cam.targets import Target, resolve_target
from vidcam.errors import VidcamError
from vidcam.models.record import ModelRecord, resolve_model
from vidcam.progress import Progress
from vidcam.video.decode import VideoSource
from vidcam.video.preprocess import Preprocessor
from vidcam.video.results import VideoAnalysis, WindowResult
from vidcam.video.sample import ClipSampler, Window, WindowScheduler
from vidcam.video.scale import to_spool
from vidcam.video.setup import ExplainOptions
from vidcam.video.spool import MapSpool
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import TimeSupport, frame_importance

_STORE_SIDE = 56  # heatmaps are spooled at about this many pixels on the short side
_TOP = 5  # predictions kept per window


def explain_pass(source: VideoSource, o: ExplainOptions) -> VideoAnalysis:
    """Pass 1 (see the module docstring) over ``source`` with options ``o``."""
    m = resolve_model(
        o.model,
        spec=o.spec,
        labels=o.labels,
        layer=o.layer,
        weights=o.weights,
        pretrained=o.pretrained,
        device=o.device,
        progress=o.progress,
    )
    info = source.info
    sampler = ClipSampler.from_spec(m.input, clip_len=o.clip_len, hop=o.stride)
    target = resolve_target(o.target, m.labels)
    pre = Preprocessor(m.input, info.height, info.width, m.device)
    if sampler.fps is not None:
        margin = float(sampler.period) / 2
    else:
        margin = float(sampler.stride / info.fps) / 2
    ch, cw = m.input.crop
    f = max(1, min(ch, cw) // _STORE_SIDE)
    store = (math.ceil(ch / f), math.ceil(cw / f))
    run = WindowExplainer(m, o, target, store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            times = _decode_and_explain(source, pre, sampler, run, o.batch_size, o.progress)
        except BaseException:
            run.spool.close()
            raise
    seen: dict[str, list] = {}
    for w in caught:
        seen.setdefault(str(w.message), [w, 0])[1] += 1
    messages = []
    for text, (w, count) in seen.items():
        msg = text if count == 1 else f"{text} (x{count})"
        messages.append(msg)
        warnings.warn_explicit(msg, w.category, w.filename, w.lineno)
    supports = [TimeSupport(w.times, margin) for w in run.windows]
    frame_times = np.asarray(times, dtype=np.float64)
    raw = frame_importance(supports, run.energies, frame_times)
    peak = float(raw.max()) if raw.size else 0.0
    return VideoAnalysis(
        source=source,
        geometry=pre.geometry,
        model=m,
        method=o.the_method,
        panels=o.panels,
        layers=run.layers,
        windows=run.windows,
        supports=supports,
        times=frame_times,
        importance=(raw / peak if peak > 0 else raw).astype(np.float32),
        spool=run.spool,
        warnings=messages,
    )


def _decode_and_explain(
    source: VideoSource,
    pre: Preprocessor,
    sampler: ClipSampler,
    run: WindowExplainer,
    batch_size: int,
    progress: bool,
) -> list[float]:
    """Stream the frames, explain windows as they complete; returns every frame's time."""
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
    return times


class WindowExplainer:
    """Model + explainer step: a batch of windows -> predictions, spooled maps, energies.

    The first panel's CAM decides the targets the other panels explain; maps are spooled at
    ``store`` (h, w), keyed by method id.
    """

    def __init__(
        self, m: ModelRecord, o: ExplainOptions, target: Target, store: tuple[int, int]
    ) -> None:
        self.m = m
        self.method = o.the_method
        self.panels = o.panels
        self.target = target
        self.store = store
        self.normalize = o.normalize
        cams = {p.cam for p in self.panels} | {self.method.cam}
        self.explainers = {
            cam: Explainer(
                m.module,
                m.layer,
                method=cam,
                softmax=o.softmax and cam == self.method.cam,
                reshape=m.reshape,
            )
            for cam in cams
        }
        self.windows: list[WindowResult] = []
        self.energies: list[torch.Tensor] = []
        self.layers: tuple[str, ...] = ()
        self.spool = MapSpool()

    def __call__(
        self, batch: Sequence[Window], crops: dict[int, torch.Tensor], pre: Preprocessor
    ) -> None:
        clip = torch.cat([pre.clip([crops[i] for i in w.frames]) for w in batch])
        try:
            self._explain(batch, clip)
        except RuntimeError as exc:  # e.g. a clip too short for the model's pooling
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VidcamError(
                f"the model failed on a clip of shape {tuple(clip.shape)}: {first}; check "
                "--clip-len against the model's input spec (`vidcam models NAME`)"
            ) from exc

    def _explain(self, batch: Sequence[Window], clip: torch.Tensor) -> None:
        out: dict[str, torch.Tensor] = {}
        main: Method = self.method
        if main.guided:
            from vidcam.cam.guided import guided_cam, normalize_per_clip

            g = guided_cam(self.m.module, clip, self.target, explainer=self.explainers[main.cam])
            res = g.cam
            out[main.id] = (
                torch.stack([normalize_per_clip(g.product[n, 0]) for n in range(clip.shape[0])])
                .mul(255)
                .round()
                .to(torch.uint8)
            )  # (B, T, H, W, 3)
        else:
            res = self.explainers[main.cam](clip, self.target)
        targets = res.targets
        out[main.cam] = to_spool(res.maps, res.raw.flatten(2).amax(2), self.store, self.normalize)
        for p in self.panels:
            if p.id not in out:  # another CAM, for the same classes
                other = self.explainers[p.cam](
                    clip, targets if targets is not None else self.target
                )
                out[p.id] = to_spool(
                    other.maps, other.raw.flatten(2).amax(2), self.store, self.normalize
                )
        if not self.layers:
            self.layers = res.layers
        energy = self._energy(res.raw, clip.shape[2])  # (B, T)
        shown = {p.id for p in self.panels}
        for n, w in enumerate(batch):
            top: tuple[tuple[int, float, float], ...] = ()
            if res.probs is not None:
                p, c = res.probs[n].topk(min(_TOP, res.probs.shape[1]))
                logits = res.logits[n, c]
                top = tuple(
                    (int(ci), float(pi), float(li))
                    for ci, pi, li in zip(c.tolist(), p.tolist(), logits.tolist(), strict=True)
                )
            self.windows.append(
                WindowResult(
                    index=w.index,
                    frames=w.frames,
                    times=tuple(float(t) for t in w.times),
                    padded=w.padded,
                    top=top,
                    targets=tuple(targets[n].tolist()) if targets is not None else (),
                )
            )
            self.energies.append(energy[n].double().cpu())
            self.spool.put({k: v[n] for k, v in out.items() if k in shown})

    @staticmethod
    def _energy(raw: torch.Tensor, T: int) -> torch.Tensor:
        """(B, K, t, h, w) un-normalised CAM -> (B, T) spatial mean, linear in time."""
        e = raw.amax(1).float().mean(dim=(-2, -1))  # (B, t)
        if e.shape[1] != T:
            e = F.interpolate(e[:, None], size=T, mode="linear", align_corners=False)[:, 0]
        return e
