"""Explain the real bikes clip with the default model, write its HTML report, and screenshot it
in headless Chromium (the page as a reader sees it, mid-playback): docs/report_bikes.png.

    python tools/fetch_sample_clips.py --dest out/clips
    python tools/make_report_screenshot.py            # ~1-2 min with I3D on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the DevTools client the browser test uses

from cdp import Browser, find_chromium  # noqa: E402

from vidcam.paths import atomic_write  # noqa: E402
from vidcam.report import write_video_report  # noqa: E402
from vidcam.video import write_explained_video  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(ROOT / "out/clips/bikes.mp4"))
    ap.add_argument("--out-dir", default=str(ROOT / "out/report_bikes"))
    ap.add_argument("--png", default=str(ROOT / "docs/report_bikes.png"))
    ap.add_argument("--model", default="i3d")
    ap.add_argument("--side-by-side", action="store_true")
    ap.add_argument("--at", type=float, default=4.0, help="seek here before the screenshot (s)")
    ap.add_argument("--reuse", action="store_true", help="keep an earlier run's video and JSON")
    ap.add_argument("--height", type=int, default=1150, help="viewport height of the screenshot")
    args = ap.parse_args()
    exe = find_chromium()
    if exe is None:
        sys.exit("no chromium binary found: apt-get install -y chromium")
    clip, out = Path(args.clip), Path(args.out_dir)
    if not clip.is_file():
        sys.exit(f"{clip} is missing: python tools/fetch_sample_clips.py --dest out/clips")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not (args.reuse and (out / "bikes.json").is_file()):
        write_explained_video(
            clip,
            out / "bikes_explained.mp4",
            json_path=out / "bikes.json",
            preview=out / "bikes_sheet.png",
            model=args.model,
            side_by_side=args.side_by_side,
            overwrite=True,
        )
    took = time.perf_counter() - started
    explanation = json.loads((out / "bikes.json").read_text(encoding="utf-8"))
    page = write_video_report(
        out / "bikes.html",
        explanation=explanation,
        video=out / "bikes_explained.mp4",
        source=clip,
        preview=out / "bikes_sheet.png",
        settings={
            "model": args.model,
            "weights": "the registry's pretrained weights",
            "method": "gradcam++",
            "target": "top1",
            "spatial (asked)": "auto",
            "normalize": "video",
            "side_by_side": "yes" if args.side_by_side else "no",
        },
    )
    with (
        tempfile.TemporaryDirectory() as profile,
        Browser(exe, page.as_uri(), Path(profile), width=1280, height=args.height) as b,
    ):
        b.wait_for("!!document.getElementById('annotated') && annotated.readyState >= 2")
        b.evaluate(f"annotated.muted = true; annotated.currentTime = {args.at - 0.5}")
        b.evaluate("annotated.play()", await_promise=True)  # play a moment: no spinner
        b.wait_for(f"annotated.currentTime >= {args.at}", timeout=60)
        b.evaluate("annotated.pause()")
        b.wait_for("!source.seeking && source.readyState >= 2 && annotated.readyState >= 3")
        time.sleep(0.5)
        png = b.screenshot()
    with atomic_write(args.png) as tmp:
        tmp.write_bytes(png)
    print(
        f"explained {explanation['frames']} frames ({len(explanation['windows'])} windows) in "
        f"{took:.1f} s; "
        f"wrote {page} and {args.png}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
