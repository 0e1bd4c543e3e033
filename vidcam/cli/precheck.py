"""The path and model checks every subcommand runs BEFORE torch loads (it takes 6-35 s).

:func:`vidcam.cli.main` calls :func:`precheck` between parsing the arguments and the
subcommand's ``run``: a missing input, an output folder that is missing or read-only, an
unknown model name (with its "did you mean"), a missing ``--card`` / ``--labels`` /
``--weights`` file or the missing ``file.py`` of ``--model file.py:FUNCTION`` are refused in a
fraction of a second, in the words the full checks use later. Nothing here imports torch,
PyAV, OpenCV or numpy: the registry's names come from :data:`vidcam.cli.choices.MODEL_NAMES`
and the model-reference rules are copies of :mod:`vidcam.models.sources`' (tests assert that
both agree). The full checks still run inside each command; these only come first.

``vidcam batch`` keeps its contract that an input missing from the command line is a failed
row (exit status 1), not a usage error, so its inputs are not checked here.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

from vidcam.cli.choices import MODEL_NAMES, PREVIEW_EXTENSIONS, VALID_EXTENSIONS
from vidcam.cli.layers import model_ref
from vidcam.errors import VidcamError
from vidcam.models.refs import ENTRY_POINT_GROUP, FACTORY, kind_of
from vidcam.paths import check_distinct, check_output, check_writable
from vidcam.video_files import check_input_file


def check_model_ref(ref: str) -> None:
    """:func:`vidcam.models.sources.check_ref` without torch: a missing model file or an
    unknown name (registry and ``vidcam.models`` entry points) is a one-line error."""
    if not isinstance(ref, str) or not ref.strip():
        raise VidcamError("--model: give a registered name, FILE.py:FUNCTION, hf:DIR or a .pt2")
    kind = kind_of(ref)
    if kind == "file":
        _regular(Path(FACTORY.match(ref)["target"]).expanduser(), "model file")
    elif kind == "model_file":
        _regular(Path(ref).expanduser(), "model file")
    elif kind == "name":
        _known_name(ref)


def _regular(p: Path, what: str, fix: str = "") -> None:
    if not p.is_file():
        state = "is not a regular file" if p.exists() else "does not exist"
        raise VidcamError(f"{what} {str(p)!r} {state}{fix}")


def _known_name(name: str) -> None:
    key = name.strip().lower().replace("-", "_")
    eps = list(
        dict.fromkeys(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    )
    if name in MODEL_NAMES or key in MODEL_NAMES or name in eps:
        return
    if "/" in name or name.endswith(".py"):
        raise VidcamError(
            f"model {name!r}: a Python file needs the function to call: --model {name}:FUNCTION"
        )
    close = difflib.get_close_matches(key, list(MODEL_NAMES), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    extra = f" Entry points ({ENTRY_POINT_GROUP}): {', '.join(eps)}." if eps else ""
    raise VidcamError(
        f"unknown model {name!r}.{hint} Valid names: {', '.join(MODEL_NAMES)} (see `vidcam "
        f"models`){extra}"
    )


def check_model_options(args: argparse.Namespace, model: str | None = None) -> None:
    """``--model`` (or ``model``), then the ``--card``, ``--labels`` and local ``--weights``
    files exist."""
    check_model_ref(args.model if model is None else model)
    if getattr(args, "card", None):
        _regular(Path(args.card).expanduser(), "card", "; pass --card MODEL.toml")
    if getattr(args, "labels", None):
        fix = "; give a text file with one class per line"
        _regular(Path(args.labels).expanduser(), "labels file", fix)
    weights = getattr(args, "weights", None)
    if weights and "://" in str(weights):
        raise VidcamError(
            f"--weights {str(weights)!r}: give a local file (vidcam never downloads --weights; "
            "download it first)"
        )
    if weights and not Path(weights).expanduser().exists():
        raise VidcamError(f"weights {str(weights)!r} does not exist; pass --weights PATH")


def _explain(args: argparse.Namespace) -> None:
    """In the order ``vidcam explain`` checks them: what to write, the input, every output,
    the model."""
    if not args.output and not args.preview:
        raise VidcamError("nothing to write: give -o OUTPUT and/or --preview PATH.png")
    if not args.output and args.json:
        raise VidcamError("--json needs -o OUTPUT")
    check_input_file(args.input)
    ins = [args.input]
    if args.output:
        ext = Path(args.output).suffix.lower()
        if ext not in VALID_EXTENSIONS:
            raise VidcamError(
                f"output {str(args.output)!r}: unsupported extension {ext or '(none)'!r}; "
                f"use one of {', '.join(VALID_EXTENSIONS)}"
            )
        check_output("output", args.output, inputs=ins, overwrite=args.overwrite)
    if args.json:
        check_output("--json", args.json, inputs=ins, overwrite=args.overwrite)
    if args.preview:
        if Path(args.preview).suffix.lower() not in PREVIEW_EXTENSIONS:
            raise VidcamError(
                f"--preview {str(args.preview)!r} must end in {', '.join(PREVIEW_EXTENSIONS)} "
                "(an image file)"
            )
        check_output("--preview", args.preview, inputs=ins, overwrite=args.overwrite)
    if getattr(args, "report_embed", False) and not args.report:
        raise VidcamError("--report-embed needs --report PAGE.html: it puts files inside it")
    if args.report:
        if not args.output:
            raise VidcamError("--report needs -o OUTPUT.mp4: the page shows the annotated video")
        check_output("--report", args.report, inputs=ins, overwrite=args.overwrite)
    names = ("the output video", "--json", "--preview", "--report")
    outs = (args.output, args.json, args.preview, args.report)
    check_distinct(list(zip(names, outs, strict=True)))
    check_model_options(args)


def _batch(args: argparse.Namespace) -> None:
    """The output folder as :func:`vidcam.batch.run` checks it (without creating it), the
    model."""
    out = Path(args.output).absolute()
    if out.exists() and not out.is_dir():
        raise VidcamError(f"output folder {str(args.output)!r} is a file; give a folder")
    check_writable("output folder", out / "index.jsonl" if out.exists() else out)
    check_model_options(args)


def _evaluate(args: argparse.Namespace) -> None:
    """The inputs, ``--gt``, the ``--json`` / ``--markdown`` / ``--plot`` outputs, the model."""
    for item in args.inputs:
        p = Path(item)
        if not (p.is_dir() or p.is_file()):
            raise VidcamError(f"input {str(p)!r} does not exist; give video files or folders")
    if args.gt and not Path(args.gt).exists():
        raise VidcamError(f"--gt {args.gt!r} does not exist; give a folder or an annotation file")
    files = [p for p in args.inputs if Path(p).is_file()]
    outputs = [("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)]
    for flag, value in outputs:
        if value:
            check_output(flag, value, inputs=files, overwrite=args.overwrite)
    check_distinct(outputs)
    check_model_options(args)


def _layers(args: argparse.Namespace) -> None:
    check_model_options(args, model_ref(args))


_CHECKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "explain": _explain,
    "batch": _batch,
    "evaluate": _evaluate,
    "layers": _layers,
}


def precheck(command: str | None, args: argparse.Namespace) -> None:
    """Run ``command``'s torch-free checks on its parsed ``args`` (other commands: none)."""
    check = _CHECKS.get(command or "")
    if check is not None:
        check(args)
