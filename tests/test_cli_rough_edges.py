"""The command line's rough edges (issue 27 item 11): path and model errors before torch loads,
``--side-by-side`` before the input, "did you mean" for misspelled options, a failed
``--report`` leaves nothing of its run, and ``vidcam batch --help`` documents
``VIDCAM_DEMUXERS`` and ``--video-timeout``."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pattern_frames, write_video

import vidcam.report.glue as glue
from vidcam.cli import choices, main, parse, precheck
from vidcam.errors import VidcamError

# -- item 1: checks before torch ------------------------------------------------------------


def test_torch_free_constants_equal_the_real_ones():
    from vidcam.models.registry import MODELS
    from vidcam.video import decode, preview

    assert tuple(MODELS) == choices.MODEL_NAMES
    assert choices.PREVIEW_EXTENSIONS == preview.PREVIEW_EXTENSIONS
    assert choices.DEMUXERS_ENV == decode.ENV_DEMUXERS


REFS = [
    "sample", "SAMPLE", "x3d-m", "sampel", "r3d18", "nosuch", "", "  ", "nets/net.py",
    "net.py", "gone.py:build", "dir/gone:build", "os.path:join", "pkg.mod:f", "m.pt2",
    "M.PTH", "hf:org/name", "hf:./dir", "a:b:c", "x:1bad",
]  # fmt: skip


def _outcome(check, ref: str) -> str | None:
    try:
        check(ref)
    except VidcamError as exc:
        return str(exc)
    return None


@pytest.fixture
def entry_point(monkeypatch):
    """One package registering 'my_net' in the group vidcam.models."""
    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint("my_net", "my_pkg.nets:build", "vidcam.models")

    def fake(**kw):
        return [ep] if kw.get("group") == "vidcam.models" else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


@pytest.mark.parametrize("with_entry_point", [False, True])
def test_model_checks_agree_with_the_full_ones(tmp_path, monkeypatch, request, with_entry_point):
    from vidcam.models import sources

    if with_entry_point:
        request.getfixturevalue("entry_point")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text("x = 1\n")
    refs = [*REFS, "my_net", "my-net", "net.py:build", f"{tmp_path}/net.py:build"]
    assert precheck.kind_of is sources.kind_of  # one torch-free definition (models/refs.py)
    for ref in refs:
        assert _outcome(precheck.check_model_ref, ref) == _outcome(sources.check_ref, ref), ref
    assert "Did you mean 'sample'?" in _outcome(precheck.check_model_ref, "sampel")
    tail = _outcome(precheck.check_model_ref, "nosuch").rsplit("`vidcam models`)", 1)[1]
    assert tail == (" Entry points (vidcam.models): my_net." if with_entry_point else "")


def _unwritable(tmp_path: Path) -> Path | None:
    """A folder this process may not write into (as root: a read-only mount), if any."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return next((d for d in (ro, Path("/proc/sys")) if not os.access(d, os.W_OK)), None)


_CHILD = """
import contextlib, io, json, sys
from vidcam.cli import main
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    print(json.dumps(['torch' in sys.modules, rc, err.getvalue()]))
"""


