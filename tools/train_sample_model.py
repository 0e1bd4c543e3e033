"""Train the bundled sample model (vidcam.models.sample_net) on freshly generated synthetic clips.

Every training batch is new clips from :mod:`vidcam.evaluate.synth` (seed ``--seed``; labels cycle through
the classes), so the model never sees a clip twice. Accuracy is reported on the first
``--eval`` training clips and on ``--eval`` held-out clips generated from seed ``--test-seed``.
Deterministic for a given seed and thread count. Example::

    python tools/train_sample_model.py --steps 300 --out vidcam/models/weights/sample_net.pt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from vidcam.evaluate.synth import make_batch, to_tensor
from vidcam.models.sample_net import SAMPLE_INPUT, SampleNet


def batch(seed: int, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    frames, labels = make_batch(seed, start, count)
    return to_tensor(frames, SAMPLE_INPUT.mean, SAMPLE_INPUT.std), torch.from_numpy(labels)


@torch.no_grad()
def accuracy(model: nn.Module, seed: int, count: int, bs: int = 32) -> float:
    model.eval()
    correct = 0
    for start in range(0, count, bs):
        x, y = batch(seed, start, min(bs, count - start))
        correct += int((model(x).argmax(1) == y).sum())
    return correct / count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--test-seed", type=int, default=2)
    p.add_argument("--eval", type=int, default=240, help="clips for train/test accuracy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("vidcam/models/weights/sample_net.pt"))
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SampleNet()
    n_params = sum(q.numel() for q in model.parameters())
    print(f"SampleNet: {n_params} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, args.steps // 20)

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    t_start = time.perf_counter()
    run_loss, run_acc = 0.0, 0.0
    for step in range(args.steps):
        model.train()
        x, y = batch(args.seed, step * args.batch, args.batch)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run_loss = 0.9 * run_loss + 0.1 * loss.item() if step else loss.item()
        acc = float((logits.argmax(1) == y).float().mean())
        run_acc = 0.9 * run_acc + 0.1 * acc if step else acc
        if (step + 1) % 10 == 0 or step + 1 == args.steps:
            el = time.perf_counter() - t_start
            print(
                f"step {step + 1}/{args.steps} loss {run_loss:.3f} acc {run_acc:.2f} "
                f"lr {sched.get_last_lr()[0]:.2e} {el:.0f}s",
                flush=True,
            )
    train_acc = accuracy(model, args.seed, args.eval)
    test_acc = accuracy(model, args.test_seed, args.eval)
    print(f"train accuracy {train_acc:.3f} (first {args.eval} training clips)")
    print(f"test accuracy  {test_acc:.3f} ({args.eval} held-out clips, seed {args.test_seed})")
    state = {
        k: (v.detach().float() if v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    print(f"total {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
