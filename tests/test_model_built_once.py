"""Every model is built once per process or worker: in the Python pipeline, in `vidcam batch`
(in-process) and in its Ray actors, for a CNN and for a token model (whose reshape a bare
module would lose).

The models come from a factory file (``--model FILE.py:FUNCTION``) that appends a line to a
counter file for every call of the factory and for every registry build in its process, so
the counts are seen across Ray's worker processes too.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import moving_square, write_video
from vidcam.batch import run

FACTORY = """
import os
from vidcam.models import spec as _spec
from vidcam.models.registry import load_model

COUNTER = {counter!r}


def _note(what):
    with open(COUNTER, "a") as f:
        f.write(f"{{os.getpid()}} {{what}}\\n")


_build = _spec.ModelSpec.build


def _counted_build(self, *args, **kwargs):
    _note("build:" + self.name)
    return _build(self, *args, **kwargs)


_spec.ModelSpec.build = _counted_build


def cnn():
    _note("factory:cnn")
    return load_model("sample", pretrained=False, device="cpu", progress=False)


def tokens():
    _note("factory:tokens")
    return load_model("videomae", pretrained=False, device="cpu", progress=False)
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("onceclips")
    base = moving_square(10, 48, 64, (2, 2, 46, 62))
    for i in range(3):
        frames = [base, base[::-1], base[:, :, ::-1]][i]
        write_video(d / f"v{i}.mkv", np.ascontiguousarray(frames))
    return d


def _factory(tmp_path: Path) -> tuple[Path, Path]:
    counter = tmp_path / "counter.txt"
    path = tmp_path / "counting_models.py"
    path.write_text(FACTORY.format(counter=str(counter)))
    return path, counter


def _counts(counter: Path) -> dict[int, collections.Counter]:
    per_pid: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in counter.read_text().splitlines():
        pid, what = line.split(" ", 1)
        per_pid[int(pid)][what] += 1
    return per_pid


OPTS = {"device": "cpu", "progress": False, "spatial": "center"}
CLIP = {"cnn": {"clip_len": 8}, "tokens": {}}  # VideoMAE takes its 16 frames only


@pytest.mark.parametrize("kind,entry", [("cnn", "sample"), ("tokens", "videomae")])
def test_batch_local_builds_once(clips, tmp_path, kind, entry):
    if kind == "tokens":
        pytest.importorskip("transformers")
    factory, counter = _factory(tmp_path)
    rows = run([clips], tmp_path / "out", model=f"{factory}:{kind}", **OPTS, **CLIP[kind])
    assert [r["status"] for r in rows] == ["done"] * 3, [r["error"] for r in rows]
    counts = _counts(counter)
    assert len(counts) == 1  # this process only
    (seen,) = counts.values()
    assert seen == {f"factory:{kind}": 1, f"build:{entry}": 1}


def test_batch_ray_builds_once_per_actor(clips, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'vidcam[ray]'")
    pytest.importorskip("transformers")
    factory, counter = _factory(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rows = run(
            [clips], tmp_path / "out", model=f"{factory}:tokens", executor="ray", workers=2, **OPTS
        )
    finally:
        ray.shutdown()
    assert [r["status"] for r in rows] == ["done"] * 3, [r["error"] for r in rows]
    counts = _counts(counter)
    assert 1 <= len(counts) <= 3  # the actors (and the driver, if it checks the model)
    for seen in counts.values():
        assert seen == {"factory:tokens": 1, "build:videomae": 1}


def test_pipeline_takes_the_handle_without_rebuilding(clips, tmp_path, monkeypatch):
    """A handle passed to the pipeline is used as is: no build, however many videos."""
    pytest.importorskip("transformers")
    from vidcam.models import spec as spec_mod
    from vidcam.models.registry import load_model
    from vidcam.video import explain_video

    handle = load_model("videomae", pretrained=False, device="cpu", progress=False)
    builds = []
    real = spec_mod.ModelSpec.build
    monkeypatch.setattr(
        spec_mod.ModelSpec,
        "build",
        lambda self, *a, **k: builds.append(self.name) or real(self, *a, **k),
    )
    for i in range(2):
        res = explain_video(clips / f"v{i}.mkv", model=handle, **OPTS)
        assert res.model == "videomae" and len(res.windows) >= 1
    assert builds == []