def _in_child(cases: list[list[str]], cwd: Path) -> list[tuple[bool, int, str]]:
    """Run every argv through ``main`` in ONE fresh interpreter; (torch loaded, rc, stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(cases)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return [tuple(json.loads(line)) for line in done.stdout.splitlines()]


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "clip.mp4").write_bytes(b"not decoded: every case stops before")
    (tmp_path / "clips").mkdir()
    return tmp_path


def _cases(work: Path) -> dict[str, list[tuple[list[str], str]]]:
    ro = _unwritable(work)
    model = ["--model", "sample"]
    read_only = {  # a read-only output folder, where this machine has one
        "explain": (
            ["explain", "clip.mp4", "-o", f"{ro}/o.mp4", *model],
            f"'{ro}' is not writable",
        ),
        "batch": (["batch", "clips", "-o", f"{ro}/out", *model], f"'{ro}' is not writable"),
    }
    bad_models = [
        (["--model", "sampel"], "unknown model 'sampel'. Did you mean 'sample'?"),
        (["--model", "nets/gone.py:build"], "model file 'nets/gone.py' does not exist"),
        ([*model, "--card", "gone.toml"], "card 'gone.toml' does not exist; pass --card"),
        ([*model, "--labels", "gone.txt"], "labels file 'gone.txt' does not exist; give a text"),
        ([*model, "--weights", "gone.pt"], "weights 'gone.pt' does not exist; pass --weights"),
        ([*model, "--weights", "https://x/w.pt"], "give a local file (vidcam never downloads"),
    ]
    explain = ["explain", "clip.mp4", "-o", "o.mp4"]
    batch = ["batch", "clips", "-o", "out"]
    return {
        "explain": [
            (["explain", "gone.mp4", "-o", "o.mp4", *model], "input 'gone.mp4' does not exist"),
            (["explain", "clip.mp4", "-o", "no/o.mp4", *model], "directory 'no' does not exist"),
            *([read_only["explain"]] if ro else []),
            ([*explain, "--report", "no/r.html", *model], "--report directory 'no' does not"),
            ([*explain, "--preview", "p.gif", *model], "--preview 'p.gif' must end in .png"),
            ([*explain, "--report-embed", *model], "--report-embed needs --report PAGE.html"),
            *[([*explain, *m], needle) for m, needle in bad_models],
        ],
        "batch": [
            (["batch", "clips", "-o", "no/out", *model], f"'{work}/no' does not exist"),
            *([read_only["batch"]] if ro else []),
            (["batch", "clips", "-o", "clip.mp4", *model], "'clip.mp4' is a file; give a folder"),
            *[([*batch, *m], needle) for m, needle in bad_models],
        ],
        "evaluate": [
            (["evaluate", "gone.mp4", *model], "input 'gone.mp4' does not exist; give video"),
            (["evaluate", "clip.mp4", "--json", "no/r.json", *model], "directory 'no' does not"),
            (["evaluate", "clip.mp4", "--gt", "gone", *model], "--gt 'gone' does not exist"),
            *[(["evaluate", "clip.mp4", *m], needle) for m, needle in bad_models],
        ],
        "layers": [
            (["layers", "sampel"], "unknown model 'sampel'. Did you mean 'sample'?"),
            (["layers", "sample", "--model", "x"], "model: given twice ('sample' and --model"),
            *[(["layers", *m], needle) for m, needle in bad_models],
        ],
    }


@pytest.mark.parametrize("command", ["explain", "batch", "evaluate", "layers"])
def test_path_and_model_errors_come_before_torch_loads(work, command):
    cases = _cases(work)[command]
    results = _in_child([argv for argv, _ in cases], work)
    assert len(results) == len(cases)
    for (argv, needle), (torch_loaded, rc, err) in zip(cases, results, strict=True):
        assert not torch_loaded, argv  # refused before the pipeline was imported
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, (argv, err)
        assert lines[0].startswith(f"vidcam {command}: error: ") and needle in lines[0], lines[0]
    assert sorted(p.name for p in work.iterdir()) == ["clip.mp4", "clips", "ro"]  # nothing made


def test_early_messages_are_the_full_checks_words(work, monkeypatch):
    """The same words the torch-side checks use for the same paths."""
    from vidcam.batch.run import _out_dir
    from vidcam.evaluate.clips import list_videos
    from vidcam.models.card import read_card
    from vidcam.models.labels import read_labels_file
    from vidcam.video.decode import check_input

    monkeypatch.chdir(work)
    pairs = [
        (lambda: check_input("gone.mp4"), "explain", ["gone.mp4", "-o", "o.mp4"]),
        (lambda: check_input("clips"), "explain", ["clips", "-o", "o.mp4"]),
        (lambda: _out_dir("no/out"), "batch", ["clips", "-o", "no/out"]),
        (lambda: _out_dir("clip.mp4"), "batch", ["clips", "-o", "clip.mp4"]),
        (lambda: list_videos(["gone.mp4"]), "evaluate", ["gone.mp4"]),
        (lambda: read_card("gone.toml"), "layers", ["sample", "--card", "gone.toml"]),
        (lambda: read_labels_file("gone.txt"), "layers", ["sample", "--labels", "gone.txt"]),
    ]
    for full, command, argv in pairs:
        with pytest.raises(VidcamError) as want:
            full()
        with pytest.raises(VidcamError) as got:
            precheck.precheck(command, parse([command, *argv]))
        assert str(got.value) == str(want.value)
    assert not (work / "no").exists()


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """20 frames: more than the sample model's 16-frame clip (no short-video warning)."""
    return write_video(tmp_path_factory.mktemp("rep") / "in.mkv", pattern_frames(20, 48, 64))


