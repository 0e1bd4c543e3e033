"""The engine step of pass 1: a batch of windows -> one engine call -> what each window keeps.

:class:`WindowExplainer` builds the engines once per video (:func:`build_engines`), runs every
batch of windows through them (whole, or as tiles: :mod:`vidcam.video.tile_maps`) and hands
the results to :class:`~vidcam.video.window_outputs.WindowOutputs`. A batch that runs out of
memory (the device's, or the host's) is halved until it fits, and the batch plan is told the
most windows known to fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vidcam.cam.explainer import Explainer
from vidcam.cam.explanation import Explanation
from vidcam.cam.methods import METHODS, Method
from vidcam.cam.targets import Target
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.video.options import ExplainOptions
from vidcam.video.preprocess import Preprocessor
from vidcam.video.sample import Window
from vidcam.video.spatial import SpatialPlan, split_tiles
from vidcam.video.tile_maps import per_tile, tile_targets, window_prediction
from vidcam.video.window_outputs import WindowOutputs, spool_panels, temporal_energy

_CPU_OOM = "can't allocate memory"  # PyTorch's CPU allocator failing (a RuntimeError)


def build_engines(
    m: ModelHandle, plan: SpatialPlan, method: Method, panels: Sequence[Method], softmax: bool
) -> tuple[Explainer, Explainer | None]:
    """(the main engine, the engine of the other panels' CAMs or None). Not guided: one engine
    computes every panel's CAM in one call; guided: the main CAM goes with ``guided_cam`` and
    the others get their own engine."""
    main = method.cam
    cams = tuple(dict.fromkeys([main, *(p.cam for p in panels)]))
    softmax = softmax and METHODS[main].softmax

    def engine(methods: Sequence[str]) -> Explainer:
        return Explainer(plan.module, m.layer, method=methods, softmax=softmax, reshape=m.reshape)

    if not method.guided:
        return engine(cams), None
    others = [c for c in cams if c != main]
    return engine((main,)), engine(others) if others else None


class WindowExplainer:
    """Model + explainer step: a batch of windows -> predictions, spooled maps, energies
    (kept in :attr:`outputs`).

    The main method's forward decides the targets every panel explains; all CAMs of a window
    come from ONE engine call (one forward, one backward: the gradient methods share A and g;
    a guided main method adds its guided pass). Maps are spooled at ``store`` (h, w), keyed by
    method id. ``plan`` (:mod:`vidcam.video.spatial`) says what runs: the whole frame or the
    crop as one clip per window, or the window's tiles in one engine call
    (:mod:`vidcam.video.tile_maps`).
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
        self.plan = plan
        self.tiles = plan.mode == "tiles"
        self.method = o.the_method
        self.panels = tuple(panels) if panels is not None else o.panels
        self.target = target
        self.store = store
        self.explainer, self.others = build_engines(m, plan, self.method, self.panels, o.softmax)
        self.outputs = WindowOutputs([p.id for p in self.panels])
        self.fits = math.inf  # after an out-of-memory halving: the most windows known to fit

    def __call__(
        self, batch: Sequence[Window], crops: dict[int, torch.Tensor], pre: Preprocessor
    ) -> None:
        """Explain ``batch`` (its frames' ``crops`` made into clips by ``pre``); out of memory:
        each half on its own, and :attr:`fits` says how many windows fit."""
        clip = torch.cat([pre.clip([crops[i] for i in w.frames]) for w in batch])
        try:
            self._explain(batch, clip)
            return
        except torch.OutOfMemoryError:
            if len(batch) < 2:
                raise
        except RuntimeError as exc:  # e.g. a clip too short for the model's pooling
            if len(batch) < 2 or _CPU_OOM not in str(exc):  # else: the host's memory, halve
                raise _model_error(exc, clip) from exc
        del clip  # out of memory: fewer windows per engine call (tiles make calls n x larger)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(batch) // 2
        self.fits = min(self.fits, half)  # the batch plan asks for no more from now on
        self(batch[:half], crops, pre)
        self(batch[half:], crops, pre)

    def _explain(self, batch: Sequence[Window], clip: torch.Tensor) -> None:
        """One engine call for the (B, C, T, H, W) ``clip`` of the B windows of ``batch``."""
        x, target, chosen = clip, self.target, None
        if self.tiles:
            x = split_tiles(clip, self.plan)
            chosen = tile_targets(self.plan, x, self.target, len(batch))
            target = per_tile(chosen, self.plan)
        every, guided = self._run(x, target)
        res = every[self.method.cam]
        panels, heat = spool_panels(every, guided, self.method, self.panels, self.plan, self.store)
        self.outputs.count(every, self.method.cam)
        self.outputs.add(
            batch,
            panels,
            temporal_energy(heat, clip.shape[2]),  # (B, T)
            chosen if self.tiles else res.targets,
            window_prediction(res, self.plan, clip.shape[0]),
        )

    def _run(
        self, x: torch.Tensor, target: Target | torch.Tensor
    ) -> tuple[dict[str, Explanation], torch.Tensor | None]:
        """(CAM id -> explanation of ``x``, the main method's (N, C, T, H, W) guided backprop
        or None when it is not guided)."""
        if not self.method.guided:
            return self.explainer.explain_all(x, target), None
        from vidcam.cam.guided import guided_cam

        g = guided_cam(self.plan.module, x, target, explainer=self.explainer)
        res = g.cam
        every = {self.method.cam: res}
        if self.others is not None:
            every |= self.others.explain_all(x, res.targets if res.targets is not None else target)
        return every, g.guided[:, 0]


def _model_error(exc: RuntimeError, clip: torch.Tensor) -> VidcamError:
    """The model's failure on ``clip`` as one line that says what to check."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return VidcamError(
        f"the model failed on a clip of shape {tuple(clip.shape)}: {first}; check "
        "--clip-len against the model's input spec (`vidcam models NAME`)"
    )
