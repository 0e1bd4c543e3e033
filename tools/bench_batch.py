"""Benchmark `vidcam batch`: videos/min in-process vs 1 vs 2 Ray CPU workers (sample model).

    python tools/bench_batch.py [--videos 8] [--frames 24]

Generated clips (moving squares, 64x80); each configuration writes into a fresh folder.
"Overhead per video" = (wall - sum of the rows' own processing seconds / workers) / videos:
what scheduling, model loads and cluster start cost on top of the per-video work.

Then "would batching windows ACROSS videos help?": the engine's time per window when B windows
go through one call (B = 1, 4, 8), for the sample model and r3d_18 (random weights), side by
side. Within one video, windows are already batched (``--batch-size``); across videos only
the per-call cost could be saved, which this measures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import moving_square, write_video  # noqa: E402
from vidcam.batch import run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int, default=24)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    clips = tmp / "clips"
    clips.mkdir()
    base = moving_square(a.frames, 64, 80, (2, 2, 62, 78))
    for i in range(a.videos):
        write_video(clips / f"v{i}.mkv", base if i % 2 else base[:, :, ::-1].copy())
    opts = {"model": "sample", "device": "cpu", "progress": False}
    print(f"{a.videos} videos x {a.frames} frames (64x80), sample model, CPU")
    print(
        f"{'executor':<22} {'wall s':>8} {'videos/min':>11} {'work s/video':>13} {'overhead s/video':>17}"
    )
    configs = [("in-process", {}, 1)]
    try:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        configs += [("ray, 1 CPU worker", {"executor": "ray", "workers": 1}, 1)]
        configs += [("ray, 2 CPU workers", {"executor": "ray", "workers": 2}, 2)]
    except ModuleNotFoundError:
        print("(ray not installed: pip install 'vidcam[ray]')")
    for name, kw, n in configs:
        t = time.perf_counter()
        rows = run([clips], tmp / name.replace(" ", "_").replace(",", ""), **opts, **kw)
        wall = time.perf_counter() - t
        work = sum(r["seconds"] for r in rows)
        assert all(r["status"] == "done" for r in rows), rows
        over = (wall - work / n) / len(rows)
        print(
            f"{name:<22} {wall:8.1f} {len(rows) / wall * 60:11.1f} {work / len(rows):13.2f} {over:17.2f}"
        )
    if len(configs) > 1:
        ray.shutdown()
    window_batching()


def window_batching(repeats: int = 3) -> None:
    import statistics

    import torch

    from vidcam import Explainer
    from vidcam.models.registry import load_model

    print("engine ms per window with B windows per call (Grad-CAM++, top-1, CPU):")
    for name in ("sample", "r3d_18"):
        lm = load_model(name, pretrained=False, progress=False)
        spec = lm.input
        ex = Explainer(lm.module, lm.layers[0])
        per = {}
        for b in (1, 4, 8):
            x = torch.randn(b, 3, spec.clip_len, *spec.crop)
            ex(x, "top1")  # warm-up
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                ex(x, "top1")
                ts.append((time.perf_counter() - t) / b)
            per[b] = statistics.median(ts)
        cells = "  ".join(f"B={b}: {1e3 * v:8.2f}" for b, v in per.items())
        print(f"    {name:<8} {cells}   B=8 / B=1: {per[8] / per[1]:5.2f}")


if __name__ == "__main__":
    main()
