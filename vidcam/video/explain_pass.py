"""Pass 1, explain: decode -> sample windows -> preprocess -> model + explainer -> spool.

:func:`explain_pass` picks the spatial mode (:func:`~vidcam.video.spatial.plan_spatial`: the
whole frame, tiles or the centre crop), cuts each frame to that window as it arrives (keeping
only the windows a future clip can still use) and runs every clip through the engine as soon as
its frames are in (:class:`WindowExplainer`; tiles are split, explained in one engine call and
stitched there). It returns a :class:`~vidcam.video.results.VideoAnalysis`
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

from vidcam.cam.explainer import Explainer, Explanation
from vidcam.cam.hooks import eval_mode
from vidcam.cam.maps import ConstantMapWarning, normalize_maps, upsample
from vidcam.cam.methods import Method, panels_for
from vidcam.cam.targets import Target, resolve_target, resolve_targets
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.models.open import open_model
from vidcam.progress import Progress
from vidcam.video.batching import BatchPlan
from vidcam.video.decode import VideoSource
from vidcam.video.preprocess import Preprocessor
from vidcam.video.results import VideoAnalysis, WindowResult
from vidcam.video.sample import ClipSampler, Window, WindowScheduler
from vidcam.video.scale import to_spool
from vidcam.video.setup import ExplainOptions, auto_batch_size, check_memory
from vidcam.video.spatial import SpatialPlan, plan_spatial, split_tiles, stitch
from vidcam.video.spool import MapSpool
from vidcam.video.threads import Prefetch
from vidcam.video.to_source import frame_importance, window_supports

_STORE_SIDE = 56  # heatmaps are spooled at about this many pixels on the short side
_TOP = 5  # predictions kept per window
_CPU_OOM = "can't allocate memory"  # PyTorch's CPU allocator failing (a RuntimeError)


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
    panels = panels_for(o.the_method, o.side_by_side)  # bool, or a list of method ids
    stray = [p.id for p in panels if p.guided and p != o.the_method]
    if stray:
        raise VidcamError(
            f"side_by_side: the guided panel {stray[0]!r} needs --method {stray[0]} (only the "
            "main method gets a guided pass)"
        )
    info = source.info
    sampler = ClipSampler.from_spec(m.input, clip_len=o.clip_len, hop=o.stride)
    target = resolve_target(o.target, m.labels)
    plan = plan_spatial(m, o.spatial, info.height, info.width, sampler.clip_len)
    frame_hw = (info.height, info.width)  # the window's memory, from the model's activations:
    check_memory(m.input, sampler.clip_len, o.batch_size or 1, frame_hw, plan.mode, m.device, m)
    pre = Preprocessor(m.input, info.height, info.width, m.device, plan.geometry)
    if sampler.fps is not None:
        margin = float(sampler.period) / 2
    else:
        margin = float(sampler.stride / info.fps) / 2
    ch, cw = plan.geometry.crop  # the window the maps cover
    f = max(1, min(ch, cw) // _STORE_SIDE)
    store = (math.ceil(ch / f), math.ceil(cw / f))
    run = WindowExplainer(m, o, target, store, plan, panels)
    if o.batch_size:
        batch = BatchPlan(o.batch_size, tune=False)
    else:
        upper = auto_batch_size(m.input, sampler.clip_len, frame_hw, plan.mode, m.device, m)
        batch = BatchPlan.auto(upper, m.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            times = _decode_and_explain(source, pre, sampler, run, batch, o.progress)
        except BaseException:
            run.spool.close()
            raise
    seen: dict[str, list] = {}
    for w in caught:
        text, count = str(w.message), 1
        if isinstance(w.message, ConstantMapWarning):  # per engine call -> per window (tile)
            text, count = _per_window(w.message, plan.mode == "tiles")
        seen.setdefault(text, [w, 0])[1] += count
    messages = []
    for text, (w, count) in seen.items():
        msg = text if count == 1 else f"{text} (x{count})"
        messages.append(msg)
        warnings.warn_explicit(msg, w.category, w.filename, w.lineno)
    T = sampler.clip_len
    supports = window_supports(run.windows, run.energies, T, run.slices or T, margin)
    frame_times = np.asarray(times, dtype=np.float64)
    raw = frame_importance(supports, run.energies, frame_times)
    peak = float(raw.max()) if raw.size else 0.0
    return VideoAnalysis(
        source=source,
        geometry=pre.geometry,
        model=m,
        method=o.the_method,
        panels=panels,
        layers=run.layers,
        windows=run.windows,
        supports=supports,
        times=frame_times,
        importance=(raw / peak if peak > 0 else raw).astype(np.float32),
        spool=run.spool,
        warnings=messages,
        spatial=plan.mode,
        cost=run.cost,
    )


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
) -> list[float]:
    """Stream the frames, explain windows as they complete (``batch`` says how many per engine
    call); returns every frame's time."""
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
            while len(pending) >= batch.size():
                pending = _run_batch(run, batch, pending, crops, pre)
            keep = min([sched.oldest_needed()] + [w.frames[0] for w in pending])
            for i in [i for i in crops if i < keep]:
                del crops[i]
            sched.drop_before(keep)
            bar.update(1)
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


