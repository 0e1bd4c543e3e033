"""The README matches the code (issue 25, item 5): its command-line synopsis and every
``vidcam ...`` command it shows are checked against the argparse parsers, its method lists
against the method table (:data:`vidcam.cam.methods.METHODS`) and against what the engine
accepts.

The README is read as a reader reads it: fenced code blocks and inline code spans that start
with ``vidcam SUBCOMMAND`` (or ``python -m vidcam``, or a ``$`` prompt) are commands;
continuation lines (``\\`` at the end, or the synopsis' indented lines) belong to them.
"""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import vidcam
from vidcam.cam.methods import METHODS
from vidcam.cli import build_parser
from vidcam.errors import VidcamError

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.S | re.M)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
#: ``--opt a|b|c``: a list of choices as the synopsis writes them
CHOICES = re.compile(r"(--[a-z][a-z0-9-]*)[ =]([\w+:.-]+(?:\|[\w+:.-]+)+)")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """``"" -> the top-level parser``, ``"explain" -> its parser``, ``"export fiftyone"`` ..."""
    top = build_parser()
    out = {"": top}
    for name, sub in _subparsers(top).items():
        out[name] = sub
        for inner, p in _subparsers(sub).items():
            out[f"{name} {inner}"] = p
    return out


PARSERS = _parsers()


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in parser._actions for o in a.option_strings}


def _shown_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options ``--help`` shows (hidden ones and ``--help`` itself left out)."""
    return [
        a
        for a in parser._actions
        if a.option_strings
        and a.help != argparse.SUPPRESS
        and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
    ]


def _logical_lines(block: str) -> list[str]:
    """A code block's lines with continuations joined: a trailing ``\\``, or an indented line
    after a ``vidcam`` line (the synopsis' layout)."""
    out: list[str] = []
    joining = False
    for raw in block.splitlines():
        line = raw.rstrip()
        starts_command = re.match(r"\s*(\$ )?(vidcam|python)\b", line) is not None
        if out and (joining or (raw[:1].isspace() and not starts_command and _is_vidcam(out[-1]))):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
        joining = line.endswith("\\")
        if joining:
            out[-1] = out[-1][:-1]
    return out


def _is_vidcam(line: str) -> bool:
    return bool(re.match(r"\s*(\$ )?(vidcam|python3? -m vidcam)(\s|$)", line))


def _commands(text: str) -> list[str]:
    """Every ``vidcam ...`` command the README shows, without its prompt or trailing comment,
    as ``vidcam ARGS``."""
    found: list[str] = []
    pieces = [ln for block in FENCE.findall(text) for ln in _logical_lines(block)]
    prose = FENCE.sub("", text)
    pieces += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    for piece in pieces:
        for part in re.split(r"&&|\|\||;", piece):
            part = part.split(" # ")[0].strip().removeprefix("$ ")
            part = re.sub(r"^python3? -m vidcam\b", "vidcam", part)
            if re.match(r"vidcam(\s|$)", part):
                found.append(part)
    return found


def _subcommand(command: str) -> tuple[str, str]:
    """``vidcam export fiftyone B --x`` -> ("export fiftyone", "B --x")."""
    words = command.split()[1:]
    name = ""
    while words and (f"{name} {words[0]}".strip() in PARSERS):
        name = f"{name} {words.pop(0)}".strip()
    return name, " ".join(words)


COMMANDS = _commands(TEXT)


def _synopsis() -> dict[str, str]:
    """The "Command line" section's synopsis block: subcommand -> its (joined) line."""
    section = TEXT.split("\n## Command line", 1)[1].split("\n## ", 1)[0]
    block = FENCE.search(section)
    assert block, "README's 'Command line' section has no code block"
    out: dict[str, str] = {}
    for line in _logical_lines(block.group(1)):
        if _is_vidcam(line):
            name, rest = _subcommand(line.split(" # ")[0].strip())
            out[name] = f"{out.get(name, '')} {rest}".strip()  # `models` has two lines
    return out


def test_the_readme_shows_commands():
    """The parsing works: the quick start and the synopsis are found."""
    assert any(c.startswith("vidcam explain out/clips/bikes.mp4") for c in COMMANDS)
    assert len(COMMANDS) > 20
    assert set(_synopsis()) >= {"explain", "batch", "evaluate", "layers", "export fiftyone"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_the_readme_parses_its_options(command):
    """Every subcommand the README runs exists, and every option it gives exists in that
    subcommand's parser."""
    name, rest = _subcommand(command)
    assert name or rest.startswith("--"), f"README runs {command!r}: no such subcommand"
    known = _options(PARSERS[name])
    unknown = [o for o in OPTION.findall(rest) if o not in known]
    assert not unknown, f"README shows {command!r}: vidcam {name} has no {unknown}"


def test_the_synopsis_names_every_subcommand_and_every_option():
    """Both ways: each subcommand of the CLI has a synopsis line, and each line shows every
    option that subcommand's --help shows (nothing added or dropped without the README)."""
    synopsis = _synopsis()
    leaves = {n for n, p in PARSERS.items() if n and not _subparsers(p)}
    assert set(synopsis) - {""} == leaves
    for name, line in synopsis.items():
        shown = set(OPTION.findall(line))
        actions = _shown_actions(PARSERS[name])
        missing = [a.option_strings[-1] for a in actions if not shown & set(a.option_strings)]
        assert not missing, f"README's synopsis of 'vidcam {name}' lacks {missing}"


def test_choice_lists_in_the_readme_equal_the_parsers():
    """``--method a|b|...`` and the like list exactly the parser's choices."""
    checked = 0
    for command in COMMANDS:
        name, rest = _subcommand(command)
        known = _options(PARSERS[name])
        for option, listed in CHOICES.findall(rest):
            choices = known[option].choices
            if choices is None:  # free text, e.g. --model NAME|FILE.py:FUNC
                continue
            assert listed.split("|") == list(choices), (command, option)
            checked += 1
    assert checked >= 5


def _ids(cell: str) -> list[str]:
    return re.findall(r"`([a-z][a-z+-]*)`", cell)


def test_the_method_table_lists_every_method_in_order():
    """The README's method table has one row per id of the method table, in its order."""
    table = TEXT.split("\n| id | method |", 1)[1].split("\n\n", 1)[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| `")]
    assert [_ids(r.split("|")[1])[0] for r in rows] == list(METHODS)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def _engine_takes(method: str) -> bool:
    """Whether ``vidcam.explain(method=...)`` computes a map (found by calling it)."""
    try:
        vidcam.explain(_Tiny(), torch.rand(1, 3, 2, 8, 8), layer="conv", method=method)
    except VidcamError:
        return False
    return True


def test_the_api_method_row_lists_what_the_engine_takes():
    """The Python API table's ``method`` row names exactly the ids ``explain`` accepts (found
    by calling it with each id of the method table), in table order."""
    row = next(ln for ln in TEXT.splitlines() if ln.startswith("| `method` |"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a constant map of the random tiny net
        taken = [m for m in METHODS if _engine_takes(m)]
    assert _ids(row.split("|")[2]) == taken
    assert len(taken) < len(METHODS)  # the guided ones are the video pipeline's
