"""The shared model options (cli/model_args.py) and their wiring into ``vidcam explain`` and
``vidcam batch`` (issue 24): open_model's keywords exactly, refusals before any model is
built, batch's options picklable for Ray actors, --overwrite and --video-timeout."""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pattern_frames, write_video

import vidcam.batch
import vidcam.models.open
import vidcam.video.explain_pass
from vidcam.cli import main
from vidcam.cli.model_args import add_model_arguments, model_options

KEYS = {"model", "weights", "pretrained", "labels", "card", "layer"}


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_model_arguments(p, default="sample")
    return p.parse_args(list(argv))


def test_model_options_are_open_models_keywords():
    import inspect

    assert set(inspect.signature(vidcam.models.open.open_model).parameters) >= KEYS
    assert model_options(_parse()) == {
        "model": "sample",
        "weights": None,
        "pretrained": True,
        "labels": None,
        "card": None,
        "layer": None,
    }
    o = model_options(
        _parse("--model", "x.py:f", "--weights", "w.pt", "--random-weights", "--labels", "l")
    )
    assert o["model"] == "x.py:f" and o["weights"] == "w.pt" and o["pretrained"] is False
    assert o["labels"] == "l"
    assert model_options(_parse("--layer", "a"))["layer"] == "a"
    assert model_options(_parse("--layer", "a", "--layer", "b"))["layer"] == ["a", "b"]
    assert model_options(_parse("--card", "m.toml"))["card"] == "m.toml"


def test_help_says_a_python_file_runs_its_code():
    out = subprocess.run(
        [sys.executable, "-m", "vidcam", "explain", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flat = " ".join(out.split())
    assert "RUNS ITS CODE" in flat and "python file.py" in flat and "--card" in flat


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_video(tmp_path / "in.mkv", pattern_frames(30, 48, 64))


@pytest.fixture
def no_model_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was opened before the refusal")

    monkeypatch.setattr(vidcam.models.open, "open_model", refuse)
    monkeypatch.setattr(vidcam.video.explain_pass, "open_model", refuse)


@pytest.mark.parametrize(
    "model,needle",
    [
        ("missing.py:build", "model file 'missing.py' does not exist"),
        ("nope_model", "unknown model 'nope_model'"),
        ("missing.pt2", "model file 'missing.pt2' does not exist"),
        ("nets/net.py", "does not exist"),
    ],
)
def test_explain_refuses_a_bad_model_before_opening_anything(
    clip, tmp_path, capsys, no_model_load, model, needle, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    rc = main(["explain", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", model, "--quiet"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err
    assert needle in lines[0] or "needs the function" in lines[0], lines[0]
    assert not (tmp_path / "o.mp4").exists()


def test_explain_refuses_a_bad_labels_file_in_one_line(clip, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"ok\n\xff\xfe broken\n")
    rc = main(
        ["explain", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "sample"]
        + ["--labels", str(labels), "--device", "cpu", "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "is not UTF-8 text" in err and str(labels) in err


def test_explain_checks_the_clip_length_against_the_cards_spec(clip, tmp_path, capsys):
    """A user model's spec is known only once it is opened: the window check follows."""
    card = tmp_path / "m.toml"
    card.write_text("clip_len = 4\n")
    rc = main(
        ["explain", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", "sample"]
        + ["--card", str(card), "--clip-len", "1000", "--device", "cpu", "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--clip-len" in err and "\n" not in err


def test_batch_passes_picklable_model_options_overwrite_and_timeout(tmp_path, monkeypatch):
    seen = {}

    def fake_run(inputs, out_dir, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(vidcam.batch, "run", fake_run)
    monkeypatch.chdir(tmp_path)  # the card and the labels file must exist (checked first)
    (tmp_path / "m.toml").write_text("clip_len = 8\n")
    (tmp_path / "l.txt").write_text("a\nb\n")
    (tmp_path / "net.py").write_text("def build():\n    raise RuntimeError('not called')\n")
    argv = ["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--model"]
    argv += [f"{tmp_path / 'net.py'}:build", "--card", "m.toml", "--labels", "l.txt"]
    argv += ["--layer", "features", "--overwrite", "--video-timeout", "90", "--quiet"]
    assert main(argv) == 0
    e = seen["explain"]  # one ExplainOptions, built from the arguments
    assert e.model == f"{tmp_path / 'net.py'}:build"
    assert (e.card, e.labels, e.layer) == ("m.toml", "l.txt", "features")
    assert e.pretrained is True and e.weights is None
    assert seen["overwrite"] is True and seen["video_timeout"] == 90.0
    assert pickle.loads(pickle.dumps(seen)) == seen  # strings and paths: fine for Ray actors

    seen.clear()
    assert main([*argv[:-4], "--video-timeout", "0", "--quiet"]) == 0
    assert seen["video_timeout"] is None and seen["overwrite"] is False
    seen.clear()
    assert main([*argv[:-4], "--quiet"]) == 0
    assert "video_timeout" not in seen  # run()'s own default applies


def test_batch_refuses_a_bad_timeout_and_a_missing_model_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vidcam.batch, "run", lambda *a, **k: pytest.fail("ran"))
    base = ["batch", str(tmp_path), "-o", str(tmp_path / "out"), "--quiet"]
    assert main([*base, "--model", "sample", "--video-timeout", "-3"]) == 2
    assert "--video-timeout must be seconds > 0" in capsys.readouterr().err
    assert main([*base, "--model", f"{tmp_path}/gone.py:build"]) == 2
    assert "does not exist" in capsys.readouterr().err
