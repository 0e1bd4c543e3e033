"""The evaluation's plot: the mean deletion / insertion curves of every map (matplotlib PNG)."""

from __future__ import annotations

from pathlib import Path

import torch

from vidcam.cam.methods import METHODS
from vidcam.errors import VidcamError
from vidcam.evaluate.curves import auc_xy
from vidcam.evaluate.pipeline import METHOD_TITLES, EvalResult
from vidcam.paths import atomic_write


def _methods(result: EvalResult) -> list[str]:
    return list(result.options.get("methods") or result.summary["methods"])


def _title(m: str) -> str:
    return METHOD_TITLES.get(m, m)


#: the reference maps' curve colours (the methods' come from the method table)
REFERENCE_COLORS: dict[str, str] = {
    "random": "#7f7f7f",
    "random_voxel": "#bcbd22",
    "centre": "#000000",
    "ones": "#2ca02c",
}
#: every curve's colour: the method table's, then the references'
COLORS: dict[str, str] = {
    **{m.id: m.color for m in METHODS.values()},
    **REFERENCE_COLORS,
}


def _panels(result: EvalResult) -> list[tuple[str, str, list[float], str]]:
    """(curve key, title, x positions, y label) for every curve family in the result."""
    opts = result.options
    out = []
    for f in opts.get("fills") or []:
        xs = opts["fill_grids"][f]
        for kind, verb in (("deletion", "remove top"), ("insertion", "keep top")):
            out.append((f"{kind}_rel_{f}", f"{kind.capitalize()} · {f} ({verb})", xs, "score / Y"))
    for unit in opts.get("units", ["voxel", "frame"]):
        for kind in ("deletion", "insertion"):
            key = f"{kind}_{unit}"
            n = next((len(c[key]) for c in result.curves.values() if key in c), 0)
            if n >= 2:
                xs = [i / (n - 1) for i in range(n)]
                title = f"{kind.capitalize()} · {opts['baseline']} ({unit}s)"
                out.append((key, title, xs, "probability"))
    return out


def plot_curves(
    result: EvalResult, path: str | Path, *, width: int = 900, height: int = 720
) -> Path:
    """Write a PNG (``width``×``height`` pixels) of the mean curves: deletion above insertion,
    one column per fill (relative scores) and per classic unit (probabilities, under the
    baseline); every legend gives the curves' AUC."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise VidcamError(f"--plot {str(p)!r}: the plot is a PNG; give a path ending in .png")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    panels = _panels(result)
    if not panels:
        raise VidcamError("no curves to plot")
    cols = (len(panels) + 1) // 2
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    axes = fig.subplots(2, cols, squeeze=False)
    for i, (key, title, xs, ylabel) in enumerate(panels):
        # panels come in (deletion, insertion) pairs: one column per pair
        ax = axes[i % 2][i // 2]
        for m in _methods(result):
            curve = result.curves.get(m, {}).get(key)
            if curve is None:
                continue
            area = float(auc_xy(xs, torch.tensor(curve, dtype=torch.float64)))
            ax.plot(
                [x * 100 for x in xs],
                curve,
                color=COLORS.get(m, "#000000"),
                lw=1.6,
                marker="o" if len(xs) <= 6 else None,
                ms=3,
                label=f"{_title(m)} {area:.3f}",
            )
        ax.set_title(title, fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_xlabel("% of voxels" if "frame" not in key else "% of frames", fontsize=7)
        if i // 2 == 0:
            ax.set_ylabel(ylabel, fontsize=7)
        ax.legend(fontsize=6, title="AUC", title_fontsize=6, loc="best", frameon=False)
    for j in range(len(panels), 2 * cols):
        axes[j % 2][j // 2].set_visible(False)
    fig.suptitle(
        f"{result.model['name']}: mean curves over {result.summary['clips']} clips "
        f"(fills: {', '.join(result.options.get('fills') or []) or 'none'}; "
        f"baseline {result.options['baseline']})",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_write(p) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return p
