"""Issue 27 items 5 and 7 on Ray: the pool is sized by the cluster's CPUs (``--workers`` above
them waited forever after 4 of 6 videos), a run without ``--ray-address`` starts a private
local instance, an unreachable address is one line at once, and a model that cannot load
stops the run once with its own error (it was "the Ray actor died 4 times" on every row)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import numpy as np
import pytest

from tests.conftest import HANG_S, moving_square, write_video
from vidcam.batch import run
from vidcam.batch.executor_ray import check_reachable
from vidcam.errors import VidcamError

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'vidcam[ray]'")

OPTS = {"model": "sample", "clip_len": 8, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("rayhard")
    base = moving_square(12, 48, 64, (2, 2, 46, 62))
    variants = [
        base,
        base[::-1],
        base[:, :, ::-1],
        base[:, ::-1],
        base[::-1, ::-1],
        base[:, :, ::-1, :],
    ]
    for i, frames in enumerate(variants):
        write_video(d / f"v{i}.mkv", np.ascontiguousarray(frames))
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_unreachable_address_is_one_line_at_once(clips, tmp_path, monkeypatch):
    """Refused before ray.init, which would retry for minutes (no clock: ray.init is never
    called)."""
    port = _free_port()
    inits: list = []
    monkeypatch.setattr(ray, "init", lambda *a, **k: inits.append(k))
    with pytest.raises(VidcamError, match="no Ray cluster answers there") as err:
        run([clips], tmp_path / "o", executor="ray", ray_address=f"127.0.0.1:{port}", **OPTS)
    assert "\n" not in str(err.value) and str(port) in str(err.value)
    assert inits == []  # not the minutes ray.init retries for
    assert not ray.is_initialized()
    with pytest.raises(VidcamError, match="HOST:PORT"):
        check_reachable("nonsense")
    check_reachable("auto")  # left to ray.init


def test_private_local_instance_and_the_pool_sized_by_cpus(clips, tmp_path, capsys):
    """No address: a local instance of this run only (ray.init(address="local")), shut down
    after; 8 workers asked on 2 CPUs: capped, and all 6 videos are done (none waits)."""
    assert not ray.is_initialized()
    calls = []
    real = ray.init

    def spy(*a, **k):
        calls.append(k.get("address"))
        return real(*a, **{**k, "num_cpus": 2})  # this shared machine: 2 CPUs for the test

    ray.init = spy
    try:
        box: list = []
        t = threading.Thread(
            target=lambda: box.append(run([clips], tmp_path, executor="ray", workers=8, **OPTS)),
            daemon=True,
        )
        t.start()
        t.join(HANG_S)  # generous: the run takes seconds, or waits forever
        assert not t.is_alive(), "the batch waited forever for actors that cannot be placed"
    finally:
        ray.init = real
    rows = box[0]
    assert calls == ["local"] and not ray.is_initialized()
    assert [r["status"] for r in rows] == ["done"] * 6
    assert "--workers 8 capped at 2" in capsys.readouterr().err


def test_a_model_that_cannot_load_stops_the_run_once(clips, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(VidcamError) as err:
            run([clips], tmp_path / "o", executor="ray", workers=2, weights=str(bad), **OPTS)
    finally:
        ray.shutdown()
    msg = str(err.value)
    assert "could not read weights file" in msg and str(bad) in msg and "\n" not in msg
    assert "actor died" not in msg
    assert not list((tmp_path / "o").glob("*.failed.json"))  # not a failure per video


def test_a_video_stuck_in_c_code_is_stopped_by_the_hard_limit(clips, tmp_path, monkeypatch):
    """A read that never returns (a FIFO segment of a concat list, the demuxer allowed here
    on purpose) is beyond the worker's own per-packet check: past video_timeout plus the grace
    the driver kills that actor; the video is a failed row and the run ends."""
    import vidcam.batch.executor_ray as executor_ray

    (tmp_path / "a.mkv").write_bytes((clips / "v0.mkv").read_bytes())
    os.mkfifo(tmp_path / "fifo")
    listing = tmp_path / "stuck.mp4"
    # the FIFO first: the demuxer blocks in C before any packet, so only the hard limit can
    # stop it, however slow the machine (with a.mkv first, a loaded machine may reach the
    # worker's own per-packet check before the FIFO)
    listing.write_text("ffconcat version 1.0\nfile fifo\nfile a.mkv\n")
    monkeypatch.setenv("VIDCAM_DEMUXERS", "concat")  # inherited by the Ray workers
    monkeypatch.setattr(executor_ray, "HARD_GRACE_S", 1.0)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        box: list = []
        t = threading.Thread(
            target=lambda: box.append(
                run([listing], tmp_path / "o", executor="ray", workers=1, video_timeout=2, **OPTS)
            ),
            daemon=True,
        )
        t.start()
        t.join(HANG_S)
        assert not t.is_alive(), "the stuck video held the run"
    finally:
        ray.shutdown()
        with contextlib.suppress(OSError):
            os.close(os.open(tmp_path / "fifo", os.O_WRONLY | os.O_NONBLOCK))
    (row,) = box[0]
    assert row["status"] == "failed"
    assert (
        "took longer than 2 s (--video-timeout); its Ray worker actor was stopped" in row["error"]
    )
