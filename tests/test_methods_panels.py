"""Method values, ``--side-by-side`` lists, and the new methods through the video pipeline."""

from __future__ import annotations

import pytest
import torch

from vidcam.cam.explainer import ENGINE_METHODS as ENGINE
from vidcam.cam.methods import METHODS, get_method, panel_ids, panels_for, parse_panels
from vidcam.errors import VidcamError


def test_every_engine_method_has_a_method_value():
    assert {m.cam for m in METHODS.values()} == set(ENGINE)
    for mid in ("layercam", "hirescam", "xgradcam", "scorecam", "eigencam"):
        m = get_method(mid)
        assert m.cam == mid and not m.guided and m.title


def test_side_by_side_defaults_keep_todays_pairs():
    ids = lambda ps: [p.id for p in ps]  # noqa: E731
    assert ids(panels_for("gradcam++", True)) == ["gradcam", "gradcam++"]
    assert ids(panels_for("gradcam", True)) == ["gradcam", "gradcam++"]
    assert ids(panels_for("guided-gradcam", True)) == ["gradcam", "guided-gradcam"]
    assert ids(panels_for("layercam", True)) == ["gradcam++", "layercam"]
    assert ids(panels_for("layercam", False)) == ["layercam"]
    assert ids(panels_for("gradcam", "gradcam, LayerCAM,eigencam,gradcam")) == [
        "gradcam",
        "layercam",
        "eigencam",
    ]


def test_side_by_side_list_errors_and_ids():
    assert panel_ids(True) is True and panel_ids(False) is False
    assert panel_ids("gradcam,layercam") == ("gradcam", "layercam")
    assert parse_panels(("hirescam",)) == (METHODS["hirescam"],)
    with pytest.raises(VidcamError, match="'nope' is not one of"):
        panel_ids("gradcam,nope")
    with pytest.raises(VidcamError, match="method ids"):
        panel_ids(",")


def test_video_pipeline_runs_the_listed_panels(videos):
    from vidcam.models.registry import load_model
    from vidcam.video import explain_video

    torch.manual_seed(0)
    lm = load_model("sample", pretrained=False)
    res = explain_video(
        videos["lossless"],
        model=lm.module,
        spec=lm.input,
        layer="block3",
        method="layercam",
        side_by_side="gradcam,layercam,eigencam",
        progress=False,
    )
    assert list(res.panels) == ["gradcam", "layercam", "eigencam"]
    maps = [res.panels[k].float() for k in res.panels]
    assert all(m.shape == maps[0].shape for m in maps)
    assert not torch.equal(maps[0], maps[2])  # different methods, different pictures
    assert torch.equal(res.heatmaps, res.panels["layercam"])
