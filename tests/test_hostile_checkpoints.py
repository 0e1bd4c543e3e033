"""No code from poisoned caches or checkpoints: every weights file is hash-checked and/or read
with ``weights_only=True``, so a pickle whose ``__reduce__`` runs code never runs it.

Each test plants a pickle that would create a marker file when unpickled normally (checked
once, for real, in :func:`test_the_payload_is_live`) and asserts a one-line VidcamError and
no marker. Nothing downloads: ``torch.hub``'s download functions fail the test. The CLI cases
(:func:`test_cli_refuses_hostile_weights`) also assert exit status 2, one line on stderr
without torch's advice to load with ``weights_only=False``, no traceback, nothing left in the
output directory and the input's sha256 unchanged.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import pickle
from pathlib import Path

import pytest
import torch
import torch.hub
from torch import nn

import vidcam.models
from vidcam.errors import VidcamError
from vidcam.models import i3d_weights
from vidcam.models.checkpoint import load_weights_only
from vidcam.models.registry import MODELS, get_spec, load_model
from vidcam.models.spec import InputSpec, ModelSpec
from vidcam.models.weights_source import WeightsSource


class _Payload:
    """Unpickling this runs ``exec``, which writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "pwned"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIDCAM_CACHE", str(tmp_path / "vidcam"))
    monkeypatch.setenv("VIDCAM_OFFLINE", "1")
    monkeypatch.delenv("VIDCAM_I3D_WEIGHTS", raising=False)


def _hub_cache(tmp_path) -> Path:
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _torch_payload(path: Path, marker: Path) -> Path:
    """A torch.save zip whose state dict holds the payload next to a real tensor."""
    torch.save({"model_state": {"w": torch.zeros(1), "evil": _Payload(marker)}}, path)
    return path


def _one_line_error(excinfo, *names: object) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for name in names:
        assert str(name) in msg, msg
    return msg


