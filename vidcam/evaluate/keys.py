"""The names of the evaluation's numbers: typed keep / remove scores and the scalar metrics.

A keep / remove score is a :class:`ScoreKey` (mode, fraction, fill, score kind); its JSON key
(``remove_20_road``, ``keep_10_blur_dlogit``) is written by :attr:`ScoreKey.key` and read back
by :func:`parse_score_key` — the only two places that know the spelling. Every other number has
a fixed name (:data:`SCALAR_METRICS`, the classic curves' ``deletion_<unit>``, the localization
metrics). A table column or a ranking column is a :data:`Metric`: a ScoreKey or such a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidcam.evaluate.choices import FILLS

#: the score kinds the scorer returns per masked clip, in order (see vidcam.evaluate.scoring)
SCORE_KINDS: tuple[str, ...] = ("prob", "logp", "logit")
#: the suffix of a keep / remove key per score kind (the probability ratio's key has none)
KIND_SUFFIX: dict[str, str] = {"prob": "", "logp": "_dlogp", "logit": "_dlogit"}
#: the two masking modes: remove the map's top voxels, or keep only them
MODES: tuple[str, ...] = ("remove", "keep")
#: per-clip metrics computed from the clip's Y and a map's O (the paper's, in %)
PAPER_METRICS: tuple[str, ...] = ("average_drop", "increase_in_confidence")


def pct(f: float) -> str:
    """A fraction as the percentage used in keys and titles: 0.2 -> ``"20"``, 0.125 -> ``"12.5"``."""
    return f"{f * 100:.6g}"


@dataclass(frozen=True)
class ScoreKey:
    """One keep / remove score: the target's score after the map's top ``fraction`` of voxels
    are replaced by ``fill`` (``mode="remove"``) or after everything else is
    (``mode="keep"``), as ``kind``: ``prob`` (probability / Y), ``logp`` (log-probability
    difference) or ``logit`` (logit difference)."""

    mode: str
    fraction: float
    fill: str
    kind: str = "prob"

    @property
    def key(self) -> str:
        """The JSON key, e.g. ``remove_20_road`` or ``keep_10_blur_dlogit``."""
        return f"{self.mode}_{pct(self.fraction)}_{self.fill}{KIND_SUFFIX[self.kind]}"

    @property
    def better(self) -> str:
        """``"low"`` for a removal (a faithful map's removal hurts), ``"high"`` for keeping."""
        return "low" if self.mode == "remove" else "high"

    @property
    def percent(self) -> str:
        return pct(self.fraction)


#: a column of a table or of the ranking: a keep / remove score or a metric's fixed name
Metric = ScoreKey | str


def metric_key(metric: Metric) -> str:
    """The JSON key of a metric."""
    return metric.key if isinstance(metric, ScoreKey) else metric


_SCORE_KEY = re.compile(
    r"^(?P<mode>remove|keep)_(?P<pct>\d+(?:\.\d+)?(?:e[+-]?\d+)?)_(?P<fill>"
    + "|".join(FILLS)
    + r")(?P<suffix>_dlogp|_dlogit)?$"
)
_KIND_OF = {v: k for k, v in KIND_SUFFIX.items()}


def parse_score_key(key: str) -> ScoreKey | None:
    """The :class:`ScoreKey` a JSON key spells (None when ``key`` is no keep / remove key);
    ``parse_score_key(k.key) == k`` for every fraction :func:`pct` prints exactly."""
    m = _SCORE_KEY.match(key)
    if m is None:
        return None
    kind = _KIND_OF[m["suffix"] or ""]
    return ScoreKey(m["mode"], float(m["pct"]) / 100.0, m["fill"], kind)
