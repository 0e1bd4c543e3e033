"""The constants ``vidcam evaluate``'s argument parser needs, without torch.

``vidcam evaluate --help`` and argument errors must answer at once, so the parser can not import
the metric modules (they import torch). The fills and baselines are defined HERE and imported by
:mod:`vidcam.evaluate.fills` and :mod:`vidcam.evaluate.masking`; the method ids are read from the
method table (:mod:`vidcam.cam.methods`, torch-free).
"""

from __future__ import annotations

from vidcam.cam import methods as _table

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
#: the engine's methods (guided rows are the video pipeline's, not evaluated)
ENGINE_METHODS: tuple[str, ...] = _table.ENGINE_METHODS
#: the slow ones among them (many forwards): never a default
SLOW_METHODS: tuple[str, ...] = _table.SLOW_METHODS
#: input-space perturbation methods (masked clips, no layer)
PERTURBATION_METHODS: tuple[str, ...] = _table.PERTURBATION_METHODS
#: the default of --methods: every cheap method (one forward + one backward for all of them)
DEFAULT_METHODS: tuple[str, ...] = _table.CHEAP_METHODS
#: what the slow methods cost, for --methods' help: "scorecam: a masked forward per channel; ..."
SLOW_METHOD_COSTS: str = "; ".join(f"{m}: {_table.METHODS[m].cost}" for m in SLOW_METHODS)
#: the reference maps evaluated with every run (see vidcam.evaluate.references)
REFERENCES: tuple[str, ...] = ("random", "random_voxel", "centre", "ones")
#: spatial modes (copy of vidcam.video.spatial.SPATIAL): what part of each frame is explained
SPATIAL: tuple[str, ...] = ("auto", "full", "tiles", "center")
#: the pointing game's tolerance in source pixels (copy of metrics_localization's)
POINTING_TOLERANCE = 15.0
