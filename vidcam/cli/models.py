"""``vidcam models``: list the registered models, their input specs, layers and weights."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from vidcam.cli.choices import one_line_errors

if TYPE_CHECKING:
    from vidcam.models.spec import InputSpec, ModelSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    one_line_errors(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "name",
        nargs="*",
        metavar="NAME",
        help="show one model in detail (with its description); 'card NAME' prints its model "
        "card, a template for --card",
    )


def _fmt(values: tuple[float, ...]) -> str:
    return "/".join(f"{v:.3g}" for v in values)


def input_summary(inp: InputSpec) -> str:
    """e.g. ``16x@15fps 112x112 (short 128) mean .43/.39/.38 std .23/.22/.22``."""
    rate = f"@{inp.fps:g}fps" if inp.fps is not None else f"/{inp.stride}"
    h, w = inp.crop
    return f"{inp.clip_len}{rate} {h}x{w}<{inp.resize_short} m={_fmt(inp.mean)} s={_fmt(inp.std)}"


def _row(spec: ModelSpec) -> dict[str, str]:
    return {
        "name": spec.name,
        "source": spec.source,
        "input": input_summary(spec.input),
        "layers": ", ".join(spec.layers),
        "weights": _weights_status(spec),
    }


def _record(spec: ModelSpec) -> dict[str, object]:
    inp = spec.input
    return {
        "name": spec.name,
        "source": spec.source,
        "input": {
            "clip_len": inp.clip_len,
            "fps": inp.fps,
            "stride": inp.stride,
            "crop": list(inp.crop),
            "resize_short": inp.resize_short,
            "mean": list(inp.mean),
            "std": list(inp.std),
        },
        "layers": list(spec.layers),
        "labels": spec.labels,
        "weights": _weights_status(spec),
        "weights_note": spec.weights_note,
        "description": spec.description,
    }


def format_table(rows: list[dict[str, str]]) -> str:
    """Plain-text table with a header row, columns padded to their widest cell."""
    headers = {"name": "NAME", "source": "SOURCE", "input": "INPUT", "layers": "LAYERS"}
    headers["weights"] = "WEIGHTS"
    keys = list(headers)
    widths = {k: max(len(headers[k]), *(len(r[k]) for r in rows)) for k in keys}
    lines = ["  ".join(headers[k].ljust(widths[k]) for k in keys).rstrip()]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in keys).rstrip() for r in rows]
    return "\n".join(lines)


_LEGEND = (
    "INPUT: frames@fps (or /stride: every n-th source frame), crop HxW < resize of the short "
    "side, mean/std per RGB channel on [0,1] pixels.\n"
    "WEIGHTS: yes = cached locally, no = downloaded on first use (or pass --weights PATH), "
    "bundled = ships with vidcam."
)


def _weights_status(spec: ModelSpec) -> str:
    from vidcam.models.registry import weights_status

    return weights_status(spec)


def run(args: argparse.Namespace) -> int:
    from vidcam.errors import VidcamError
    from vidcam.models.registry import get_spec, list_models

    names = list(args.name or [])
    if names[:1] == ["card"] and len(names) == 2:
        return _print_card(names[1])
    if len(names) > 1:
        raise VidcamError("give one model NAME, or: vidcam models card NAME")
    args.name = names[0] if names else None
    specs = [get_spec(args.name)] if args.name else list_models()
    if args.json:
        records = [_record(s) for s in specs]
        print(json.dumps(records[0] if args.name else records, indent=2))
        return 0
    print(format_table([_row(s) for s in specs]))
    if args.name:
        spec = specs[0]
        print(f"\n{spec.description}\nweights: {spec.weights_note}\nlabels: {spec.labels}")
    else:
        print("\n" + _LEGEND)
    return 0


def _print_card(name: str) -> int:
    """``vidcam models card NAME``: the registered model's card (reading it back gives its
    input spec)."""
    from vidcam.models.card import format_card
    from vidcam.models.registry import get_spec

    spec = get_spec(name)
    print(format_card(spec.input, layers=spec.layers, labels=spec.labels, name=spec.name), end="")
    return 0
