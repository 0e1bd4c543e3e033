"""Command-line entry point: ``vidcam explain | models | evaluate | batch | export | layers``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; those modules import torch and the pipeline only inside ``run``, so
``--help`` and argument errors answer at once, and the path and model checks of
:mod:`vidcam.cli.precheck` run before ``run`` (a missing file or an unknown model name is
refused in well under a second). A misspelled option is answered with the closest one the
subcommand has ("did you mean"). User errors (:class:`~vidcam.errors.VidcamError`) are
printed as one line on stderr with exit status 2 — never a traceback. Ctrl-C, SIGTERM and
SIGHUP stop the run cleanly: temporary files are removed, no partial output is left, and the
exit status is 128 + the signal number.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
from collections.abc import Iterator, Sequence

from vidcam import __version__
from vidcam.cli.choices import one_line_errors
from vidcam.cli.precheck import precheck as check_first
from vidcam.errors import VidcamError
from vidcam.paths import remove_live_temps


class Stopped(BaseException):
    """A termination signal arrived (raised in the main thread, so ``finally`` blocks run)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM / SIGHUP raise :class:`Stopped` for the duration of a command; a signal the
    caller ignores (``nohup`` ignores SIGHUP) stays ignored."""

    def handler(signum: int, frame: object) -> None:
        raise Stopped(signum)

    wanted = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {}
    for sig in wanted:
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue
        # outside the main thread (e.g. called from a worker) signals stay as they are
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("vidcam.cli.explain", "explain a video file and write an annotated MP4/GIF"),
    "models": ("vidcam.cli.models", "list the registered models and their input specs"),
    "evaluate": ("vidcam.cli.evaluate", "measure explanation quality (faithfulness, localization)"),
    "batch": ("vidcam.cli.batch", "explain many videos (files, folders, manifests), resumably"),
    "export": ("vidcam.cli.export", "export a batch output (FiftyOne dataset with heatmaps)"),
    "layers": ("vidcam.cli.layers", "list a model's layers with their shapes and vidcam's pick"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidcam",
        description="Where and when does a video model look? Grad-CAM++ for video action recognition.",
    )
    one_line_errors(parser)
    parser.add_argument("--version", action="version", version=f"vidcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        one_line_errors(p)  # every subcommand, also those whose module does not ask for it
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _parser_of(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The innermost (sub)command parser ``args`` went through (``vidcam export fiftyone``'s
    own): its options give the "did you mean"."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return _parser_of(chosen, args)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed arguments; an unknown option is reported by its subcommand's parser, with
    the closest option it has (one line, exit status 2). A ``--side-by-side`` before the
    input does not take the input as its value (:func:`explain.unswallow_side_by_side`)."""
    from vidcam.cli.explain import unswallow_side_by_side

    parser = build_parser()
    argv = unswallow_side_by_side(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(argv)
    if extras:
        _parser_of(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "_run", None):
        parser.print_help()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if not getattr(args, "_run", None):
        return 0
    try:
        with _stop_on_signals():
            check_first(args.command, args)  # paths and model names, before torch loads
            return int(args._run(args) or 0)
    except VidcamError as exc:
        print(f"vidcam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        remove_live_temps()
        print(f"vidcam {args.command}: interrupted", file=sys.stderr)
        return 130
    except Stopped as exc:
        remove_live_temps()
        name = signal.Signals(exc.signum).name
        print(f"vidcam {args.command}: stopped by {name}; no partial output left", file=sys.stderr)
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
