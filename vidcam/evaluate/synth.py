"""Synthetic motion benchmark: short clips whose class is defined by motion, with ground truth.

Every clip is ``frames`` RGB uint8 frames of ``size``×``size`` pixels (``size`` high and
``width`` wide when a width is given) on a uniform background.
It holds 1–3 *acting* objects that perform the labelled action (all the same action, during the
same interval ``[t0, t1)``) and 1–3 *distractors* of the same shapes and colours that stay still,
plus (half the time) one distractor that rotates in place, a motion that is no class. Outside
the interval the acting objects stand still, so they look exactly like the static distractors:
only their motion tells them apart.

Ground truth per frame ``t``: ``boxes[t]`` lists one box ``[x0, y0, x1, y1]`` per acting
instance (half-open pixel bounds, tight around the drawn pixels) when ``t0 <= t < t1`` and is
empty otherwise. Objects are placed so that no two trajectories overlap, so a box holds only its
own object's pixels. Drawing uses ``cv2.LINE_8`` (no anti-aliasing), so the boxes match the
drawn pixels exactly. Everything is deterministic given the seed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vidcam.errors import VidcamError
from vidcam.models.labels import load_labels

CLASSES: tuple[str, ...] = tuple(load_labels("sample"))  # vidcam/models/labels/sample.txt
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
_RGB = "230,60,60 60,200,80 70,110,240 240,210,60 220,90,220 60,210,220 245,245,245 250,140,40"
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(r), int(g), int(b)) for r, g, b in (c.split(",") for c in _RGB.split())
)
GT_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    """Clip geometry and scene statistics."""

    frames: int = 16
    size: int = 112
    width: int | None = None  # frame width (None: square, ``size``)
    fps: float = 8.0
    instances: tuple[int, int] = (1, 3)  # inclusive range of acting instances
    distractors: tuple[int, int] = (1, 3)  # inclusive range of static distractors
    rotating_prob: float = 0.5  # chance of one extra distractor rotating in place
    action_len: tuple[int, int] = (7, 12)  # inclusive range of the interval's length in frames
    margin: int = 2  # min gap in pixels between object trajectories and to the border

    @property
    def frame_width(self) -> int:
        return self.width or self.size


@dataclass
class SceneObject:
    """One drawn object; per-frame centre, half-size and angle arrays of length T."""

    role: str  # "acting" | "static" | "rotating"
    shape: str
    color: tuple[int, int, int]
    cx: np.ndarray
    cy: np.ndarray
    r: np.ndarray
    angle: np.ndarray

    def extent(self) -> tuple[float, float, float, float]:
        """Bounding box (x0, y0, x1, y1) of the whole trajectory, conservatively."""
        reach = self.r * (math.sqrt(2.0) if self.shape != "circle" else 1.0) + 1.0
        return (
            float((self.cx - reach).min()),
            float((self.cy - reach).min()),
            float((self.cx + reach).max()),
            float((self.cy + reach).max()),
        )


@dataclass
class SynthClip:
    """A generated clip and its ground truth.

    ``frames``: (T, H, W, 3) uint8 RGB. ``boxes[t][i]``: box of acting instance ``i`` at frame
    ``t`` as ``[x0, y0, x1, y1]`` (half-open), empty list outside ``interval``.
    """

    frames: np.ndarray
    label: int
    interval: tuple[int, int]
    boxes: list[list[list[int]]]
    background: tuple[int, int, int]
    objects: list[SceneObject] = field(repr=False)
    seed: int = 0
    fps: float = 8.0

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]

    @property
    def num_instances(self) -> int:
        return sum(o.role == "acting" for o in self.objects)

    def ground_truth(self) -> dict:
        """The JSON-serialisable ground truth (the format ``vidcam evaluate`` reads)."""
        t, h, w = self.frames.shape[:3]
        return {
            "version": GT_VERSION,
            "label": self.label_name,
            "label_index": self.label,
            "classes": list(CLASSES),
            "num_frames": t,
            "height": h,
            "width": w,
            "fps": self.fps,
            "interval": list(self.interval),
            "num_instances": self.num_instances,
            "box_format": "xyxy, half-open pixel bounds, one per acting instance per frame",
            "boxes": self.boxes,
            "seed": self.seed,
        }


def _polygon(obj: SceneObject, t: int) -> np.ndarray:
    cx, cy, r, a = obj.cx[t], obj.cy[t], obj.r[t], obj.angle[t]
    if obj.shape == "square":
        base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    else:  # triangle, pointing up at angle 0
        base = np.array([[0, -1], [0.94, 0.75], [-0.94, 0.75]], dtype=np.float64)
    c, s = math.cos(a), math.sin(a)
    rot = base @ np.array([[c, s], [-s, c]])
    pts = np.rint(rot * r + np.array([cx, cy])).astype(np.int32)
    return pts.reshape(-1, 1, 2)


def draw_object(img: np.ndarray, obj: SceneObject, t: int, color: tuple[int, ...]) -> None:
    """Draw ``obj`` as it is at frame ``t`` into ``img`` (in place), without anti-aliasing."""
    if obj.shape == "circle":
        center = (int(round(obj.cx[t])), int(round(obj.cy[t])))
        cv2.circle(img, center, int(round(obj.r[t])), color, -1, cv2.LINE_8)
    else:
        cv2.fillPoly(img, [_polygon(obj, t)], color, cv2.LINE_8)


def render(
    objects: Sequence[SceneObject],
    background: tuple[int, int, int],
    frames: int,
    size: int,
    width: int | None = None,
) -> np.ndarray:
    """Draw ``objects`` over a uniform ``background``; returns (T, size, width, 3) uint8 RGB
    (``width`` default: ``size``)."""
    out = np.empty((frames, size, width or size, 3), dtype=np.uint8)
    out[:] = np.asarray(background, dtype=np.uint8)
    for t in range(frames):
        for obj in objects:
            draw_object(out[t], obj, t, obj.color)
    return out


def _box_of(obj: SceneObject, t: int, size: int, width: int | None = None) -> list[int]:
    mask = np.zeros((size, width or size), dtype=np.uint8)
    draw_object(mask, obj, t, (1,))
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], gap: float) -> bool:
    return not (
        a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]
    )


def _inside(e: tuple[float, ...], size: int, margin: float, width: int | None = None) -> bool:
    w = width or size
    return e[0] >= margin and e[1] >= margin and e[2] <= w - margin and e[3] <= size - margin


def _acting(
    rng: np.random.Generator, label: int, cfg: SynthConfig, t0: int, t1: int
) -> SceneObject:
    n, size, width = cfg.frames, cfg.size, cfg.frame_width
    ts = np.arange(n, dtype=np.float64)
    u = np.clip((ts - t0) / max(t1 - 1 - t0, 1), 0.0, 1.0)  # 0 before, ramps in [t0, t1-1], 1 after
    steps = t1 - 1 - t0
    name = CLASSES[label]
    if name.startswith("moving"):
        r0 = rng.uniform(6.0, 10.0)
        r = np.full(n, r0)
        dist = rng.uniform(2.5, 3.5) * steps
        dx, dy = {
            "moving_left": (-dist, 0.0),
            "moving_right": (dist, 0.0),
            "moving_up": (0.0, -dist),
            "moving_down": (0.0, dist),
        }[name]
        lo, hi = r0 * 1.5 + 2, size - r0 * 1.5 - 2
        x0 = rng.uniform(lo - min(dx, 0), width - r0 * 1.5 - 2 - max(dx, 0))
        y0 = rng.uniform(lo - min(dy, 0), hi - max(dy, 0))
        cx, cy = x0 + dx * u, y0 + dy * u
    else:
        small, big = rng.uniform(4.0, 7.0), 0.0
        big = small + rng.uniform(1.0, 1.4) * steps
        r = small + (big - small) * u if name == "growing" else big - (big - small) * u
        reach = big * 1.5 + 2
        cx = np.full(n, rng.uniform(reach, width - reach))
        cy = np.full(n, rng.uniform(reach, size - reach))
    shape = SHAPES[rng.integers(len(SHAPES))]
    color = PALETTE[rng.integers(len(PALETTE))]
    return SceneObject("acting", shape, color, cx, cy, r, np.zeros(n))


def _distractor(rng: np.random.Generator, role: str, cfg: SynthConfig) -> SceneObject:
    n, size = cfg.frames, cfg.size
    r0 = rng.uniform(5.0, 14.0)
    shape = (
        SHAPES[rng.integers(len(SHAPES))]
        if role == "static"
        else ("square", "triangle")[rng.integers(2)]
    )
    reach = r0 * 1.5 + 2
    cx = np.full(n, rng.uniform(reach, cfg.frame_width - reach))
    cy = np.full(n, rng.uniform(reach, size - reach))
    a0 = rng.uniform(0, 2 * math.pi)
    speed = rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.4) if role == "rotating" else 0.0
    angle = a0 + speed * np.arange(n)
    color = PALETTE[rng.integers(len(PALETTE))]
    return SceneObject(role, shape, color, cx, cy, np.full(n, r0), angle)


def _place(
    rng: np.random.Generator, make, placed: list[SceneObject], cfg: SynthConfig, tries: int = 60
) -> SceneObject | None:
    for _ in range(tries):
        obj = make()
        e = obj.extent()
        if _inside(e, cfg.size, cfg.margin, cfg.frame_width) and not any(
            _overlaps(e, p.extent(), cfg.margin) for p in placed
        ):
            return obj
    return None


def make_clip(
    seed: int,
    label: int | str | None = None,
    *,
    instances: int | None = None,
    config: SynthConfig | None = None,
) -> SynthClip:
    """Generate one clip deterministically from ``seed``.

    ``label``: class index or name (random when None); ``instances``: number of acting objects
    (random in ``config.instances`` when None).
    """
    cfg = config or SynthConfig()
    if isinstance(label, str):
        if label not in CLASSES:
            raise VidcamError(f"label {label!r} is not one of {', '.join(CLASSES)}")
        label = CLASSES.index(label)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    if label is None:
        label = int(rng.integers(len(CLASSES)))
    if not 0 <= label < len(CLASSES):
        raise VidcamError(f"label must be in [0, {len(CLASSES)}), got {label}")
    n_inst = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    if instances is not None:
        if instances < 1:
            raise VidcamError(f"instances must be >= 1, got {instances}")
        n_inst = instances
    lo, hi = cfg.action_len
    length = int(rng.integers(lo, min(hi, cfg.frames) + 1))
    t0 = int(rng.integers(0, cfg.frames - length + 1))
    t1 = t0 + length

    placed: list[SceneObject] = []
    for _ in range(200):  # instances must all fit; retry the whole set when they do not
        placed = []
        for _ in range(n_inst):
            obj = _place(rng, lambda: _acting(rng, label, cfg, t0, t1), placed, cfg)
            if obj is None:
                break
            placed.append(obj)
        if len(placed) == n_inst:
            break
    else:
        raise VidcamError(f"could not place {n_inst} acting instances in a {cfg.size}px frame")
    n_dis = int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))
    roles = ["static"] * n_dis + (["rotating"] if rng.random() < cfg.rotating_prob else [])
    for role in roles:
        obj = _place(rng, lambda role=role: _distractor(rng, role, cfg), placed, cfg)
        if obj is not None:
            placed.append(obj)

    background = tuple(int(v) for v in rng.integers(15, 90, size=3))
    frames = render(placed, background, cfg.frames, cfg.size, cfg.frame_width)
    acting = [o for o in placed if o.role == "acting"]
    boxes = [
        [_box_of(o, t, cfg.size, cfg.frame_width) for o in acting] if t0 <= t < t1 else []
        for t in range(cfg.frames)
    ]
    return SynthClip(frames, label, (t0, t1), boxes, background, placed, int(seed), cfg.fps)


def clip_seed(seed: int, index: int) -> int:
    """Seed of clip ``index`` in a set generated from ``seed`` (stable across versions)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def make_batch(
    seed: int, start: int, count: int, *, config: SynthConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Clips ``start..start+count-1`` of the set from ``seed``: labels cycle through the classes.

    Returns (frames (count, T, H, W, 3) uint8, labels (count,) int64).
    """
    clips = [
        make_clip(clip_seed(seed, i), i % len(CLASSES), config=config)
        for i in range(start, start + count)
    ]
    return np.stack([c.frames for c in clips]), np.array([c.label for c in clips], dtype=np.int64)


def to_tensor(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """(N, T, H, W, 3) or (T, H, W, 3) uint8 -> normalised float tensor (N, 3, T, H, W)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames))
    if x.dim() == 4:
        x = x.unsqueeze(0)
    x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return (x - m) / s


