"""Explainer throughput on CUDA: clips/s vs the floor and vs pytorch-grad-cam, fp32 and bf16.

Per model (r3d_18 16×112², x3d_m 16×224², I3D 64×224²; batch 8 by default) and per precision
(fp32; bf16 under ``torch.autocast``), side by side, timed round-robin (CUDA-synchronised,
median of ``--repeats`` after a warm-up):

- floor: one forward recording autograd everywhere + ``autograd.grad`` of the top score to the
  layer (what any gradient CAM must do, ``bench_explainer.make_floor``);
- floor, no autograd before the layer (``bench_explainer.make_prefix_floor``);
- vidcam Grad-CAM++ (top-1, maps upsampled to the clip), as shipped (gradient-free prefix);
- vidcam Grad-CAM++ recording the whole forward (the private ``Explainer._full_graph``);
- pytorch-grad-cam 1.5.7 GradCAMPlusPlus when importable (fp32 only: it copies to numpy, which
  has no bfloat16; one timed call, it is slow), skipped otherwise.

Also the peak CUDA memory of one call of each row. Then the pipeline rows (``video<F>``): a
generated 640×360 H.264 clip of ``--frames`` frames, `vidcam explain` end to end
(``write_explained_video``, r3d_18, ``batch_size=--batch``) vs a plain PyAV decode + libx264
encode of the same clip; for those rows "ms/batch" is ms per run, "clips/s" frames/s and
"× floor" the ratio to decode + encode. Random weights (speed does not depend on them). Goals
(issue 12): vidcam ≤ 1.10× the floor, ≥ 100× pytorch-grad-cam, `vidcam explain` ≤ 1.2×
decode + encode. Sized to finish within 8 minutes on an H200 (defaults). Without CUDA it prints
one line and exits 0; ``--smoke`` runs everything on the CPU with tiny inputs (checks the code).

    python tools/bench_gpu.py [--batch 8] [--repeats 10] [--models r3d_18,x3d_m,i3d] [--no-peer]
        [--frames 300] [--no-pipeline] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

SHAPES = {"r3d_18": (3, 16, 112, 112), "x3d_m": (3, 16, 224, 224), "i3d": (3, 64, 224, 224)}
FLOOR = "floor: forward + grad to layer"
PEER = "pytorch-grad-cam 1.5.7 GradCAM++"


DEVICE = "cuda"  # "cpu" only for --smoke (a quick check of this script without a GPU)


def precision(dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "bf16":
        return torch.autocast(DEVICE, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fns: dict[str, Callable[[], object]], dtype: str, repeats: int) -> dict[str, float]:
    """Median seconds per function, round-robin, each call synchronised."""
    with precision(dtype):
        for fn in fns.values():  # warm-up (cuDNN algorithm choice, allocator)
            fn()
        times: dict[str, list[float]] = {label: [] for label in fns}
        for _ in range(repeats):
            for label, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def peak_mb(fn: Callable[[], object], dtype: str) -> float | None:
    """Peak CUDA memory allocated during one call, above what was allocated before it."""
    if DEVICE != "cuda":
        return None
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with precision(dtype):
        fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def peer_fn(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor):
    """pytorch-grad-cam's GradCAM++ on the top-1 class, or None when it is not importable.
    Returns (call, release)."""
    try:
        from pytorch_grad_cam import GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        return None
    cam = GradCAMPlusPlus(model=model, target_layers=[layer])

    def run() -> None:
        with torch.no_grad():
            top = model(x).argmax(1).tolist()
        cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in top])

    return run, cam.activations_and_grads.release


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> list[tuple]:
    from bench_explainer import make_floor, make_prefix_floor

    import vidcam
    from vidcam.models.registry import get_spec, load_model

    if args.smoke:  # the small architecture variant that takes the spec's test clip
        spec = get_spec(name)
        model = spec.build(pretrained=False, **spec.test_arch).to(device).eval()
    else:
        lm = load_model(name, pretrained=False, device=device, progress=False)
        model, spec = lm.module, get_spec(name).for_model(lm.module)
    layer_name = spec.layers[0]
    layer = model.get_submodule(layer_name)
    shape = SHAPES[name] if not args.smoke else (3, *spec.test_input)
    x = torch.randn(args.batch, *shape, device=device)
    new = vidcam.Explainer(model, list(spec.layers), reshape=spec.reshape)
    old = vidcam.Explainer(model, list(spec.layers), reshape=spec.reshape)
    old._full_graph = True
    fns = {
        FLOOR: make_floor(model, layer, x),
        "floor, no autograd before the layer": make_prefix_floor(model, layer, x),
        "vidcam Grad-CAM++ (gradient-free prefix)": lambda: new(x),
        "vidcam Grad-CAM++ (full recording)": lambda: old(x),
    }
    rows = []
    dtypes = args.dtypes.split(",")
    if args.smoke and name == "i3d":  # bf16 I3D on a CPU takes many minutes
        dtypes = ["fp32"]
    for dtype in dtypes:
        t0 = time.perf_counter()
        times = timed(fns, dtype, args.repeats)
        mem = {label: peak_mb(fn, dtype) for label, fn in fns.items()}
        if dtype == "fp32" and args.peer:
            peer = peer_fn(model, layer, x)
            if peer is None:
                print(f"({name}: pytorch-grad-cam not importable; its row is skipped)")
            else:
                run, release = peer
                try:  # one call: the GPU kernels are warm from the rows above, and it is slow
                    t = time.perf_counter()
                    run()
                    sync()
                    times[PEER] = time.perf_counter() - t
                finally:
                    release()
        floor = times[FLOOR]
        for label, t in times.items():
            rows.append((name, dtype, label, t, args.batch / t, t / floor, mem.get(label)))
        if PEER in times:
            ours = times["vidcam Grad-CAM++ (gradient-free prefix)"]
            rows.append((name, dtype, "pytorch-grad-cam / vidcam", None, None, times[PEER] / ours))
        print(f"({name} {dtype}: {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    fns.clear()  # frees the models' closures before the next model is built
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    return rows


def decode_encode(clip: Path, out: Path) -> int:
    """A plain PyAV decode of every frame + H.264 encode (crf 18, veryfast, as vidcam writes)."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        enc = dst.add_stream("libx264", rate=stream.average_rate)
        enc.width, enc.height = stream.codec_context.width, stream.codec_context.height
        enc.pix_fmt = "yuv420p"
        enc.options = {"crf": "18", "preset": "veryfast"}
        n = 0
        for frame in src.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")  # vidcam renders RGB frames too
            dst.mux(enc.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            n += 1
        dst.mux(enc.encode())
    return n


def bench_pipeline(args: argparse.Namespace) -> list[tuple]:
    """`vidcam explain` (write_explained_video, r3d_18 random weights, batch ``args.batch``)
    wall time vs a plain PyAV decode + encode of the same clip. One warm-up, then medians."""
    from bench_pipeline import make_clip

    from vidcam.video import write_explained_video

    frames = 24 if args.smoke else args.frames
    out_dir = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    clip = make_clip(out_dir / f"clip_{frames}.mp4", frames)

    def explain() -> None:
        write_explained_video(
            clip,
            out_dir / "explained.mp4",
            model="r3d_18",
            pretrained=False,
            device=DEVICE,
            batch_size=args.batch,
            progress=False,
            overwrite=True,
        )

    fns = {
        "PyAV decode + encode (640x360 H.264)": lambda: decode_encode(clip, out_dir / "plain.mp4"),
        "vidcam explain (r3d_18, whole pipeline)": explain,
    }
    times = timed(fns, "fp32", max(1, min(args.repeats, 3)))
    base = times["PyAV decode + encode (640x360 H.264)"]
    return [
        (f"video{frames}", "fp32", label, t, frames / t, t / base, None)
        for label, t in times.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="r3d_18,x3d_m,i3d")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    parser.add_argument("--frames", type=int, default=300, help="frames of the pipeline clip")
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false")
    # a quick run of this script on the CPU (small clips, batch 1): checks the code, not speed
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run: checks the code")
    args = parser.parse_args()
    global DEVICE
    if args.smoke:
        DEVICE, args.batch, args.repeats = "cpu", 1, 1
    elif not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; this benchmark measures on CUDA only (nothing run)")
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_explainer's floors
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    device = torch.device(DEVICE)
    start = time.perf_counter()
    where = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu (smoke run)"
    print(
        f"device={where} torch={torch.__version__} batch={args.batch} "
        f"repeats={args.repeats} (median, round-robin, synchronised; peak MB = one call)"
    )
    header = (
        f"{'model':7} {'dtype':5} {'what':42} {'ms/batch':>9} {'clips/s':>9} "
        f"{'× floor':>8} {'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    groups = [lambda name=name: bench_model(name, args, device) for name in args.models.split(",")]
    if args.pipeline:
        groups.append(lambda: bench_pipeline(args))
    for group in groups:
        for model, dtype, label, t, rate, ratio, *more in group():
            if t is None:
                print(f"{model:7} {dtype:5} {label:42} {'':9} {'':9} {ratio:7.1f}x")
                continue
            mem_s = f"{more[0]:9.0f}" if more[0] is not None else f"{'':9}"
            print(f"{model:7} {dtype:5} {label:42} {t * 1e3:9.2f} {rate:9.1f} {ratio:8.2f} {mem_s}")
        print()
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
