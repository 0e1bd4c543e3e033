"""Evaluation output: Markdown tables, a JSON file and a PNG of the mean curves (matplotlib).

The printed table leads with what does not reward coverage and RANKS the methods: how much of
the model's confidence is left after a map's top voxels are removed (or after keeping only them)
under a natural fill, with the map's size beside it, and the paper's Average Drop / Increase in
Confidence next to those — every cell the mean ± std over clips and the method's rank in that
column, rows sorted by the mean rank over the keep/remove columns, each fill's own rank beside
them and a flag where the fills disagree. Then the scores that do not saturate (log-probability
and logit differences), the paired win rates against each reference with their 95 % intervals,
the per-fill tables, the classic tables (the paper's metrics and the deletion/insertion AUC
under the baseline, the win matrix) and localization (with the centre prior's row). Every file
is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from vidcam.evaluate.fills import FILL_HELP
from vidcam.evaluate.keys import pct
from vidcam.evaluate.markdown import (
    FAITH_COLUMNS,
    PERCENT_KEYS,
    SIZE_COLUMNS,
    fill_table,
    fills_note,
    fmt,
    head,
    headline_table,
    localization_table,
    methods_of,
    paired_table,
    row,
    score_table,
    title,
)
from vidcam.evaluate.masking import BASELINE_HELP
from vidcam.evaluate.metrics_localization import LOCALIZATION_METRICS
from vidcam.evaluate.metrics_size import SIZE_METRICS
from vidcam.evaluate.options import HEADLINE_FRACTION, headline_fraction  # noqa: F401
from vidcam.evaluate.plot import COLORS, plot_curves  # noqa: F401 (re-exported)
from vidcam.evaluate.result import EvalResult
from vidcam.paths import write_text

LOC_COLUMNS = (
    ("energy_pg", "Energy in box ↑"),
    ("pointing", "Pointing ↑"),
    ("pointing_tol", "Pointing ±{tol:g} px ↑"),
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
    "reference maps (random, voxel noise, centre prior, all-ones) are what a method must beat."
)
SCORES_NOTE = (
    "Scores that do not saturate (k = {p} %; mean ± std over clips): **Δlog p** = log p(masked) "
    "− log p(clip), the log of the ratio above (its mean is the log of the geometric-mean "
    "ratio: one weak clip cannot swamp it); **Δlogit** = logit(masked) − logit(clip), which "
    "still moves when the probability is saturated at 0.99 (but moves with every class's logit "
    "alike when a fill shifts them all):"
)
PAIRED_NOTE = (
    "Paired win rates (k = {p} %; {n} clips): the share of clips on which the method's map beat "
    "the reference's on the same masked-clip score (ties count half), with its 95 % Wilson "
    "score interval; (p) compares probabilities — the same order as Δlog p —, (Δlogit) logits. "
    "An interval above 0.5 is a win that the clips support:"
)


def _intro(result: EvalResult) -> list[str]:
    s, opts, model = result.overview, result.opts, result.model_info
    spatial = sorted({c.spatial for c in result.records}) or [opts.spatial]
    return [
        f"Model `{model.name}` ({model.weights or 'weights: see registry'}), "
        f"layer(s) {', '.join(model.layers)}; {s.clips} clips"
        + (f", top-1 accuracy {s.accuracy * 100:.1f}%" if s.accuracy is not None else "")
        + f"; explained class: {'prediction' if opts.target == 'pred' else 'ground truth'}; "
        f"spatial: {', '.join(str(x) for x in spatial)} (the window every map and score covers).",
    ]


def _faithfulness(result: EvalResult) -> list[str]:
    """The headline, its fills note, the non-saturating scores, the paired win rates and the
    per-fill tables."""
    s, opts = result.overview, result.opts
    if not opts.fills:
        return []
    grid_note = (
        f"{opts.fill_steps} equal steps and the fractions"
        if opts.fill_steps
        else "0, the fractions and 1"
    )
    p = pct(headline_fraction(opts.fractions))
    lines = [
        "Fills: "
        + "; ".join(f"**{f}** ({FILL_HELP[f]})" for f in opts.fills)
        + f". Keep/remove scores and their AUCs are relative (score / Y); fill curves at "
        f"{grid_note}.",
        "",
        HOW_TO_READ.format(baseline=opts.baseline),
        "",
        f"Headline — the methods ranked (k = {p} % of the voxels; {s.clips} clips; paper "
        f"metrics with the {opts.baseline} baseline; Rank · fill: the map's rank under that "
        "fill alone; Fills: = no fill orders this map and another oppositely, ≠ one does within "
        "the clips' noise, ⚠ one does and the clips' paired wins back both orders):",
        "",
        *headline_table(result),
        *fills_note(result),
    ]
    scores = score_table(result)
    if scores:
        lines += ["", SCORES_NOTE.format(p=p), "", *scores]
    paired = paired_table(result)
    if paired:
        lines += ["", PAIRED_NOTE.format(p=p, n=s.clips), "", *paired]
    for f in opts.fills:
        lines += ["", f"All fractions, fill **{f}**:", ""] + fill_table(result, f)
    return lines + [""]


def _classic(result: EvalResult) -> list[str]:
    s, opts = result.overview, result.opts
    lines = [
        f"The paper's metrics (E = map ⊙ clip) and the classic curves (absolute probabilities; "
        f"units: {', '.join(opts.units) or 'none'}), masking baseline: **{opts.baseline}** "
        f"({BASELINE_HELP[opts.baseline]}); scores Y, O and curves are softmax probabilities; "
        f"{opts.steps} voxel steps.",
        "",
    ]
    titles = [c[1] for c in FAITH_COLUMNS] + [t for _, t in SIZE_COLUMNS]
    lines += head("baseline: " + opts.baseline, titles)
    run = methods_of(result)
    for m in run:
        r = s.methods[m]
        cells = [fmt(r.value(k), digits=2 if k in PERCENT_KEYS else 3) for k, _, _ in FAITH_COLUMNS]
        cells += [fmt(r.value(key)) for key, _ in SIZE_COLUMNS]
        lines.append(row(title(m), cells))
    win = s.win_percent
    lines += [
        "",
        "Win % (row beats column: smaller drop in confidence on E = map ⊙ clip; ties count half):",
        "",
        *head("baseline: " + opts.baseline, [title(m) for m in run]),
    ]
    for a in run:
        lines.append(row(title(a), ["–" if a == b else f"{win[a][b]:.2f}" for b in run]))
    return lines


def _localization(result: EvalResult) -> list[str]:
    methods, run = result.overview.methods, methods_of(result)
    if not any(methods[m].localization.energy_pg is not None for m in run):
        return []
    n_gt = methods[run[0]].localization_clips["energy_pg"]
    lines = [
        "",
        f"Localization against ground truth ({n_gt} clips; percentages; over the whole window "
        "each map covers). A map localizes only as far as it beats the **centre prior** (a "
        "centred Gaussian that knows nothing about the clip: actors are mostly central):",
        "",
        *localization_table(result, LOC_COLUMNS),
    ]
    notes = dict(LOCALIZATION_METRICS)
    notes["pointing_tol"] = notes["pointing_tol"].replace(
        "15 source", f"{result.opts.tolerance:g} source"
    )
    return lines + [""] + [f"- {k}: {v}" for k, v in notes.items()]


def _cost(result: EvalResult) -> list[str]:
    """One line: what each method's map cost per clip (mean over clips)."""
    methods = result.overview.methods
    costs = {m: methods[m].cost for m in methods_of(result) if methods[m].cost is not None}
    if not costs:
        return []
    parts = []
    for m, c in costs.items():
        text = f"{title(m)} {c.forwards:.0f} forwards"
        if c.masked_clips:
            text += f" ({c.masked_clips:.0f} masked clips)"
        if c.backwards:
            text += f", {c.backwards:.0f} backwards to the input"
        parts.append(text + f", {c.seconds:.2f} s")
    return [
        "",
        "Cost of each map per clip (mean; the CAMs share one hooked forward + backward, whose "
        "time each reports): " + "; ".join(parts) + ".",
    ]


