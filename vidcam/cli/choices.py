"""The constants the command line's ``--help`` and argument checks need, without torch.

``vidcam --help``, ``vidcam explain --help`` and argument errors must answer at once, so the
argument parsers cannot import the pipeline (it imports torch, PyAV and OpenCV). These are
copies of the pipeline's own constants (plus :func:`one_line_errors`); ``tests/test_hostile_options.py`` asserts they equal
the real ones, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

#: method ids (:data:`vidcam.cam.methods.METHODS`)
METHODS: tuple[str, ...] = (
    "gradcam",
    "gradcam++",
    "guided-gradcam",
    "guided-gradcam++",
    "xgradcam",
    "layercam",
    "hirescam",
    "eigencam",
    "scorecam",
    "rise",
    "extremal",
)
#: output video extensions (:data:`vidcam.video.encode.VALID_EXTENSIONS`)
VALID_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".gif")
#: heatmap display scales (:mod:`vidcam.video.scale`)
NORMALIZE: tuple[str, ...] = ("video", "clip", "frame")
DEFAULT_NORMALIZE = "video"
VIDEO_PERCENTILE = 99.0
VIDEO_GAMMA = 0.6
#: seconds one batch video may take (:data:`vidcam.batch.options.DEFAULT_VIDEO_TIMEOUT`)
DEFAULT_VIDEO_TIMEOUT = 3600.0
#: spatial modes (:data:`vidcam.video.spatial.SPATIAL`)
SPATIAL: tuple[str, ...] = ("auto", "full", "tiles", "center")


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` report argument errors as ONE line on stderr (exit status 2), pointing
    to ``--help`` instead of printing the whole usage block."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]
