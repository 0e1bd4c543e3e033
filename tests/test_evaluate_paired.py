"""Paired win rates (Wilson intervals), the fills' disagreement and the score kinds, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from vidcam.evaluate.curves import MaskedScorer, Ranking, keep_remove_curves, unit_ranks
from vidcam.evaluate.fills import ConstantFill
from vidcam.evaluate.keys import ScoreKey
from vidcam.evaluate.paired import compare, paired_columns, paired_wins, wilson
from vidcam.evaluate.ranking import fill_agreement, headline_columns, rank_methods
from vidcam.evaluate.records import ClipRecord
from vidcam.evaluate.summary import summarize


def test_wilson_interval_by_hand():
    # p = 1, n = 4: centre (1 + z²/8) / (1 + z²/4), half z·sqrt(z²/64) / (1 + z²/4)
    z = 1.959963984540054
    lo, hi = wilson(4, 4)
    den = 1 + z * z / 4
    assert lo == pytest.approx((1 + z * z / 8) / den - z * (z / 8) / den)
    assert lo == pytest.approx(0.5101, abs=1e-4) and hi == 1.0
    lo, hi = wilson(5, 10)  # symmetric around 0.5
    assert lo == pytest.approx(1 - hi) and lo == pytest.approx(0.2366, abs=1e-4)
    lo, hi = wilson(0, 3)
    assert lo == 0.0 and hi == pytest.approx(0.5615, abs=1e-4)
    with pytest.raises(ValueError):
        wilson(1, 0)


def test_compare_counts_wins_ties_and_direction():
    a = [0.1, 0.5, 0.3, 0.2]
    b = [0.2, 0.4, 0.3 + 1e-9, 0.9]
    low = compare(a, b, "low")  # wins on clips 0 and 3, loses 1, ties 2
    assert (low.wins, low.ties, low.losses, low.n) == (2, 1, 1, 4)
    assert low.rate == pytest.approx(2.5 / 4)
    assert (low.lo, low.hi) == pytest.approx(wilson(2.5, 4))
    high = compare(a, b, "high")
    assert (high.wins, high.ties, high.losses) == (1, 1, 2)


def _clip(values: dict[str, tuple[float, float, float, float]]) -> dict:
    """values: map -> (remove road, keep road, remove blur, keep blur)."""
    methods = {}
    for m, (rr, kr, rb, kb) in values.items():
        methods[m] = {
            "O": 0.5,
            "remove_20_road": rr,
            "keep_20_road": kr,
            "remove_20_blur": rb,
            "keep_20_blur": kb,
            "remove_20_road_dlogit": -rr,
            "keep_20_road_dlogit": kr,
            "remove_20_blur_dlogit": -rb,
            "keep_20_blur_dlogit": kb,
        }
    return {"Y": 0.8, "correct": None, "methods": methods}


def test_fills_that_disagree_are_flagged_only_when_the_clips_back_it():
    # 5 clips: under road, a is far better than b on every clip; under blur b beats a on every
    # clip: a disagreement the paired wins back both ways (5/5 -> Wilson lower bound 0.57)
    clips = [
        _clip(
            {"a": (0.1, 0.9, 0.6, 0.4), "b": (0.6, 0.4, 0.1, 0.9), "random": (0.9, 0.2, 0.9, 0.2)}
        )
        for _ in range(5)
    ]
    records = [ClipRecord.from_json(c) for c in clips]
    cols = headline_columns(["road", "blur"], 0.2, units=())
    ranking = rank_methods(records, ["a", "b", "random"], cols)
    agree = fill_agreement(ranking, ["road", "blur"], 0.2, records).to_json()
    assert agree["ranks"]["road"] == {"a": 1, "b": 2, "random": 3}
    assert agree["ranks"]["blur"] == {"a": 2, "b": 1, "random": 3}
    assert agree["disagree"] == [
        {"fills": ["road", "blur"], "first": "a", "second": "b", "supported": True}
    ]
    assert agree["agree"] is False
    # the same flip on 2 clips is within the noise (2/2 -> lower bound 0.34): not supported
    weak = fill_agreement(ranking, ["road", "blur"], 0.2, records[:2]).to_json()
    assert weak["disagree"][0]["supported"] is False and weak["agree"] is True


def test_summary_paired_against_each_reference():
    clips = [
        _clip({"a": (0.1, 0.9, 0.2, 0.8), "random": (0.9, 0.2, 0.9, 0.2), "centre": r})
        for r in ((0.05, 0.95, 0.1, 0.9), (0.5, 0.5, 0.5, 0.5), (0.3, 0.3, 0.3, 0.3))
    ]
    s = summarize(clips, fills=["road", "blur"], fraction=0.2, units=())
    paired = s["paired"]
    assert [c["key"] for c in paired["columns"]] == [
        k.key for k, _ in paired_columns(["road", "blur"], 0.2)
    ]
    assert set(paired["methods"]) == {"a"} and set(paired["methods"]["a"]) == {"random", "centre"}
    vs_random = paired["methods"]["a"]["random"]["remove_20_road"]
    assert (vs_random["wins"], vs_random["n"]) == (3, 3)
    vs_centre = paired["methods"]["a"]["centre"]["remove_20_road"]
    assert (vs_centre["wins"], vs_centre["losses"]) == (2, 1)  # the centre won clip 0
    # logit columns follow their own values: keep_dlogit = keep here
    assert paired["methods"]["a"]["centre"]["keep_20_blur_dlogit"]["wins"] == 2
    records = [ClipRecord.from_json(c) for c in clips]
    direct = paired_wins(records, ["a"], ["centre"], [(ScoreKey("remove", 0.2, "road"), "low")])
    assert direct.to_json()["methods"]["a"]["centre"]["remove_20_road"] == vs_centre


def test_masked_scorer_keeps_every_score_kind():
    clip = torch.arange(1.0, 9.0).view(1, 1, 1, 2, 4).expand(1, 3, 1, 2, 4).contiguous()

    def score(x):
        """Class 0: logit = channel-0 sum / 10, class 1: logit 0 -> (B, 2, 3) kinds."""
        z = x[:, 0].flatten(1).sum(1) / 10
        logits = torch.stack([z, torch.zeros_like(z)], 1)
        logp = logits.log_softmax(1)
        return torch.stack([logp.exp(), logp, logits], -1)

    full = score(clip)[0, 0]
    scorer = MaskedScorer(score, clip, 0, full=full)
    heat = torch.linspace(1, 0, 8).view(1, 2, 4)
    rk = Ranking(("h",), unit_ranks(heat, "voxel")[0], 8)
    black = ConstantFill("black", torch.zeros_like(clip))
    xs = (0.0, 0.25, 1.0)  # remove the top 2 voxels (values 1, 2): logit 3.6 -> 3.3
    y = float(full[0])
    ratio, _ = keep_remove_curves(scorer, black, rk, xs, y)
    dlogit, kept_logit = keep_remove_curves(
        scorer, black, rk, xs, float(full[2]), kind=2, ratio=False
    )
    dlogp, _ = keep_remove_curves(scorer, black, rk, xs, float(full[1]), kind=1, ratio=False)
    assert float(dlogit[1]) == pytest.approx(-0.3, abs=1e-5)
    assert float(kept_logit[1]) == pytest.approx(0.3 - 3.6, abs=1e-5)  # keep only 1 + 2
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    assert float(ratio[1]) == pytest.approx(sig(3.3) / sig(3.6), rel=1e-5)
    assert float(dlogp[1]) == pytest.approx(math.log(sig(3.3) / sig(3.6)), abs=1e-5)
    assert float(dlogit[0]) == 0.0 and float(ratio[0]) == pytest.approx(1.0)
    assert scorer.forwards == 3  # 1 remove, 1 keep, 1 everything removed; each kind cached
