"""Model zoo and registry: every architecture builds offline and is explained end to end.

Nothing here downloads: ``torch.hub.download_url_to_file`` (and ``load_state_dict_from_url``) are
replaced by a function that fails the test, and ``VIDCAM_OFFLINE=1`` blocks the I3D fetch. Architectures whose published
clip is large run on the smallest clip they accept (PyTorchVideo heads resized with
``head_pool``, which changes no weight); torchvision's MViTs only take 16 x 224 x 224 (the
slowest tests here; ``VIDCAM_SLOW_TESTS=0`` skips them for a quick local run).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from urllib.error import URLError

import pytest
import torch
import torch.hub
import torchvision.models.video as tvv

import vidcam
from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.models import adapters, labels
from vidcam.models.registry import (
    MODELS,
    get_spec,
    list_models,
    load_model,
    weights_present,
    weights_status,
)

EXPECTED = {
    "r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t",
    "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "slow_r50", "slowfast_r50", "i3d_r50", "c2d_r50",
    "csn_r101", "r2plus1d_r50", "mvit_base_16x4", "i3d", "sample",
    "videomae", "timesformer", "vivit",
}  # fmt: skip
HF = {"videomae", "timesformer", "vivit"}  # optional extra: tests/test_hf_models.py
SLOW = {"mvit_v1_b", "mvit_v2_s"}  # fixed 16 x 224 x 224 input: ~10 s each on 2 cores
RUN_SLOW = os.environ.get("VIDCAM_SLOW_TESTS", "1") != "0"


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("VIDCAM_OFFLINE", "1")


def _clip(shape: tuple[int, int, int], seed: int = 0, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, *shape, generator=g)


_CACHED = {"slowfast_r50", "mvit_base_16x4", "csn_r101"}  # used by several tests
_cache: dict[str, torch.nn.Module] = {}


def _build_small(name: str) -> torch.nn.Module:
    """Random-weight model for the spec's ``test_input`` (built once for those in _CACHED)."""
    if name in _cache:
        return _cache[name]
    spec = get_spec(name)
    torch.manual_seed(0)
    model = spec.build(pretrained=False, **spec.test_arch)
    if name in _CACHED:
        _cache[name] = model
    return model


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.skipif(n in SLOW and not RUN_SLOW, reason="VIDCAM_SLOW_TESTS=0"),
        )
        for n in sorted(EXPECTED - HF)
    ],
)
def test_every_model_is_explained_end_to_end(name):
    spec = get_spec(name)
    model = _build_small(name)
    clip = _clip(spec.test_input)
    res = vidcam.explain(
        model, clip, target="topk:2", layer=list(spec.layers), reshape=spec.reshape
    )
    t, h, w = spec.test_input
    assert res.maps.shape == (1, 2, t, h, w)
    assert torch.isfinite(res.maps).all()
    flat = res.maps.flatten(2)
    assert (flat.amax(2) - flat.amin(2) > 1e-3).all(), "a map is constant"
    assert res.layers == spec.layers
    for raw in res.raw_per_layer:
        assert torch.isfinite(raw).all() and raw.dim() == 5
    # the explanation's logits are the model's own, and cover the label set
    with torch.no_grad():
        expected = model(clip)
    torch.testing.assert_close(res.logits, expected, rtol=1e-4, atol=1e-4)
    assert res.logits.shape[1] == len(labels.load_labels(spec.labels))
    assert res.targets[0].tolist() == expected[0].topk(2).indices.tolist()


# --------------------------------------------------------------------------- adapters


def test_slowfast_adapter_picks_official_slow_frames():
    net = torch.nn.Module()
    ad = adapters.SlowFastAdapter(net, alpha=4)
    clip = torch.arange(32.0).view(1, 1, 32, 1, 1).expand(2, 3, 32, 4, 5)
    slow, fast = ad.pathways(clip)
    assert slow[0, 0, :, 0, 0].tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert fast is clip
    with pytest.raises(VidcamError, match="at least alpha=4 frames"):
        ad.pathways(clip[:, :, :3])