# -- item 2: --side-by-side before the input ---------------------------------------------------


def test_side_by_side_before_or_after_the_input_reads_the_same(work, monkeypatch):
    monkeypatch.chdir(work)
    for argv in (
        ["explain", "--side-by-side", "clip.mp4", "-o", "o.mp4"],
        ["explain", "clip.mp4", "--side-by-side", "-o", "o.mp4"],
        ["explain", "-o", "o.mp4", "--side-by-side", "clip.mp4"],
        ["explain", "--side-by", "clip.mp4", "-o", "o.mp4"],  # an abbreviation argparse takes
        ["explain", "--side-by-side", "gone.mp4", "-o", "o.mp4"],  # missing: still a path
    ):
        args = parse(argv)
        assert args.side_by_side is True and args.input in ("clip.mp4", "gone.mp4"), argv
    lists = parse(["explain", "--side-by-side", "gradcam,LayerCAM", "clip.mp4", "-o", "o.mp4"])
    assert (lists.side_by_side, lists.input) == ("gradcam,LayerCAM", "clip.mp4")
    after = parse(["explain", "clip.mp4", "-o", "o.mp4", "--side-by-side", "gradcam,eigencam"])
    assert after.side_by_side == "gradcam,eigencam"
    typo = parse(["explain", "--side-by-side", "gradcm", "clip.mp4", "-o", "o.mp4"])
    assert typo.side_by_side == "gradcm"  # a word, not a path: refused by the method check
    assert parse(["explain", "clip.mp4", "-o", "o.mp4", "--side-by-side="]).side_by_side is True
    assert parse(["explain", "clip.mp4", "-o", "o.mp4"]).side_by_side is False
    batch = parse(["batch", "--side-by-side", "clips", "clip.mp4", "-o", "out"])
    assert (batch.inputs, batch.side_by_side) == (["clips", "clip.mp4"], True)


def test_side_by_side_before_the_input_renders_both_panels(small_clip, tmp_path):
    """... and --report-embed reaches the page: the video is inside it."""
    out, page = tmp_path / "o.mp4", tmp_path / "page.html"
    argv = ["explain", "--side-by-side", str(small_clip), "-o", str(out), "--model", "sample"]
    argv += ["--report", str(page), "--report-embed"]
    assert main([*argv, "--random-weights", "--quiet"]) == 0
    from vidcam.video.decode import probe

    assert (probe(out).width, probe(out).height) == (128, 48)  # two 64-pixel panels
    text = page.read_text(encoding="utf-8")
    assert 'src="data:video/mp4;base64,' in text and 'src="o.mp4"' not in text


