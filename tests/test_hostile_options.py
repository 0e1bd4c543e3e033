"""Hostile options (issue 11, items 6 and 13): window options the model, the video or the
memory cannot take are refused at once, in one line naming the option; ``--help`` and argument
errors never import torch, PyAV, OpenCV or the pipeline.

Every CLI case asserts: exit status 2, one line on stderr, no traceback, nothing left in the
output directory (hidden temporary files included), the input's sha256 unchanged, and that the
model was never loaded (the refusal comes before any work).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import HANG_S, pattern_frames, write_video

import vidcam.models.open
import vidcam.video.explain_pass
import vidcam.video.memory as memory
from vidcam.cli import choices, main
from vidcam.errors import VidcamError
from vidcam.models.sample_net import SAMPLE_INPUT
from vidcam.models.spec import InputSpec
from vidcam.video.decode import VideoInfo
from vidcam.video.options import ExplainOptions
from vidcam.video.sample import MAX_CLIP_FACTOR, ClipSampler

HEAVY = ("torch", "torchvision", "av", "cv2")


@pytest.fixture(scope="module")
def clip75(tmp_path_factory) -> Path:
    """A 75-frame 48x64 lossless clip at 25 fps (3 s)."""
    return write_video(tmp_path_factory.mktemp("opt") / "v75.mkv", pattern_frames(75, 48, 64))


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: refusals must come before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were refused")

    monkeypatch.setattr(vidcam.models.open, "open_model", refuse)  # where the CLI opens it
    monkeypatch.setattr(vidcam.video.explain_pass, "open_model", refuse)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _refused(capsys, clip: Path, out_dir: Path, *extra: str) -> str:
    """Run ``vidcam explain`` on ``clip``, assert a clean refusal, return the one line."""
    before, listing = _sha(clip), sorted(p.name for p in out_dir.iterdir())
    capsys.readouterr()
    argv = ["explain", str(clip), "-o", str(out_dir / "o.mp4"), "--json", str(out_dir / "o.json")]
    rc = main([*argv, "--model", "sample", "--quiet", *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcam explain: error: "), err
    assert sorted(p.name for p in out_dir.iterdir()) == listing  # no output, no .o.tmp-*
    assert _sha(clip) == before
    return lines[0]


# -- item 6: bounded window options ---------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--clip-len", "100000"], ["--clip-len 100000", "1 to 128", "own clip of 16"]),
        (["--clip-len", "0"], ["--clip-len 0", "1 to 128"]),
        (["--clip-len", "-3"], ["--clip-len -3"]),
        # 75 frames at stride 1 = 75 samples: 76 only repeats the last frame
        (["--clip-len", "76"], ["--clip-len 76", "75 frames", "at most 75"]),
        (["--stride", "17"], ["--stride 17", "clip length 16"]),
        (["--clip-len", "8", "--stride", "9"], ["--stride 9", "clip length 8"]),
        (["--stride", "0"], ["--stride 0", "give 1 to the clip length 16"]),
        (["--batch-size", "0"], ["--batch-size", ">= 1"]),
        (["--batch-size", "10000000000"], ["--batch-size", "GiB", "free"]),
    ],
)
def test_window_options_are_refused_before_any_work(
    extra, needles, clip75, tmp_path, capsys, no_model
):
    line = _refused(capsys, clip75, tmp_path, *extra)
    for needle in needles:
        assert needle in line, line


def test_memory_refusal_names_the_option_and_the_batch_that_fits(
    clip75, tmp_path, capsys, no_model, monkeypatch
):
    # one sample window on the 48x64 clip, spatial auto: short side 48 -> 112, so 112 x 149
    one = 3 * 16 * 112 * 149 * 4 * memory.WORKING_SET_FACTOR  # 25,632,768 bytes with factor 8
    assert memory.window_bytes(SAMPLE_INPUT, 16, 1, (48, 64)) * memory.WORKING_SET_FACTOR == one
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 3 * one + 1)
    line = _refused(capsys, clip75, tmp_path, "--batch-size", "4")
    assert "--batch-size" in line and "at most 3" in line, line
    monkeypatch.setattr(memory, "available_memory", lambda device=None: one - 1)
    line = _refused(capsys, clip75, tmp_path, "--batch-size", "4")
    assert "--clip-len" in line, line  # not even one window fits: the clip is too long


def test_window_bytes_literal():
    spec = SAMPLE_INPUT  # 16 frames, crop 112 x 112, short side 112
    assert memory.window_bytes(spec, 16, 2) == 2 * 3 * 16 * 112 * 112 * 4 == 4_816_896
    # bikes.mp4 (640 x 272) in full-frame mode: 112 x round(640 * 112 / 272) = 112 x 264
    assert memory.window_bytes(spec, 16, 1, (272, 640)) == 3 * 16 * 112 * 264 * 4
    assert memory.window_bytes(spec, 16, 1, (272, 640), "center") == 3 * 16 * 112 * 112 * 4


def test_video_samples_count_the_models_sampling():
    info = VideoInfo(
        path=Path("x"), width=64, height=48, fps=Fraction(25), duration=3.0, frames=75,
        frames_exact=True, rotation=0, has_audio=False, time_base=Fraction(1, 25),
    )  # fmt: skip
    assert memory.video_samples(SAMPLE_INPUT, info) == 75  # stride 1
    every2 = InputSpec(clip_len=8, crop=(8, 8), resize_short=8, stride=2)
    assert memory.video_samples(every2, info) == 38  # frames 0, 2, ..., 74
    at10 = InputSpec(clip_len=8, crop=(8, 8), resize_short=8, fps=10)
    assert memory.video_samples(at10, info) == 31  # t = 0, 0.1, ..., 3.0
    with pytest.raises(VidcamError, match="at most 31"):
        memory.check_window(at10, clip_len=32, info=info)
    memory.check_window(at10, clip_len=31, info=info)
    short = InputSpec(clip_len=64, crop=(8, 8), resize_short=8, fps=10)
    memory.check_window(short, info=info)  # the model's own clip may still pad a short video


def test_python_api_refuses_the_same_options():
    with pytest.raises(VidcamError, match=r"--clip-len 100000 is out of range: give 1 to 128"):
        ExplainOptions(model="sample", clip_len=100000)
    with pytest.raises(VidcamError, match=r"--stride 17"):
        ExplainOptions(model="sample", stride=17)
    with pytest.raises(VidcamError, match=r"--clip-len \(clip_len\) must be an int"):
        ExplainOptions(model="sample", clip_len=2.5)
    with pytest.raises(VidcamError, match=r"--batch-size \(batch_size\) must be an int"):
        ExplainOptions(model="sample", batch_size=True)
    with pytest.raises(VidcamError, match="GiB"):
        ExplainOptions(model="i3d", batch_size=10**7)
    # an nn.Module's spec is only known inside the pipeline: the sampler enforces the bound
    spec = InputSpec(clip_len=4, crop=(8, 8), resize_short=8, stride=1)
    limit = MAX_CLIP_FACTOR * 4
    assert ClipSampler.from_spec(spec, clip_len=limit).clip_len == limit
    with pytest.raises(VidcamError, match=f"give 1 to {limit} frames"):
        ClipSampler.from_spec(spec, clip_len=limit + 1)


MEMINFO = """MemTotal:       16314044 kB
MemFree:          812344 kB
MemAvailable:    9876543 kB
Buffers:          123456 kB
"""


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    """``/proc`` and ``/sys`` files as vidcam.device reads them, served from ``tmp_path``
    (a file not written there does not exist); process limits unlimited unless a test sets
    them."""
    import resource

    import vidcam.device as device

    real = Path

    def fake_path(p, *rest):
        p = real(p, *rest)
        return tmp_path / p.relative_to("/") if p.parts[1:2] in (("proc",), ("sys",)) else p

    monkeypatch.setattr(device, "Path", fake_path)
    limits: dict[int, int] = {}
    monkeypatch.setattr(
        resource, "getrlimit", lambda r: (limits.get(r, resource.RLIM_INFINITY),) * 2
    )

    def write(path: str, text: str) -> None:
        f = tmp_path / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)

    return write, limits


def test_available_memory_reads_meminfo_cgroup_and_limits_exactly(fake_proc, monkeypatch):
    """The exact byte counts of a fake meminfo, cgroup and ``ulimit``, each one the smallest
    in turn (hand-computed: 9876543 kB = 10,113,580,032 bytes)."""
    import resource

    write, limits = fake_proc
    write("/proc/meminfo", MEMINFO)
    assert memory.available_memory("cpu") == 9_876_543 * 1024 == 10_113_580_032
    write("/sys/fs/cgroup/memory.max", "max\n")  # cgroup v2, unlimited
    write("/sys/fs/cgroup/memory.current", "123\n")
    assert memory.available_memory("cpu") == 10_113_580_032
    write("/sys/fs/cgroup/memory.max", f"{8 << 30}\n")  # 8 GiB limit, 3 GiB used
    write("/sys/fs/cgroup/memory.current", f"{3 << 30}\n")
    assert memory.available_memory("cpu") == 5 << 30
    write("/proc/self/status", "Name:\tpython\nVmSize:\t 1048576 kB\nVmData:\t  524288 kB\n")
    limits[resource.RLIMIT_AS] = 3 << 30  # ulimit -v 3 GiB, 1 GiB mapped: 2 GiB left
    assert memory.available_memory("cpu") == 2 << 30
    limits[resource.RLIMIT_DATA] = (1 << 30) - 1  # 512 MiB of data: 512 MiB - 1 byte left
    assert memory.available_memory("cpu") == (512 << 20) - 1


def test_available_memory_falls_back_to_free_pages(fake_proc, monkeypatch):
    import vidcam.device as device

    write, _ = fake_proc
    write("/proc/meminfo", MEMINFO.replace("MemAvailable", "MemSomething"))  # an old kernel
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(device.os, "sysconf", lambda name: pages[name])
    assert memory.available_memory("cpu") == 4_096_000

    def unsupported(name: str) -> int:
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(device.os, "sysconf", unsupported)
    assert memory.available_memory("cpu") is None  # nothing known: None, never a guess


def test_available_memory_here_is_at_most_the_physical_memory():
    """On this machine: a number between 1 MiB and the RAM the OS reports by another route
    (``sysconf``); on Linux never unknown."""
    import os

    free = memory.available_memory("cpu")
    if Path("/proc/meminfo").exists():
        assert free is not None
    if free is not None:
        assert 2**20 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# -- item 13: --help and argument errors stay light ----------------------------------------


def test_light_choices_equal_the_pipelines():
    from vidcam.video import encode, scale, spatial

    assert choices.VALID_EXTENSIONS == encode.VALID_EXTENSIONS
    assert choices.NORMALIZE == scale.NORMALIZE
    assert choices.DEFAULT_NORMALIZE == scale.DEFAULT_NORMALIZE
    assert choices.VIDEO_PERCENTILE == scale.VIDEO_PERCENTILE
    assert choices.VIDEO_GAMMA == scale.VIDEO_GAMMA
    assert choices.SPATIAL == spatial.SPATIAL


def _heavy_after(code: str) -> list[str]:
    probe = f"{code}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {probe}"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        check=True,
    ).stdout
    return eval(out.strip().splitlines()[-1])  # a list literal printed by the child


def test_explain_and_models_parsers_import_nothing_heavy():
    code = (
        "import argparse; from vidcam.cli import explain, models; "
        "explain.add_arguments(argparse.ArgumentParser()); "
        "models.add_arguments(argparse.ArgumentParser())"
    )
    assert _heavy_after(code) == []


def test_build_parser_imports_nothing_heavy():
    assert _heavy_after("from vidcam.cli import build_parser; build_parser()") == []


_TOP_LEVEL = "the top-level parser (cli/__init__.py) prints unrecognized arguments with its usage"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["explain", "in.mp4", "--clip-len", "x"], "argument --clip-len: invalid int value: 'x'"),
        (["explain", "in.mp4", "--method", "cam"], "argument --method: invalid choice"),
        (["explain"], "the following arguments are required: input"),
        # evaluate's module does not ask for one-line errors: build_parser gives every subcommand them
        (["evaluate", "v.mp4", "--limit", "x"], "argument --limit: invalid int value: 'x'"),
        pytest.param(
            ["explain", "in.mp4", "--bogus"],
            "unrecognized arguments: --bogus",
        ),
        pytest.param(
            ["models", "--jsn"],
            "unrecognized arguments: --jsn",
        ),
    ],
)
def test_argument_errors_are_one_line(argv, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0] and "--help" in lines[0], lines[0]


def test_one_line_errors_keeps_the_prog_name(capsys):
    p = argparse.ArgumentParser(prog="vidcam x")
    choices.one_line_errors(p)
    p.add_argument("--n", type=int)
    with pytest.raises(SystemExit):
        p.parse_args(["--n", "y"])
    assert capsys.readouterr().err == (
        "vidcam x: error: argument --n: invalid int value: 'y' (see vidcam x --help)\n"
    )