def test_slowfast_adapter_runs_the_wrapped_model_on_both_pathways():
    model = _build_small("slowfast_r50")
    assert isinstance(model, adapters.SlowFastAdapter)
    clip = _clip((8, 64, 64))
    with torch.no_grad():
        got = model(clip)
        want = model.net([clip[:, :, [0, 7]], clip])  # T // alpha = 2 frames: linspace(0, 7, 2)
    torch.testing.assert_close(got, want)


def test_tokens_to_volume_places_each_token():
    n, t, h, w, c = 2, 3, 4, 5, 6
    # token i (after the class token) of channel j holds 1000*j + i
    idx = torch.arange(t * h * w, dtype=torch.float32)
    patches = idx.view(1, -1, 1) + 1000 * torch.arange(c, dtype=torch.float32).view(1, 1, -1)
    tokens = torch.cat([torch.full((1, 1, c), -1.0), patches], dim=1).expand(n, -1, -1)
    vol = adapters.TokensToVolume()(tokens, (tokens, [t, h, w]))
    assert vol.shape == (n, c, t, h, w)
    assert vol[1, 2, 1, 3, 4].item() == 2000 + (1 * h * w + 3 * w + 4)
    assert (vol >= 0).all()  # the class token is dropped
    fixed = adapters.TokensToVolume(thw=(t, h, w))(tokens, tokens)  # no thw in the output
    torch.testing.assert_close(fixed, vol)
    with pytest.raises(VidcamError, match="no thw"):
        adapters.TokensToVolume()(tokens, tokens)
    with pytest.raises(VidcamError, match="cannot hold"):
        adapters.TokensToVolume()(tokens, (tokens, (4, 4, 4)))


def test_token_grid_places_each_token_in_both_orders():
    n, t, h, w, c = 2, 3, 4, 5, 6
    idx = torch.arange(t * h * w, dtype=torch.float32)
    patches = idx.view(1, -1, 1) + 1000 * torch.arange(c, dtype=torch.float32).view(1, 1, -1)
    tokens = torch.cat([torch.full((1, 1, c), -1.0), patches], dim=1).expand(n, -1, -1)
    thw = adapters.TokenGrid((t, h, w), order="thw", cls=1)(tokens)
    hwt = adapters.TokenGrid((t, h, w), order="hwt", cls=1)((tokens,))  # tuple outputs too
    assert thw.shape == hwt.shape == (n, c, t, h, w)
    # token i = (t*H + h)*W + w  vs  i = (h*W + w)*T + t, for (t, h, w) = (2, 3, 1), channel 4
    assert thw[1, 4, 2, 3, 1].item() == 4000 + (2 * h + 3) * w + 1 == 4056
    assert hwt[1, 4, 2, 3, 1].item() == 4000 + (3 * w + 1) * t + 2 == 4050
    assert (thw >= 0).all() and (hwt >= 0).all()  # the class token is dropped
    no_cls = adapters.TokenGrid((t, h, w))(patches)
    torch.testing.assert_close(no_cls, thw[:1])
    with pytest.raises(VidcamError, match=r"expected tokens \(N, 1 \+ 3\*4\*5, C\)"):
        adapters.TokenGrid((t, h, w), cls=1)(patches)
    with pytest.raises(VidcamError, match="order 'twh'"):
        adapters.TokenGrid((t, h, w), order="twh")


def test_hf_models_without_transformers_say_how_to_install(monkeypatch, tmp_path, capsys):
    import sys

    from conftest import pattern_frames, write_video

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    assert {"videomae", "timesformer", "vivit"} <= set(MODELS)  # listed all the same
    with pytest.raises(VidcamError, match=r"pip install 'vidcam\[transformers\]'") as err:
        load_model("videomae", pretrained=False)
    assert "\n" not in str(err.value)
    src = write_video(tmp_path / "c.mkv", pattern_frames(4, 32, 32))
    rc = main(["explain", str(src), "-o", str(tmp_path / "o.mp4"), "--model", "timesformer",
               "--random-weights", "--quiet"])  # fmt: skip
    err_text = capsys.readouterr().err
    assert rc == 2 and "pip install 'vidcam[transformers]'" in err_text
    assert len(err_text.strip().splitlines()) == 1 and not (tmp_path / "o.mp4").exists()


