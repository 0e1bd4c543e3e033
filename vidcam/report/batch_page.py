"""The batch index: OUT_DIR/index.html over the rows of ``vidcam batch`` (see the batch row
schema): a sortable table, per-class temporal-importance sparklines, the failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vidcam.errors import VidcamError
from vidcam.paths import check_output, write_text
from vidcam.report.charts import sparkline
from vidcam.report.env import link_inside, render
from vidcam.report.reading import fmt, metric_help

PROFILE_BINS = 20


def latest_rows(rows: Sequence[Mapping]) -> list[Mapping]:
    """One row per ``key``: the latest wins, in the order keys first appeared."""
    by_key: dict[str, Mapping] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise VidcamError(f"rows[{i}] is a {type(r).__name__}; give one mapping per input")
        by_key[str(r.get("key", r.get("input", i)))] = r
    return list(by_key.values())


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def table_row(r: Mapping, metric_names: Sequence[str]) -> dict[str, object]:
    """What the table shows of one row, with its sort keys."""
    top = (r.get("top") or [{}])[0] or {}
    prob = _number(top.get("prob"))
    metrics = r.get("metrics") or {}
    outputs = r.get("outputs") or {}
    return {
        "key": str(r.get("key", r.get("input", ""))),
        "status": str(r.get("status", "")),
        "error": r.get("error"),
        "href": link_inside_any(outputs),
        "label": str(top.get("label", "")) if top else "",
        "truth": r.get("label"),
        "prob": prob,
        "prob_text": f"{100 * prob:.1f} %" if prob is not None else "–",
        "seconds": _number(r.get("seconds")),
        "metrics": [(_number(metrics.get(m)), fmt(metrics.get(m))) for m in metric_names],
    }


def link_inside_any(outputs: Mapping) -> str | None:
    """The href of the row's report page (or, without one, its annotated video)."""
    return link_inside(outputs.get("report")) or link_inside(outputs.get("video"))


def _mean(values: Sequence[object]) -> float | None:
    nums = [v for v in (_number(x) for x in values) if v is not None]
    return sum(nums) / len(nums) if nums else None


def class_summaries(rows: Sequence[Mapping]) -> list[dict[str, object]]:
    """Per top label of the done rows: count, mean confidence, the mean temporal profile, the
    mean share of map energy inside the model's centre crop (``centre_energy``; 1 − it lies
    outside) and the mean of every metric (``--evaluate``), largest classes first."""
    groups: dict[str, list[Mapping]] = {}
    for r in rows:
        top = r.get("top") or []
        if r.get("status") == "done" and top:
            groups.setdefault(str(top[0].get("label", "")), []).append(r)
    out = []
    for label, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        profiles = [p for p in (r.get("temporal_profile") for r in rs) if p]
        n = min((len(p) for p in profiles), default=0)
        mean = [sum(float(p[i]) for p in profiles) / len(profiles) for i in range(n)]
        names: list[str] = []
        for r in rs:
            names += [str(k) for k in (r.get("metrics") or {}) if k not in names]
        out.append(
            {
                "label": label,
                "count": len(rs),
                "mean_prob": _mean([r["top"][0].get("prob") for r in rs]) or 0.0,
                "centre_energy": _mean([r.get("centre_energy") for r in rs]),
                "metrics": {m: _mean([(r.get("metrics") or {}).get(m) for r in rs]) for m in names},
                "profile": mean,
                "spark": sparkline(mean),
            }
        )
    return out


def write_batch_index(
    out_dir: str | Path, rows: Sequence[Mapping], *, overwrite: bool = True
) -> Path:
    """Write ``out_dir/index.html`` over ``rows`` (the batch row schema; the latest row per
    ``key`` wins) atomically, and return its path. Links go to each row's
    ``outputs["report"]`` (relative to ``out_dir``)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise VidcamError(f"out_dir {str(out_dir)!r} is not a directory; give the batch's OUT_DIR")
    page = check_output("the batch index", out_dir / "index.html", overwrite=overwrite)
    rows = latest_rows(rows)
    names: list[str] = []
    for r in rows:
        for m in r.get("metrics") or {}:
            if m not in names:
                names.append(str(m))
    counts = {s: sum(r.get("status") == s for r in rows) for s in ("done", "failed", "skipped")}
    context = {
        "rows": [table_row(r, names) for r in rows],
        "metric_names": names,
        "metric_help": {m: metric_help(m) for m in names},
        "counts": counts,
        "classes": class_summaries(rows),
        "failures": [
            {"key": str(r.get("key", "")), "error": str(r.get("error") or "(no message)")}
            for r in rows
            if r.get("status") == "failed"
        ],
        "bins": PROFILE_BINS,
        "fmt": fmt,
    }
    return write_text(page, render("batch.html.j2", context), overwrite=overwrite)
