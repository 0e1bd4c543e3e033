"""What pass 1 keeps of each explained window: spooled panels, top-5, targets, temporal energy.

:func:`spool_panels` turns one engine call's explanations into the tensors spooled per panel
(heat panels in the CAM's units, :func:`~vidcam.video.scale.to_spool`; a guided main method's
image as uint8, :func:`guided_image`). :class:`WindowOutputs` collects, window by window, the
:class:`~vidcam.video.results.WindowResult` records (top-:data:`TOP` predictions, explained
targets), the temporal energy that per-frame importance is made of (:func:`temporal_energy`),
the spool, and what the engine calls cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from vidcam.cam.explanation import Explanation
from vidcam.cam.methods import Method
from vidcam.video.results import WindowResult
from vidcam.video.sample import Window
from vidcam.video.scale import to_spool
from vidcam.video.spatial import SpatialPlan, stitch
from vidcam.video.spool import MapSpool
from vidcam.video.tile_maps import window_maps

TOP = 5  # predictions kept per window


def guided_image(guided: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) guided backprop x (B, K, T, H, W) maps' first target -> (B, T, H, W, 3)
    uint8: the product, normalised per clip."""
    from vidcam.cam.guided import normalize_per_clip

    product = guided * maps[:, :1].to(guided.dtype)  # (B, C, T, H, W)
    return (
        torch.stack([normalize_per_clip(product[n]) for n in range(product.shape[0])])
        .mul(255)
        .round()
        .to(torch.uint8)
    )


def spool_panels(
    every: Mapping[str, Explanation],
    guided: torch.Tensor | None,
    method: Method,
    panels: Sequence[Method],
    plan: SpatialPlan,
    store: tuple[int, int],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One engine call's explanations (CAM id -> result, over B windows or their tiles) ->
    (panel id -> (B, ...) tensor to spool, the main CAM's heat (B, K, t, h, w) in CAM units).
    ``guided``: the main method's guided backprop (per tile with tiles), None if not guided."""
    out: dict[str, torch.Tensor] = {}
    maps, peaks, heat = window_maps(every[method.cam], plan)
    if guided is not None:
        whole = stitch(guided, plan) if plan.mode == "tiles" else guided
        out[method.id] = guided_image(whole, maps)  # (B, T, H, W, 3)
    out[method.cam] = to_spool(maps, peaks, store)
    for p in panels:
        if p.id not in out:  # another CAM, same forward, same classes
            m2, p2, _ = window_maps(every[p.cam], plan)
            out[p.id] = to_spool(m2, p2, store)
    return out, heat


def temporal_energy(heat: torch.Tensor, T: int) -> torch.Tensor:
    """(B, K, t, h, w) un-normalised CAM -> (B, T) spatial mean, linear in time."""
    e = heat.amax(1).float().mean(dim=(-2, -1))  # (B, t)
    if e.shape[1] != T:
        e = F.interpolate(e[:, None], size=T, mode="linear", align_corners=False)[:, 0]
    return e


def top_predictions(
    probs: torch.Tensor | None, logits: torch.Tensor | None, n: int
) -> tuple[tuple[int, float, float], ...]:
    """Window ``n``'s top-:data:`TOP` (class, probability, logit) from (B, classes) ``probs``
    and ``logits``; () without them."""
    if probs is None or logits is None:
        return ()
    p, c = probs[n].topk(min(TOP, probs.shape[1]))
    return tuple(
        (int(ci), float(pi), float(li))
        for ci, pi, li in zip(c.tolist(), p.tolist(), logits[n, c].tolist(), strict=True)
    )


class WindowOutputs:
    """Everything pass 1 keeps, window by window (in the order they were explained).

    ``windows``: their records; ``energies``: their (T,) float64 temporal energy; ``spool``:
    their maps, per shown panel id; ``cost``: per CAM, ``forwards``, ``masked_clips`` and
    ``backwards`` summed over engine calls; ``layers`` / ``slices``: the explained layer(s) and
    the time steps of the (coarsest) explained layer, from the first call.
    """

    def __init__(self, shown: Sequence[str]) -> None:
        self.shown = frozenset(shown)
        self.windows: list[WindowResult] = []
        self.energies: list[torch.Tensor] = []
        self.cost: dict[str, dict[str, int]] = {}
        self.layers: tuple[str, ...] = ()
        self.slices = 0
        self.spool = MapSpool()

    def count(self, every: Mapping[str, Explanation], main: str) -> None:
        """Add what each CAM's engine call cost (model forwards, masked clips, backwards); the
        first call also gives the ``main`` CAM's layers."""
        for cam, r in every.items():
            c = self.cost.setdefault(cam, {"forwards": 0, "masked_clips": 0, "backwards": 0})
            c["forwards"] += r.forwards
            c["masked_clips"] += r.masked_clips
            c["backwards"] += r.backwards
        if not self.layers:
            first = every[main]
            self.layers = first.layers
            self.slices = min(r.shape[2] for r in first.raw_per_layer)

    def add(
        self,
        batch: Sequence[Window],
        panels: Mapping[str, torch.Tensor],
        energy: torch.Tensor,
        targets: torch.Tensor | None,
        prediction: tuple[torch.Tensor | None, torch.Tensor | None],
    ) -> None:
        """Keep the B windows of ``batch``: their (B, ...) ``panels`` (spooled), (B, T)
        ``energy``, (B, K) explained ``targets`` and ``prediction`` (logits, probs)."""
        logits, probs = prediction
        for n, w in enumerate(batch):
            self.windows.append(
                WindowResult(
                    index=w.index,
                    frames=w.frames,
                    times=tuple(float(t) for t in w.times),
                    padded=w.padded,
                    pad=w.pad,
                    top=top_predictions(probs, logits, n),
                    targets=tuple(targets[n].tolist()) if targets is not None else (),
                )
            )
            self.energies.append(energy[n].double().cpu())
            self.spool.put({k: v[n] for k, v in panels.items() if k in self.shown})
