"""The Markdown tables of ``vidcam evaluate`` (see :mod:`vidcam.evaluate.outputs`)."""

from __future__ import annotations

from vidcam.evaluate.keys import PAPER_METRICS, Metric, ScoreKey, pct
from vidcam.evaluate.options import headline_fraction
from vidcam.evaluate.result import EvalResult
from vidcam.evaluate.summary import METHOD_TITLES
from vidcam.evaluate.summary_records import Flip, Stat

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
PERCENT_KEYS = PAPER_METRICS
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
    return list(result.opts.evaluated or result.overview.methods)


def title(m: str) -> str:
    return METHOD_TITLES.get(m, m)


def rank_text(r: float | None) -> str:
    return "–" if r is None else f"{r:g}"


def cell(stat: Stat, digits: int = 3) -> str:
    if stat.mean is None:
        return "–"
    text = f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"
    return text + (f" ({rank_text(stat.rank)})" if stat.rank is not None else "")


def _column_title(k: Metric, base: str) -> str:
    if isinstance(k, ScoreKey):
        arrow = "↓" if k.mode == "remove" else "↑"
        return f"{k.mode.capitalize()} {k.percent} % · {k.fill} {arrow}"
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
    opts, ranking = result.opts, result.overview.ranking
    if not opts.fills or ranking is None:
        return []
    titles = ["Mean rank ↓"] + [_column_title(c.metric, opts.baseline) for c in ranking.columns]
    per_fill = ranking.fills.ranks if ranking.fills is not None else {}
    several = len(per_fill) > 1
    if several:
        titles += [f"Rank · {f}" for f in per_fill] + ["Fills"]
    lines = head("method", titles)
    for m in ranking.order:
        cells = [rank_text(ranking.mean_rank[m])]
        for col in ranking.columns:
            digits = 2 if col.metric in PERCENT_KEYS else 3
            cells.append(cell(ranking.stats[m][col.metric], digits=digits))
        if several:
            cells += [rank_text(per_fill[f].get(m)) for f in per_fill]
            cells.append(_flag(result, m))
        lines.append(row(title(m), cells))
    return lines


def _flip(d: Flip) -> str:
    f, g = d.fills
    return f"{f} ranks {title(d.first)} above {title(d.second)}, {g} the reverse"


def _disagreements(result: EvalResult) -> tuple[Flip, ...]:
    ranking = result.overview.ranking
    return () if ranking is None or ranking.fills is None else ranking.fills.disagree


def _flag(result: EvalResult, m: str) -> str:
    """ "⚠": the fills order this map and another oppositely and the clips back both orders;
    "≠": they order it and another oppositely within the clips' noise; "=": no pair flips."""
    pairs = [d for d in _disagreements(result) if m in (d.first, d.second)]
    if any(d.supported for d in pairs):
        return "⚠"
    return "≠" if pairs else "="


def fills_note(result: EvalResult) -> list[str]:
    """The fills agree, or which pairs of maps they order differently (backed by the clips, or
    within their noise) and why fills disagree."""
    ranking = result.overview.ranking
    if ranking is None or ranking.fills is None or len(ranking.fills.ranks) < 2:
        return []
    disagree = ranking.fills.disagree
    strong = [_flip(d) for d in disagree if d.supported]
    weak = [_flip(d) for d in disagree if not d.supported]
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
    fractions = result.opts.fractions
    ps = [pct(k) for k in fractions]
    titles = [f"Remove {p} % ↓" for p in ps] + [f"Keep {p} % ↑" for p in ps]
    titles += ["Del. AUC ↓", "Ins. AUC ↑"] + [t for _, t in SIZE_COLUMNS]
    lines = head(f"fill: {fill}", titles)
    for m in methods_of(result):
        r = result.overview.methods[m]
        fs = r.fills.get(fill)
        cells = [fmt(r.value(ScoreKey("remove", k, fill))) for k in fractions]
        cells += [fmt(r.value(ScoreKey("keep", k, fill))) for k in fractions]
        cells += [fmt(None if fs is None else fs.deletion_rel)]
        cells += [fmt(None if fs is None else fs.insertion_rel)]
        cells += [fmt(r.value(key)) for key, _ in SIZE_COLUMNS]
        lines.append(row(title(m), cells))
    return lines


def _mean_std(result: EvalResult, m: str, key: ScoreKey) -> str:
    vals = [c.maps[m].value(key) for c in result.records]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return f"{mean:+.3f} ± {std:.3f}"


def score_table(result: EvalResult) -> list[str]:
    """Keep / remove at the headline fraction as log-probability and logit differences (mean ±
    std over clips): scores that do not saturate."""
    opts = result.opts
    if not opts.fills or not result.records:
        return []
    k = headline_fraction(opts.fractions)
    keys: list[ScoreKey] = []
    titles: list[str] = []
    for kind, name in (("logp", "Δlog p"), ("logit", "Δlogit")):
        for f in opts.fills:
            keys += [ScoreKey("remove", k, f, kind), ScoreKey("keep", k, f, kind)]
            titles += [f"Remove {pct(k)} % · {f} {name} ↓", f"Keep {pct(k)} % · {f} {name} ↑"]
    lines = head("method", titles)
    for m in methods_of(result):
        lines.append(row(title(m), [_mean_std(result, m, key) for key in keys]))
    return lines


def paired_table(result: EvalResult) -> list[str]:
    """Each method against each reference: win rate [95 % interval] per keep/remove column."""
    paired = result.overview.paired
    if paired is None:
        return []
    keys = [k for k, _ in paired.columns]
    titles = []
    for k in keys:
        kind = "Δlogit" if k.kind == "logit" else "p"
        titles.append(f"{k.mode.capitalize()} {k.percent} % · {k.fill} ({kind})")
    lines = head("method vs reference", titles)
    for m, refs in paired.table.items():
        for r, cols in refs.items():
            cells = []
            for k in keys:
                c = cols.get(k)
                cells.append("–" if c is None else f"{c.rate:.2f} [{c.lo:.2f}, {c.hi:.2f}]")
            lines.append(row(f"{title(m)} vs {title(r)}", cells))
    return lines


def localization_table(result: EvalResult, columns: tuple[tuple[str, str], ...]) -> list[str]:
    """Localization of every map (the references' rows included): percentages."""
    tol = result.opts.tolerance
    lines = head("method", [t.format(tol=tol) for _, t in columns])
    for m in methods_of(result):
        loc = result.overview.methods[m].localization
        lines.append(row(title(m), [fmt(getattr(loc, k), pct=True) for k, _ in columns]))
    prior = result.overview.centre_prior
    if prior is not None:  # not among the scored maps: its localization alone
        lines.append(row(title("centre"), [fmt(getattr(prior, k), pct=True) for k, _ in columns]))
    return lines
