"""``vidcam evaluate``'s light constants equal the real ones, and ``--help`` needs no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vidcam.cam import rules
from vidcam.errors import VidcamError
from vidcam.evaluate import choices, curves, fills, masking
from vidcam.evaluate.options import EvalOptions, parse_methods


def test_choices_equal_the_real_constants():
    assert choices.ENGINE_METHODS == rules.ENGINE_METHODS
    assert choices.SLOW_METHODS == rules.SLOW_METHODS
    assert choices.PERTURBATION_METHODS == rules.PERTURBATION_METHODS
    assert choices.FILLS == fills.FILLS and choices.NATURAL_FILLS == fills.NATURAL_FILLS
    assert choices.FILL_HELP == fills.FILL_HELP and choices.ROAD_NOISE == fills.ROAD_NOISE
    assert choices.BASELINES == masking.BASELINES
    assert choices.BASELINE_HELP == masking.BASELINE_HELP
    assert choices.UNITS == curves.UNITS
    assert "scorecam" not in choices.DEFAULT_METHODS
    assert set(choices.DEFAULT_METHODS) | set(choices.SLOW_METHODS) == set(rules.ENGINE_METHODS)
    from vidcam.evaluate import metrics_localization, references
    from vidcam.video import spatial

    assert choices.SPATIAL == spatial.SPATIAL
    assert choices.POINTING_TOLERANCE == metrics_localization.POINTING_TOLERANCE
    assert set(choices.REFERENCES) == set(references.REFERENCE_HELP)


def test_evaluate_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from vidcam.cli import main\n"
        "try:\n    main(['evaluate', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--methods" in out.stdout and out.stdout.strip().endswith("LIGHT")


def test_parse_methods():
    assert parse_methods("layercam, gradcam,layercam,random") == ("layercam", "gradcam")
    assert parse_methods("all") == rules.ENGINE_METHODS
    # the references: smoothness-matched random, voxel noise, the centre prior, all-ones
    refs = ("random", "random_voxel", "centre", "ones")
    assert EvalOptions().evaluated == (*choices.DEFAULT_METHODS, *refs)
    with pytest.raises(VidcamError, match="'saliency' is not one of"):
        parse_methods("saliency")
    with pytest.raises(VidcamError, match="at least one"):
        parse_methods("ones")
