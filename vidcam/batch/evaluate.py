"""``--evaluate``: per-video metrics, from the public API of :mod:`vidcam.evaluate`.

Two groups of numbers, flat in the row's ``metrics`` (and ``NAME.metrics.json``):

- **the whole video's maps:** ``map_mean`` and ``map_area50`` (:func:`vidcam.evaluate.map_size`)
  of every window's map, min-max normalised per window, averaged over the windows; with a
  manifest ``label``, ``label_top1`` (the video-level top-1 is that class) and ``label_prob``;
- **the per-clip metrics of ``vidcam evaluate``** on ITS clip of the video (the middle window at
  the model's input crop, :mod:`vidcam.evaluate.clips`), for each method the run renders and
  the random reference (keys ``random.*``; a second method's keys are ``METHOD.*``): ``Y`` (the
  explained class's probability), ``remove_K_FILL`` / ``keep_K_FILL`` (confidence, relative to
  ``Y``, with the map's top K % voxels replaced by the fill / with only those kept; fills ROAD
  and blur), ``avg_drop`` and ``increase`` (the paper's Average Drop and Increase in Confidence
  of this one clip, in %, with E = map ⊙ clip on black), ``clip_map_mean`` and, with a manifest
  ``gt`` file, the localization scores (``energy_pg``, ``pointing``, ``coverage``, ``temporal``,
  ``iou``).

They cost one more hooked forward + backward and ``1 + 2·maps·fills·fractions`` masked forwards
(inference mode) per video, plus one ROAD solve per masked ROAD clip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vidcam.batch.maps_io import RawMaps
from vidcam.cam.targets import find_class
from vidcam.evaluate.keys import ScoreKey
from vidcam.models.handle import ModelHandle

if TYPE_CHECKING:  # the evaluation loads torch-heavy modules on first use
    from vidcam.evaluate.options import EvalOptions
    from vidcam.evaluate.records import MapRecord

#: the keep/remove shares of the per-video scores (the headline share of ``vidcam evaluate``)
FRACTIONS: tuple[float, ...] = (0.2,)
#: the localization scores copied from ``vidcam evaluate`` when a ground truth is given
LOCALIZATION = ("energy_pg", "pointing", "coverage", "temporal", "iou")
#: the keep / remove order of the row's keys
MODES = ("remove", "keep")


def map_metrics(raw: RawMaps, top: Sequence[dict], label: str | None) -> dict[str, float]:
    """The whole video's map size (and, with ``label``, whether top-1 is it)."""
    from vidcam.evaluate import map_size

    out: dict[str, float] = {}
    heat = raw.heat
    if heat is not None and heat.shape[0]:
        sums: dict[str, float] = {}
        for w in torch.from_numpy(heat):
            peak = float(w.max())
            for k, v in map_size(w / peak if peak > 0 else w).items():
                sums[k] = sums.get(k, 0.0) + v
        out |= {k: round(v / heat.shape[0], 6) for k, v in sums.items()}
    if label is not None and top:
        names = [t["label"] for t in top]
        want = find_class(label, names)
        out["label_top1"] = 1.0 if want == 0 else 0.0
        out["label_prob"] = float(top[want]["prob"]) if want is not None else 0.0
    return out


def explained_class(target: str | None, record: ModelHandle) -> int | None:
    """The class index a batch target names (an index or a class name); None: top-1."""
    if target is None or str(target).lower().startswith("top"):
        return None
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return find_class(text, record.labels)


def clip_metrics(
    record: ModelHandle,
    video: Path,
    methods: Sequence[str],
    *,
    target: str | None,
    gt: Path | None,
    engine: Mapping[str, Any],
    batch: int,
) -> dict[str, float]:
    """``vidcam evaluate``'s per-clip scores of ``video`` for ``methods`` and the random map,
    flattened (see the module docstring)."""
    from vidcam.evaluate.options import EvalOptions
    from vidcam.evaluate.pipeline import evaluate

    opts = EvalOptions(
        methods=tuple(methods),
        references=("random",),
        units=(),
        fractions=FRACTIONS,
        batch=max(1, batch),
        quiet=True,
    )
    res = evaluate(
        [video],
        record,
        opts,
        gt_paths=[gt],
        classes=[explained_class(target, record)],
        engine=engine,
    )
    clip = res.records[0]
    y = float(clip.y_prob)
    out: dict[str, float] = {"Y": round(y, 6)}
    for i, m in enumerate(res.opts.evaluated):
        prefix = "" if i == 0 else f"{m}."
        out |= {prefix + k: round(float(v), 6) for k, v in _map_metrics(clip.maps[m], y, res.opts)}
    return out


def _map_metrics(rec: MapRecord, y: float, opts: EvalOptions) -> list[tuple[str, float]]:
    """One map's row metrics, in row order: keep / remove per fill and fraction, the paper's
    Average Drop and Increase in Confidence of this clip, the map's mean, its localization."""
    vals = [
        (key.key, rec.value(key))
        for key in (
            ScoreKey(mode, k, f) for f in opts.fills for k in opts.fractions for mode in MODES
        )
    ]
    o = float(rec.o)
    vals.append(("avg_drop", 100.0 * max(0.0, y - o) / y if y > 0 else 0.0))
    vals.append(("increase", 100.0 if o > y else 0.0))
    vals.append(("clip_map_mean", rec.size.mean))
    if rec.localization is not None:
        vals += [(k, v) for k, v in rec.localization.items() if k in LOCALIZATION]
    return vals
