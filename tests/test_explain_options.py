"""One typed options object (issue 25, item 2): ExplainOptions from the command line through
the pipeline and the batch (local and Ray: it pickles) to the report; the batch's fingerprint
from the command line is what it was; one progress/ETA implementation."""

from __future__ import annotations

import argparse
import pickle

import pytest

import vidcam.progress
import vidcam.video.pipeline as pipeline
from vidcam.batch.options import BatchOptions
from vidcam.batch.scoring import scored_methods
from vidcam.batch.state import fingerprint
from vidcam.cam.methods import panels_for
from vidcam.cli import batch as batch_cli
from vidcam.cli import explain as explain_cli
from vidcam.errors import VidcamError
from vidcam.report.glue import run_settings, settings_from_args
from vidcam.video import ExplainOptions


def test_side_by_side_is_a_typed_value_parsed_once():
    assert ExplainOptions().side_by_side is False
    assert ExplainOptions(side_by_side=None).side_by_side is False
    assert ExplainOptions(side_by_side=True).side_by_side is True
    assert ExplainOptions(side_by_side="").side_by_side is True  # "--side-by-side="
    listed = ExplainOptions(side_by_side=" GradCAM, layercam,gradcam ")
    assert listed.side_by_side == ("gradcam", "layercam")  # ids, in order, each once
    assert ExplainOptions(side_by_side=["eigencam", "gradcam"]).side_by_side == (
        "eigencam",
        "gradcam",
    )
    with pytest.raises(VidcamError, match="'gradcm' is not one of"):
        ExplainOptions(side_by_side="gradcm,layercam")


def test_panels_are_the_listed_methods_or_the_default_pair():
    ids = lambda o: [p.id for p in o.panels]  # noqa: E731
    assert ids(ExplainOptions(method="layercam")) == ["layercam"]
    assert ids(ExplainOptions(method="layercam", side_by_side=True)) == ["gradcam++", "layercam"]
    assert ids(ExplainOptions(method="gradcam", side_by_side=True)) == ["gradcam", "gradcam++"]
    o = ExplainOptions(method="gradcam++", side_by_side="gradcam,layercam,eigencam")
    assert ids(o) == ["gradcam", "layercam", "eigencam"]  # the list, not the default pair
    assert o.panels == panels_for(o.method, "gradcam,layercam,eigencam")
    guided = ExplainOptions(method="guided-gradcam++", side_by_side=True)
    assert ids(guided) == ["gradcam++", "guided-gradcam++"]
    assert scored_methods(guided.panels) == ["gradcam++"]  # a guided panel is scored by its CAM
    assert scored_methods(o.panels) == ["gradcam", "layercam", "eigencam"]


def test_options_pickle_and_compare_equal():
    o = ExplainOptions(model="sample", side_by_side="gradcam,layercam", layer=["a", "b"])
    assert pickle.loads(pickle.dumps(o)) == o
    b = BatchOptions(explain={"model": "sample", "side_by_side": "gradcam,layercam"})
    back = pickle.loads(pickle.dumps(b))
    assert back == b and back.explain.side_by_side == ("gradcam", "layercam")
    assert back.fingerprint_settings() == b.fingerprint_settings()  # the spelling travels too
    on_cpu = b.on_device("cpu")  # the Ray executor's CPU actors
    assert on_cpu.explain.device == "cpu"
    assert on_cpu.fingerprint_settings() == b.fingerprint_settings()


def test_unknown_and_invalid_options_are_one_line_errors():
    with pytest.raises(VidcamError, match=r"explain options: unknown 'colour'; valid: model, "):
        BatchOptions(explain={"model": "sample", "colour": "red"})
    with pytest.raises(VidcamError, match="progress cannot be set for a batch"):
        BatchOptions(explain={"progress": False})
    with pytest.raises(VidcamError, match=r"method 'gradcam\+\+\+' is not one of"):
        BatchOptions(explain={"method": "gradcam+++"})
    with pytest.raises(VidcamError, match="must be an ExplainOptions or a dict, got list"):
        BatchOptions(explain=["model"])
    with pytest.raises(VidcamError, match="unknown 'colour'"):
        ExplainOptions().replace(colour="red")
    with pytest.raises(VidcamError, match=r"--batch-size \(batch_size\) must be an int >= 1"):
        ExplainOptions.of({"batch_size": 0})
    o = ExplainOptions(model="sample", method="layercam")
    assert BatchOptions(explain=o).explain is o  # an ExplainOptions is taken as is
    assert BatchOptions(explain={"model": "sample", "method": "layercam"}).explain == o


def test_with_model_drops_what_the_handle_carries():
    from vidcam.models.open import open_model

    o = ExplainOptions(model="sample", layer="block3", labels=["a"], weights="w.pt", stride=4)
    assert o.model_keywords() == {
        "spec": None,
        "labels": ["a"],
        "layer": "block3",
        "card": None,
        "weights": "w.pt",
        "pretrained": True,
    }
    handle = open_model("sample", device="cpu", progress=False)
    w = o.with_model(handle, target="topk:2")
    assert w.model is handle and w.model_keywords() == ExplainOptions().model_keywords()
    assert (w.stride, w.target, w.method) == (4, "topk:2", o.method)  # the rest is kept


