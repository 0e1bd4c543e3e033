"""``vidcam evaluate``'s method choices come from the method table: every engine row is accepted
by ``--methods`` (and reaches the run), guided rows are refused with the reason, the slow rows
are never the default, and ``--help`` needs no torch."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from vidcam.cam.methods import METHODS
from vidcam.errors import VidcamError
from vidcam.evaluate import choices
from vidcam.evaluate.options import EvalOptions, parse_methods

ENGINE = [m.id for m in METHODS.values() if m.engine]
GUIDED = [m.id for m in METHODS.values() if m.guided]
SLOW = [m.id for m in METHODS.values() if m.engine and m.slow]


class Reached(Exception):
    """Raised by the stand-in for the evaluation: the options got through the command line."""


@pytest.fixture
def captured_run(monkeypatch):
    """``vidcam evaluate`` up to the evaluation itself: the options it would run with."""
    import vidcam.evaluate.pipeline as pipeline

    seen = []

    def fake_evaluate(videos, em, opts, **kw):
        seen.append(opts)
        raise Reached

    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    return seen


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from conftest import pattern_frames, write_video

    return str(write_video(tmp_path_factory.mktemp("ev") / "c.mkv", pattern_frames(8, 32, 32)))


def test_every_engine_row_reaches_the_evaluation(clip, captured_run):
    from vidcam.cli import main

    for mid in ENGINE:
        with pytest.raises(Reached):
            main(["evaluate", clip, "--methods", mid, "--quiet", "--device", "cpu"])
        assert captured_run[-1].methods == (mid,)
    with pytest.raises(Reached):
        main(["evaluate", clip, "--methods", "all", "--quiet", "--device", "cpu"])
    assert captured_run[-1].methods == tuple(ENGINE)  # all: every engine row, in table order


def test_guided_rows_are_refused_by_evaluate(clip, captured_run, capsys):
    from vidcam.cli import main

    assert GUIDED  # the table has guided rows
    for mid in GUIDED:
        assert main(["evaluate", clip, "--methods", mid, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"--methods: {mid!r} is not one of" in err and len(err.splitlines()) == 1
    assert not captured_run  # refused before any work


def test_the_default_is_every_cheap_row_never_a_slow_one(clip, captured_run):
    from vidcam.cli import main

    assert SLOW and not set(SLOW) & set(choices.DEFAULT_METHODS)
    assert tuple(m for m in ENGINE if m not in SLOW) == choices.DEFAULT_METHODS
    with pytest.raises(Reached):
        main(["evaluate", clip, "--quiet", "--device", "cpu"])
    assert captured_run[-1].methods == choices.DEFAULT_METHODS
    refs = ("random", "random_voxel", "centre", "ones")
    assert EvalOptions().evaluated == (*choices.DEFAULT_METHODS, *refs)


def test_evaluate_help_lists_the_rows_and_imports_no_torch():
    code = (
        "import sys\n"
        "from vidcam.cli import main\n"
        "try:\n    main(['evaluate', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("LIGHT")
    text = re.sub(r"\s+", "", out.stdout)
    assert "--methods" in text and all(m in text for m in ENGINE)
    assert "(default:everycheapone," + ",".join(choices.DEFAULT_METHODS) + ":" in text


def test_parse_methods():
    assert parse_methods("layercam, gradcam,layercam,random") == ("layercam", "gradcam")
    assert parse_methods("LayerCAM") == ("layercam",)
    assert parse_methods("all") == tuple(ENGINE)
    with pytest.raises(VidcamError, match="'saliency' is not one of"):
        parse_methods("saliency")
    with pytest.raises(VidcamError, match="at least one"):
        parse_methods("ones")
