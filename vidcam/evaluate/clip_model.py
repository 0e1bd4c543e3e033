"""The model as ``vidcam evaluate`` runs it on one video: the spatial mode of ``vidcam explain``.

``spatial`` (:mod:`vidcam.video.spatial`): ``center`` explains and scores the model's centre
crop; ``full`` the whole frame (the model run fully convolutionally, its logits averaged over
space); ``tiles`` crops of the model's size across the frame's long side — the window's
probabilities are the tiles' mean, its logits the tiles' mean logits, the top class of that
mean is explained in every tile, and the tiles' maps are stitched on the CAM's own scale and
normalised, exactly as the video pipeline does; ``auto`` chooses as ``vidcam explain`` does.
So localization is measured on the whole window the rendered video shows heat on.

:meth:`ClipModel.scores` gives, for masked clips, every class's probability, log-probability
and logit (``(B, classes, 3)``): the probability saturates near 1, the logit does not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch

from vidcam.cam.explainer import Explainer
from vidcam.cam.maps import normalize_maps, upsample
from vidcam.cam.methods import PERTURBATION_METHODS
from vidcam.errors import VidcamError
from vidcam.models.handle import ModelHandle
from vidcam.video.preprocess import Geometry, Normalization
from vidcam.video.spatial import SpatialPlan, plan_spatial, split_tiles, stitch

#: the score kinds of :meth:`ClipModel.scores`, in order along its last axis
SCORE_KINDS: tuple[str, ...] = ("prob", "logp", "logit")


class ClipModel:
    """One video's spatial plan, its engine and its scorer (see the module docstring).

    ``methods``: the engine's methods; ``engine``: further :class:`~vidcam.Explainer`
    keywords (``softmax``, ``gradients``, ``pooling``); ``batch``: Score-CAM's batch.
    """

    def __init__(
        self,
        em: ModelHandle,
        spatial: str,
        height: int,
        width: int,
        methods: tuple[str, ...],
        *,
        batch: int = 16,
        engine: Mapping[str, Any] | None = None,
    ) -> None:
        self.em = em
        self.batch = max(1, int(batch))
        self.plan: SpatialPlan = plan_spatial(em, spatial, height, width)
        self.tiles = self.plan.mode == "tiles"
        self.module = self.plan.module
        self._normalization = Normalization(em.input.mean, em.input.std, em.device)
        engine = dict(engine or {})
        cams = tuple(m for m in methods if m not in PERTURBATION_METHODS)
        # the CAMs from one engine call; each perturbation method alone (its cost is its own)
        self.engines: list[Explainer] = []
        if cams:
            options = {k: v for k, v in engine.items() if k != "perturbation"}
            self.engines.append(self._engine(cams, batch, options))
        for m in methods:
            if m in PERTURBATION_METHODS:
                options = {k: v for k, v in engine.items() if k == "perturbation"}
                self.engines.append(self._engine((m,), batch, options))

    def _engine(self, methods: tuple[str, ...], batch: int, options: dict) -> Explainer:
        return Explainer(
            self.module,
            layer=self.em.layers or None,
            method=methods,
            reshape=self.em.reshape,
            batch_size=batch,
            **options,
        )

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def geometry(self) -> Geometry:
        return self.plan.geometry

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels -> the model's input ((x − mean) / std)."""
        return self._normalization.apply(pixels)

    def scores(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) pixels in [0, 1] -> (B, classes, 3): probability, log-probability
        and logit of every class (tiles: mean probability, its log, mean logit; the tiles run
        ``batch`` at a time, so memory stays that of ``batch`` crops). Inference mode: never
        records autograd."""
        with torch.inference_mode():
            x = self.normalise(pixels)
            if not self.tiles:
                logits = self._logits(self.module(x))
                logp = logits.log_softmax(-1)
                return torch.stack([logp.exp(), logp, logits], -1)
            n = len(self.plan.offsets)
            tiles = split_tiles(x, self.plan)  # (B * n, ...): forwards of at most `batch` tiles
            chunks = [
                self.module(tiles[i : i + self.batch]) for i in range(0, len(tiles), self.batch)
            ]
            logits = torch.cat([self._logits(c) for c in chunks]).unflatten(0, (pixels.shape[0], n))
            logp = torch.logsumexp(logits.log_softmax(-1), 1) - math.log(n)
            return torch.stack([logp.exp(), logp, logits.mean(1)], -1)

    @staticmethod
    def _logits(out: Any) -> torch.Tensor:
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            raise VidcamError("vidcam evaluate needs a model whose output is (N, classes) scores")
        return out.float()

    def maps(
        self, pixels: torch.Tensor, target: int
    ) -> tuple[dict[str, torch.Tensor], list[tuple[int, int, int]], dict[str, dict[str, Any]]]:
        """Every method's map of class ``target`` for one clip (1, 3, T, H, W) in [0, 1]:
        ({method: (T, H, W) in [0, 1]}, the explained layers' feature shapes on the window's
        grid (for the random reference; a perturbation method's mask grid when no CAM runs),
        {method: its cost}). Cost: ``forwards`` (model forwards), ``masked_clips`` (clips
        scored by Score-CAM / RISE / extremal), ``backwards`` (to the input: extremal) and
        ``seconds`` (the CAMs share one call, whose time each of them reports)."""
        x = self.normalise(pixels)
        if self.tiles:
            x = split_tiles(x, self.plan)
        out: dict[str, torch.Tensor] = {}
        shapes: list[tuple[int, int, int]] = []
        cost: dict[str, dict[str, Any]] = {}
        for engine in self.engines:
            began = time.perf_counter()
            # the engine needs autograd: outside inference mode
            results = engine.explain_all(x, target=int(target))
            seconds = time.perf_counter() - began
            for m, res in results.items():
                out[m] = self._window_map(m, res)
                cost[m] = {
                    "forwards": int(res.forwards),
                    "masked_clips": int(res.masked_clips),
                    "backwards": int(getattr(res, "backwards", 0)),
                    "seconds": seconds,
                }
                if not shapes:
                    shapes = [self._grid(tuple(r.shape[-3:]), pixels) for r in res.raw_per_layer]
        return out, shapes, cost

    def _window_map(self, m: str, res: Any) -> torch.Tensor:
        """One method's (T, H, W) map over the window: the engine's map, or the tiles' maps
        stitched on the CAM's own scale and normalised (as the video pipeline does; a
        perturbation method's full-size map times its peak)."""
        if not self.tiles:
            return res.maps[0, 0].detach()
        peaks = res.first_layer_raw.flatten(2).amax(2)
        if len(res.raw_per_layer) == 1 and m not in PERTURBATION_METHODS:
            tile = upsample(res.first_layer_raw, tuple(res.maps.shape[2:]))
        else:
            tile = res.maps * peaks[:, :, None, None, None]
        heat = stitch(tile, self.plan)  # (1, K, T, H, W)
        return normalize_maps(heat)[0][0, 0].detach()

    def _grid(self, raw: tuple[int, int, int], pixels: torch.Tensor) -> tuple[int, int, int]:
        """A layer's feature shape (t, h, w) scaled from a tile to the whole window."""
        if not self.tiles:
            return raw
        t, h, w = raw
        size = self.plan.size
        big_h, big_w = pixels.shape[-2:]
        if self.plan.axis == -1:
            return t, h, max(1, round(w * big_w / size))
        return t, max(1, round(h * big_h / size)), w
