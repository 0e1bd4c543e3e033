"""Command-line entry point: ``vidcam explain | models | evaluate``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``. User errors (:class:`~vidcam.errors.VidcamError`) are printed as one
line on stderr with exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vidcam import __version__
from vidcam.errors import VidcamError

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("vidcam.cli.explain", "explain a video file and write an annotated MP4/GIF"),
    "models": ("vidcam.cli.models", "list the registered models and their input specs"),
    "evaluate": ("vidcam.cli.evaluate", "measure explanation quality (faithfulness, localization)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidcam",
        description="Where and when does a video model look? Grad-CAM++ for video action recognition.",
    )
    parser.add_argument("--version", action="version", version=f"vidcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except VidcamError as exc:
        print(f"vidcam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vidcam {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
