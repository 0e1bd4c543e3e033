"""The Markdown tables of ``vidcam evaluate`` (see :mod:`vidcam.evaluate.report`)."""

from __future__ import annotations

from typing import Any

from vidcam.evaluate.options import headline_fraction
from vidcam.evaluate.run import METHOD_TITLES, EvalResult, pct

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
#: why fills disagree, printed under the headline when they do
FILL_BIAS = (
    "ROAD's imputation favours smooth, blurry maps (their holes interpolate well); black fills "
    "favour large maps (they keep more of the clip); the blur fill sits between. Trust a "
    "method's lead only where the fills agree."
)


def fmt(v: float | None, pct: bool = False, digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v * 100:.2f}" if pct else f"{v:.{digits}f}"


def row(title: str, cells: list[str]) -> str:
    return f"| {title} | " + " | ".join(cells) + " |"


def head(first: str, titles: list[str]) -> list[str]:
    return ["| " + first + " | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles)]


def methods_of(result: EvalResult) -> list[str]:
    """The maps of the run, in table order."""
    return list(result.options.get("methods") or result.summary["methods"])


def title(m: str) -> str:
    return METHOD_TITLES.get(m, m)


def rank_text(r: float | None) -> str:
    return "–" if r is None else f"{r:g}"


def cell(stat: dict[str, Any], digits: int = 3) -> str:
    if stat.get("mean") is None:
        return "–"
    text = f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return text + (f" ({rank_text(stat['rank'])})" if stat.get("rank") is not None else "")


def _column_title(k: str, p: str, base: str) -> str:
    if k.startswith(("remove_", "keep_")):
        verb, fill = k.split("_")[0], k.rsplit("_", 1)[1]
        arrow = "↓" if verb == "remove" else "↑"
        return f"{verb.capitalize()} {p} % · {fill} {arrow}"
    if k in dict(SIZE_COLUMNS):
        return dict(SIZE_COLUMNS)[k]
    if k == "average_drop":
        return f"Avg Drop % ({base}) ↓"
    if k == "increase_in_confidence":
        return f"Incr. Conf. % ({base}) ↑"
    return dict((c[0], c[1]) for c in FAITH_COLUMNS).get(k, k)


def headline_table(result: EvalResult) -> list[str]:
    """The ranking: keep/remove at the headline fraction under each fill, map size, paper
    metrics; mean ± std over clips (rank) per cell, rows by mean rank; then each fill's own
    rank of the map and ``≠`` where the fills rank it differently."""
    s, opts = result.summary, result.options
    fills = opts.get("fills") or []
    ranking = s.get("ranking")
    if not fills or not ranking:
        return []
    p = pct(ranking["fraction"])
    titles = ["Mean rank ↓"] + [
        _column_title(c["key"], p, opts["baseline"]) for c in ranking["columns"]
    ]
    per_fill = (ranking.get("fills") or {}).get("ranks", {})
    several = len(per_fill) > 1
    if several:
        titles += [f"Rank · {f}" for f in per_fill] + ["Fills"]
    lines = head("method", titles)
    for m in ranking["order"]:
        r = ranking["methods"][m]
        cells = [rank_text(r["mean_rank"])]
        for col in ranking["columns"]:
            k = col["key"]
            cells.append(cell(r[k], digits=2 if k in PERCENT_KEYS else 3))
        if several:
            ranks = [per_fill[f].get(m) for f in per_fill]
            cells += [rank_text(x) for x in ranks]
            cells.append(_flag(result, m))
        lines.append(row(title(m), cells))
    return lines


def _flip(d: dict[str, Any]) -> str:
    f, g = d["fills"]
    return f"{f} ranks {title(d['first'])} above {title(d['second'])}, {g} the reverse"


def _flag(result: EvalResult, m: str) -> str:
    """ "⚠": the fills order this map and another oppositely and the clips back both orders;
    "≠": they order it and another oppositely within the clips' noise; "=": no pair flips."""
    pairs = [
        d for d in result.summary["ranking"]["fills"]["disagree"] if m in (d["first"], d["second"])
    ]
    if any(d["supported"] for d in pairs):
        return "⚠"
    return "≠" if pairs else "="


def fills_note(result: EvalResult) -> list[str]:
    """The fills agree, or which pairs of maps they order differently (backed by the clips, or
    within their noise) and why fills disagree."""
    agreement = (result.summary.get("ranking") or {}).get("fills")
    if not agreement or len(agreement["ranks"]) < 2:
        return []
    strong = [_flip(d) for d in agreement["disagree"] if d["supported"]]
    weak = [_flip(d) for d in agreement["disagree"] if not d["supported"]]
    lines = [""]
    if strong:
        lines.append(
            "⚠ **The fills disagree** (each order backed by the clips' paired wins): "
            + "; ".join(strong[:8])
            + (f"; and {len(strong) - 8} more pairs" if len(strong) > 8 else "")
            + ". "
            + FILL_BIAS
        )
    if weak:
        shown = "; ".join(weak[:6]) + (f"; and {len(weak) - 6} more" if len(weak) > 6 else "")
        lines.append(f"Orders that flip between fills within the clips' noise: {shown}.")
    if not strong and not weak:
        lines.append("The fills agree on the order of the maps.")
    return lines


def fill_table(result: EvalResult, fill: str) -> list[str]:
    """Every keep/remove fraction and the relative deletion/insertion AUC under one fill."""
    s, opts = result.summary, result.options
    ps = [pct(k) for k in opts["fractions"]]
    titles = [f"Remove {p} % ↓" for p in ps] + [f"Keep {p} % ↑" for p in ps]
    titles += ["Del. AUC ↓", "Ins. AUC ↑"] + [t for _, t in SIZE_COLUMNS]
    lines = head(f"fill: {fill}", titles)
    for m in methods_of(result):
        r = s["methods"][m]
        cells = [fmt(r.get(f"remove_{p}_{fill}")) for p in ps]
        cells += [fmt(r.get(f"keep_{p}_{fill}")) for p in ps]
        cells += [fmt(r.get(f"deletion_rel_{fill}")), fmt(r.get(f"insertion_rel_{fill}"))]
        cells += [fmt(r.get(key)) for key, _ in SIZE_COLUMNS]
        lines.append(row(title(m), cells))
    return lines


def _mean_std(result: EvalResult, m: str, key: str) -> str:
    vals = [c["methods"][m].get(key) for c in result.clips]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return f"{mean:+.3f} ± {std:.3f}"


def score_table(result: EvalResult) -> list[str]:
    """Keep / remove at the headline fraction as log-probability and logit differences (mean ±
    std over clips): scores that do not saturate."""
    opts = result.options
    fills = opts.get("fills") or []
    if not fills or not result.clips:
        return []
    p = pct(headline_fraction(opts["fractions"]))
    keys, titles = [], []
    for suffix, name in (("_dlogp", "Δlog p"), ("_dlogit", "Δlogit")):
        for f in fills:
            keys += [f"remove_{p}_{f}{suffix}", f"keep_{p}_{f}{suffix}"]
            titles += [f"Remove {p} % · {f} {name} ↓", f"Keep {p} % · {f} {name} ↑"]
    lines = head("method", titles)
    for m in methods_of(result):
        lines.append(row(title(m), [_mean_std(result, m, k) for k in keys]))
    return lines


def paired_table(result: EvalResult) -> list[str]:
    """Each method against each reference: win rate [95 % interval] per keep/remove column."""
    paired = result.summary.get("paired")
    if not paired:
        return []
    p = pct(paired["fraction"])
    keys = [c["key"] for c in paired["columns"]]
    titles = []
    for k in keys:
        verb, rest = k.split("_", 1)
        fill = rest.split("_")[1]
        kind = "Δlogit" if k.endswith("_dlogit") else "p"
        titles.append(f"{verb.capitalize()} {p} % · {fill} ({kind})")
    lines = head("method vs reference", titles)
    for m, refs in paired["methods"].items():
        for r, cols in refs.items():
            cells = []
            for k in keys:
                c = cols.get(k)
                cells.append(
                    "–" if c is None else f"{c['rate']:.2f} [{c['lo']:.2f}, {c['hi']:.2f}]"
                )
            lines.append(row(f"{title(m)} vs {title(r)}", cells))
    return lines


def _mean_gt(result: EvalResult, m: str, key: str) -> float | None:
    return result.summary["methods"][m].get(key)


def localization_table(result: EvalResult, columns: tuple[tuple[str, str], ...]) -> list[str]:
    """Localization of every map (the references' rows included): percentages."""
    tol = result.options.get("pointing_tolerance", 15.0)
    lines = head("method", [t.format(tol=tol) for _, t in columns])
    for m in methods_of(result):
        lines.append(row(title(m), [fmt(_mean_gt(result, m, k), pct=True) for k, _ in columns]))
    prior = result.summary.get("centre_prior")
    if prior:  # not among the scored maps: its localization alone
        lines.append(row(title("centre"), [fmt(prior.get(k), pct=True) for k, _ in columns]))
    return lines
