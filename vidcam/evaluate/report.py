"""Evaluation output: a Markdown table, a JSON file and a PNG of the mean curves (OpenCV)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch

from vidcam.errors import VidcamError
from vidcam.evaluate.curves import auc
from vidcam.evaluate.masking import BASELINE_HELP
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS
from vidcam.evaluate.run import METHOD_TITLES, METHODS, EvalResult
from vidcam.paths import write_text

#: (key, column title, better) for the faithfulness table.
FAITH_COLUMNS = (
    ("average_drop", "Avg Drop % ↓", "low"),
    ("increase_in_confidence", "Incr. Conf. % ↑", "high"),
    ("deletion_voxel", "Del. AUC voxel ↓", "low"),
    ("insertion_voxel", "Ins. AUC voxel ↑", "high"),
    ("deletion_frame", "Del. AUC frame ↓", "low"),
    ("insertion_frame", "Ins. AUC frame ↑", "high"),
)
PERCENT_KEYS = ("average_drop", "increase_in_confidence")
LOC_COLUMNS = (
    ("energy_pg", "Energy PG ↑"),
    ("pointing", "Pointing ↑"),
    ("coverage", "Inst. coverage ↑"),
    ("temporal", "Temporal energy ↑"),
    ("iou", "IoU@0.5 ↑"),
)


def _fmt(v: float | None, pct: bool = False, digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v * 100:.2f}" if pct else f"{v:.{digits}f}"


def format_table(result: EvalResult) -> str:
    """The summary as Markdown tables (faithfulness, win %, localization) with their settings."""
    s = result.summary
    opts = result.options
    methods = s["methods"]
    lines = [
        f"Model `{result.model['name']}` ({result.model['weights'] or 'weights: see registry'}), "
        f"layer(s) {', '.join(result.model['layers'])}; {s['clips']} clips"
        + (f", top-1 accuracy {s['accuracy'] * 100:.1f}%" if s["accuracy"] is not None else "")
        + f"; explained class: {'prediction' if opts['target'] == 'pred' else 'ground truth'}.",
        f"Masking baseline: **{opts['baseline']}** ({BASELINE_HELP[opts['baseline']]}); "
        f"scores Y, O and curves are softmax probabilities; {opts['steps']} voxel steps.",
        "",
        "| baseline: " + opts["baseline"] + " | " + " | ".join(c[1] for c in FAITH_COLUMNS) + " |",
        "|---|" + "---:|" * len(FAITH_COLUMNS),
    ]
    for m in METHODS:
        row = methods[m]
        cells = [_fmt(row[k], digits=2 if k in PERCENT_KEYS else 3) for k, _, _ in FAITH_COLUMNS]
        lines.append(f"| {METHOD_TITLES[m]} | " + " | ".join(cells) + " |")
    win = s["win_percent"]
    lines += [
        "",
        "Win % (row beats column: smaller drop in confidence on E = map ⊙ clip; ties count half):",
        "",
        "| baseline: "
        + opts["baseline"]
        + " | "
        + " | ".join(METHOD_TITLES[m] for m in METHODS)
        + " |",
        "|---|" + "---:|" * len(METHODS),
    ]
    for a in METHODS:
        cells = ["–" if a == b else f"{win[a][b]:.2f}" for b in METHODS]
        lines.append(f"| {METHOD_TITLES[a]} | " + " | ".join(cells) + " |")
    if any(methods[m]["energy_pg"] is not None for m in METHODS):
        n_gt = methods[METHODS[0]]["energy_pg_clips"]
        lines += [
            "",
            f"Localization against ground truth ({n_gt} clips; percentages):",
            "",
            "| method | " + " | ".join(c[1] for c in LOC_COLUMNS) + " |",
            "|---|" + "---:|" * len(LOC_COLUMNS),
        ]
        for m in METHODS:
            row = methods[m]
            cells = [_fmt(row[k], pct=True) for k, _ in LOC_COLUMNS]
            lines.append(f"| {METHOD_TITLES[m]} | " + " | ".join(cells) + " |")
        lines += [""] + [f"- {k}: {v}" for k, v in LOCALIZATION_METRICS.items()]
    return "\n".join(lines) + "\n"


def write_json(result: EvalResult, path: str | Path) -> Path:
    return write_text(path, json.dumps(result.to_json(), indent=1) + "\n")


# -- plot ---------------------------------------------------------------------------------------

COLORS_BGR = {
    "gradcam": (200, 120, 30),
    "gradcam++": (40, 40, 220),
    "random": (130, 130, 130),
    "ones": (40, 170, 40),
}
PANELS = (
    ("deletion_voxel", "Deletion (voxels)"),
    ("insertion_voxel", "Insertion (voxels)"),
    ("deletion_frame", "Deletion (frames)"),
    ("insertion_frame", "Insertion (frames)"),
)


def _panel(curves: dict[str, dict[str, list[float]]], key: str, title: str, w: int, h: int):
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = 50, 30, w - 15, h - 75  # plot area; axis label and legend below
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (x0, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    top = max((max(c[key]) for c in curves.values() if key in c), default=1.0)
    scale = 10.0 if top > 0.1 else 100.0 if top > 0.01 else 1000.0
    y_max = min(1.0, max(1.0 / scale, math.ceil(top * scale) / scale))  # y axis: 0 .. y_max
    digits = 1 if scale == 10.0 else 2 if scale == 100.0 else 3
    for i in range(6):
        v = i / 5
        y = int(round(y1 - v * (y1 - y0)))
        x = int(round(x0 + v * (x1 - x0)))
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        text = f"{v * y_max:.{digits + 1}f}"
        cv2.putText(img, text, (4, y + 4), font, 0.35, (60, 60, 60), 1, cv2.LINE_AA)
        cv2.putText(img, f"{v:.1f}", (x - 8, y1 + 15), font, 0.35, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    cv2.putText(
        img, "fraction removed/revealed", (x0 + 120, y1 + 32), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA
    )
    legend = []
    for m in METHODS:
        if m not in curves or key not in curves[m]:
            continue
        c = np.asarray(curves[m][key], dtype=np.float64)
        xs = x0 + np.linspace(0, 1, len(c)) * (x1 - x0)
        ys = y1 - np.clip(c / y_max, 0, 1) * (y1 - y0)
        pts = np.stack([xs, ys], 1).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, COLORS_BGR[m], 2, cv2.LINE_AA)
        legend.append((m, float(auc(torch.from_numpy(c)))))
    for li, (m, area) in enumerate(legend):  # two rows of two entries under the axis label
        lx, ly = x0 + 10 + 190 * (li % 2), y1 + 52 + 17 * (li // 2)
        cv2.line(img, (lx, ly - 4), (lx + 20, ly - 4), COLORS_BGR[m], 2)
        label = f"{METHOD_TITLES[m]}: AUC {area:.3f}"
        cv2.putText(img, label, (lx + 25, ly), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def plot_curves(
    result: EvalResult, path: str | Path, *, width: int = 900, height: int = 720
) -> Path:
    """Write a 2×2 PNG of the mean deletion/insertion curves (AUC in each legend)."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise VidcamError(f"--plot {str(p)!r}: the plot is a PNG; give a path ending in .png")
    w, h = width // 2, (height - 30) // 2
    panels = [_panel(result.curves, k, t, w, h) for k, t in PANELS]
    grid = np.concatenate([np.concatenate(panels[:2], 1), np.concatenate(panels[2:], 1)], 0)
    head = np.full((30, grid.shape[1], 3), 255, np.uint8)
    text = (
        f"{result.model['name']}: mean curves over {result.summary['clips']} clips, "
        f"baseline {result.options['baseline']}, score = softmax probability "
    )
    cv2.putText(head, text, (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    img = np.concatenate([head, grid], 0)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), img):
        raise VidcamError(f"could not write the plot to {str(p)!r}")
    return p
