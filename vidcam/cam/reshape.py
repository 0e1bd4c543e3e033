"""The type of a token layer's adapter: ``reshape(activation, module_output) -> (N, C, T, H, W)``.

It lives in the engine because the engine calls it (:class:`~vidcam.cam.explainer.Explainer`'s
``reshape=``, :mod:`vidcam.cam.layer_candidates`); :mod:`vidcam.models.spec` and the model
adapters (:mod:`vidcam.models.adapters`) import it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: ``reshape(activation, module_output) -> (N, C, T, H, W)``: turns a layer's captured tensor
#: (e.g. transformer tokens ``(N, 1 + T*H*W, C)``) into a feature volume. ``module_output`` is
#: whatever the layer returned (for MViT blocks the tuple ``(tokens, thw)``).
Reshape = Callable[[torch.Tensor, Any], torch.Tensor]