def test_the_payload_is_live(marker, tmp_path):
    """Control: unpickled without weights_only the payload does create the marker."""
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.read_text() == "pwned"
    marker.unlink()
    path = _torch_payload(tmp_path / "evil.pth", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_poisoned_torchvision_cache_is_refused_before_unpickling(marker, tmp_path):
    poisoned = _torch_payload(_hub_cache(tmp_path) / "r3d_18-b3b3357e.pth", marker)
    with pytest.raises(VidcamError, match="fail verification") as err:
        load_model("r3d_18", pretrained=True, progress=False)
    _one_line_error(err, poisoned, "b3b3357e")
    assert not marker.exists()


def test_poisoned_pytorchvideo_cache_is_refused(marker, tmp_path):
    poisoned = _torch_payload(_hub_cache(tmp_path) / "X3D_XS.pyth", marker)
    with pytest.raises(VidcamError, match="refusing to load cached weights") as err:
        load_model("x3d_xs", pretrained=True, progress=False)
    _one_line_error(err, poisoned, "--weights")
    assert not marker.exists()


def test_payload_matching_the_published_hash_still_does_not_run(marker, tmp_path, monkeypatch):
    """Defence in depth: a file that passes the full-digest check (the pinned digest is the
    payload's own here) is still unpickled with weights_only=True."""
    cache = _hub_cache(tmp_path)
    data = _torch_payload(cache / "tmp", marker).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    poisoned = (cache / "tmp").rename(cache / f"r3d_18-{digest[:8]}.pth")
    spec = get_spec("r3d_18")
    url = f"https://download.pytorch.org/models/{poisoned.name}"
    weights = WeightsSource.hub(url, note="t", sha256=digest)
    monkeypatch.setitem(MODELS, "r3d_18", dataclasses.replace(spec, weights=weights))
    with pytest.raises(VidcamError, match="not a weights-only checkpoint") as err:
        load_model("r3d_18", pretrained=True, progress=False)
    _one_line_error(err, poisoned, "the global exec")
    assert not marker.exists()


def _forge_prefix(genuine: bytes, forged: bytes, hex_digits: int) -> tuple[bytes, bytes]:
    """Variants of ``genuine`` and ``forged`` (a counter appended) whose sha256 share their
    first ``hex_digits`` hex digits: a birthday search, as an attacker would run it."""
    seen: dict[str, bytes] = {}
    for i in range(1 << (2 * hex_digits + 1)):
        g = genuine + i.to_bytes(8, "little")
        seen[hashlib.sha256(g).hexdigest()[:hex_digits]] = g
    i = 0
    while True:
        f = forged + i.to_bytes(8, "little")
        hit = seen.get(hashlib.sha256(f).hexdigest()[:hex_digits])
        if hit is not None:
            return hit, f
        i += 1


def test_prefix_forgery_is_refused_by_the_full_digest(marker, tmp_path, monkeypatch):
    """The issue's case: a backdoored file whose sha256 starts with the 8 hex digits of the
    name (here forged by a birthday search) passed torch.hub's prefix check; vidcam compares
    the whole pinned digest and refuses it before unpickling."""
    cache = _hub_cache(tmp_path)
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(nn.Linear(3, 2).state_dict(), buf)
    payload = _torch_payload(tmp_path / "evil.pth", marker).read_bytes()
    genuine, forged = _forge_prefix(buf.getvalue(), payload, 8)
    g, f = hashlib.sha256(genuine).hexdigest(), hashlib.sha256(forged).hexdigest()
    assert g[:8] == f[:8] and g != f  # what the prefix check would have accepted
    name = f"tiny-{g[:8]}.pth"
    (cache / name).write_bytes(forged)
    weights = WeightsSource.hub(f"https://example.invalid/{name}", note="t", sha256=g)
    assert weights.status() == "yes"  # present and pinned: it will be checked, not trusted
    spec = ModelSpec(
        name="tiny",
        source="test",
        input=InputSpec(clip_len=1, crop=(1, 1), resize_short=1, stride=1),
        layers=("weight",),
        labels="sample",
        make=lambda: nn.Linear(3, 2),
        weights=weights,
        test_input=(1, 1, 1),
    )
    monkeypatch.setitem(MODELS, "tiny", spec)
    with pytest.raises(VidcamError, match="fail verification") as err:
        load_model("tiny", pretrained=True, progress=False)
    _one_line_error(err, cache / name, f, g)
    assert not marker.exists()


def test_unpinned_torchvision_cache_is_refused_with_the_way_out(marker, tmp_path):
    """s3d: no full digest is published anywhere vidcam could find; a cached file carrying the
    right name is refused in one line that says how to pass it after checking it."""
    poisoned = _torch_payload(_hub_cache(tmp_path) / "s3d-d76dad2f.pth", marker)
    with pytest.raises(VidcamError, match="refusing to load cached weights") as err:
        load_model("s3d", pretrained=True, progress=False)
    msg = _one_line_error(err, poisoned, f"--weights {poisoned}", "d76dad2f", "32-bit prefix")
    assert "check it yourself" in msg
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["torch.save", "pickle-2", "pickle-4"])
@pytest.mark.parametrize("name", ["r3d_18", "x3d_xs", "sample"])
def test_weights_path_payload_is_a_one_line_error(name, fmt, marker, tmp_path):
    path = tmp_path / f"user-{name}.pth"
    if fmt == "torch.save":
        _torch_payload(path, marker)
    else:
        path.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=int(fmt[-1])))
    with pytest.raises(VidcamError, match="weights file") as err:
        load_model(name, weights=path)
    _one_line_error(err, path)
    assert not marker.exists()


