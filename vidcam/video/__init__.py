"""The video pipeline: file -> explained frames -> annotated video.

Data flows one way, one module per step::

    decode (frames + times) -> sample (windows) -> preprocess (clips + geometry)
        -> explain_windows (model + Explainer / guided_cam) -> to_source (maps on every
        source frame) -> render (overlay, text, importance strip) -> encode (H.264 / GIF)

Two passes over the file, both streaming:

1. **Explain** (:mod:`vidcam.video.explain_pass`): decode, crop each frame to the model's size as it
   arrives, and run every window through the engine as soon as its frames are in. Each
   window's maps (downsampled to ~56 px, float16) go to a temporary spool file, its
   predictions and per-sample energies stay in memory (:mod:`vidcam.video.analysis`). Only the crops
   a future window can still use are kept.
2. **Render** (:mod:`vidcam.video.pipeline`): decode again; every source frame gets its heatmap from
   the windows around it (:class:`~vidcam.video.to_source.MapBlender`), placed on the source grid.

Because the per-frame importance of the whole video is known after pass 1, the importance
strip in the rendered video is complete from the first frame. Memory does not grow with the
video's length (the spool is on disk), and frames are never all held at once. Decoding runs
in a background thread in both passes, and encoding in another (:mod:`vidcam.video.threads`), so
they overlap the model and the renderer.

Choices worth knowing:

- Per-frame importance = the spatial mean of the un-normalised CAM of the first explained
  layer (``Explanation.raw``), interpolated and blended over windows like the maps, then
  divided by the video's maximum; so windows are comparable (the displayed maps are min-max
  normalised per window, as Grad-CAM maps usually are).
- ``target="topk:K"`` explains K classes per window; the displayed map is their per-pixel
  maximum (the union of their evidence). Guided methods show the first target's product.
- Heatmaps outside the model's centre crop are 0 (the model never saw those pixels).

This module is the public façade; the code lives in the modules named above and in
:mod:`vidcam.video.results` (the returned objects) and :mod:`vidcam.video.setup` (argument resolution).
"""

from __future__ import annotations

from vidcam.cam.explainer import Explainer
from vidcam.cam.targets import resolve_target
from vidcam.video.analysis import VideoAnalysis
from vidcam.video.explain_pass import ExplainOptions, analyze
from vidcam.video.pipeline import (
    check_paths,
    explain_video,
    iter_explained_frames,
    write_explained_video,
)
from vidcam.video.render import Renderer
from vidcam.video.results import METHODS, TITLES, ExplainedFrame, VideoExplanation, WindowResult
from vidcam.video.setup import resolve_device

__all__ = [
    "METHODS",
    "TITLES",
    "ExplainOptions",
    "ExplainedFrame",
    "Explainer",
    "Renderer",
    "VideoAnalysis",
    "VideoExplanation",
    "WindowResult",
    "analyze",
    "check_paths",
    "explain_video",
    "iter_explained_frames",
    "resolve_device",
    "resolve_target",
    "write_explained_video",
]
