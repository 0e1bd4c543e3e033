"""`vidcam batch --executor ray` on a local Ray cluster started here: the same maps as the
in-process executor, and a killed worker actor's videos are redone (none lost or duplicated)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.conftest import moving_square, write_video
from vidcam.batch import load_maps, run

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'vidcam[ray]'")

OPTS = {"model": "sample", "clip_len": 8, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("rayclips")
    base = moving_square(12, 48, 64, (2, 2, 46, 62))
    for i in range(4):
        frames = [base, base[::-1], base[:, :, ::-1], base[:, ::-1]][i]
        write_video(d / f"v{i}.mkv", np.ascontiguousarray(frames))
    return d


@pytest.fixture(scope="module")
def local(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return out, run([clips], out, **OPTS)


def _same_maps(a, b):
    ra, rb = load_maps(a), load_maps(b)
    assert ra.panels.keys() == rb.panels.keys()
    for k in ra.panels:  # 1 vs 2 intra-op threads: summation order may differ in the last bit
        np.testing.assert_allclose(ra.panels[k], rb.panels[k], rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(ra.window_times, rb.window_times)


def test_ray_matches_local(cluster, clips, local, tmp_path):
    out_l, rows_l = local
    rows = run([clips], tmp_path, executor="ray", workers=2, **OPTS)
    assert [r["key"] for r in rows] == [r["key"] for r in rows_l]
    assert [r["status"] for r in rows] == ["done"] * 4
    for r, rl in zip(rows, rows_l, strict=True):
        assert r["top"][0]["label"] == rl["top"][0]["label"]
        _same_maps(tmp_path / r["outputs"]["maps"], out_l / rl["outputs"]["maps"])


def test_killed_actor_videos_are_redone(cluster, clips, local, tmp_path):
    seen: dict[str, int] = {}
    finished = threading.Event()  # the run returned: nothing left to kill

    def killer():
        while not finished.is_set():  # no clock: the run's own end stops the watch
            names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
            first = [n for n in names if n.startswith("vidcam-batch-") and n.endswith("-1")]
            done = list(tmp_path.rglob("*.done.json"))
            if first and done:
                seen["markers"] = len(done)
                ray.kill(ray.get_actor(first[0]))
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    try:
        rows = run([clips], tmp_path, executor="ray", workers=2, **OPTS)
    finally:
        finished.set()
        t.join()
    assert 1 <= seen.get("markers", 99) < 4, "the actor was not killed mid-run"
    assert sorted(r["key"] for r in rows) == [f"v{i}.mkv" for i in range(4)]  # none lost/duplicated
    assert [r["status"] for r in rows] == ["done"] * 4
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    out_l, rows_l = local
    for r, rl in zip(rows, rows_l, strict=True):
        _same_maps(tmp_path / r["outputs"]["maps"], out_l / rl["outputs"]["maps"])
