"""Explanation distillation on the motion benchmark: does matching Grad-CAM++ maps help a student?

Teacher: the bundled ``sample`` model (trained on 4800 fresh clips of seed 1). Students:
:class:`vidcam.distill.TinyStudent` (~15 k parameters vs 70 k), trained on the first
``--train-clips`` clips of the teacher's own training stream (240 = 5 % of what it saw).
Arms: CE alone, + Hinton KD, + explanation loss (Grad-CAM++ maps, teacher ``block3`` vs student
``conv3``, true class), + both; ``--seeds`` seeds each (student init and batch order). Reported:
test error (held-out clips of seed 2) mean ± std over seeds, and localization of the students'
Grad-CAM++ maps (true class) against the ground-truth boxes. Reproducible for a seed list and
thread count. Example::

    nice python tools/distill.py --out docs/distill_results.md --overwrite
    python tools/distill.py --quick --out /tmp/distill.md      # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from vidcam.cam.explainer import Explainer
from vidcam.device import available_memory
from vidcam.distill import STUDENT_LAYER, ExplanationDistiller, TinyStudent
from vidcam.errors import VidcamError
from vidcam.evaluate.metrics_localization import box_masks, localization
from vidcam.evaluate.synth import CLASSES, SynthConfig, clip_seed, make_clip
from vidcam.models.sample_net import SAMPLE_INPUT, SAMPLE_LAYER, load_sample_model
from vidcam.paths import check_output, write_text
from vidcam.progress import Progress

ARMS: dict[str, tuple[bool, bool]] = {  # name -> (kd, explanation loss)
    "CE": (False, False),
    "CE + KD": (True, False),
    "CE + exp": (False, True),
    "CE + KD + exp": (True, True),
}
METRICS = ("energy_pg", "pointing", "iou", "temporal")
PAPER = (
    "Grad-CAM++ paper (Chattopadhyay et al., WACV 2018) §5, Tables 4–5 (CIFAR-10 / PASCAL VOC "
    "images, WRN teacher/student): the student trained with the explanation loss on top of "
    "the usual losses has a lower test error than the baseline student (as summarised in "
    "vidcam issue 16)."
)


@dataclass
class Data:
    frames: torch.Tensor  # (N, T, H, W, 3) uint8
    labels: torch.Tensor  # (N,)
    boxes: list  # per clip: per frame: boxes
    intervals: list[tuple[int, int]]

    def clips(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """Normalised float clips (n, 3, T, H, W) of the selected indices."""
        x = self.frames[idx].permute(0, 4, 1, 2, 3).float().div_(255.0)
        m = torch.tensor(SAMPLE_INPUT.mean).view(1, 3, 1, 1, 1)
        s = torch.tensor(SAMPLE_INPUT.std).view(1, 3, 1, 1, 1)
        return (x - m) / s


def make_data(seed: int, count: int, cfg: SynthConfig) -> Data:
    """Clips 0..count-1 of the stream ``seed`` (as tools/train_sample_model.py draws them)."""
    clips = [make_clip(clip_seed(seed, i), i % len(CLASSES), config=cfg) for i in range(count)]
    return Data(
        torch.from_numpy(np.stack([c.frames for c in clips])),
        torch.tensor([c.label for c in clips], dtype=torch.long),
        [c.boxes for c in clips],
        [c.interval for c in clips],
    )


def train_student(args, arm: str, seed: int, distiller_of, train: Data, teacher_out, bar):
    """One student, trained for ``args.epochs`` epochs with AdamW and a cosine schedule."""
    kd, exp = ARMS[arm]
    torch.manual_seed(seed)
    student = TinyStudent(len(CLASSES))
    dist = distiller_of(student, kd, exp)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=1e-4)
    n = train.labels.shape[0]
    per_epoch = math.ceil(n / args.batch)
    steps = per_epoch * args.epochs
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    student.train()
    for _ in range(args.epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(per_epoch):
            idx = order[b * args.batch : (b + 1) * args.batch]
            t_out = teacher_out(idx)
            out = dist.loss(train.clips(idx), train.labels[idx], t_out)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            sched.step()
            bar.update(1)
    return student.eval()


@torch.no_grad()
def test_error(model: torch.nn.Module, test: Data, bs: int = 32) -> float:
    wrong = 0
    for start in range(0, test.labels.shape[0], bs):
        sl = slice(start, start + bs)
        wrong += int((model(test.clips(sl)).argmax(1) != test.labels[sl]).sum())
    return wrong / test.labels.shape[0]


def localize(model: torch.nn.Module, layer: str, test: Data, count: int) -> dict[str, float]:
    """Mean localization metrics of Grad-CAM++ maps (true class) over the first ``count`` clips."""
    explainer = Explainer(model, layer, method="gradcam++")
    sums = {k: [] for k in METRICS}
    for start in range(0, count, 16):
        sl = slice(start, min(count, start + 16))
        maps = explainer(test.clips(sl), test.labels[sl, None]).maps  # (n, 1, T, H, W)
        for j, heat in enumerate(maps[:, 0]):
            i = start + j
            t, h, w = heat.shape
            inst = box_masks(test.boxes[i], h, w)
            t0, t1 = test.intervals[i]
            interval = torch.zeros(t, dtype=torch.bool)
            interval[t0:t1] = True
            for k, v in localization(heat, inst, interval).items():
                if k in sums and v is not None:
                    sums[k].append(v)
    return {k: sum(v) / len(v) if v else float("nan") for k, v in sums.items()}


def _ms(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(results: dict, teacher: dict, args, wall: float) -> str:
    head = "| model | test error % | " + " | ".join(METRICS) + " |"
    rows = [head, "|" + "---|" * (len(METRICS) + 2)]
    t_loc = " | ".join(f"{teacher['loc'][k]:.3f}" for k in METRICS)
    rows.append(f"| teacher (sample, 70 k params) | {100 * teacher['error']:.1f} | {t_loc} |")
    for arm, runs in results.items():
        err = _ms([r["error"] for r in runs], 100.0)
        loc = " | ".join(_ms([r["loc"][k] for r in runs], 1.0, 3) for k in METRICS)
        rows.append(f"| student, {arm} | {err} | {loc} |")
    done = len(next(iter(results.values())))
    seeds = ", ".join(str(s) for s in args.seed_list[:done])
    mode = " (--quick: a smoke test, numbers mean nothing)" if args.quick else ""
    if done < len(args.seed_list):
        mode += f" — PARTIAL: {done} of {len(args.seed_list)} seeds done"
    return "\n".join(
        [
            f"# Explanation distillation on the motion benchmark{mode}",
            "",
            f"Produced by `python tools/distill.py {' '.join(args.argv)}`.",
            "",
            f"- Students: TinyStudent ({args.student_params} parameters), trained on "
            f"{args.train_clips} clips ({100 * args.train_clips / 4800:.1f} % of the teacher's "
            f"4800), {args.epochs} epochs, batch {args.batch}, AdamW lr {args.lr}; seeds {seeds}.",
            f"- Losses: CE + {args.kd_weight}·KD (T = {args.temperature}) + {args.exp_weight}·"
            f"‖n(M_s) − n(M_t)‖² (Grad-CAM++ maps for the true class, teacher `{SAMPLE_LAYER}` vs "
            f"student `{STUDENT_LAYER}`, L2-normalised over t×h×w).",
            f"- Test: {args.test_clips} held-out clips (seed 2); localization of the model's "
            f"Grad-CAM++ maps (true class, vidcam's engine) on the first {args.loc_clips} of them "
            "(vidcam.evaluate.metrics_localization). Mean ± sample std over seeds.",
            "",
            *rows,
            "",
            f"Paper's claim: {PAPER}",
            "",
            f"Wall time: {wall / 60:.1f} min with {args.threads} thread(s) on a 2-core CPU machine "
            "shared with other jobs (loaded; times are not a benchmark).",
            "",
        ]
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/distill_results.md", help="Markdown table to write")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny sizes: runs in seconds")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--train-clips", type=int, default=240)
    p.add_argument("--test-clips", type=int, default=240)
    p.add_argument("--loc-clips", type=int, default=48)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--kd-weight", type=float, default=1.0)
    p.add_argument("--exp-weight", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    check_args(args)  # as given, also where --quick replaces them
    if args.quick:
        args.seeds, args.train_clips, args.test_clips, args.loc_clips = 2, 6, 6, 3
        args.epochs, args.batch = 1, 6
    args.loc_clips = min(args.loc_clips, args.test_clips)
    args.seed_list = list(range(args.seeds))
    return args


#: the teacher's own training stream (seed 1) holds 4800 clips: students learn from its start
MAX_TRAIN_CLIPS = 4800
MAX_TEST_CLIPS = 4800


def check_args(args: argparse.Namespace) -> None:
    """One-line refusals of counts and rates no run can use: counts >= 1 (clips at most
    :data:`MAX_TRAIN_CLIPS` / :data:`MAX_TEST_CLIPS`, and their frames must fit the free
    memory twice, as they are stacked), threads at most the CPUs, finite rates and weights
    (``--lr`` and ``--temperature`` > 0, the loss weights >= 0)."""
    for name in ("seeds", "train_clips", "test_clips", "loc_clips", "epochs", "batch", "threads"):
        if getattr(args, name) < 1:
            raise VidcamError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name, top in (("train_clips", MAX_TRAIN_CLIPS), ("test_clips", MAX_TEST_CLIPS)):
        if getattr(args, name) > top:
            raise VidcamError(
                f"--{name.replace('_', '-')} {getattr(args, name)} is over {top} (the "
                "teacher's stream of the benchmark); give at most that"
            )
    cpus = os.cpu_count() or 1
    if args.threads > cpus:
        raise VidcamError(f"--threads {args.threads} is more than this machine's {cpus} CPUs")
    for name, low, strict in (
        ("lr", 0.0, True),
        ("temperature", 0.0, True),
        ("kd_weight", 0.0, False),
        ("exp_weight", 0.0, False),
    ):
        v = getattr(args, name)
        if not math.isfinite(v) or v < low or (strict and v == low):
            sign = ">" if strict else ">="
            raise VidcamError(
                f"--{name.replace('_', '-')} must be a finite number {sign} 0, got {v}"
            )
    if not args.quick:
        cfg = SynthConfig()
        need = 2 * (args.train_clips + args.test_clips) * cfg.frames * cfg.size**2 * 3
        free = available_memory()
        if free is not None and need > free:
            raise VidcamError(
                f"--train-clips {args.train_clips} and --test-clips {args.test_clips}: their "
                f"frames need {need / 2**30:.1f} GiB (twice while stacked) but "
                f"{free / 2**30:.1f} GiB is free; give fewer clips"
            )


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
        out = check_output("--out", args.out, overwrite=args.overwrite)
        run(args, out)
    except VidcamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace, out) -> None:
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    cfg = SynthConfig()
    if args.quick:  # small clips, one actor and one distractor
        cfg = SynthConfig(
            frames=8, size=64, instances=(1, 1), distractors=(1, 1), action_len=(4, 6)
        )
    train, test = make_data(1, args.train_clips, cfg), make_data(2, args.test_clips, cfg)
    teacher = load_sample_model()
    args.student_params = sum(q.numel() for q in TinyStudent(len(CLASSES)).parameters())

    def distiller_of(student, kd: bool, exp: bool) -> ExplanationDistiller:
        return ExplanationDistiller(
            teacher,
            student,
            SAMPLE_LAYER,
            STUDENT_LAYER,
            kd_weight=args.kd_weight if kd else 0.0,
            exp_weight=args.exp_weight if exp else 0.0,
            temperature=args.temperature,
        )

    # the teacher is frozen and the clips are not augmented: its outputs are computed once
    base = distiller_of(TinyStudent(len(CLASSES)), True, True)
    parts = [
        base.teacher_outputs(train.clips(slice(i, i + 16)), train.labels[i : i + 16])
        for i in range(0, args.train_clips, 16)
    ]
    t_logits = torch.cat([p.logits for p in parts])
    t_maps = torch.cat([p.maps[0] for p in parts])

    def teacher_out(idx):
        return type(parts[0])(t_logits[idx], (t_maps[idx],))

    teacher_res = {
        "error": test_error(teacher, test),
        "loc": localize(teacher, SAMPLE_LAYER, test, args.loc_clips),
    }
    steps = math.ceil(args.train_clips / args.batch) * args.epochs * len(ARMS) * args.seeds
    results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    with Progress(steps, unit="steps", desc="distill", enabled=not args.quiet) as bar:
        for seed in args.seed_list:
            for arm in ARMS:
                student = train_student(args, arm, seed, distiller_of, train, teacher_out, bar)
                res = {
                    "error": test_error(student, test),
                    "loc": localize(student, STUDENT_LAYER, test, args.loc_clips),
                }
                results[arm].append(res)
                if not args.quiet:
                    el = time.perf_counter() - t_start
                    print(f"seed {seed} {arm}: error {100 * res['error']:.1f} % ({el:.0f} s)")
            if seed != args.seed_list[-1]:  # partial table: the seeds done so far
                write_text(out, table(results, teacher_res, args, time.perf_counter() - t_start))
    text = table(results, teacher_res, args, time.perf_counter() - t_start)
    write_text(out, text)
    if not args.quiet:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