def test_i3d_weights_payloads_are_refused(marker, tmp_path):
    zipped = _torch_payload(tmp_path / "i3d.pt", marker)
    with pytest.raises(VidcamError, match="not a weights-only checkpoint") as err:
        load_model("i3d", weights=zipped)
    _one_line_error(err, zipped, "the global exec")
    raw = tmp_path / "i3d-kinetics-400.ckpt"  # the original pickle format: hash-pinned
    raw.write_bytes(pickle.dumps({"params": _Payload(marker)}, protocol=4))
    with pytest.raises(VidcamError, match="sha256 mismatch"):
        load_model("i3d", weights=raw)
    assert not marker.exists()


def test_poisoned_i3d_cache_is_refused(marker, tmp_path):
    cache = i3d_weights.cache_path()
    cache.parent.mkdir(parents=True)
    _torch_payload(cache, marker)
    with pytest.raises(VidcamError, match="not a weights-only checkpoint") as err:
        load_model("i3d", pretrained=True, progress=False)
    _one_line_error(err, cache, "--fetch")
    assert not marker.exists()


def test_i3d_conversion_unpickler_refuses_code(marker):
    payload = pickle.dumps({"params": {"Conv3d_1a_7x7": _Payload(marker)}}, protocol=4)
    with pytest.raises(VidcamError, match="refusing to load global builtins.exec"):
        i3d_weights.load_numpy_pickle(io.BytesIO(payload), "evil.ckpt")
    assert not marker.exists()


def test_correctly_hashed_file_loads(tmp_path):
    """A tiny state dict cached with its full sha256 pinned loads offline."""
    torch.manual_seed(0)
    ref = nn.Linear(3, 2)
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = f"tiny-{digest[:8]}.pth"
    (_hub_cache(tmp_path) / name).write_bytes(data)
    spec = ModelSpec(
        name="tiny",
        source="test",
        input=InputSpec(clip_len=1, crop=(1, 1), resize_short=1, stride=1),
        layers=("weight",),
        labels="sample",
        make=lambda: nn.Linear(3, 2),
        weights=WeightsSource.hub(f"https://example.invalid/{name}", note="tiny", sha256=digest),
        test_input=(1, 1, 1),
    )
    assert spec.weights.sha256 == digest and spec.weights.status() == "yes"
    model = spec.build(pretrained=True, progress=False)
    assert torch.equal(model.weight, ref.weight) and torch.equal(model.bias, ref.bias)


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_models_package_unpickles_only_weights_only():
    """Static guard: in vidcam/models every torch.load passes weights_only=True, and neither
    torch.hub's unpickling loaders nor plain pickle.load(s) are called."""
    root = Path(vidcam.models.__file__).parent
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node, func in _calls(tree):
            where = f"{path.name}:{node.lineno}"
            assert not func.endswith(("load_state_dict_from_url", "hub.load")), where
            assert func not in ("pickle.load", "pickle.loads", "pickle.Unpickler"), where
            if func == "torch.load":
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant), where
                assert kw["weights_only"].value is True, where


# -- the command line (issue 11, items 1 and 12a) -------------------------------------------


