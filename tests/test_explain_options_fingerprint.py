"""A resumed batch must not redo finished videos: the settings fingerprint of a batch stays
exactly what it was before the options became one typed object.

The expected dicts and hashes below were printed by the code at 09c9b87 (``explain`` a dict,
``fingerprint_settings`` = ``asdict(ExplainOptions(**explain))`` minus device, batch size and
progress), before any change: they are literals, not recomputed here.
"""

from __future__ import annotations

from vidcam.batch.options import BatchOptions
from vidcam.batch.state import fingerprint

_COMMON = {
    "spec": None,
    "labels": None,
    "layer": None,
    "card": None,
    "method": "gradcam++",
    "softmax": False,
    "target": "top1",
    "clip_len": None,
    "stride": None,
    "weights": None,
    "pretrained": True,
}


def test_fingerprint_of_a_listed_side_by_side_is_todays():
    got = BatchOptions(
        explain={"model": "sample", "side_by_side": "gradcam,layercam"}
    ).fingerprint_settings()
    assert got == {
        "explain": {
            "model": "sample",
            **_COMMON,
            "side_by_side": "gradcam,layercam",
            "normalize": "video",
            "spatial": "auto",
        },
        "alpha": 0.6,
        "colormap": "jet",
        "evaluate": False,
    }
    assert list(got["explain"]) == [
        "model", "spec", "labels", "layer", "card", "method", "softmax", "target", "clip_len",
        "stride", "weights", "pretrained", "side_by_side", "normalize", "spatial",
    ]  # fmt: skip
    assert fingerprint(got) == "19a34c52596cfdf8"


def test_fingerprint_of_the_defaults_is_todays():
    got = BatchOptions().fingerprint_settings()
    assert got == {
        "explain": {
            "model": "i3d",
            **_COMMON,
            "side_by_side": False,
            "normalize": "video",
            "spatial": "auto",
        },
        "alpha": 0.6,
        "colormap": "jet",
        "evaluate": False,
    }
    assert fingerprint(got) == "c574a36e3a41fcdf"


def test_fingerprint_of_a_side_by_side_tuple_and_layers_is_todays():
    got = BatchOptions(
        explain={"model": "sample", "side_by_side": ("gradcam", "layercam")}
    ).fingerprint_settings()
    assert got["explain"]["side_by_side"] == ("gradcam", "layercam")
    assert fingerprint(got) == "b261e599a1eb2e84"
    got = BatchOptions(
        explain={"model": "sample", "side_by_side": True, "layer": ["a", "b"], "method": "layercam"}
    ).fingerprint_settings()
    assert got["explain"]["layer"] == ["a", "b"] and got["explain"]["side_by_side"] is True
    assert fingerprint(got) == "95ec6b32a6cd1660"
