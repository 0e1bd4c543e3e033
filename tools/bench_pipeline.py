"""Pipeline benchmark: `vidcam explain` wall time vs the model's own work, and memory vs length.

(1) Speed. A generated 640×360 clip (default 300 frames at 30 fps, H.264) is explained end to
    end (decode → sample → preprocess → engine → to_source → render → encode, both passes) with
    r3d_18 (random weights). The floor is the model's forward + ``autograd.grad`` down to the
    explained layer for the same number of windows of the same shape (what any Grad-CAM must
    do); "engine" is the time the pipeline spent in vidcam's engine calls.
    Each run is followed by 5 floor passes on the same machine state; the ratio is taken per
    run and its median printed, with where the wall time went (engine, the rest of pass 1,
    pass 2). Target (issue 12): wall / (windows x floor) <= 1.15.
(2) Memory. Peak RSS (ru_maxrss of a child process) of the pipeline on the short clip and on
    one 10× longer (bundled sample model, random weights, non-overlapping windows to keep it
    quick). Target: long / short <= 1.2.

    python tools/bench_pipeline.py [--frames 300] [--repeats 3] [--spatial auto] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import av
import numpy as np
import torch
from bench_explainer import make_floor  # tools/ is on sys.path when run as a script


def make_clip(path: Path, frames: int, width: int = 640, height: int = 360, fps: int = 30) -> Path:
    """Textured background with moving discs and bars: encodes like real footage."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    tex = np.kron(tex, np.ones((8, 8, 1), np.uint8))
    yy, xx = np.mgrid[0:height, 0:width]
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=fps)
    s.width, s.height, s.pix_fmt = width, height, "yuv420p"
    s.options = {"crf": "23", "preset": "veryfast"}
    for i in range(frames):
        img = (tex // 2).copy()
        for k in range(3):
            cx = (width * (0.2 + 0.3 * k) + 90 * np.sin(i / (12 + 5 * k))) % width
            cy = height * 0.5 + 80 * np.cos(i / (9 + 4 * k))
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (30 + 10 * k) ** 2
            img[disc] = (255 - 60 * k, 80 + 50 * k, 60)
        img[:, (4 * i) % width : (4 * i) % width + 12] = 230
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def speed(clip: Path, out_dir: Path, repeats: int, spatial: str) -> None:
    import vidcam.video
    import vidcam.video.pipeline as pipeline
    from vidcam.models.registry import load_model
    from vidcam.video import write_explained_video

    lm = load_model("r3d_18", pretrained=False, progress=False)
    model, spec, layer = lm.module, lm.input, lm.layers[0]
    n_frames = av.open(str(clip)).streams.video[0].frames
    print(
        f"(1) speed: {clip.name} 640x360, {n_frames} frames; r3d_18 random weights, "
        f"{spec.clip_len} x {spec.crop} @ {spec.fps} fps; CPU threads={torch.get_num_threads()}"
    )

    # bench-only instrumentation: time inside the engine, and pass 2 (render + encode)
    spent = {"engine": 0.0, "pass2": 0.0}
    shapes: list[tuple[int, ...]] = []  # the clips the pipeline really explains (spatial mode)
    call, render = vidcam.video.Explainer.explain_all, pipeline.render_analysis

    def timed(key, fn):
        def wrapper(*a, **k):
            if key == "engine":
                shapes.append(tuple(a[1].shape))
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0

        return wrapper

    vidcam.video.Explainer.explain_all = timed("engine", call)
    pipeline.render_analysis = timed("pass2", render)

    def run_pipeline() -> dict:
        spent.update(engine=0.0, pass2=0.0)
        shapes.clear()
        t0 = time.perf_counter()
        res = write_explained_video(
            clip,
            out_dir / "bench_out.mp4",
            model="r3d_18",
            pretrained=False,
            device="cpu",
            progress=False,
            overwrite=True,
            spatial=spatial,
        )
        wall = time.perf_counter() - t0
        return dict(spent, wall=wall, windows=len(res.windows), calls=[s[0] for s in shapes])

    def per_call(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_pipeline()  # warm-up (lazy imports, first autograd call)
            # the floor explains one window of exactly the shape the pipeline fed its engine
            x = torch.randn(1, *shapes[0][1:])
            print(f"    spatial={spatial}: the engine explains clips of {tuple(x.shape)}")
            floor_once = make_floor(model, model.get_submodule(layer), x)
            rounds = []
            for _ in range(repeats):  # each run paired with floor passes right after it
                r = run_pipeline()
                r["floor"] = statistics.median(per_call(floor_once) for _ in range(5))
                rounds.append(r)
    finally:
        vidcam.video.Explainer.explain_all, pipeline.render_analysis = call, render
    print(f"    windows per run: {rounds[0]['windows']}; windows per engine call: {r['calls']}")
    print(
        "    run  wall s  floor ms  engine s  pass-1 rest s  pass 2 s  engine/window ms  "
        "wall/(windows x floor)"
    )
    ratios = []
    for i, r in enumerate(rounds):
        n, f = r["windows"], r["floor"]
        ratio = r["wall"] / (n * f)
        ratios.append(ratio)
        rest = r["wall"] - r["engine"] - r["pass2"]
        print(
            f"    {i + 1:3d} {r['wall']:7.2f} {1e3 * f:9.1f} {r['engine']:9.2f} {rest:14.2f} "
            f"{r['pass2']:9.2f} {1e3 * r['engine'] / n:17.1f} {ratio:23.2f}"
        )
    print(
        f"    median wall / (windows x floor) = {statistics.median(ratios):5.2f}  "
        "(target <= 1.15; 'pass-1 rest': model load, decode, preprocess, spool)"
    )
    print(
        f"    throughput: {n_frames / statistics.median(r['wall'] for r in rounds):6.1f} frames/s"
    )


_CHILD = """
import json, re, sys, warnings
warnings.simplefilter("ignore")
from vidcam.video import write_explained_video
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
kw = dict(model="sample", pretrained=False, device="cpu", progress=False, overwrite=True)
write_explained_video(sys.argv[1], sys.argv[2], clip_len=4, **kw)  # warm-up: lazy imports
before = hwm()
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark (Linux)
res = write_explained_video(sys.argv[1], sys.argv[2], stride=16, **kw)
print(json.dumps({"rss_mb": hwm(), "before_mb": before, "frames": res.frames,
                  "windows": len(res.windows)}))
"""


def memory(short: Path, long: Path, out_dir: Path) -> None:
    print(
        "(2) memory: peak RSS (VmHWM) of an `explain` run in a fresh process, after a warm-up "
        "run (sample model, random weights, windows 16 apart)"
    )
    rows = []
    for clip in (short, long):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(clip), str(out_dir / f"mem_{clip.stem}.mp4")],
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        stats["s"] = time.perf_counter() - t0
        rows.append(stats)
        print(
            f"    {clip.name:14} {stats['frames']:6d} frames {stats['windows']:4d} windows "
            f"peak RSS {stats['rss_mb']:8.1f} MB (process before the run: "
            f"{stats['before_mb']:.1f} MB; {stats['s']:.1f} s)"
        )
    ratio = rows[1]["rss_mb"] / rows[0]["rss_mb"]
    print(
        f"    long / short peak RSS: {ratio:5.3f}  (target <= 1.2; length ratio "
        f"{rows[1]['frames'] / rows[0]['frames']:.1f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spatial", default="auto", help="auto|full|center|tiles (default auto)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--workdir", help="where to keep generated clips (default: a temp dir)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="vidcam-bench-")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, PyAV {av.__version__}, "
        f"load average {', '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}"
    )
    short = make_clip(work / f"clip_{args.frames}.mp4", args.frames)
    if not args.skip_speed:
        speed(short, work, args.repeats, args.spatial)
    if not args.skip_memory:
        long = make_clip(work / f"clip_{10 * args.frames}.mp4", 10 * args.frames)
        memory(short, long, work)


if __name__ == "__main__":
    main()
