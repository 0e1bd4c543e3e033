"""Model + explainer step: a batch of sampled windows -> predictions, maps and energies.

:class:`WindowExplainer` builds the batch's clip from the preprocessed crops, runs the engine
(:class:`~vidcam.cam.explainer.Explainer`, or :func:`~vidcam.cam.guided.guided_cam` for guided
methods), and records each window in the :class:`~vidcam.video.analysis.VideoAnalysis`: its top
predictions, its per-sample energy (importance) and its maps, spooled at a small size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vidcam.cam.explainer import Explainer
from vidcam.cam.maps import normalize_maps
from vidcam.errors import VidcamError
from vidcam.video.analysis import VideoAnalysis
from vidcam.video.preprocess import Preprocessor
from vidcam.video.results import TITLES, WindowResult
from vidcam.video.sample import Window

_TOP = 5  # predictions kept per window


class WindowExplainer:
    """Runs a batch of windows through the engine and records/spools the results.

    ``explainers`` maps panel title -> Explainer; the one of ``TITLES[cam_method]`` comes first
    and decides the targets the others explain. ``store`` is the spooled maps' (h, w).
    """

    def __init__(
        self,
        analysis: VideoAnalysis,
        explainers: dict[str, Explainer],
        target: str | int,
        method: str,
        softmax: bool,
        store: tuple[int, int],
        normalize: str = "clip",
    ) -> None:
        self.analysis = analysis
        self.m = analysis.model
        self.explainers = explainers
        self.target = target
        self.guided = method.startswith("guided-")
        self.cam_method = method.removeprefix("guided-")
        self.softmax = softmax
        self.store = store
        self.per_frame = normalize == "frame"

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
        first = TITLES[self.cam_method]
        if self.guided:
            from vidcam.cam.guided import guided_cam, normalize_per_clip

            g = guided_cam(self.m.module, clip, self.target, explainer=self.explainers[first])
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
            self.analysis.spool.put({k: v[n] for k, v in out.items() if k in self.analysis.titles})

    def _heat(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, K, T, h, w) -> (B, T, h', w') float16 at the spool size (max over targets).

        With ``normalize="frame"`` each frame is min-max normalised on its own (a frame whose
        map is constant shows no heat); by default the window's volume normalisation is kept.
        """
        m = maps.amax(1)
        if self.per_frame:  # display choice: every frame's own min-max (for peaked maps)
            m = normalize_maps(m)[0]
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
