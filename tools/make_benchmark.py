"""Write a synthetic motion benchmark: <out>/<index>_<class>_<n>x.mp4 + <stem>.json + index.json.

Clips come from :mod:`vidcam.evaluate.synth` (deterministic by ``--seed``; labels cycle through the
classes). The sample model was trained on seed 1 and its test accuracy measured on seed 2; use
another seed (default 3) for an evaluation set it has never seen. Example::

    python tools/make_benchmark.py out/bench --count 150 --seed 3
    vidcam evaluate out/bench --json out/bench.json --plot out/bench.png
"""

from __future__ import annotations

import argparse
import sys

from vidcam.errors import VidcamError
from vidcam.evaluate.synth import CLASSES, make_clip, write_benchmark, write_clip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="output folder")
    p.add_argument("--count", type=int, default=150, help="number of clips (default 150)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--crf", type=int, default=8, help="libx264 CRF (lower = closer to the pixels)")
    p.add_argument(
        "--single",
        metavar="CLASS:INSTANCES:SEED",
        action="append",
        help=f"instead, write one named clip per option (CLASS in {', '.join(CLASSES)}), "
        "e.g. moving_right:2:10 -> <out>/moving_right_2x.mp4",
    )
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.single:
            for item in args.single:
                try:
                    name, n, seed = item.split(":")
                    clip = make_clip(int(seed), name, instances=int(n))
                except ValueError as exc:
                    raise VidcamError(f"--single {item!r}: expected CLASS:INSTANCES:SEED") from exc
                path = f"{args.out}/{name}_{n}x.mp4"
                write_clip(clip, path, crf=args.crf)
                if not args.quiet:
                    print(f"{path}: {name}, {n} instance(s), interval {list(clip.interval)}")
            return 0
        paths = write_benchmark(
            args.out, args.count, args.seed, crf=args.crf, progress=not args.quiet
        )
        if not args.quiet:
            print(f"wrote {len(paths)} clips + ground truth to {args.out}")
        return 0
    except VidcamError as exc:
        print(f"make_benchmark: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