def format_table(result: EvalResult) -> str:
    """The summary as Markdown: the headline (removal under natural fills, map size, the paper's
    metrics, each fill's ranks), non-saturating scores, paired win rates against the references,
    one table per fill, the classic faithfulness table, win %, localization."""
    lines = _intro(result) + _faithfulness(result) + _classic(result) + _cost(result)
    lines += _localization(result)
    lines += [""] + [f"- {k}: {v}" for k, v in SIZE_METRICS.items() if k != "map_peak1"]
    return "\n".join(lines) + "\n"


def format_timing(result: EvalResult) -> str:
    """One line: clips, wall time, clips/minute and the masked forwards / ROAD solves run."""
    t = result.run_timing
    if t is None:
        return ""
    c = t.counters
    return (
        f"Run: {result.overview.clips} clips in {t.seconds:.1f} s "
        f"({t.clips_per_minute:.2f} clips/min) on {t.device} with {t.torch_threads} "
        f"threads; {c.masked_forwards} masked forwards, {c.road_solves} ROAD solves, "
        f"engine (every method; {c.engine_forwards} engine calls"
        + (f", {c.scorecam_clips} Score-CAM clips" if c.scorecam_clips else "")
        + (f", {c.perturbation_clips} RISE/extremal clips" if c.perturbation_clips else "")
        + f") {c.engine_seconds:.1f} s.\n"
    )


def write_json(result: EvalResult, path: str | Path) -> Path:
    return write_text(path, json.dumps(result.to_json(), indent=1) + "\n")
