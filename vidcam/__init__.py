"""vidcam: where and when a video action-recognition model looks.

Grad-CAM and Grad-CAM++ (Chattopadhyay et al., WACV 2018) on 3D-CNN feature volumes (T×H×W)::

    import vidcam
    res = vidcam.explain(model, clip, target="topk:3")   # clip: (N, C, T, H, W)
    res.maps                                             # (N, K, T, H, W) in [0, 1]

The engine (and torch) load on first use, so ``vidcam --help`` answers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidcam.errors import VidcamError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vidcam.cam.explainer import Explainer, Explanation, explain

__all__ = ["Explainer", "Explanation", "VidcamError", "explain", "__version__"]

_LAZY = {"Explainer", "Explanation", "explain"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from vidcam.cam import explainer

        return getattr(explainer, name)
    raise AttributeError(f"module 'vidcam' has no attribute {name!r}")
