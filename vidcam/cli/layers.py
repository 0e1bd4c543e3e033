"""``vidcam layers MODEL``: the layers a CAM can be computed on, their shapes, and vidcam's pick.

MODEL takes every ``--model`` form (registry name, ``hf:DIR``, ``file.py:FUNCTION``, ...). One
dry forward of a zero clip of the model's input shape lists the modules with their output
shapes (see :mod:`vidcam.cam.layer_candidates`); ``*`` marks the layer vidcam explains.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from vidcam.cli.choices import one_line_errors
from vidcam.cli.model_args import add_model_arguments, model_options
from vidcam.errors import VidcamError

if TYPE_CHECKING:
    from vidcam.cam.layer_candidates import LayerListing

DEFAULT_MODEL = "i3d"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    one_line_errors(parser)
    parser.add_argument(
        "model_ref",
        nargs="?",
        metavar="MODEL",
        help=f"the model, in any --model form (same as --model; default: {DEFAULT_MODEL})",
    )
    add_model_arguments(parser, default=DEFAULT_MODEL)
    parser.set_defaults(model=None)  # to tell MODEL and --model apart; DEFAULT_MODEL in run
    parser.add_argument(
        "--all",
        action="store_true",
        help="list every module that returns a tensor (default: the usable layers no deeper "
        "than the explained one)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--device", default="auto", help="where the dry run runs (auto, cpu, cuda; default: auto)"
    )


def _shape(shape: tuple[int, ...] | list[int] | None) -> str:
    if shape is None:
        return "-"
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


def format_listing(name: str, listing: LayerListing, everything: bool = False) -> str:
    """The plain-text table of a :class:`~vidcam.cam.layer_candidates.LayerListing`."""
    rows = listing.shown(everything)
    table = [("", "LAYER", "MODULE", "OUTPUT", "CAM VOLUME (C, T, H, W)")]
    for c in rows:
        module = c.module + (f" x{c.calls}" if c.calls > 1 else "")
        table.append(("*" if c.picked else "", c.name, module, _shape(c.output), _shape(c.volume)))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]
    picked = ", ".join(listing.picked)
    how = "the automatic rule" if listing.automatic else "set by the model or --layer"
    foot = [
        f"* = the layer vidcam explains: {picked} ({how}); pick another with --layer NAME.",
        "OUTPUT: the module's output without the batch dimension ((tokens, C) for token "
        "layers); CAM VOLUME: what a CAM of it is computed on (- : none).",
    ]
    if not everything:
        foot.append(
            "Shown: the usable layers no deeper than the explained one; --all: every module."
        )
    head = f"{name}: dry run on a zero clip {_shape(listing.input)}"
    return "\n".join([head, *lines, *foot])


def model_ref(args: argparse.Namespace) -> str:
    """The model MODEL or ``--model`` names (not both), else :data:`DEFAULT_MODEL`."""
    if args.model_ref is not None and args.model is not None:
        raise VidcamError(
            f"model: given twice ({args.model_ref!r} and --model {args.model!r}); give one"
        )
    return args.model_ref or args.model or DEFAULT_MODEL


def run(args: argparse.Namespace) -> int:
    args.model = model_ref(args)
    import torch

    from vidcam.cam.layer_candidates import list_layers
    from vidcam.models.open import open_model

    handle = open_model(**model_options(args), device=args.device, progress=sys.stderr.isatty())
    clip_len, (h, w) = handle.input.clip_len, handle.input.crop
    example = torch.zeros(1, 3, clip_len, h, w, device=handle.device)
    listing = list_layers(handle.module, example, layer=handle.layer, reshape=handle.reshape)
    if args.json:
        print(json.dumps({"model": handle.name, **listing.to_dict(args.all)}, indent=2))
    else:
        print(format_listing(handle.name, listing, args.all))
    return 0
