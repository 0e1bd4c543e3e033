"""The typed weights source of registry entries, and the one ``ModelSpec.build``."""

from __future__ import annotations

import dataclasses

import pytest
import torch.hub

from vidcam.errors import VidcamError
from vidcam.models import zoo, zoo_pytorchvideo, zoo_torchvision
from vidcam.models.checkpoint import cached_file, hash_prefix_of
from vidcam.models.registry import get_spec, list_models
from vidcam.models.spec import ModelSpec
from vidcam.models.weights_source import PUBLISHED_SHA256, WeightsSource

_HUB_URL = "https://download.pytorch.org/models/r3d_18-b3b3357e.pth"


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIDCAM_OFFLINE", "1")


def test_every_entry_has_a_typed_source():
    kinds = {spec.name: spec.weights.kind for spec in list_models()}
    assert kinds["i3d"] == "i3d" and kinds["sample"] == "bundled"
    for spec in list_models():
        if (
            spec.source == "transformers"
        ):  # loads itself (ModelSpec.loader): the WeightsInfo protocol
            assert spec.loader is not None and spec.weights.kind == "hf"
            assert spec.weights.status() in ("yes", "no") and spec.weights.describe()
        else:
            assert isinstance(spec.weights, WeightsSource)
        assert spec.weights_note == spec.weights.note and spec.weights.note
        assert len(spec.test_input) == 3
        if spec.source in ("torchvision", "pytorchvideo"):
            assert spec.weights.kind == "hub" and spec.weights.url.startswith("https://")


def test_torchvision_sources_pin_full_digests_or_none():
    """Every torchvision entry pins the full sha256 from the published table (64 hex, agreeing
    with the prefix in its name), or none: never the 8-hex prefix of the name."""
    pinned = {}
    for spec in zoo_torchvision.SPECS:
        prefix = hash_prefix_of(spec.weights.file_name)
        assert prefix is not None and len(prefix) >= 8
        digest = spec.weights.sha256
        assert digest == PUBLISHED_SHA256.get(spec.weights.file_name)
        if digest is not None:
            assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
            assert digest.startswith(prefix)
        pinned[spec.name] = digest is not None
    assert pinned == {
        "r3d_18": True,
        "mc3_18": True,
        "r2plus1d_18": True,
        "s3d": False,
        "mvit_v1_b": False,
        "mvit_v2_s": True,
        "swin3d_t": True,
    }
    assert set(PUBLISHED_SHA256) <= {s.weights.file_name for s in zoo_torchvision.SPECS}


def test_pytorchvideo_sources_come_from_the_published_table():
    names = {spec.weights.file_name for spec in zoo_pytorchvideo.SPECS}
    assert names <= set(zoo_pytorchvideo.PUBLISHED_SHA256)
    for spec in zoo_pytorchvideo.SPECS:
        assert hash_prefix_of(spec.weights.file_name) is None  # PyTorchVideo names carry none
        assert spec.weights.sha256 == zoo_pytorchvideo.PUBLISHED_SHA256[spec.weights.file_name]
    for digest in zoo_pytorchvideo.PUBLISHED_SHA256.values():
        assert digest is None or len(digest) == 64  # full digests only


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("r3d_18-b3b3357e.pth", "b3b3357e"),
        ("x-0123456789abcdef.pt", "0123456789abcdef"),
        ("X3D_XS.pyth", None),
        ("short-1234.pth", None),  # fewer than 8 hex digits proves nothing
        ("empty-.pth", None),
        ("upper-B3B3357E.pth", None),
    ],
)
def test_hash_prefix_of(name, prefix):
    assert hash_prefix_of(name) == prefix


def test_source_is_frozen_and_validated():
    src = WeightsSource.hub(_HUB_URL, note="n")
    full = "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d"
    assert (src.kind, src.sha256, src.file_name) == ("hub", full, "r3d_18-b3b3357e.pth")
    # a prefix is no digest; a digest that contradicts the name's prefix is a typo
    for bad in ("b3b3357e", full[:63], "0" * 64):
        with pytest.raises(VidcamError, match="sha256"):
            WeightsSource.hub(_HUB_URL, note="n", sha256=bad)
    unknown = WeightsSource.hub("https://example.invalid/x-0123abcd.pth", note="n")
    assert unknown.sha256 is None  # never the prefix in the name
    with pytest.raises(dataclasses.FrozenInstanceError):
        src.sha256 = None  # type: ignore[misc]
    other = "https://example.invalid/no-prefix.pth"
    assert WeightsSource.hub(other, note="n", sha256="f" * 64).sha256 == "f" * 64
    with pytest.raises(VidcamError, match="url"):
        WeightsSource("hub", "n")
    with pytest.raises(VidcamError, match="url"):
        WeightsSource("bundled", "n", url=_HUB_URL, resource="weights/x.pt")
    with pytest.raises(VidcamError, match="resource"):
        WeightsSource("bundled", "n")
    with pytest.raises(VidcamError, match="unknown kind"):
        WeightsSource("ftp", "n")  # type: ignore[arg-type]
    for bad in ("abc", "G" * 8, "0" * 65):
        with pytest.raises(VidcamError, match="sha256"):
            WeightsSource.hub(_HUB_URL, note="n", sha256=bad)
    with pytest.raises(VidcamError, match="sha256"):
        WeightsSource("i3d", "n", sha256="0" * 64)


def test_describe_says_where_weights_come_from():
    tv, ptv = get_spec("r3d_18").weights, get_spec("x3d_xs").weights
    assert str(cached_file(tv.url)) in tv.describe() and "sha256 checked" in tv.describe()
    assert ptv.url in ptv.describe() and "no published sha256" in ptv.describe()
    assert get_spec("sample").weights.describe() == f"pretrained: {get_spec('sample').weights_note}"


def test_spec_has_no_untyped_extras_and_one_builder():
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    assert "extra" not in fields and "build" not in fields
    assert not hasattr(ModelSpec, "layer_list")
    for module in (zoo, zoo_torchvision, zoo_pytorchvideo):
        assert not hasattr(module, "_builder") and not hasattr(module, "_build_i3d")


def test_build_random_weights_never_reads_weights(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("read weights for pretrained=False")

    monkeypatch.setattr(WeightsSource, "state_dict", fail)
    for name in ("r3d_18", "x3d_xs", "sample"):
        assert not get_spec(name).build(pretrained=False).training


@pytest.mark.parametrize("name", ["i3d", "sample"])
def test_models_without_architecture_options_say_so(name):
    with pytest.raises(VidcamError, match=f"model '{name}' takes no architecture options"):
        get_spec(name).build(pretrained=False, depth=3)


def test_pytorchvideo_make_never_loads_hub_weights():
    """``pretrained`` is pinned to False in the hub call: PyTorchVideo's own loader (which
    unpickles without weights_only) is never reached, whatever ``arch`` says."""
    spec = get_spec("x3d_xs")
    with pytest.raises(TypeError):
        spec.make(pretrained=True)
    model = spec.build(pretrained=False, head_pool=(4, 2, 2))
    pools = [m for m in model.modules() if isinstance(m, torch.nn.AvgPool3d)]
    assert [tuple(p.kernel_size) for p in pools] == [(4, 2, 2)]