def _batch_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    batch_cli.add_arguments(parser)
    return parser.parse_args(["x.mp4", "-o", "out", *argv])


def _cli_settings(args: argparse.Namespace) -> dict:
    """What ``vidcam batch`` hands :class:`BatchOptions` for these arguments."""
    explain = explain_cli.explain_options(args)
    return BatchOptions(
        explain=explain, alpha=args.alpha, colormap=args.colormap, evaluate=args.evaluate
    ).fingerprint_settings()


def test_batch_fingerprints_from_the_command_line_are_todays():
    """Hashes printed by the code at 09c9b87 for the same command lines (the CLI built a dict
    then); a resumed batch must not redo finished videos."""
    args = _batch_args("--model", "sample", "--side-by-side", "gradcam,layercam", "--evaluate")
    got = _cli_settings(args)
    assert got["explain"]["side_by_side"] == ("gradcam", "layercam")
    assert fingerprint(got) == "457776ae10ec800a"
    args = _batch_args(
        "--model", "sample", "--layer", "a", "--layer", "b", "--side-by-side", "--clip-len",
        "8", "--device", "cpu", "--batch-size", "2", "--random-weights", "--method", "layercam",
    )  # fmt: skip
    assert fingerprint(_cli_settings(args)) == "cb54d2d177f12a60"


def test_the_pipeline_builds_one_options_object(monkeypatch, tmp_path):
    seen = []

    class Stop(Exception):
        pass

    def fake_pass(source, o):
        seen.append(o)
        raise Stop

    monkeypatch.setattr(pipeline, "explain_pass", fake_pass)
    monkeypatch.setattr(pipeline, "_source", lambda path, allow_partial: path)
    with pytest.raises(Stop):
        pipeline.explain_video("v.mp4", model="sample", method="layercam", normalize="frame")
    given = ExplainOptions(model="sample", method="layercam", normalize="frame")
    with pytest.raises(Stop):
        pipeline.explain_video("v.mp4", options=given)
    with pytest.raises(Stop):
        pipeline.explain_video("v.mp4", options=given, method="eigencam")
    assert seen[0] == given and seen[1] is given
    assert seen[2] == given.replace(method="eigencam")
    with pytest.raises(TypeError):  # a keyword that is no option, as Python says it
        pipeline.explain_video("v.mp4", model="sample", colour="red")
    with pytest.raises(VidcamError, match="normalize 'loud' must be one of"):
        pipeline.explain_video("v.mp4", model="sample", normalize="loud")


def test_report_settings_come_from_the_options():
    parser = argparse.ArgumentParser()
    explain_cli.add_arguments(parser)
    args = parser.parse_args(
        ["in.mp4", "-o", "o.mp4", "--model", "sample", "--layer", "block3", "--side-by-side"]
    )
    o = explain_cli.explain_options(args)
    s = run_settings(o, alpha=args.alpha, colormap=args.colormap)
    assert s == settings_from_args(args)
    assert s["layer"] == "block3" and s["side_by_side"] == "yes" and s["model"] == "sample"
    assert s["weights"] == "the registry's pretrained weights" and s["alpha"] == "0.6"
    two = run_settings(o.replace(layer=["a", "b"], pretrained=False), alpha=1, colormap="jet")
    assert two["layer"] == "a, b" and two["weights"] == "random (no checkpoint)"


def test_progress_rate_and_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(vidcam.progress.time, "monotonic", lambda: now[0])
    p = vidcam.progress.Progress(10, unit="videos", enabled=False)
    assert p.eta() is None  # nothing done yet
    now[0] = 130.0
    p.update(3)
    assert p.rate() == pytest.approx(0.1)  # 3 in 30 s
    assert p.eta() == pytest.approx(70.0)  # 7 left at 0.1/s
    assert vidcam.progress.clock(p.eta()) == "0:01:10"
    assert vidcam.progress.clock(3723.4) == "1:02:03" and vidcam.progress.clock(None) == "?"


def test_batch_status_line_uses_the_progress_rate(monkeypatch, capsys):
    from vidcam.batch.run import _Status

    now = [50.0]
    monkeypatch.setattr(vidcam.progress.time, "monotonic", lambda: now[0])
    status = _Status(4, 0, True)
    now[0] = 110.0  # one video in 60 s: 1 video/min, 3 left -> 3 min
    status.update({"status": "done", "key": "a.mp4", "frames": 75})
    now[0] = 170.0  # two in 120 s: 2 left -> 2 min
    status.update({"status": "failed", "key": "b.mp4", "error": "broken"})
    status.close()
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[")]
    assert lines == [
        "[1/4] done 1, failed 0, remaining 3, 1.00 videos/min, ETA 0:03:00 - a.mp4: 75 frames",
        "[2/4] done 1, failed 1, remaining 2, 1.00 videos/min, ETA 0:02:00 - b.mp4: failed: broken",
    ]
