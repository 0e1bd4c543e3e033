"""Bounded memory (issue 27 item 6): the window check estimates one window's peak from the
model's own activations (a dry run of live tensors, scaled to the window) and sees the process's
own limits (``ulimit -v``). Memory cases run in a child under ``resource.setrlimit(RLIMIT_AS)``:
the tall thin video that ``--spatial full`` blows up is refused in one line (exit 2) naming
``--spatial center``, while a window the check accepts really runs under the same cap."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_video
from torch import nn

from vidcam.device import live_tensor_bytes
from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.models.spec import InputSpec
from vidcam.video import memory

SPEC = InputSpec(
    clip_len=8, crop=(32, 32), resize_short=32, mean=(0.5,) * 3, std=(0.25,) * 3, stride=1
)
CARD = "clip_len = 8\ncrop = 32\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\nstride = 1\n"
CROP_BYTES = 3 * 8 * 32 * 32 * 4  # one crop-size clip of SPEC, float32: 98,304


class Chain(nn.Module):
    """1x1x1 convolutions 3 -> 6 -> 12 -> 2 channels (``c`` is explained), mean, linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv3d(3, 6, 1, bias=False)
        self.b = nn.Conv3d(6, 12, 1, bias=False)
        self.c = nn.Conv3d(12, 2, 1, bias=False)
        self.fc = nn.Linear(2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        x = self.b(x)
        x = self.c(x)
        return self.fc(x.mean((2, 3, 4)))


# A model whose activations are 16x its input per layer, 32x at the peak (like r3d_18's 27x,
# where the old fixed factor assumed 8x); cheap: 1x1x1 convolutions.
WIDE = """
import torch
from torch import nn


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv3d(3, 48, 1)
        self.mix = nn.Conv3d(48, 48, 1)
        self.block = nn.Conv3d(48, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        a = torch.relu(self.mix(torch.relu(self.stem(x))))
        return self.fc(self.block(a).mean((2, 3, 4)))


def build():
    return Wide()
"""

# runs in a child: the cap is the child's mapped size now + CAP_GIB; prints a JSON line
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from wide import Wide
    from vidcam.errors import VidcamError
    from vidcam.models.open import open_model
    from vidcam.models.spec import InputSpec
    from vidcam.video import explain_video, memory
    from vidcam.video.decode import probe

    torch.set_num_threads(1)
    spec = InputSpec(clip_len=8, crop=(32, 32), resize_short=32, mean=(0.5,) * 3,
                     std=(0.25,) * 3, stride=1)
    h = open_model(Wide(), spec=spec, layer="block", device="cpu")
    status = open("/proc/self/status").read().split("VmSize:")[1].split()[0]
    cap = int(status) * 1024 + int(float(sys.argv[2]) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    out = {}
    for name in sys.argv[3:]:
        info = probe(name)
        frame = (info.height, info.width)
        row = {"free": memory.available_memory("cpu"),
               "old": memory.window_bytes(spec, 8, 1, frame, "full") * memory.WORKING_SET_FACTOR}
        try:
            memory.check_window(spec, info=info, spatial="full", device="cpu", model=h)
            row["check"] = "ok"
        except VidcamError as exc:
            row["check"] = str(exc)
        try:
            res = explain_video(name, model=h, spatial="full", batch_size=1, progress=False)
            row["run"] = f"ok {len(res.windows)}"
        except (VidcamError, RuntimeError, MemoryError) as exc:
            row["run"] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
        out[name] = row
    print(json.dumps(out))
    """
)

CLI_CHILD = textwrap.dedent(
    """
    import resource, sys
    import torch, vidcam.video.pipeline, vidcam.models.open  # loaded before the cap
    from vidcam.cli import main

    status = open("/proc/self/status").read().split("VmSize:")[1].split()[0]
    cap = int(status) * 1024 + int(float(sys.argv[1]) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[2:]))
    """
)


def _child(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MALLOC_ARENA_MAX="2", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


def _thin(path: Path, height: int, width: int, frames: int = 10) -> Path:
    rng = np.random.default_rng(0)
    return write_video(path, rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8))


# --- the dry run, by hand ---------------------------------------------------------------------


@pytest.mark.parametrize("device", [None, torch.device("cpu")], ids=["meta", "cpu"])
def test_live_tensor_bytes_by_hand(device):
    net = Chain()
    shape = (1, 3, 2, 4, 4)  # 32 voxels; a: 6 x 32 x 4 = 768 B, b: 1536 B, c: 256 B
    # a made (768), b made (2304: the peak), a freed, c made, the cut: from here all is kept
    # (c's 256 + the mean's 2 floats + the linear's 5 floats = 284), b freed
    assert live_tensor_bytes(net, [net.c], shape, device) == (2304, 284)
    # automatic layer: the last module with a convolution returning a volume is c
    assert live_tensor_bytes(net, [], shape, device) == (2304, 284)
    # explaining b instead: a, b alive (2304), b's 1536 + c's 256 + 28 recorded
    assert live_tensor_bytes(net, [net.b], shape, device) == (2304, 1536 + 256 + 28)
    # explaining a: a's output and everything after it are kept: all alive at the end
    assert live_tensor_bytes(net, [net.a], shape, device) == (768 + 1536 + 256 + 28,) * 2


def test_live_tensor_bytes_without_a_volume_keeps_everything():
    net = nn.Sequential(nn.Flatten(), nn.Linear(96, 10), nn.ReLU(), nn.Linear(10, 4))
    # flatten is a view of the clip (nothing made); linear 10 floats, relu 10, linear 4
    assert live_tensor_bytes(net, [], (1, 3, 2, 4, 4)) == (96, 96)


def test_live_tensor_bytes_restores_the_model():
    net = Chain().train()
    net.b.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    live_tensor_bytes(net, [net.c], (1, 3, 2, 4, 4))
    assert net.training and net.a.training and not net.b.training
    assert all(not m._forward_hooks for m in net.modules())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    with pytest.raises(RuntimeError):  # the model's own failure: hooks still removed
        live_tensor_bytes(net, [net.c], (1, 5, 2, 4, 4))
    assert all(not m._forward_hooks for m in net.modules()) and net.training


def test_activation_profile_is_per_byte_of_input():
    h = open_model(Chain(), spec=SPEC, layer="c", device="cpu")
    p = memory.activation_profile(h)
    # a + b = 18 channels alive per 3 input channels; c's 2 channels + 7 floats recorded
    assert p.peak == 6.0
    assert p.recorded == pytest.approx(2 / 3 + 28 / CROP_BYTES, rel=1e-12)
    assert memory.activation_profile(h) is p  # measured once per model and clip
    bad = dataclasses.replace(h, module=Chain(), layer="nope")
    assert memory.activation_profile(bad) == p  # a misnamed layer: estimated as automatic


def test_window_need_by_hand():
    p = memory.ActivationProfile(peak=10.0, recorded=0.5)
    frame = (16, 200)  # short side 16 -> 32: a 32 x 400 window
    full = 3 * 8 * 32 * 400 * 4  # 1,228,800 B
    # tiles of 32 along 400 overlapping by >= 1/4: 1 + ceil(368 / 24) = 17
    tiles = 17 * CROP_BYTES
    assert memory.model_input_bytes(SPEC, 8, frame, "full") == full
    assert memory.model_input_bytes(SPEC, 8, frame, "tiles") == tiles
    assert memory.model_input_bytes(SPEC, 8, frame, "auto") == max(full, tiles)
    assert memory.model_input_bytes(SPEC, 8, frame, "center") == CROP_BYTES
    per = memory.ACTIVATION_MARGIN * 10.0 + memory.BACKWARD_FACTOR * 0.5
    pipe = memory.PIPELINE_FACTOR
    assert memory.window_need(SPEC, 8, 2, frame, "full", p) == int(2 * (pipe + per) * full)
    assert memory.window_need(SPEC, 8, 2, frame, "tiles", p) == int(2 * (pipe * full + per * tiles))
    center = memory.window_need(SPEC, 8, 1, frame, "center", p)
    assert center == int((pipe + per) * CROP_BYTES)


def test_check_window_with_the_model_names_what_fits(monkeypatch):
    h = open_model(Chain(), spec=SPEC, layer="c", device="cpu")
    p = memory.activation_profile(h)
    info = type("Info", (), {"height": 16, "width": 200, "frames": 10, "duration": 0.4})()
    one = memory.window_need(SPEC, 8, 1, (16, 200), "full", p)
    center = memory.window_need(SPEC, 8, 1, (16, 200), "center", p)
    kw = dict(info=info, spatial="full", device="cpu", model=h)
    monkeypatch.setattr(memory, "available_memory", lambda device=None: one)
    memory.check_window(SPEC, batch_size=1, **kw)  # exactly fits
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 2 * one + 1)
    with pytest.raises(VidcamError) as e:
        memory.check_window(SPEC, batch_size=4, **kw)
    assert "--batch-size 4" in str(e.value) and "at most 2" in str(e.value)
    assert "\n" not in str(e.value)
    monkeypatch.setattr(memory, "available_memory", lambda device=None: one - 1)
    with pytest.raises(VidcamError) as e:
        memory.check_window(SPEC, batch_size=1, **kw)
    msg = str(e.value)
    assert msg.startswith("--spatial full with --clip-len 8: one window needs about")
    assert "use --spatial center" in msg and "dry run" in msg and "\n" not in msg
    with pytest.raises(VidcamError) as e2:  # the same, as the pipeline checks the plan's mode
        memory.check_memory(SPEC, 8, 1, (16, 200), "full", "cpu", h)
    assert str(e2.value) == msg
    memory.check_memory(SPEC, 8, 1, (16, 200), "center", "cpu", h)
    monkeypatch.setattr(memory, "available_memory", lambda device=None: center - 1)
    with pytest.raises(VidcamError, match="needs about .*; give a shorter --clip-len$"):
        memory.check_window(SPEC, batch_size=1, **kw)  # nothing fits: only a shorter clip


def test_auto_batch_size_with_the_model(monkeypatch):
    h = open_model(Chain(), spec=SPEC, layer="c", device="cpu")
    p = memory.activation_profile(h)
    one = memory.window_need(SPEC, 8, 1, None, "center", p)
    cpu = torch.device("cpu")
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 64 << 30)
    assert memory.auto_batch_size(SPEC, 8, None, "center", cpu, model=h) == 8  # AUTO_BATCH_MAX
    # half the free memory holds 3 windows' estimated need
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 2 * 3 * one + 1)
    assert memory.auto_batch_size(SPEC, 8, None, "center", cpu, model=h) == 3
    monkeypatch.setattr(memory, "available_memory", lambda device=None: one)
    assert memory.auto_batch_size(SPEC, 8, None, "center", cpu, model=h) == 1


# --- under a real RLIMIT_AS cap, in a child ---------------------------------------------------


def test_available_memory_sees_the_address_space_limit(tmp_path):
    code = textwrap.dedent(
        """
        import resource
        from vidcam.device import available_memory
        def vm():
            return int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        cap = vm() + (300 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
        free = available_memory("cpu")
        print(free, cap - vm())
        """
    )
    free, left = map(int, _child(code, cwd=tmp_path).stdout.split())
    assert 0 < free <= 300 << 20 and abs(free - left) < 8 << 20


def test_the_tall_thin_video_in_full_mode_is_refused_under_the_cap(tmp_path):
    # 32 x 4000 at the sample model's short side 112: one 16-frame window is 112 x 14000,
    # 301 MB of input and about 2 GB at its peak; 1 GiB of address space is left
    video = _thin(tmp_path / "thin.mkv", 32, 4000, frames=20)
    out = tmp_path / "out.mp4"
    args = ["explain", str(video), "-o", str(out), "--model", "sample", "--spatial", "full"]
    res = _child(CLI_CHILD, "1.0", *args, "--quiet", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert "--spatial full" in lines[0] and "use --spatial center" in lines[0], lines[0]
    assert "GiB" in lines[0] and "free on cpu" in lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [video]


def test_evaluate_refuses_the_tall_thin_video_in_full_mode_under_the_cap(tmp_path):
    """`vidcam evaluate` checks each clip's memory from the model's activations too: one line,
    exit 2, where it was an allocator traceback."""
    video = _thin(tmp_path / "thin.mkv", 32, 4000, frames=20)
    args = ["evaluate", str(video), "--model", "sample", "--spatial", "full", "--fill", "none"]
    res = _child(CLI_CHILD, "1.0", *args, "--units", "none", "--quiet", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert "--spatial full" in lines[0] and "use --spatial center" in lines[0], lines[0]


def test_the_models_own_activations_refuse_what_the_fixed_factor_let_through(tmp_path):
    (tmp_path / "wide.py").write_text(WIDE)
    big = _thin(tmp_path / "big.mkv", 16, 9000)  # a 32 x 18000 window: 55 MB of input
    small = _thin(tmp_path / "small.mkv", 16, 600)  # 32 x 1200: 3.7 MB
    res = _child(CHILD, str(tmp_path), "1.0", str(big), str(small), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    b, s = rows[str(big)], rows[str(small)]
    # the free memory follows the 1 GiB cap (not the machine's RAM); the cap was set above the
    # VmSize of that moment, which may shrink a little before the reading (freed mappings)
    assert b["old"] < b["free"] <= (1 << 30) + (64 << 20)  # the old 8x estimate let it through
    assert b["check"].startswith("--spatial full with --clip-len 8: one window needs about")
    assert "use --spatial center" in b["check"]
    assert b["run"].startswith("failed:"), b  # and it indeed cannot run under the cap
    assert s["check"] == "ok" and s["run"] == "ok 2", s  # what the check accepts does run


def test_the_cli_refuses_a_model_files_window_from_its_activations(tmp_path):
    (tmp_path / "wide.py").write_text(WIDE)
    (tmp_path / "wide.toml").write_text(CARD + 'layer = "block"\nlabels = ["a", "b", "c"]\n')
    big = _thin(tmp_path / "big.mkv", 16, 9000)
    out = tmp_path / "out.mp4"
    args = ["explain", str(big), "-o", str(out), "--model", f"{tmp_path / 'wide.py'}:build"]
    args += ["--card", str(tmp_path / "wide.toml"), "--spatial", "full", "--quiet"]
    res = _child(CLI_CHILD, "1.0", *args, cwd=tmp_path)
    assert res.returncode == 2 and not out.exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "use --spatial center" in lines[0], res.stderr[-2000:]
