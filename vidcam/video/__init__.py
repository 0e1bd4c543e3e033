"""The video pipeline: file -> explained frames -> annotated video.

Data flows one way, one module per step, in this package's file order::

    decode (VideoSource: frames + times) -> sample (windows) -> preprocess (clips + geometry)
        -> explain_pass (model + engine: pass 1) -> spool (maps on disk)
        -> to_source + map_pass (maps on every source frame: pass 2)
        -> render (overlay, text, importance strip) -> encode (H.264 / GIF)

``options`` holds a run's options (:class:`ExplainOptions`, one typed value from the command
line to the batch worker) and checks paths before any work, ``memory`` checks that windows fit
the model, the video and the free memory, ``threads`` overlaps decoding and encoding with the
model, ``results`` holds the returned records, ``pipeline`` wires it up.

Two passes over the file, both streaming:

1. **Explain** (:mod:`vidcam.video.explain_pass`): decode, crop each frame to the model's size
   as it arrives, and run every window through the engine as soon as its frames are in. Each
   window's maps (downsampled to ~56 px, float16) go to a temporary spool file
   (:mod:`vidcam.video.spool`); predictions and per-frame importance end up in a
   :class:`~vidcam.video.results.VideoAnalysis` record. Only the crops a future window can
   still use are kept.
2. **Map back and render** (:mod:`vidcam.video.map_pass`): decode again; every source frame gets
   its heatmap from the windows around it (:class:`~vidcam.video.to_source.MapBlender`), placed
   on the source grid, then rendered and encoded.

Because the per-frame importance of the whole video is known after pass 1, the importance
strip in the rendered video is complete from the first frame. Memory does not grow with the
video's length (the spool is on disk), and frames are never all held at once.

Choices worth knowing:

- Per-frame importance = the spatial mean of the un-normalised CAM of the first explained
  layer (``Explanation.first_layer_raw``), interpolated and blended over windows like the maps, then
  divided by the video's maximum; so windows are comparable. Only a window's trusted slices
  count (not the outer ones, which see the network's temporal zero padding, nor samples that
  repeat a short video's last frame), each divided by the network's position gain (the median
  over windows); maps are blended the same way (``docs/temporal_importance.md``).
- ``target="topk:K"`` explains K classes per window; the displayed map is their per-pixel
  maximum (the union of their evidence). Guided methods show the first target's product.
- Panels are keyed by method id ("gradcam++", "guided-gradcam"); titles appear only when
  rendered.
"""

from __future__ import annotations

from vidcam.cam.explainer import Explainer
from vidcam.cam.methods import METHODS, Method, get_method
from vidcam.cam.targets import parse_target
from vidcam.device import resolve_device
from vidcam.video.decode import VideoSource
from vidcam.video.options import ExplainOptions, check_paths
from vidcam.video.pipeline import (
    analyze,
    explain_video,
    iter_explained_frames,
    render_analysis,
    write_explained_video,
    write_preview,
)
from vidcam.video.render import Renderer
from vidcam.video.results import ExplainedFrame, VideoAnalysis, VideoExplanation, WindowResult

__all__ = [
    "METHODS",
    "ExplainOptions",
    "ExplainedFrame",
    "Explainer",
    "Method",
    "Renderer",
    "VideoAnalysis",
    "VideoExplanation",
    "VideoSource",
    "WindowResult",
    "analyze",
    "check_paths",
    "explain_video",
    "get_method",
    "iter_explained_frames",
    "render_analysis",
    "resolve_device",
    "parse_target",
    "write_explained_video",
    "write_preview",
]