def test_channels_last_to_volume():
    x = torch.randn(2, 3, 4, 5, 6)
    v = adapters.channels_last_to_volume(x, x)
    assert v.shape == (2, 6, 3, 4, 5)
    assert v[1, 5, 2, 3, 4] == x[1, 2, 3, 4, 5]


def test_torchvision_mvit_block_output_reshapes_to_its_grid():
    model = tvv.mvit_v1_b().eval()
    block = model.blocks[14]  # the registered layer: pools 14x14 -> 7x7
    tokens = torch.randn(1, 1 + 8 * 14 * 14, 768)
    with torch.no_grad():
        out = block(tokens, (8, 14, 14))
    vol = get_spec("mvit_v1_b").reshape(out[0], out)
    assert vol.shape == (1, 768, 8, 7, 7)
    torch.testing.assert_close(vol[0, :, 2, 3, 4], out[0][0, 1 + 2 * 49 + 3 * 7 + 4])


def test_mvit_last_block_gets_no_gradient_so_the_second_to_last_is_registered():
    model = _build_small("mvit_base_16x4")
    acts = {}
    hooks = [
        model.blocks[i].register_forward_hook(lambda m, a, o, i=i: acts.__setitem__(i, o[0]))
        for i in (14, 15)
    ]
    out = model(_clip((4, 64, 64)))
    for hk in hooks:
        hk.remove()
    g14, g15 = torch.autograd.grad(out[0, 0], [acts[14], acts[15]])
    assert g15[:, 1:].abs().max() == 0  # patch tokens of the last block never reach the head
    assert g14[:, 1:].abs().max() > 0
    assert get_spec("mvit_base_16x4").layers == ("blocks.14",)


def test_x3d_returns_logits_instead_of_the_hub_softmax():
    from pytorchvideo.models.hub import x3d_xs

    ours = get_spec("x3d_xs").build(pretrained=False)
    hub = x3d_xs(pretrained=False).eval()
    hub.load_state_dict(ours.state_dict())  # same parameters: only the Softmax was removed
    clip = _clip((4, 160, 160))
    with torch.no_grad():
        torch.testing.assert_close(ours(clip).softmax(1), hub(clip), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["slow_r50", "csn_r101", "slowfast_r50"])
def test_registered_build_has_the_hub_parameters(name):
    import pytorchvideo.models.hub as hub

    ours = _build_small(name)
    ref = getattr(hub, name)(pretrained=False).state_dict()
    mine = {k.removeprefix("net."): v.shape for k, v in ours.state_dict().items()}
    assert mine == {k: v.shape for k, v in ref.items()}


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_architecture():
    assert set(MODELS) == EXPECTED
    assert [s.name for s in list_models()] == list(MODELS)
    for spec in list_models():
        assert spec.layers and spec.labels in labels.LABEL_SETS
        assert spec.description


def test_input_specs_match_torchvision_metadata():
    for name, enum in [("r3d_18", tvv.R3D_18_Weights), ("swin3d_t", tvv.Swin3D_T_Weights)]:
        tf = enum.DEFAULT.transforms()
        inp = get_spec(name).input
        assert list(inp.crop) == list(tf.crop_size)
        assert inp.resize_short == min(tf.resize_size)
        assert list(inp.mean) == list(tf.mean) and list(inp.std) == list(tf.std)
    assert get_spec("x3d_m").input.clip_len == 16 and get_spec("x3d_m").input.stride == 5
    assert get_spec("slowfast_r50").input.clip_len == 32


def test_get_spec_errors_and_aliases():
    assert get_spec("R3D-18") is MODELS["r3d_18"]
    with pytest.raises(VidcamError) as err:
        get_spec("r3d_19")
    msg = str(err.value)
    assert "unknown model 'r3d_19'" in msg and "'r3d_18'" in msg and "mvit_base_16x4" in msg
    with pytest.raises(VidcamError, match="unknown model 'zzz'. Valid names"):
        get_spec("zzz")


def test_load_model_random_weights_never_downloads():
    lm = load_model("r3d_18", pretrained=False)
    assert not lm.module.training
    assert lm.weights_source.startswith("random")
    assert list(lm.labels) == list(tvv.R3D_18_Weights.DEFAULT.meta["categories"])


