"""vidcam: where and when a video action-recognition model looks.

Grad-CAM and Grad-CAM++ (Chattopadhyay et al., WACV 2018) on 3D-CNN feature volumes (T×H×W)::

    import vidcam
    res = vidcam.explain(model, clip, target="topk:3")   # clip: (N, C, T, H, W)
    res.maps                                             # (N, K, T, H, W) in [0, 1]
"""

from __future__ import annotations

__version__ = "0.1.0"

from vidcam.cam.explainer import Explainer, Explanation, explain
from vidcam.errors import VidcamError

__all__ = ["Explainer", "Explanation", "VidcamError", "explain", "__version__"]
