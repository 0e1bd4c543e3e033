"""The methods' ranking per metric against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from vidcam.evaluate.keys import ScoreKey
from vidcam.evaluate.ranking import headline_columns, rank_methods
from vidcam.evaluate.records import ClipRecord
from vidcam.evaluate.summary import summarize


def clip(y, per_method):
    return {"Y": y, "correct": None, "methods": per_method}


# two clips, three methods; remove ↓ and keep ↑ at 20 % under road
CLIPS = [
    clip(
        0.8,
        {
            "a": {"O": 0.4, "remove_20_road": 0.1, "keep_20_road": 0.9, "map_mean": 0.1},
            "b": {"O": 0.8, "remove_20_road": 0.3, "keep_20_road": 0.9, "map_mean": 0.5},
            "c": {"O": 0.9, "remove_20_road": 0.9, "keep_20_road": 0.2, "map_mean": 1.0},
        },
    ),
    clip(
        0.5,
        {
            "a": {"O": 0.5, "remove_20_road": 0.3, "keep_20_road": 0.7, "map_mean": 0.3},
            "b": {"O": 0.25, "remove_20_road": 0.1, "keep_20_road": 0.7, "map_mean": 0.5},
            "c": {"O": 0.6, "remove_20_road": 0.8, "keep_20_road": 0.4, "map_mean": 1.0},
        },
    ),
]


def test_rank_methods_by_hand():
    columns = headline_columns(["road"], 0.2, units=())
    assert [c.key for c in columns if c.in_mean_rank] == ["remove_20_road", "keep_20_road"]
    assert columns[0].metric == ScoreKey("remove", 0.2, "road") and columns[0].better == "low"
    records = [ClipRecord.from_json(c) for c in CLIPS]
    ranking = rank_methods(records, ["a", "b", "c"], columns)
    r = ranking.to_json()  # the JSON's form of the typed ranking
    m = r["methods"]
    assert ranking.stats["a"][ScoreKey("keep", 0.2, "road")].rank == 1.5
    # remove: a (0.1, 0.3) and b (0.3, 0.1) both mean 0.2 -> tie, rank (1 + 2)/2; c 0.85 -> 3
    assert m["a"]["remove_20_road"]["mean"] == pytest.approx(0.2)
    assert m["a"]["remove_20_road"]["std"] == pytest.approx(math.sqrt(0.02))
    assert [m[x]["remove_20_road"]["rank"] for x in "abc"] == [1.5, 1.5, 3]
    # keep: a = b = 0.8 (tie), c = 0.3
    assert [m[x]["keep_20_road"]["rank"] for x in "abc"] == [1.5, 1.5, 3]
    assert [m[x]["mean_rank"] for x in "abc"] == [1.5, 1.5, 3]
    # Average Drop per clip: a (50 %, 0 %) -> 25; b (0 %, 50 %) -> 25; c (0, 0) -> 0
    assert m["a"]["average_drop"]["mean"] == pytest.approx(25.0)
    assert m["a"]["average_drop"]["std"] == pytest.approx(math.sqrt(2 * 25.0**2))
    assert [m[x]["average_drop"]["rank"] for x in "abc"] == [2.5, 2.5, 1]
    # Increase in Confidence: c raises the score on both clips (100 %), a and b never
    assert m["c"]["increase_in_confidence"]["mean"] == 100.0
    assert m["c"]["increase_in_confidence"]["rank"] == 1
    assert m["c"]["map_mean"] == {"mean": 1.0, "std": 0.0, "rank": None}
    assert r["order"] == ["a", "b", "c"]  # mean rank, then the given order


def test_summarize_carries_the_ranking_and_the_paper_means():
    s = summarize(CLIPS, fills=["road"], fraction=0.2, units=())
    assert s["ranking"]["order"] == ["a", "b", "c"]
    for x in "abc":  # the ranking's Average Drop mean is the paper's number
        assert s["ranking"]["methods"][x]["average_drop"]["mean"] == pytest.approx(
            s["methods"][x]["average_drop"]
        )
    assert "ranking" not in summarize(CLIPS)
