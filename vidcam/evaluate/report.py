"""Evaluation output: Markdown tables, a JSON file and a PNG of the mean curves (matplotlib).

The printed table leads with what does not reward coverage and RANKS the methods: how much of
the model's confidence is left after a map's top voxels are removed (or after keeping only them)
under a natural fill, with the map's size beside it, and the paper's Average Drop / Increase in
Confidence next to those — every cell the mean ± std over clips and the method's rank in that
column, rows sorted by the mean rank over the keep/remove columns. The classic tables (the paper's metrics and the deletion/insertion AUC under the
baseline, the win matrix, localization) follow. Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidcam.errors import VidcamError
from vidcam.evaluate.curves import auc_xy
from vidcam.evaluate.fills import FILL_HELP
from vidcam.evaluate.masking import BASELINE_HELP
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS
from vidcam.evaluate.metrics_size import SIZE_METRICS
from vidcam.evaluate.options import HEADLINE_FRACTION, headline_fraction  # noqa: F401
from vidcam.evaluate.run import METHOD_TITLES, EvalResult, pct
from vidcam.paths import atomic_write, write_text

#: (key, column title, better) for the classic faithfulness table.
FAITH_COLUMNS = (
    ("average_drop", "Avg Drop % ↓", "low"),
    ("increase_in_confidence", "Incr. Conf. % ↑", "high"),
    ("deletion_voxel", "Del. AUC voxel ↓", "low"),
    ("insertion_voxel", "Ins. AUC voxel ↑", "high"),
    ("deletion_frame", "Del. AUC frame ↓", "low"),
    ("insertion_frame", "Ins. AUC frame ↑", "high"),
)
SIZE_COLUMNS = (("map_mean", "Mean map"), ("map_area50", "Area ≥ 0.5"))
PERCENT_KEYS = ("average_drop", "increase_in_confidence")
LOC_COLUMNS = (
    ("energy_pg", "Energy PG ↑"),
    ("pointing", "Pointing ↑"),
    ("coverage", "Inst. coverage ↑"),
    ("temporal", "Temporal energy ↑"),
    ("iou", "IoU@0.5 ↑"),
)
HOW_TO_READ = (
    "How to read: **Remove k %** is the model's confidence in the explained class after the k % "
    "of voxels a map ranks highest are replaced by the fill, as a fraction of its confidence on "
    "the whole clip (lower = the map found what the model needs); **Keep k %** keeps only those "
    "voxels (higher = better). The paper's Average Drop and Increase in Confidence score "
    "E = map ⊙ clip against a {baseline} baseline, which mostly measures how much of the clip a "
    "map keeps (mean map, area ≥ 0.5): the all-ones map scores a perfect 0 % drop, so read them "
    "beside the map size, never alone. Each cell: mean ± std over the clips (rank among the "
    "methods, 1 = best); **Mean rank** averages the ranks of the keep/remove columns only; the "
    "random and all-ones maps are the references a method should beat."
)


def _fmt(v: float | None, pct: bool = False, digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v * 100:.2f}" if pct else f"{v:.{digits}f}"


def _row(title: str, cells: list[str]) -> str:
    return f"| {title} | " + " | ".join(cells) + " |"


def _head(first: str, titles: list[str]) -> list[str]:
    return ["| " + first + " | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles)]


def _methods(result: EvalResult) -> list[str]:
    """The maps of the run, in table order."""
    return list(result.options.get("methods") or result.summary["methods"])


def _title(m: str) -> str:
    return METHOD_TITLES.get(m, m)


def _rank(r: float | None) -> str:
    return "–" if r is None else f"{r:g}"


def _cell(stat: dict[str, Any], digits: int = 3) -> str:
    if stat.get("mean") is None:
        return "–"
    text = f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return text + (f" ({_rank(stat['rank'])})" if stat.get("rank") is not None else "")


def headline_table(result: EvalResult) -> list[str]:
    """The ranking: keep/remove at the headline fraction under each fill, map size, paper
    metrics; mean ± std over clips (rank) per cell, rows by mean rank."""
    s, opts = result.summary, result.options
    fills = opts.get("fills") or []
    ranking = s.get("ranking")
    if not fills or not ranking:
        return []
    p = pct(ranking["fraction"])
    base = opts["baseline"]
    titles = ["Mean rank ↓"]
    for col in ranking["columns"]:
        k = col["key"]
        if k.startswith(("remove_", "keep_")):
            verb, fill = k.split("_")[0], k.rsplit("_", 1)[1]
            arrow = "↓" if verb == "remove" else "↑"
            titles.append(f"{verb.capitalize()} {p} % · {fill} {arrow}")
        elif k in dict(SIZE_COLUMNS):
            titles.append(dict(SIZE_COLUMNS)[k])
        elif k == "average_drop":
            titles.append(f"Avg Drop % ({base}) ↓")
        elif k == "increase_in_confidence":
            titles.append(f"Incr. Conf. % ({base}) ↑")
        else:
            titles.append(dict((c[0], c[1]) for c in FAITH_COLUMNS).get(k, k))
    lines = _head("method", titles)
    for m in ranking["order"]:
        row = ranking["methods"][m]
        cells = [_rank(row["mean_rank"])]
        for col in ranking["columns"]:
            k = col["key"]
            cells.append(_cell(row[k], digits=2 if k in PERCENT_KEYS else 3))
        lines.append(_row(_title(m), cells))
    return lines


def fill_table(result: EvalResult, fill: str) -> list[str]:
    """Every keep/remove fraction and the relative deletion/insertion AUC under one fill."""
    s, opts = result.summary, result.options
    ps = [pct(k) for k in opts["fractions"]]
    titles = [f"Remove {p} % ↓" for p in ps] + [f"Keep {p} % ↑" for p in ps]
    titles += ["Del. AUC ↓", "Ins. AUC ↑"] + [t for _, t in SIZE_COLUMNS]
    lines = _head(f"fill: {fill}", titles)
    for m in _methods(result):
        row = s["methods"][m]
        cells = [_fmt(row.get(f"remove_{p}_{fill}")) for p in ps]
        cells += [_fmt(row.get(f"keep_{p}_{fill}")) for p in ps]
        cells += [_fmt(row.get(f"deletion_rel_{fill}")), _fmt(row.get(f"insertion_rel_{fill}"))]
        cells += [_fmt(row.get(key)) for key, _ in SIZE_COLUMNS]
        lines.append(_row(_title(m), cells))
    return lines


def format_table(result: EvalResult) -> str:
    """The summary as Markdown: the headline (removal under natural fills, map size, the paper's
    metrics), one table per fill, the classic faithfulness table, win %, localization."""
    s = result.summary
    opts = result.options
    methods = s["methods"]
    fills = opts.get("fills") or []
    lines = [
        f"Model `{result.model['name']}` ({result.model['weights'] or 'weights: see registry'}), "
        f"layer(s) {', '.join(result.model['layers'])}; {s['clips']} clips"
        + (f", top-1 accuracy {s['accuracy'] * 100:.1f}%" if s["accuracy"] is not None else "")
        + f"; explained class: {'prediction' if opts['target'] == 'pred' else 'ground truth'}.",
    ]
    if fills:
        grid_note = (
            f"{opts['fill_steps']} equal steps and the fractions"
            if opts.get("fill_steps")
            else "0, the fractions and 1"
        )
        lines += [
            "Fills: "
            + "; ".join(f"**{f}** ({FILL_HELP[f]})" for f in fills)
            + f". Keep/remove scores and their AUCs are relative (score / Y); fill curves at "
            f"{grid_note}.",
            "",
            HOW_TO_READ.format(baseline=opts["baseline"]),
            "",
            f"Headline — the methods ranked (k = {pct(headline_fraction(opts['fractions']))} % "
            f"of the voxels; {s['clips']} clips; paper metrics with the {opts['baseline']} "
            "baseline):",
            "",
        ]
        lines += headline_table(result)
        for f in fills:
            lines += ["", f"All fractions, fill **{f}**:", ""] + fill_table(result, f)
        lines += [""]
    units = opts.get("units", ["voxel", "frame"])
    lines += [
        f"The paper's metrics (E = map ⊙ clip) and the classic curves (absolute probabilities; "
        f"units: {', '.join(units) or 'none'}), masking baseline: **{opts['baseline']}** "
        f"({BASELINE_HELP[opts['baseline']]}); scores Y, O and curves are softmax probabilities; "
        f"{opts['steps']} voxel steps.",
        "",
    ]
    titles = [c[1] for c in FAITH_COLUMNS] + [t for _, t in SIZE_COLUMNS]
    lines += _head("baseline: " + opts["baseline"], titles)
    methods_run = _methods(result)
    for m in methods_run:
        row = methods[m]
        cells = [
            _fmt(row.get(k), digits=2 if k in PERCENT_KEYS else 3) for k, _, _ in FAITH_COLUMNS
        ]
        cells += [_fmt(row.get(key)) for key, _ in SIZE_COLUMNS]
        lines.append(_row(_title(m), cells))
    win = s["win_percent"]
    lines += [
        "",
        "Win % (row beats column: smaller drop in confidence on E = map ⊙ clip; ties count half):",
        "",
        *_head("baseline: " + opts["baseline"], [_title(m) for m in methods_run]),
    ]
    for a in methods_run:
        cells = ["–" if a == b else f"{win[a][b]:.2f}" for b in methods_run]
        lines.append(_row(_title(a), cells))
    if any(methods[m]["energy_pg"] is not None for m in methods_run):
        n_gt = methods[methods_run[0]]["energy_pg_clips"]
        lines += [
            "",
            f"Localization against ground truth ({n_gt} clips; percentages):",
            "",
            *_head("method", [c[1] for c in LOC_COLUMNS]),
        ]
        for m in methods_run:
            row = methods[m]
            cells = [_fmt(row[k], pct=True) for k, _ in LOC_COLUMNS]
            lines.append(_row(_title(m), cells))
        lines += [""] + [f"- {k}: {v}" for k, v in LOCALIZATION_METRICS.items()]
    lines += [""] + [f"- {k}: {v}" for k, v in SIZE_METRICS.items() if k != "map_peak1"]
    return "\n".join(lines) + "\n"


def format_timing(result: EvalResult) -> str:
    """One line: clips, wall time, clips/minute and the masked forwards / ROAD solves run."""
    t = result.timing
    if not t:
        return ""
    return (
        f"Run: {result.summary['clips']} clips in {t['seconds']:.1f} s "
        f"({t['clips_per_minute']:.2f} clips/min) on {t['device']} with {t['torch_threads']} "
        f"threads; {t['masked_forwards']} masked forwards, {t['road_solves']} ROAD solves, "
        f"engine (every method; {t.get('engine_forwards', 0)} hooked forwards + backwards"
        + (f", {t['scorecam_clips']} Score-CAM clips" if t.get("scorecam_clips") else "")
        + f") {t['engine_seconds']:.1f} s.\n"
    )


def write_json(result: EvalResult, path: str | Path) -> Path:
    return write_text(path, json.dumps(result.to_json(), indent=1) + "\n")


# -- plot ---------------------------------------------------------------------------------------

COLORS = {
    "gradcam": "#1f77b4",
    "gradcam++": "#d62728",
    "xgradcam": "#9467bd",
    "layercam": "#ff7f0e",
    "hirescam": "#8c564b",
    "eigencam": "#e377c2",
    "scorecam": "#17becf",
    "random": "#7f7f7f",
    "ones": "#2ca02c",
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
            import torch

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
