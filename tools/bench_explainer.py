"""Explainer speed vs the floor (one forward + autograd.grad down to the layer), side by side.

Prints, per model: the floor, the floor without autograd before the layer (what vidcam's
gradient-free prefix runs), vidcam Grad-CAM++ (maps upsampled to the input), K=5 targets,
the softmax variant, and pytorch-grad-cam 1.5.7's GradCAMPlusPlus when installed
(``pip install grad-cam==1.5.7``; a peer for comparison, not a dependency). Random weights.
Targets: vidcam / floor ≤ 1.10, K=5 / K=1 ≤ 1.5. Runs on CUDA too when one is present.

    python tools/bench_explainer.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch

import vidcam


def build(name: str):
    if name == "r3d_18":
        import torchvision

        return torchvision.models.video.r3d_18(), "layer4", (1, 3, 16, 112, 112)
    from pytorchvideo.models import hub

    return hub.x3d_m(pretrained=False), "blocks.4", (1, 3, 16, 224, 224)


def timed(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict:
    """Median seconds per function, measured round-robin so drift hits every row alike."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def make_floor(
    model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor
) -> Callable[[], None]:
    """The floor of any gradient CAM: one forward + autograd.grad of the top score to ``layer``."""

    def floor() -> None:
        store = {}
        handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
        try:
            out = model(x)
        finally:
            handle.remove()
        top = out.argmax(1)
        torch.autograd.grad(out.gather(1, top[:, None]).sum(), store["a"])

    return floor


def make_prefix_floor(
    model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor
) -> Callable[[], None]:
    """The floor when the forward records autograd only from ``layer`` on: no graph before it,
    the activation made a leaf there (grad mode is switched on inside the hook and stays on for
    the rest of the forward), then autograd.grad of the top score to that leaf."""

    def hook(_module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        leaf = out.detach().requires_grad_(True)
        store["a"] = leaf
        torch.set_grad_enabled(True)
        return leaf.clone()  # a leaf can not go through in-place ops downstream

    store: dict[str, torch.Tensor] = {}

    def floor() -> None:
        handle = layer.register_forward_hook(hook)
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(False)
            out = model(x)
        finally:
            torch.set_grad_enabled(previous)
            handle.remove()
        with torch.enable_grad():
            score = out.gather(1, out.argmax(1)[:, None]).sum()
        torch.autograd.grad(score, store.pop("a"))

    return floor


def bench_model(name: str, device: torch.device, repeats: int, batch: int) -> None:
    """Time the floor, vidcam's variants and the peer on one model; print the ratios."""
    model, layer_name, shape = build(name)
    model = model.to(device).eval()
    shape = (batch, *shape[1:])
    x = torch.randn(*shape, device=device)
    layer = model.get_submodule(layer_name)

    floor = make_floor(model, layer, x)

    explainer = vidcam.Explainer(model, layer_name)
    soft = vidcam.Explainer(model, layer_name, softmax=True)
    rows = [
        ("floor: forward + grad to layer", floor),
        ("floor, no autograd before layer", make_prefix_floor(model, layer, x)),
        ("vidcam Grad-CAM++ (upsampled)", lambda: explainer(x)),
        ("vidcam Grad-CAM++ K=5 targets", lambda: explainer(x, "topk:5")),
        ("vidcam Grad-CAM++ softmax variant", lambda: soft(x)),
    ]
    results = timed(dict(rows), device, repeats)
    try:
        from pytorch_grad_cam import GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        print("(pytorch-grad-cam not installed: pip install grad-cam==1.5.7 to compare)")
    else:
        # its hooks live from construction until release(): create it after vidcam's runs
        peer = GradCAMPlusPlus(model=model, target_layers=[layer])

        def run_peer() -> None:
            with torch.no_grad():
                top = model(x).argmax(1).tolist()
            peer(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in top])

        try:
            results.update(timed({"pytorch-grad-cam 1.5.7 GradCAM++": run_peer}, device, repeats))
        finally:
            peer.activations_and_grads.release()
    base = results["floor: forward + grad to layer"]
    one = results["vidcam Grad-CAM++ (upsampled)"]
    for label, t in results.items():
        print(f"{name:8} {label:34} {t * 1e3:9.1f} {t / base:7.2f}x floor")
    print(
        f"{name:8} {'K=5 / K=1':34} {'':9} {results['vidcam Grad-CAM++ K=5 targets'] / one:7.2f}x"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="r3d_18,x3d_m")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    warnings.simplefilter("ignore")
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    header = f"{'model':8} {'what':34} {'ms':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name in args.models.split(","):
        bench_model(name, device, args.repeats, args.batch)


if __name__ == "__main__":
    main()
