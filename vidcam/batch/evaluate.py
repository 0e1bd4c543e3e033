"""``--evaluate``: per-clip numbers from the public API of :mod:`vidcam.evaluate`.

Only map-side metrics are computed here (no extra model passes): :func:`vidcam.evaluate.map_size`
of every window's map (min-max normalised per window, as ``vidcam evaluate`` reads maps),
averaged over windows, and, with a manifest ``label``, whether the video-level top-1 is it.
The faithfulness metrics that mask the clip (Average Drop, deletion AUC) need the model in the
loop: run ``vidcam evaluate`` on the clips for those.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vidcam.batch.maps_io import RawMaps
from vidcam.cam.targets import find_class


def clip_metrics(raw: RawMaps, top: Sequence[dict], label: str | None) -> dict[str, float]:
    """Flat per-clip numbers (see the module docstring)."""
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