def test_load_model_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    src = get_spec("r3d_18").build(pretrained=False)
    path = tmp_path / "r3d.pth"
    # a training-style checkpoint: nested under 'state_dict', DataParallel 'module.' prefixes
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}},
               path)  # fmt: skip
    lm = load_model("r3d_18", weights=path, pretrained=False)
    assert str(path) in lm.weights_source
    clip = _clip((4, 32, 32))
    with torch.no_grad():
        torch.testing.assert_close(lm.module(clip), src(clip))


def test_load_model_adds_the_adapter_prefix(tmp_path):
    net = _build_small("slowfast_r50").net  # the bare PyTorchVideo model
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": net.state_dict(), "cfg": "yaml text"}, path)  # hub layout
    lm = load_model("slowfast_r50", weights=path)
    for k, v in net.state_dict().items():
        assert torch.equal(lm.module.net.state_dict()[k], v), k


def test_mismatched_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "mc3.pth"
    torch.save(get_spec("mc3_18").build(pretrained=False).state_dict(), path)
    with pytest.raises(VidcamError, match="do not fit model 'r3d_18'.*another shape"):
        load_model("r3d_18", weights=path)
    with pytest.raises(VidcamError, match="does not exist"):
        load_model("r3d_18", weights=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(VidcamError, match="could not read weights file"):
        load_model("r3d_18", weights=bad)


@pytest.mark.parametrize("name", ["r3d_18", "x3d_xs"])
def test_pretrained_offline_is_a_clear_error(name, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls = []

    def offline(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(VidcamError) as err:
        load_model(name, pretrained=True, progress=False)
    msg = str(err.value)
    assert "could not download" in msg and "--weights PATH" in msg and "TORCH_HOME" in msg
    assert str(tmp_path) in msg and "\n" not in msg
    assert isinstance(err.value.__cause__, URLError)
    spec = get_spec(name)
    assert calls == [(spec.weights.url, spec.weights.sha256)]  # hash-checked where published


def _hashed_spec(name: str, tmp_path, seed: int = 3):
    """``name``'s spec with published weights whose hash vidcam knows, cached in ``tmp_path``,
    and the random-weight model whose state dict they hold. torchvision-style entries carry
    the sha256 prefix in the file name (vidcam pins the full digest beside it); PyTorchVideo's
    keep theirs, with the full digest."""
    spec = get_spec(name)
    torch.manual_seed(seed)
    ref = spec.build(pretrained=False)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / "tmp.pth"
    torch.save({"model_state": ref.state_dict()}, tmp)  # PyTorchVideo's layout
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    if spec.source == "torchvision":  # the name carries a prefix; the full digest is pinned
        url, sha256 = f"https://example.invalid/models/{name}-{digest[:10]}.pth", digest
    else:
        url, sha256 = spec.weights.url, digest
    weights = type(spec.weights).hub(url, note="test", sha256=sha256)
    path = tmp.rename(cache / weights.file_name)
    return dataclasses.replace(spec, weights=weights), ref, path


@pytest.mark.parametrize("name", ["r3d_18", "x3d_xs"])
def test_pretrained_loads_a_verified_hub_cache_without_network(name, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec, ref, path = _hashed_spec(name, tmp_path)
    monkeypatch.setitem(MODELS, name, spec)
    lm = load_model(name, pretrained=True, progress=False)
    assert spec.weights.url in lm.weights_source and str(path) in lm.weights_source
    for k, v in ref.state_dict().items():
        assert torch.equal(lm.module.state_dict()[k], v), k
    assert weights_status(spec) == "yes"


def test_cached_file_with_a_wrong_hash_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec, _, path = _hashed_spec("r3d_18", tmp_path)
    path.write_bytes(path.read_bytes() + b"\0")  # any change to the published file
    with pytest.raises(VidcamError, match="fail verification.*tampered") as err:
        spec.build(pretrained=True, progress=False)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_unverifiable_pytorchvideo_cache_is_refused(monkeypatch, tmp_path):
    """PyTorchVideo publishes no sha256: a cached X3D_XS.pyth is never unpickled."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = get_spec("x3d_xs")
    assert spec.weights.sha256 is None
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save({"model_state": spec.build().state_dict()}, cache / "X3D_XS.pyth")
    with pytest.raises(VidcamError, match="refusing to load cached weights") as err:
        load_model("x3d_xs", pretrained=True, progress=False)
    msg = str(err.value)
    assert f"--weights {cache / 'X3D_XS.pyth'}" in msg and "\n" not in msg
    assert weights_status(spec) == "no"  # present, but it would not be loaded
    lm = load_model("x3d_xs", weights=cache / "X3D_XS.pyth")  # the way out the error names
    assert "local checkpoint" in lm.weights_source


def test_unverifiable_download_is_used_but_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(4)
    ref = get_spec("x3d_xs").build()

    def fetch(url, dst, hash_prefix=None, progress=True):
        assert hash_prefix is None
        torch.save({"model_state": ref.state_dict()}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fetch)
    with pytest.warns(UserWarning, match="X3D_XS.pyth has no published sha256"):
        lm = load_model("x3d_xs", pretrained=True, progress=False)
    for k, v in ref.state_dict().items():
        assert torch.equal(lm.module.state_dict()[k], v), k
    assert not (tmp_path / "hub" / "checkpoints" / "X3D_XS.pyth").exists()


def test_weights_present_reads_the_hub_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VIDCAM_CACHE", str(tmp_path / "vidcam"))
    monkeypatch.delenv("VIDCAM_I3D_WEIGHTS", raising=False)
    spec = get_spec("r3d_18")
    assert not weights_present(spec)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "r3d_18-b3b3357e.pth").write_bytes(b"x")  # presence only: checked when loaded
    assert weights_present(spec) and weights_status(spec) == "yes"
    (cache / "X3D_XS.pyth").write_bytes(b"x")
    assert weights_status(get_spec("x3d_xs")) == "no"  # no published hash: never loaded
    assert weights_status(get_spec("i3d")) == "no"
    (tmp_path / "vidcam").mkdir()
    (tmp_path / "vidcam" / "i3d_kinetics400.pt").write_bytes(b"x")
    assert weights_status(get_spec("i3d")) == "yes"
    sample = get_spec("sample")
    assert weights_status(sample) == "bundled"
    gone = dataclasses.replace(sample.weights, resource="weights/no_such_file.pt")
    sample = dataclasses.replace(sample, weights=gone)
    assert weights_status(sample) == "no" and not weights_present(sample)


# --------------------------------------------------------------------------- labels


def test_labels():
    k400 = labels.load_labels("kinetics400")
    assert k400 == list(tvv.R3D_18_Weights.DEFAULT.meta["categories"])
    from vidcam.models.sample_net import SAMPLE_CLASSES

    assert labels.load_labels("sample") == list(SAMPLE_CLASSES)
    with pytest.raises(VidcamError, match="unknown label set 'imagenet'"):
        labels.load_labels("imagenet")


def test_missing_label_file_warns(monkeypatch):
    monkeypatch.setitem(labels.LABEL_FILES, "nosuchset", 3)
    with pytest.warns(UserWarning, match="nosuchset.txt is missing"):
        assert labels.load_labels("nosuchset") == ["class_0", "class_1", "class_2"]


# --------------------------------------------------------------------------- CLI


def test_cli_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "INPUT", "LAYERS", "WEIGHTS"]
    rows = {line.split()[0]: line for line in lines[1 : 1 + len(EXPECTED)]}
    assert set(rows) == EXPECTED
    assert "16@15fps 112x112<128" in rows["r3d_18"] and "layer4" in rows["r3d_18"]
    assert "32/2" in rows["slowfast_r50"] and "multipathway_blocks.1" in rows["slowfast_r50"]
    assert rows["sample"].rstrip().endswith("bundled")


def test_cli_models_json_and_errors(capsys):
    assert main(["models", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in records}
    assert set(by_name) == EXPECTED
    assert by_name["x3d_xs"]["input"] == {
        "clip_len": 4, "fps": None, "stride": 12, "crop": [160, 160], "resize_short": 182,
        "mean": [0.45] * 3, "std": [0.225] * 3,
    }  # fmt: skip
    assert main(["models", "i3d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == ["Mixed_5c"]
    assert main(["models", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'nope'" in err
