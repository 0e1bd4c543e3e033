"""Old home of the method tuples, kept as a thin re-export for the files that still import it.

The method table is :mod:`vidcam.cam.methods` (one row per method); the dispatch is
:mod:`vidcam.cam.dispatch`. Import from those; ``vidcam/evaluate/clip_model.py``,
``vidcam/evaluate/run.py`` and ``tools/bench_perturbation.py`` still import these names here.
"""

from __future__ import annotations

from vidcam.cam.methods import (  # noqa: F401 (re-exported)
    DEFAULT_GRADIENTS,
    ENGINE_METHODS,
    GRADIENT_FREE_METHODS,
    GRADIENT_METHODS,
    PERTURBATION_METHODS,
    POOLED_METHODS,
    SLOW_METHODS,
)

#: old name of :data:`~vidcam.cam.methods.GRADIENT_FREE_METHODS` (gradient-free, not cheap)
FREE_METHODS = GRADIENT_FREE_METHODS