class WindowExplainer:
    """Model + explainer step: a batch of windows -> predictions, spooled maps, energies.

    The main method's forward decides the targets every panel explains; all CAMs of a window
    come from ONE engine call (one forward, one backward: the gradient methods share A and g;
    a guided main method adds its guided pass). Maps are spooled at ``store`` (h, w), keyed by
    method id. ``plan`` (:mod:`vidcam.video.spatial`) says what runs:
    the whole frame or the crop as one clip per window, or the window's tiles in one engine
    call: their probabilities averaged (the window's prediction), the averaged top class(es)
    explained in every tile, their maps stitched on the CAM's own scale and re-normalised per
    window.
    """

    def __init__(
        self,
        m: ModelHandle,
        o: ExplainOptions,
        target: Target,
        store: tuple[int, int],
        plan: SpatialPlan,
        panels: Sequence[Method] | None = None,
    ) -> None:
        self.m = m
        self.plan = plan
        self.tiles = plan.mode == "tiles"
        self.method = o.the_method
        self.panels = tuple(panels) if panels is not None else o.panels
        self.target = target
        self.store = store
        self.normalize = o.normalize
        main = self.method.cam
        cams = tuple(dict.fromkeys([main, *(p.cam for p in self.panels)]))
        softmax = o.softmax and main == "gradcam++"

        def engine(methods: Sequence[str]) -> Explainer:
            return Explainer(
                plan.module, m.layer, method=methods, softmax=softmax, reshape=m.reshape
            )

        # non-guided: every CAM from one call; guided: the main CAM goes with guided_cam
        self.explainer = engine(cams) if not self.method.guided else engine((main,))
        others = [c for c in cams if c != main]
        self.others = engine(others) if self.method.guided and others else None
        self.windows: list[WindowResult] = []
        self.energies: list[torch.Tensor] = []
        #: method -> {"forwards", "masked_clips", "backwards"} summed over engine calls
        self.cost: dict[str, dict[str, int]] = {}
        self.layers: tuple[str, ...] = ()
        self.slices = 0  # time steps of the explained layer (the coarsest, when fused)
        self.spool = MapSpool()
        self.fits = math.inf  # after an out-of-memory halving: the most windows known to fit

    def __call__(
        self, batch: Sequence[Window], crops: dict[int, torch.Tensor], pre: Preprocessor
    ) -> None:
        clip = torch.cat([pre.clip([crops[i] for i in w.frames]) for w in batch])
        try:
            self._explain(batch, clip)
            return
        except torch.OutOfMemoryError:
            if len(batch) < 2:
                raise
        except RuntimeError as exc:  # e.g. a clip too short for the model's pooling
            if len(batch) < 2 or _CPU_OOM not in str(exc):  # else: the host's memory, halve
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise VidcamError(
                    f"the model failed on a clip of shape {tuple(clip.shape)}: {first}; check "
                    "--clip-len against the model's input spec (`vidcam models NAME`)"
                ) from exc
        del clip  # out of memory: fewer windows per engine call (tiles make calls n x larger)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(batch) // 2
        self.fits = min(self.fits, half)  # the batch plan asks for no more from now on
        self(batch[:half], crops, pre)
        self(batch[half:], crops, pre)

    def _count(self, every: dict[str, Explanation]) -> None:
        """Add what each method's engine call cost (model forwards, masked clips, backwards)."""
        for cam, r in every.items():
            c = self.cost.setdefault(cam, {"forwards": 0, "masked_clips": 0, "backwards": 0})
            c["forwards"] += r.forwards
            c["masked_clips"] += r.masked_clips
            c["backwards"] += r.backwards

    def _explain(self, batch: Sequence[Window], clip: torch.Tensor) -> None:
        out: dict[str, torch.Tensor] = {}
        main: Method = self.method
        x, target, chosen = clip, self.target, None
        if self.tiles:
            x = split_tiles(clip, self.plan)
            chosen = self._tile_targets(x, len(batch))
            target = self._per_tile(chosen)
        if main.guided:
            from vidcam.cam.guided import guided_cam, normalize_per_clip

            g = guided_cam(self.plan.module, x, target, explainer=self.explainer)
            res = g.cam
            every = {main.cam: res}
            if self.others is not None:
                every |= self.others.explain_all(
                    x, res.targets if res.targets is not None else target
                )
            maps, peaks, heat = self._maps(res)
            guided = stitch(g.guided[:, 0], self.plan) if self.tiles else g.guided[:, 0]
            product = guided * maps[:, :1].to(guided.dtype)  # (B, C, T, H, W)
            out[main.id] = (
                torch.stack([normalize_per_clip(product[n]) for n in range(clip.shape[0])])
                .mul(255)
                .round()
                .to(torch.uint8)
            )  # (B, T, H, W, 3)
        else:
            every = self.explainer.explain_all(x, target)
            res = every[main.cam]
            maps, peaks, heat = self._maps(res)
        self._count(every)
        targets = chosen if self.tiles else res.targets
        out[main.cam] = to_spool(maps, peaks, self.store, self.normalize)
        for p in self.panels:
            if p.id not in out:  # another CAM, same forward, same classes
                m2, p2, _ = self._maps(every[p.cam])
                out[p.id] = to_spool(m2, p2, self.store, self.normalize)
        if not self.layers:
            self.layers = res.layers
            self.slices = min(r.shape[2] for r in res.raw_per_layer)
        logits, probs = res.logits, res.probs
        if self.tiles and logits is not None:  # the window's prediction: the tiles' average
            n = len(self.plan.offsets)
            logits = logits.float().unflatten(0, (clip.shape[0], n))
            probs = logits.softmax(dim=2).mean(1)
            logits = logits.mean(1)
        energy = self._energy(heat, clip.shape[2])  # (B, T)
        shown = {p.id for p in self.panels}
        for n, w in enumerate(batch):
            top: tuple[tuple[int, float, float], ...] = ()
            if probs is not None and logits is not None:
                p, c = probs[n].topk(min(_TOP, probs.shape[1]))
                top = tuple(
                    (int(ci), float(pi), float(li))
                    for ci, pi, li in zip(
                        c.tolist(), p.tolist(), logits[n, c].tolist(), strict=True
                    )
                )
            self.windows.append(
                WindowResult(
                    index=w.index,
                    frames=w.frames,
                    times=tuple(float(t) for t in w.times),
                    padded=w.padded,
                    pad=w.pad,
                    top=top,
                    targets=tuple(targets[n].tolist()) if targets is not None else (),
                )
            )
            self.energies.append(energy[n].double().cpu())
            self.spool.put({k: v[n] for k, v in out.items() if k in shown})

    def _tile_targets(self, tiles: torch.Tensor, windows: int) -> torch.Tensor:
        """(windows, K) classes to explain in every tile of a window: the target resolved on
        the window's prediction (its tiles' mean probability; one no-grad forward) — a fixed
        class index needs no forward."""
        if isinstance(self.target, int):
            return torch.full((windows, 1), self.target, dtype=torch.long, device=tiles.device)
        with eval_mode(self.plan.module), torch.no_grad():
            logits = self.plan.module(tiles)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise VidcamError("tiles need a model whose output is (N, classes) scores")
        probs = logits.float().softmax(1).unflatten(0, (windows, -1)).mean(1)
        indices = resolve_targets(probs.requires_grad_(True), self.target)[1]
        if indices is None:
            raise VidcamError("tiles need class-index targets (top1, topk:K or a class)")
        return indices

    def _per_tile(self, chosen: torch.Tensor) -> torch.Tensor:
        return chosen.repeat_interleave(len(self.plan.offsets), dim=0)

    def _maps(self, res: Explanation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(maps (B, K, T, H, W) in [0, 1], peaks (B, K), heat (B, K, t, h, w) in CAM units)
        over the whole window. Tiles: each tile's map in CAM units (the upsampled raw CAM, or
        for fused layers the normalised map times its raw peak), stitched, re-normalised."""
        peaks = res.raw.flatten(2).amax(2)
        if not self.tiles:
            return res.maps, peaks, res.raw
        if len(res.raw_per_layer) == 1:
            tile = upsample(res.raw, tuple(res.maps.shape[2:]))
        else:
            tile = res.maps * peaks[:, :, None, None, None]
        heat = stitch(tile, self.plan)
        return normalize_maps(heat)[0], heat.flatten(2).amax(2), heat

    @staticmethod
    def _energy(raw: torch.Tensor, T: int) -> torch.Tensor:
        """(B, K, t, h, w) un-normalised CAM -> (B, T) spatial mean, linear in time."""
        e = raw.amax(1).float().mean(dim=(-2, -1))  # (B, t)
        if e.shape[1] != T:
            e = F.interpolate(e[:, None], size=T, mode="linear", align_corners=False)[:, 0]
        return e
