"""Explanation cost vs plain inference: the gradient-free prefix against full recording.

Per model, three modes, side by side in one run:

- ``inference``: ``with torch.no_grad(): model(clip)`` — the cost of just running the model;
- ``full``: ``vidcam.Explainer`` recording autograd for the whole forward (the engine before the
  prefix; private switch ``Explainer._full_graph = True``);
- ``prefix``: ``vidcam.Explainer`` as shipped (no autograd before the explained layer).

Both explainers: Grad-CAM++, top-1 target, the registry's default layer(s), maps upsampled to
the clip. Time: median of ``--repeats`` rounds, the three modes timed round-robin (order rotated
each round) in ONE fresh process per model (after one warm-up call each), so drift hits every
mode alike. Peak memory:
``ru_maxrss`` of a FRESH process per (model, mode) that builds the model and runs the mode twice;
it includes what every mode shares (Python, torch, the weights), as a user's process would.
Goals (issue 12): prefix time ≤ 1.08× inference, prefix peak RSS ≤ 1.15× inference (judged on
the medians; ``min ×`` is the ratio of the fastest rounds and ``cpu ×`` that of the median
process CPU times, both less sensitive to other load on a shared machine).

    python tools/bench_prefix.py [--models i3d,r3d_18,x3d_m] [--repeats 3] [--device cpu]

``i3d`` uses the real Kinetics-400 weights when cached (``python -m vidcam.models.i3d_weights
--fetch``), random weights otherwise; the others use random weights (never a download).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import torch

MODES = ("inference", "full", "prefix")
SHAPES = {
    "i3d": (1, 3, 64, 224, 224),
    "r3d_18": (1, 3, 16, 112, 112),
    "x3d_m": (1, 3, 16, 224, 224),
}
TIME_GOAL, MEM_GOAL = 1.08, 1.15


def build(name: str, device: str) -> tuple[torch.nn.Module, object, torch.Tensor, str]:
    """(model, spec, clip, weights note) for ``name``; the clip is fixed by seed."""
    from vidcam.models.registry import get_spec, load_model, weights_present

    spec = get_spec(name)
    pretrained = name == "i3d" and weights_present(spec)
    lm = load_model(name, pretrained=pretrained, device=device, progress=False)
    shape = SHAPES.get(name, (1, 3, *spec.test_input))
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(*shape, generator=g).to(device)
    return lm.module, spec, clip, "real weights" if pretrained else "random weights"


def mode_fn(mode: str, model: torch.nn.Module, spec, clip: torch.Tensor) -> Callable[[], object]:
    import vidcam

    if mode == "inference":

        def infer() -> object:
            with torch.no_grad():
                return model(clip)

        return infer
    explainer = vidcam.Explainer(model, list(spec.layers), reshape=spec.reshape)
    explainer._full_graph = mode == "full"
    return lambda: explainer(clip)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child_time(name: str, device: str, repeats: int) -> dict:
    model, spec, clip, note = build(name, device)
    fns = {mode: mode_fn(mode, model, spec, clip) for mode in MODES}
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for r in range(repeats):
        for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:  # rotated each round
            fn = fns[mode]
            sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync(device)
            times[mode].append(time.perf_counter() - t0)
            cpu[mode].append(time.process_time() - c0)
    return {
        "note": note,
        "median": {m: statistics.median(t) for m, t in times.items()},
        "min": {m: min(t) for m, t in times.items()},
        "cpu": {m: statistics.median(t) for m, t in cpu.items()},
        "all": times,
    }


def child_memory(name: str, mode: str, device: str) -> dict:
    model, spec, clip, _ = build(name, device)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = mode_fn(mode, model, spec, clip)
    for _ in range(2):
        fn()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"built_mb": base_kb / 1024, "peak_mb": peak_kb / 1024}


def run_child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="i3d,r3d_18,x3d_m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # model name, in a child process
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # memory child: one mode
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.child:
        if args.mode:
            result = child_memory(args.child, args.mode, args.device)
        else:
            result = child_time(args.child, args.device, args.repeats)
        print(json.dumps(result))
        return

    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"repeats={args.repeats} (time: round-robin in one process per model; "
        "memory: ru_maxrss of a fresh process per model and mode)"
    )
    header = (
        f"{'model (input)':30} {'mode':10} {'ms':>9} {'× inf':>7} {'min ×':>7} {'cpu ×':>7} "
        f"{'peak RSS MB':>12} {'× inf':>7}  goal"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for name in args.models.split(","):
        timing = run_child(
            ["--child", name, "--repeats", str(args.repeats), "--device", args.device]
        )
        mem = {
            mode: run_child(["--child", name, "--mode", mode, "--device", args.device])
            for mode in MODES
        }
        t_inf, m_inf = timing["median"]["inference"], mem["inference"]["peak_mb"]
        fastest, cpu = timing["min"], timing["cpu"]
        shape = "×".join(str(s) for s in SHAPES.get(name, ()))
        label = f"{name} ({shape})"
        for mode in MODES:
            t, m = timing["median"][mode], mem[mode]["peak_mb"]
            verdict = ""
            if mode == "prefix":
                ok = t / t_inf <= TIME_GOAL and m / m_inf <= MEM_GOAL
                failed |= not ok
                verdict = f"{'met' if ok else 'MISSED'} (≤{TIME_GOAL}× time, ≤{MEM_GOAL}× RSS)"
            print(
                f"{label:30} {mode:10} {t * 1e3:9.1f} {t / t_inf:7.2f} "
                f"{fastest[mode] / fastest['inference']:7.2f} "
                f"{cpu[mode] / cpu['inference']:7.2f} {m:12.1f} {m / m_inf:7.2f}  {verdict}"
            )
            label = f"  {timing['note']}" if mode == "inference" else ""
        print(
            f"{'':30} {'':10} (RSS after building the model: {mem['inference']['built_mb']:.0f} MB)"
        )
        print()
    print("all goals met" if not failed else "some goals MISSED")


if __name__ == "__main__":
    main()
