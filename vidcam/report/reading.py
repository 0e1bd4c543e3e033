"""One sentence per metric and per setting: how to read what the page shows."""

from __future__ import annotations

from collections.abc import Mapping

#: (substring of a metric name, how to read it); the first match wins
METRIC_HELP: tuple[tuple[str, str], ...] = (
    (
        "remove",
        "The model's confidence after the map's top voxels are replaced by a natural fill, as a "
        "fraction of its confidence on the whole clip: lower means the map found what the model "
        "needs.",
    ),
    (
        "keep",
        "The model's confidence when only the map's top voxels are kept (the rest filled): "
        "higher means those voxels suffice.",
    ),
    (
        "deletion",
        "Area under the confidence curve as the map's top voxels (or frames) are deleted first: "
        "lower is better.",
    ),
    (
        "insertion",
        "Area under the confidence curve as the map's top voxels (or frames) are inserted into "
        "a blank clip first: higher is better.",
    ),
    (
        "average_drop",
        "Average Drop %: the relative confidence lost on map ⊙ clip; lower is better, but it "
        "rewards maps that keep more of the clip: read it beside the map size.",
    ),
    (
        "increase",
        "Increase in Confidence %: how often map ⊙ clip scores higher than the clip; higher is "
        "better.",
    ),
    ("win", "Win %: how often this map's drop is lower than the other CAM's; higher is better."),
    ("energy_pg", "Share of the map's energy inside the ground-truth boxes: higher is better."),
    ("pointing", "Share of maxima that fall inside the ground truth: higher is better."),
    ("iou", "Overlap of the thresholded map with the ground truth: higher is better."),
    ("map_mean", "The map's mean value: how much of the clip it covers (context for the drop)."),
    ("area", "Share of voxels with heat at least 0.5: the map's size."),
    ("centre_energy", "Share of the map's energy inside the central crop."),
)
GENERIC_HELP = "A number from vidcam evaluate (see its table's 'How to read')."

SETTING_HELP: dict[str, str] = {
    "spatial": "full = the whole frame, fully convolutional; tiles = stitched model-size crops; "
    "center = the centre crop only",
    "normalize": "video = one scale for the whole video (brightness says when); clip = one per "
    "window; frame = every frame on its own",
}


def metric_help(name: str) -> str:
    """The sentence that says how to read the metric ``name``."""
    low = name.lower()
    for key, text in METRIC_HELP:
        if key in low:
            return text
    return GENERIC_HELP


def flat_metrics(metrics: Mapping, prefix: str = "") -> list[tuple[str, object]]:
    """``metrics`` flattened to (dotted name, value) pairs, nested mappings included."""
    out: list[tuple[str, object]] = []
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.extend(flat_metrics(v, f"{name}."))
        else:
            out.append((name, v))
    return out


def fmt(v: object) -> str:
    """A value as shown in a table: floats with 4 significant digits, the rest as text."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    return "–" if v is None else str(v)
