"""Paired per-clip comparisons: how often does a method beat a reference, with a 95 % interval?

Means of confidence ratios over a handful of clips are dominated by the clips whose
confidence is low (a ratio of 2.6 on one clip outweighs ten clips at 0.9), and a saturated
clip moves by nothing. A paired comparison asks, clip by clip, which of two maps did better on
the same masked-clip score, and counts: the **win rate** is (wins + ties / 2) / clips, its
interval the **Wilson score interval** at 95 % (z = 1.96) on that count — it stays inside
[0, 1] and is honest for few clips (with 4 clips a 4/4 record gives [0.51, 1.00]).

Scores compared: the keep / remove scores at the headline fraction, as probability ratios
(the same order as log-probability differences: the log is monotone, so the wins are the same)
and as logit differences (which do not saturate, but can move with every class's logit).
Two values within :data:`REL_TOL` (relative) tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vidcam.evaluate.keys import ScoreKey
from vidcam.evaluate.records import ClipRecord
from vidcam.evaluate.summary_records import PairedWins, WinRecord

#: z of a two-sided 95 % interval
Z95 = 1.959963984540054
#: relative tolerance under which two scores tie (float round-off of batched forwards)
REL_TOL = 1e-5
INTERVAL = "Wilson score interval, 95 % (ties count half)"


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (``successes`` may be a
    half-integer: ties count half)."""
    if n <= 0:
        raise ValueError("wilson: n must be >= 1")
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends (no round-off)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return lo, hi


def compare(a: Sequence[float], b: Sequence[float], better: str) -> WinRecord:
    """Paired record of ``a`` against ``b`` (one value per clip; ``better``: "low" | "high")."""
    if len(a) != len(b) or not a:
        raise ValueError("compare: give one value per clip for both maps")
    wins = ties = 0
    for x, y in zip(a, b, strict=True):
        if abs(x - y) <= REL_TOL * max(1.0, abs(x), abs(y)):
            ties += 1
        elif (x < y) == (better == "low"):
            wins += 1
    n = len(a)
    lo, hi = wilson(wins + ties / 2, n)
    return WinRecord(n, wins, ties, n - wins - ties, (wins + ties / 2) / n, lo, hi)


def paired_columns(fills: Sequence[str], fraction: float) -> list[tuple[ScoreKey, str]]:
    """(score, better) of the paired comparisons at ``fraction``: keep / remove under every
    fill as probability ratios, then as logit differences."""
    cols: list[tuple[ScoreKey, str]] = []
    for kind in ("prob", "logit"):
        for f in fills:
            for mode in ("remove", "keep"):
                key = ScoreKey(mode, fraction, f, kind)
                cols.append((key, key.better))
    return cols


def paired_wins(
    clips: Sequence[ClipRecord],
    methods: Sequence[str],
    references: Sequence[str],
    columns: Sequence[tuple[ScoreKey, str]],
) -> PairedWins:
    """Every method against every reference per column, over the clips that have the score for
    both maps (a column no clip has is left out)."""
    table: dict[str, dict[str, dict[ScoreKey, WinRecord]]] = {}
    for m in methods:
        table[m] = {}
        for r in references:
            row: dict[ScoreKey, WinRecord] = {}
            for key, better in columns:
                pairs = [(c.maps[m].value(key), c.maps[r].value(key)) for c in clips]
                pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
                if pairs:
                    row[key] = compare([a for a, _ in pairs], [b for _, b in pairs], better)
            table[m][r] = row
    return PairedWins(INTERVAL, tuple(columns), table)