def write_mp4(frames: np.ndarray, path: str | Path, *, fps: float = 8.0, crf: int = 8) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 (yuv420p) with PyAV."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_clip(clip: SynthClip, path: str | Path, *, crf: int = 8) -> Path:
    """Write ``clip`` as ``path`` (.mp4) plus its ground truth next to it (``<stem>.json``)."""
    path = Path(path)
    write_mp4(clip.frames, path, fps=clip.fps, crf=crf)
    gt_path = path.with_suffix(".json")
    gt_path.write_text(json.dumps(clip.ground_truth(), indent=1) + "\n")
    return gt_path


def write_benchmark(
    out_dir: str | Path,
    count: int,
    seed: int,
    *,
    config: SynthConfig | None = None,
    crf: int = 8,
    progress: bool = False,
) -> list[Path]:
    """Write ``count`` clips (labels cycling through the classes) + ``index.json`` to ``out_dir``."""
    from vidcam.progress import Progress

    if count < 1:
        raise VidcamError(f"count must be >= 1, got {count}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, index = [], []
    with Progress(count, unit="clips", desc="generate", enabled=progress) as bar:
        for i in range(count):
            clip = make_clip(clip_seed(seed, i), i % len(CLASSES), config=config)
            name = f"{i:05d}_{clip.label_name}_{clip.num_instances}x.mp4"
            write_clip(clip, out / name, crf=crf)
            paths.append(out / name)
            index.append({"video": name, "label": clip.label_name, "interval": list(clip.interval)})
            bar.update(1)
    (out / "index.json").write_text(
        json.dumps({"seed": seed, "classes": list(CLASSES), "clips": index}, indent=1) + "\n"
    )
    return paths