def _weights_file(kind: str, d: Path, marker: Path) -> Path:
    path = d / f"{kind}.pth"
    if kind == "torch-payload":
        _torch_payload(path, marker)
    elif kind == "pickle-payload":
        path.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=2))
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 64)
    elif kind == "truncated":
        torch.save(nn.Linear(3, 2).state_dict(), path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "wrong-model":
        torch.save(nn.Linear(3, 2).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("torch-payload", "pickles the global exec"),
        ("pickle-payload", "pickles the global exec"),
        ("garbage", "corrupt or unreadable"),
        ("truncated", "corrupt or unreadable"),
        ("empty", "corrupt or unreadable"),
        ("directory", "directory.pth' "),  # registry: "does not exist" (should say: not a file)
        ("wrong-model", "do not fit model 'sample'"),
    ],
)
def test_cli_refuses_hostile_weights(kind, needle, marker, tmp_path, capsys):
    from conftest import pattern_frames, write_video

    from vidcam.cli import main

    src_dir, out_dir = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    clip = write_video(src_dir / "in.mkv", pattern_frames(8, 32, 32))
    before = hashlib.sha256(clip.read_bytes()).hexdigest()
    weights = _weights_file(kind, src_dir, marker)
    capsys.readouterr()
    argv = ["explain", str(clip), "-o", str(out_dir / "o.mp4"), "--json", str(out_dir / "o.json")]
    rc = main([*argv, "--model", "sample", "--weights", str(weights), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcam explain: error: "), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err and "weights_only=False" not in err, err
    assert "weights_only set to False" not in err, err
    assert list(out_dir.iterdir()) == []  # no output, no .o.tmp-* file
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == before
    assert not marker.exists()


def test_refusal_does_not_chain_torchs_advice(marker, tmp_path):
    """Python users see one message too: torch's multi-line error (which advises
    ``weights_only=False``) is not attached as the cause."""
    path = _torch_payload(tmp_path / "evil.pth", marker)
    with pytest.raises(VidcamError, match="not a weights-only checkpoint") as err:
        load_model("sample", weights=path)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "weights_only=False" not in str(err.value)
    assert not marker.exists()


_BOMB_BYTES = 256 << 20  # declared: 256 MiB of uint8 zeros; on disk: a few hundred KiB


def _bomb(path: Path) -> Path:
    """A torch.save checkpoint of a (256 MiB,) uint8 tensor whose data entry is deflated:
    written by streaming zeros, never holding the tensor (the pickle of a 4-element tensor
    with its two 4s patched to the large size)."""
    import zipfile

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4, dtype=torch.uint8)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    n = _BOMB_BYTES.to_bytes(4, "little")
    pkl = src.read("archive/data.pkl")
    patched = pkl.replace(b"q\x06K\x04t", b"q\x06J" + n + b"t").replace(
        b"K\x00K\x04\x85", b"K\x00J" + n + b"\x85"
    )
    assert len(patched) == len(pkl) + 6, "torch's pickle layout changed: update _bomb"
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(path, "w") as z:
        for info in src.infolist():
            if info.filename == "archive/data/0":
                zi = zipfile.ZipInfo(info.filename)
                zi.compress_type = zipfile.ZIP_DEFLATED
                with z.open(zi, "w", force_zip64=True) as f:
                    for _ in range(_BOMB_BYTES // len(chunk)):
                        f.write(chunk)
            else:
                data = patched if info.filename == "archive/data.pkl" else src.read(info)
                z.writestr(info, data)
    return path


_CHILD = r"""
import resource, sys, torch
from vidcam.errors import VidcamError
from vidcam.models.checkpoint import read_checkpoint
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (128 << 20), resource.RLIM_INFINITY))
try:
    torch.load(sys.argv[1], weights_only=True)
    print("control: loaded")
except (RuntimeError, MemoryError) as exc:
    print("control: out of memory")
try:
    read_checkpoint(sys.argv[1])
except VidcamError as exc:
    print("vidcam:", exc)
"""


def test_decompression_bomb_is_refused_before_inflating(tmp_path):
    """The issue's case: a small checkpoint declaring far more tensor bytes than it holds was
    inflated to 6.4 GB before being refused. Under an address-space cap 128 MiB above what
    the child already maps, torch.load runs out of memory on it; vidcam refuses it in one
    line from the zip directory, before a byte is inflated."""
    import subprocess
    import sys

    bomb = _bomb(tmp_path / "bomb.pth")
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(VidcamError, match="declares 0.25 GiB of tensors") as err:
        load_weights_only(bomb.read_bytes(), what="weights file 'bomb.pth'", fix="fix")
    _one_line_error(err, "bomb.pth", "torch.save never compresses")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(bomb)], capture_output=True, text=True, timeout=900
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "control: out of memory", proc.stdout + proc.stderr
    assert lines[1].startswith("vidcam: weights file") and "declares 0.25 GiB" in lines[1]
    assert proc.returncode == 0, proc.stderr
