"""The constants the command line's ``--help`` and argument checks need, without torch.

``vidcam --help``, ``vidcam explain --help`` and argument errors must answer at once, so the
argument parsers cannot import the pipeline (it imports torch, PyAV and OpenCV). The method ids
come from the method table (:mod:`vidcam.cam.methods`, torch-free); the other constants are
copies of the pipeline's own (plus :func:`one_line_errors`, which adds a "did you mean" to a
misspelled option or choice); ``tests/test_hostile_options.py`` and
``tests/test_cli_rough_edges.py`` assert they equal the real ones, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
from typing import NoReturn

from vidcam.cam.methods import DEFAULT_METHOD, METHOD_IDS  # noqa: F401 (re-exported)

#: output video extensions (:data:`vidcam.video.encode.VALID_EXTENSIONS`)
VALID_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".gif")
#: heatmap display scales (:mod:`vidcam.video.scale`)
NORMALIZE: tuple[str, ...] = ("video", "clip", "frame")
DEFAULT_NORMALIZE = "video"
VIDEO_PERCENTILE = 99.0
VIDEO_GAMMA = 0.6
#: seconds one batch video may take (:data:`vidcam.batch.options.DEFAULT_VIDEO_TIMEOUT`)
DEFAULT_VIDEO_TIMEOUT = 3600.0
#: the environment variable naming extra FFmpeg demuxers (:data:`vidcam.video.decode.ENV_DEMUXERS`)
DEMUXERS_ENV = "VIDCAM_DEMUXERS"
#: spatial modes (:data:`vidcam.video.spatial.SPATIAL`)
SPATIAL: tuple[str, ...] = ("auto", "full", "tiles", "center")
#: contact sheet extensions (:data:`vidcam.video.preview.PREVIEW_EXTENSIONS`)
PREVIEW_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
#: registered model names, in listing order (:data:`vidcam.models.registry.MODELS`): unknown
#: names are refused before torch loads
MODEL_NAMES: tuple[str, ...] = (
    "r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t", "x3d_xs",
    "x3d_s", "x3d_m", "x3d_l", "slow_r50", "i3d_r50", "c2d_r50", "csn_r101", "r2plus1d_r50",
    "slowfast_r50", "mvit_base_16x4", "videomae", "timesformer", "vivit", "i3d", "sample",
)  # fmt: skip


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` report argument errors as ONE line on stderr (exit status 2), pointing
    to ``--help`` instead of printing the whole usage block."""

    def error(message: str) -> NoReturn:
        hint = did_you_mean(parser, message)
        parser.exit(2, f"{parser.prog}: error: {message}{hint} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]


_UNRECOGNIZED = "unrecognized arguments: "
#: difflib's similarity a suggestion needs (--clp-len -> --clip-len: 0.95; --nme -> --normalize,
#: a guess rather than a typo: 0.63)
_CUTOFF = 0.7
_INVALID_CHOICE = re.compile(r"invalid choice: (?P<value>'.*?') \(choose from (?P<choices>.*)\)$")


def did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """`` (did you mean --clip-len?)`` for an argparse ``message`` about a misspelled option
    (the closest of ``parser``'s own long options, by :mod:`difflib`) or an invalid choice
    (the closest choice); ``""`` when nothing is close."""
    if message.startswith(_UNRECOGNIZED):
        return _option_hint(parser, message[len(_UNRECOGNIZED) :].split())
    m = _INVALID_CHOICE.search(message)
    return _choice_hint(m["value"], m["choices"]) if m else ""


def _option_hint(parser: argparse.ArgumentParser, tokens: list[str]) -> str:
    options = [
        s
        for a in parser._actions
        if a.help is not argparse.SUPPRESS
        for s in a.option_strings
        if s.startswith("--")
    ]
    pairs = []
    for token in tokens:
        name = token.split("=", 1)[0]
        if not name.startswith("-") or len(name.strip("-")) < 2:
            continue  # a stray value, a file name, "--", "-x"
        close = difflib.get_close_matches("--" + name.lstrip("-"), options, n=1, cutoff=_CUTOFF)
        if close:
            pairs.append((close[0], name))
    if len(pairs) == 1:
        return f" (did you mean {pairs[0][0]}?)"
    if pairs:
        return " (did you mean " + ", ".join(f"{a} for {b}" for a, b in pairs) + "?)"
    return ""


def _choice_hint(value: str, choices: str) -> str:
    """argparse writes ``invalid choice: 'x' (choose from 'a', 'b')`` with repr()s."""
    try:
        given = ast.literal_eval(value)
        valid = [ast.literal_eval(c) for c in re.findall(r"'(?:[^'\\]|\\.)*'", choices)]
    except (ValueError, SyntaxError):  # not argparse's format: no hint
        return ""
    close = difflib.get_close_matches(str(given), [str(c) for c in valid], n=1, cutoff=_CUTOFF)
    return f" (did you mean {close[0]!r}?)" if close else ""
