"""Tracebacks turned into one line (issue 27 item 8): devices vidcam cannot compute on, and the
I3D weights cache (``VIDCAM_CACHE``) checked before anything is downloaded or converted."""

from __future__ import annotations

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

from vidcam import device as device_mod
from vidcam.cli import main
from vidcam.device import check_device, resolve_device
from vidcam.errors import VidcamError
from vidcam.models import i3d_weights as W
from vidcam.video import explain_video


def _never(_dest: Path) -> Path:
    raise AssertionError("the weights were fetched before the cache folder was checked")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# --- devices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, needle",
    [
        ("meta", "device 'meta' holds shapes but no values"),
        ("xla", "device 'xla': vidcam computes on auto, cpu, cuda, cuda:N or mps"),
        ("vulkan", "device 'vulkan': vidcam computes on"),
        ("bogus", "device 'bogus' is not one of auto, cpu, cuda, cuda:N or mps"),
        ("cuda:x", "device 'cuda:x' is not one of"),
        ("", "device '' is not one of"),
    ],
)
def test_devices_vidcam_cannot_compute_on_are_refused(name, needle):
    with pytest.raises(VidcamError) as e:
        resolve_device(name)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cuda_and_mps_must_be_there(monkeypatch):
    monkeypatch.setattr(device_mod, "_cuda_devices", lambda: 0)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    with pytest.raises(VidcamError, match="CUDA is not available here.*use --device cpu"):
        resolve_device("cuda:0")
    with pytest.raises(VidcamError, match="MPS .* is not available here; use --device cpu"):
        resolve_device("mps")
    with pytest.raises(VidcamError, match="'meta' holds shapes"):
        check_device(torch.device("meta"))
    assert resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(device_mod, "_cuda_devices", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(torch.device("cuda")) == torch.device("cuda")
    with pytest.raises(VidcamError, match=r"has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")


def test_a_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        net = nn.Conv3d(3, 4, 1)
    with pytest.raises(VidcamError, match="parameters are on the meta device.*load its weights"):
        resolve_device("auto", net)


@pytest.mark.parametrize("command", ["layers", "evaluate", "explain-api"])
def test_commands_refuse_the_meta_and_missing_devices_in_one_line(
    command, tmp_path, capsys, monkeypatch
):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    video = write_video(tmp_path / "v.mkv", np.zeros((20, 48, 64, 3), np.uint8))
    for device in ("meta", "mps"):
        if command == "layers":
            assert main(["layers", "sample", "--device", device]) == 2
        elif command == "evaluate":
            args = ["evaluate", str(video), "--model", "sample", "--device", device, "--quiet"]
            assert main(args) == 2
        else:
            with pytest.raises(VidcamError) as e:
                explain_video(video, model="sample", device=device, progress=False)
            print(f"error: {e.value}", file=sys.stderr)
        err = _one_line(capsys)  # evaluate checks its own list first: "is not one of ..."
        assert f"'{device}'" in err and ("use --device cpu" in err or "not one of" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mkv"]


# --- the I3D weights cache --------------------------------------------------------------------


def test_a_cache_that_is_a_file_is_refused_before_any_download(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv(W.ENV_CACHE, str(blocker))
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    with pytest.raises(VidcamError) as e:
        W.fetch_and_cache(fetch=_never)
    assert str(e.value) == (
        f"VIDCAM_CACHE={blocker} is not a folder; set VIDCAM_CACHE to a folder you can write "
        "to (default ~/.cache/vidcam)"
    )
    with pytest.raises(VidcamError, match="is not a folder"):
        W.i3d_state_dict(fetch=_never)
    source = tmp_path / "source.ckpt"  # not read: the cache is refused first
    source.write_bytes(b"\x80 not a checkpoint")
    assert W.main(["--from", str(source), "--quiet"]) == 2
    assert "VIDCAM_CACHE" in _one_line(capsys) and blocker.read_text() == "x"


def test_a_cache_whose_weights_path_is_a_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV_CACHE, str(tmp_path))
    (tmp_path / W.CACHE_NAME).mkdir()
    with pytest.raises(VidcamError, match=f"{W.CACHE_NAME} is not a regular file; remove it"):
        W.fetch_and_cache(fetch=_never)


def test_a_missing_cache_folder_is_probed_where_it_will_be_made(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV_CACHE, str(tmp_path / "a" / "b"))
    assert W.check_cache_dir() == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []  # nothing made, the probe file gone
    (tmp_path / "a").write_text("x")
    with pytest.raises(VidcamError, match=f"cannot be made: {tmp_path / 'a'} is not a folder"):
        W.check_cache_dir()


def test_explain_with_i3d_names_the_cache_in_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "cache-file"
    blocker.write_text("x")
    monkeypatch.setenv(W.ENV_CACHE, str(blocker))
    monkeypatch.setenv(W.ENV_OFFLINE, "1")  # were the cache not checked first: no download
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    video = write_video(tmp_path / "v.mkv", np.zeros((8, 48, 64, 3), np.uint8))
    out = tmp_path / "o.mp4"
    assert main(["explain", str(video), "-o", str(out), "--model", "i3d", "--quiet"]) == 2
    assert "VIDCAM_CACHE=" in _one_line(capsys) and not out.exists()


# a child that cannot write where root could: without CAP_DAC_OVERRIDE a 0555 folder is closed
READ_ONLY_CHILD = textwrap.dedent(
    """
    import ctypes, os, sys
    if os.geteuid() == 0:
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        libc = ctypes.CDLL(None, use_errno=True)
        h, d = Header(0x20080522, 0), (Data * 2)()
        if libc.capget(ctypes.byref(h), d) != 0:
            sys.exit(77)
        d[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.capset(ctypes.byref(h), d) != 0:
            sys.exit(77)
    from vidcam.errors import VidcamError
    from vidcam.models import i3d_weights as W

    def never(_dest):
        print("fetched"); sys.exit(1)

    try:
        W.fetch_and_cache(fetch=never)
    except VidcamError as exc:
        print("api:", exc)
    sys.exit(W.main(["--from", sys.argv[1], "--quiet"]))
    """
)


@pytest.mark.parametrize("where", ["folder", "inside"])
def test_a_read_only_cache_is_refused_before_any_download(where, tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o555)
    cache = closed if where == "folder" else closed / "vidcam"
    source = tmp_path / "source.ckpt"
    source.write_bytes(b"\x80 not a checkpoint")
    env = dict(os.environ, VIDCAM_CACHE=str(cache))
    env.pop(W.ENV_WEIGHTS, None)
    try:
        res = subprocess.run(
            [sys.executable, "-c", READ_ONLY_CHILD, str(source)],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
    finally:
        closed.chmod(0o755)
    if res.returncode == 77:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here")
    assert res.returncode == 2, res.stdout + res.stderr
    want = f"VIDCAM_CACHE={cache} cannot be written (Permission denied); set VIDCAM_CACHE"
    assert res.stdout.startswith(f"api: {want}"), res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {want}"), res.stderr
    assert list(closed.iterdir()) == []


def test_a_failed_cache_write_is_one_line_and_leaves_nothing(tmp_path):
    # a full disk, as a file-size limit: the write fails with EFBIG half-way
    code = textwrap.dedent(
        """
        import resource, signal, sys
        import torch
        from vidcam.errors import VidcamError
        from vidcam.models.i3d_weights import save_cache
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, resource.RLIM_INFINITY))
        try:
            save_cache({"w": torch.zeros(1 << 18)})
        except VidcamError as exc:
            print(exc)
        """
    )
    target = tmp_path / "c" / W.CACHE_NAME
    env = dict(os.environ, VIDCAM_CACHE=str(target.parent))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env
    )
    assert res.stdout.strip() == f"cannot write {target} (File too large)", res.stderr
    assert list(target.parent.iterdir()) == []