def test_a_misspelled_method_list_is_still_refused(work, capsys):
    argv = ["explain", "--side-by-side", "gradcm", str(work / "clip.mp4"), "-o"]
    assert main([*argv, str(work / "o.mp4"), "--model", "sample", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--side-by-side: method 'gradcm' is not one of" in err


# -- item 3: did you mean ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["explain", "in.mp4", "--clp-len", "8"], "unrecognized arguments: --clp-len 8 (did you "
         "mean --clip-len?)"),
        (["explain", "in.mp4", "--clip_len=8"], "(did you mean --clip-len?)"),
        (["explain", "in.mp4", "-clip-len", "8"], "(did you mean --clip-len?)"),
        (["explain", "in.mp4", "--modle", "x", "--stide", "2"],
         "(did you mean --model for --modle, --stride for --stide?)"),
        (["batch", "d", "-o", "o", "--retry-faild"], "(did you mean --retry-failed?)"),
        (["evaluate", "d", "--methds", "gradcam"], "(did you mean --methods?)"),
        (["layers", "sample", "--jsn"], "(did you mean --json?)"),
        (["models", "--jsn"], "(did you mean --json?)"),
        (["export", "fiftyone", "b", "--dataset", "d", "--max-sied", "9"],  # a nested parser
         "vidcam export fiftyone: error: unrecognized arguments: --max-sied 9 (did you mean "
         "--max-side?)"),
        (["explain", "in.mp4", "--method", "gradcm"], "(did you mean 'gradcam'?)"),
        (["explain", "in.mp4", "--zzzzzz"], "unrecognized arguments: --zzzzzz (see"),
        (["explian", "in.mp4"], "'explain', 'models', 'evaluate', 'batch', 'export', 'layers') (did you mean 'explain'?)"),
    ],
)  # fmt: skip
def test_misspelled_options_get_did_you_mean(argv, hint, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert hint in lines[0] and lines[0].endswith("--help)"), lines[0]


def test_did_you_mean_by_hand():
    p = argparse.ArgumentParser(prog="t", add_help=False)
    p.add_argument("--alpha")
    p.add_argument("--colormap")
    p.add_argument("--hidden", help=argparse.SUPPRESS)
    hint = choices.did_you_mean
    assert hint(p, "unrecognized arguments: --colourmap") == " (did you mean --colormap?)"
    assert hint(p, "unrecognized arguments: --hiden") == ""  # a hidden option is never offered
    assert hint(p, "unrecognized arguments: --zzzzzz x.mp4 -3 --") == ""
    assert hint(p, "unrecognized arguments: --alpah=1 --colormp") == (
        " (did you mean --alpha for --alpah, --colormap for --colormp?)"
    )
    assert hint(p, "argument --m: invalid choice: 'turbp' (choose from 'jet', 'turbo')") == (
        " (did you mean 'turbo'?)"
    )
    assert hint(p, "unrecognized arguments: --clr") == ""  # 0.67 from --colormap: no guess
    assert hint(p, "argument --m: invalid choice: 'zz' (choose from 'jet', 'turbo')") == ""
    assert hint(p, "the following arguments are required: input") == ""


# -- item 4: a failed report leaves nothing of its run -----------------------------------------


def _explain_with_report(small_clip: Path, d: Path) -> int:
    argv = ["explain", str(small_clip), "-o", str(d / "o.mp4"), "--json", str(d / "o.json")]
    argv += ["--preview", str(d / "o.png"), "--report", str(d / "page.html")]
    return main([*argv, "--model", "sample", "--random-weights", "--quiet"])


def test_a_report_that_fails_late_removes_the_runs_outputs(
    small_clip, tmp_path, capsys, monkeypatch
):
    real = glue.write_video_report

    def page_appears_meanwhile(page, **kw):  # another program writes the page first
        assert all((tmp_path / n).is_file() for n in ("o.mp4", "o.json", "o.png"))
        Path(page).write_text("theirs")
        return real(page, **kw)

    monkeypatch.setattr(glue, "write_video_report", page_appears_meanwhile)
    assert _explain_with_report(small_clip, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "already exists" in err and "removed this run's" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]  # no temporary file
    assert (tmp_path / "page.html").read_text() == "theirs"


def test_an_interrupted_report_removes_only_what_is_still_the_runs(
    small_clip, tmp_path, capsys, monkeypatch
):
    def replaced_then_interrupted(page, **kw):
        (tmp_path / "o.json").unlink()
        (tmp_path / "o.json").write_text("someone else's")  # not this run's file any more
        raise KeyboardInterrupt

    monkeypatch.setattr(glue, "write_video_report", replaced_then_interrupted)
    assert _explain_with_report(small_clip, tmp_path) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]
    assert (tmp_path / "o.json").read_text() == "someone else's"


def test_report_help_says_what_is_true(capsys):
    from vidcam.report import media

    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "self-contained" not in text and "links the video, source and sheet" in text
    mib = 2**20
    assert (24 * mib, 64 * mib) == (media.EMBED_FILE_LIMIT, media.EMBED_TOTAL_LIMIT)
    assert "at most 24 MiB a file, 64 MiB in all" in text


# -- item 5: batch --help ----------------------------------------------------------------------


def test_batch_help_documents_demuxers_and_the_video_timeout(capsys):
    from vidcam.batch.options import DEFAULT_VIDEO_TIMEOUT
    from vidcam.video.decode import DEMUXERS, ENV_DEMUXERS

    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"{ENV_DEMUXERS}=NAME[,NAME...]" in text and f"{ENV_DEMUXERS}=concat" in text
    for refused in ("concat", "hls", "dash", "image2"):  # named as refused: truly not allowed
        assert refused in text and refused not in DEMUXERS
    assert "--video-timeout SECONDS seconds one video may take" in text
    assert f"default: {DEFAULT_VIDEO_TIMEOUT:g}, one hour; 0: no limit" in text
    assert "failed row and the batch goes on" in text
