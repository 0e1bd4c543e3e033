"""Video RISE and extremal perturbation beside the CAMs: cost per clip and remove/keep 20 %.

For every method, one ``vidcam evaluate`` run (the library's :func:`vidcam.evaluate.pipeline.evaluate`,
spatial ``auto`` like the command, fills ``road`` and ``blur``, k = 20 %, no classic curves) on
the given videos; the reference maps are scored in the first run. Per clip the engine's call is
measured: forwards, masked clips and backwards (from the :class:`~vidcam.Explanation` records)
and seconds. Prints one table: forwards / clip, backwards / clip, seconds / clip, then the
probability ratios remove 20 % (lower is better) and keep 20 % (higher is better) under each
fill, and the logit differences (do not saturate).

    python tools/bench_perturbation.py samples/*.mp4 --model sample [--masks 500 --steps 60]
        [--area 0.1] [--methods gradcam,gradcam++,layercam,rise,rise-paper,extremal]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from vidcam.cam.explainer import Explainer
from vidcam.cam.perturbation import Perturbation
from vidcam.evaluate.pipeline import EvalOptions, evaluate
from vidcam.models.open import open_model

FILLS = ("road", "blur")
REFERENCES = ("random", "random_voxel", "centre", "ones")


class EngineMeter:
    """Wraps :meth:`Explainer.explain_all` for the block; records each call's cost per method."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._orig = Explainer.explain_all

    def __enter__(self) -> EngineMeter:
        orig, calls = self._orig, self.calls

        def explain_all(ex: Explainer, clip: torch.Tensor, target: Any = None):
            if clip.is_cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = orig(ex, clip, target)
            if clip.is_cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            for m, res in out.items():
                calls.append(
                    {
                        "method": m,
                        "seconds": seconds / len(out),
                        "forwards": res.forwards,
                        "masked": res.masked_clips,
                        "backwards": res.backwards,
                    }
                )
            return out

        Explainer.explain_all = explain_all  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Explainer.explain_all = self._orig  # type: ignore[method-assign]


def run_method(videos, em, method: str, label: str, pert: Perturbation, refs) -> dict[str, Any]:
    opts = EvalOptions(
        methods=(method,),
        references=refs,
        fills=FILLS,
        fractions=(0.2,),
        units=(),
        spatial="auto",
        quiet=True,
    )
    with EngineMeter() as meter:
        t0 = time.perf_counter()
        result = evaluate(videos, em, opts, engine={"perturbation": pert})
        total = time.perf_counter() - t0
    rows = {}
    n = len(videos)
    for m, row in result.summary["methods"].items():
        calls = [c for c in meter.calls if c["method"] == m]
        rows[label if m == method else m] = {
            "forwards": sum(c["forwards"] for c in calls) / n if calls else None,
            "backwards": sum(c["backwards"] for c in calls) / n if calls else None,
            "masked": sum(c["masked"] for c in calls) / n if calls else None,
            "seconds": sum(c["seconds"] for c in calls) / n if calls else None,
            **{k: row.get(k) for k in _keys()},
        }
    print(f"  {label}: evaluate run {total:.1f} s for {n} clips", flush=True)
    return rows


def _keys() -> list[str]:
    return [
        f"{kind}_20_{f}{s}" for s in ("", "_dlogit") for f in FILLS for kind in ("remove", "keep")
    ]


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.{digits}f}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def print_table(rows: dict[str, dict[str, Any]], device: str) -> None:
    keys = _keys()
    head = ["method", "forwards/clip", "backwards/clip", "masked clips/clip", "s/clip", *keys]
    print(f"\n{len(rows)} maps; device {device}; torch threads {torch.get_num_threads()}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, r in rows.items():
        cells = [fmt(r["forwards"]), fmt(r["backwards"]), fmt(r["masked"]), fmt(r["seconds"], 2)]
        cells += [fmt(r[k]) for k in keys]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--model", default="sample")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--masks", type=int, default=Perturbation.masks)
    ap.add_argument("--steps", type=int, default=Perturbation.steps)
    ap.add_argument("--area", type=float, default=Perturbation.area)
    ap.add_argument(
        "--methods",
        default="gradcam,gradcam++,layercam,rise,rise-paper,extremal",
        help="ids; rise-paper: RISE without the control variate (centred=False)",
    )
    args = ap.parse_args(argv)
    em = open_model(args.model, device=args.device, progress=False)
    pert = Perturbation(masks=args.masks, steps=args.steps, area=args.area)
    rows: dict[str, dict[str, Any]] = {}
    refs: tuple[str, ...] = REFERENCES
    for label in args.methods.split(","):
        method, p = label, pert
        if label == "rise-paper":
            method, p = "rise", replace(pert, centred=False)
        rows.update(run_method(args.videos, em, method, label, p, refs))
        refs = ()
    print_table(rows, str(em.device))


if __name__ == "__main__":
    main()
