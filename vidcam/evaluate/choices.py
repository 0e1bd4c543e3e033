"""The constants ``vidcam evaluate``'s argument parser needs, without torch.

``vidcam evaluate --help`` and argument errors must answer at once, so the parser can not import
the metric modules (they import torch). The fills and baselines are defined HERE and imported by
:mod:`vidcam.evaluate.fills` and :mod:`vidcam.evaluate.masking`; the method ids are copies of the
engine's (:data:`vidcam.cam.rules.ENGINE_METHODS`, ``SLOW_METHODS``), which
``tests/test_evaluate_choices.py`` asserts equal, so they can not drift apart.
"""

from __future__ import annotations

#: baselines of the paper's E = map ⊙ clip and of the classic curves
BASELINES: tuple[str, ...] = ("black", "mean", "blur")
BASELINE_HELP: dict[str, str] = {
    "black": "zeros (black pixels)",
    "mean": "the model's normalisation mean (grey for mean≈0.45), i.e. 0 after normalisation",
    "blur": "a Gaussian-blurred copy of each frame (sigma = short side / 16 px)",
}
#: every fill, in the order tables list them
FILLS: tuple[str, ...] = ("road", "blur", "black", "mean")
#: the default: the fills that keep the clip's statistics
NATURAL_FILLS: tuple[str, ...] = ("road", "blur")
#: std of the noise ROAD adds to imputed voxels, in [0, 1] pixel units (ROAD's default 0.01)
ROAD_NOISE = 0.01
FILL_HELP: dict[str, str] = {
    "road": "ROAD noisy linear imputation over T×H×W (neighbours' weighted mean + noise "
    f"std {ROAD_NOISE})",
    **BASELINE_HELP,
}
#: units of the classic deletion/insertion curves
UNITS: tuple[str, ...] = ("voxel", "frame")
#: the engine's methods (copy of vidcam.cam.rules.ENGINE_METHODS) and the slow ones among them
ENGINE_METHODS: tuple[str, ...] = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "layercam",
    "hirescam",
    "eigencam",
    "scorecam",
    "rise",
    "extremal",
)
SLOW_METHODS: tuple[str, ...] = ("scorecam", "rise", "extremal")
#: input-space perturbation methods (copy of vidcam.cam.rules.PERTURBATION_METHODS)
PERTURBATION_METHODS: tuple[str, ...] = ("rise", "extremal")
#: the default of --methods: every cheap method (one forward + one backward for all of them)
DEFAULT_METHODS: tuple[str, ...] = tuple(m for m in ENGINE_METHODS if m not in SLOW_METHODS)
#: the reference maps evaluated with every run (see vidcam.evaluate.references)
REFERENCES: tuple[str, ...] = ("random", "random_voxel", "centre", "ones")
#: spatial modes (copy of vidcam.video.spatial.SPATIAL): what part of each frame is explained
SPATIAL: tuple[str, ...] = ("auto", "full", "tiles", "center")
#: the pointing game's tolerance in source pixels (copy of metrics_localization's)
POINTING_TOLERANCE = 15.0
