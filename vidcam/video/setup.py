"""Old home of the run's options and its memory checks, kept so existing imports work.

The options are in :mod:`vidcam.video.options` (:class:`ExplainOptions`, :func:`check_paths`),
the window and memory checks in :mod:`vidcam.video.memory`; import them from there. Setting a
name here (e.g. a test's ``monkeypatch.setattr(setup, "available_memory", ...)``) sets it in
:mod:`vidcam.video.memory` too, where the checks look it up.
"""

from __future__ import annotations

import sys
import types

from vidcam.video import memory
from vidcam.video.memory import (
    ACTIVATION_MARGIN,
    AUTO_BATCH_BYTES,
    AUTO_BATCH_MAX,
    AUTO_MEMORY_SHARE,
    AUTO_WORKING_SET,
    BACKWARD_FACTOR,
    PIPELINE_FACTOR,
    WORKING_SET_FACTOR,
    ActivationProfile,
    activation_profile,
    auto_batch_size,
    available_memory,
    check_memory,
    check_window,
    model_input_bytes,
    video_samples,
    window_bytes,
    window_need,
)
from vidcam.video.options import ExplainOptions, check_paths

__all__ = [
    "ACTIVATION_MARGIN",
    "AUTO_BATCH_BYTES",
    "AUTO_BATCH_MAX",
    "AUTO_MEMORY_SHARE",
    "AUTO_WORKING_SET",
    "BACKWARD_FACTOR",
    "PIPELINE_FACTOR",
    "WORKING_SET_FACTOR",
    "ActivationProfile",
    "ExplainOptions",
    "activation_profile",
    "auto_batch_size",
    "available_memory",
    "check_memory",
    "check_paths",
    "check_window",
    "model_input_bytes",
    "video_samples",
    "window_bytes",
    "window_need",
]


class _Alias(types.ModuleType):
    """This module: a name set on it that :mod:`vidcam.video.memory` has is set there too."""

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(memory, name):
            setattr(memory, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Alias
