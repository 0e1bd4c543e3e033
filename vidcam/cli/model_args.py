"""The model options every subcommand shares: ``--model``, ``--weights``, ``--random-weights``,
``--labels``, ``--card``, ``--layer``.

:func:`add_model_arguments` defines them on a parser; :func:`model_options` turns the parsed
arguments into exactly :func:`vidcam.models.open.open_model`'s keywords (strings and paths only,
so the options pickle to Ray actors). No torch here: ``--help`` must answer at once.
"""

from __future__ import annotations

import argparse
from typing import Any

MODEL_HELP = (
    "the model: a registered name (see 'vidcam models'), a name a package registers "
    "(entry point group 'vidcam.models'), hf:DIR (a Hugging Face save_pretrained directory) or "
    "hf:ORG/NAME, or path/to/file.py:FUNCTION / package.module:FUNCTION returning an nn.Module "
    "(or a mapping with module, spec, labels, layer), or a torch.export program FILE.pt2 "
    "(TorchScript cannot be explained). A .py file or module is imported and RUNS ITS CODE, as "
    "'python file.py' would, and a .pt2 is unpickled: name only files you trust"
)


def add_model_arguments(parser: Any, *, default: str = "i3d") -> None:
    """Add the model options to ``parser`` (an ``ArgumentParser`` or an argument group)."""
    parser.add_argument("--model", default=default, help=f"{MODEL_HELP} (default: {default})")
    parser.add_argument(
        "--weights",
        help="checkpoint for the model: a local file (for a Hugging Face model also a "
        "save_pretrained folder); a registered architecture takes a fine-tuned head of "
        "another class count from the checkpoint's shapes",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="use random weights (no checkpoint needed; for trying the pipeline)",
    )
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="class names, one per line (blank lines ignored); default: the model's own "
        "(registry, checkpoint, Hugging Face config, card)",
    )
    parser.add_argument(
        "--card",
        metavar="MODEL.toml",
        help="model card: clip_len, fps or stride, resize_short, crop, mean, std, value_range, "
        "channel_order, layout, labels, layer ('vidcam models card NAME' prints a template); "
        "flags override it",
    )
    parser.add_argument(
        "--layer",
        action="append",
        help="layer to explain (dotted name in the model; repeat to fuse several; "
        "default: the model's registered or card layer, else the automatic rule)",
    )


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``open_model``'s keywords from parsed arguments: model, weights, pretrained, labels,
    card, layer (one ``--layer`` as a string, several as a list, none as None)."""
    layers = getattr(args, "layer", None) or None
    if layers is not None:
        layers = layers[0] if len(layers) == 1 else list(layers)
    return {
        "model": args.model,
        "weights": getattr(args, "weights", None),
        "pretrained": not getattr(args, "random_weights", False),
        "labels": getattr(args, "labels", None),
        "card": getattr(args, "card", None),
        "layer": layers,
    }
