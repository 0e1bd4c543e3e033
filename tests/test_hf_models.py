"""Hugging Face video transformers (VideoMAE, TimeSformer, ViViT): token layout, CAMs, weights.

Tiny random configs (hidden 32, 2 blocks; small grids where the registry's geometry is not
needed). The token layout is proved by planting a signal in one input patch/tubelet and finding
it at the right (t, h, w) of the reshaped volume; nothing is downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="transformers not installed: pip install 'vidcam[transformers]'"
)

from conftest import pattern_frames, write_video  # noqa: E402

import vidcam  # noqa: E402
from vidcam.cam.prefix import record_forward  # noqa: E402
from vidcam.cli import main  # noqa: E402
from vidcam.errors import VidcamError  # noqa: E402
from vidcam.models import zoo_hf  # noqa: E402
from vidcam.models.registry import get_spec, load_model  # noqa: E402

NAMES = ("videomae", "timesformer", "vivit")
#: tiny geometry per model: frames, image 64 (4 x 4 patches of 16); grids differ per axis
SMALL = {
    "videomae": {"num_frames": 4},
    "timesformer": {"num_frames": 3},
    "vivit": {"num_frames": 4},
}
GRID = {"videomae": (2, 4, 4), "timesformer": (3, 4, 4), "vivit": (2, 4, 4)}
FRAMES_PER_T = {"videomae": 2, "timesformer": 1, "vivit": 2}  # tubelet depth
EMBEDDINGS = {
    "videomae": "net.videomae.embeddings",
    "timesformer": "net.timesformer.embeddings",
    "vivit": "net.vivit.embeddings",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VIDCAM_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _small(name: str, seed: int = 0):
    """(model, spec fitted to it): random tiny config on a 64 x 64 grid of 16-pixel patches."""
    torch.manual_seed(seed)
    spec = get_spec(name)
    model = spec.build(pretrained=False, image_size=64, **SMALL[name])
    return model, spec.for_model(model)


def _clip(spec, seed: int = 0, n: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, spec.input.clip_len, *spec.input.crop, generator=g)


def _capture(model, layer: str, clip: torch.Tensor) -> torch.Tensor:
    got = []
    module = model.get_submodule(layer)
    handle = module.register_forward_hook(lambda m, a, o: got.append(o))
    try:
        with torch.no_grad():
            model(clip)
    finally:
        handle.remove()
    out = got[0]
    return out[0] if isinstance(out, tuple) else out


def _plant(name: str, clip: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
    """``clip`` with a bright 16 x 16 patch in every frame of token (t, h, w)."""
    k = FRAMES_PER_T[name]
    out = clip.clone()
    out[:, :, t * k : (t + 1) * k, h * 16 : (h + 1) * 16, w * 16 : (w + 1) * 16] += 5.0
    return out


def _token_index(name: str, t: int, h: int, w: int) -> int:
    """The token a patch lands on, from the layouts read in transformers' source (independent of
    TokenGrid): class token first for TimeSformer/ViViT; (h, w, t) order for TimeSformer."""
    gt, gh, gw = GRID[name]
    if name == "timesformer":
        return 1 + (h * gw + w) * gt + t
    return (1 if name == "vivit" else 0) + (t * gh + h) * gw + w


@pytest.mark.parametrize("name", NAMES)
def test_registered_entry_is_fitted_to_the_built_config(name):
    model, spec = _small(name)
    assert spec.reshape.grid == GRID[name]
    assert spec.input.clip_len == SMALL[name]["num_frames"] and spec.input.crop == (64, 64)
    depth = model.config.num_hidden_layers
    assert depth == zoo_hf.TINY["num_hidden_layers"] == 2
    last = depth - 1 if name == "videomae" else depth - 2  # class-token heads: the last input
    assert spec.layers == (f"net.{zoo_hf.ARCHS[name].blocks}.{last}",)
    # the listed entry is the published checkpoint's: 12 blocks, 224 x 224
    listed = get_spec(name)
    assert listed.layers[0].endswith(".11" if name == "videomae" else ".10")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("where", [(0, 0, 0), "far corner"])
def test_planted_patch_lands_on_its_token_and_cell(name, where):
    """At the embeddings exactly one token changes, the one the source layout says; the
    registry's reshape puts it at (t, h, w); after the blocks it still changes the most."""
    model, spec = _small(name)
    gt, gh, gw = GRID[name]
    t, h, w = (gt - 1, 1, gw - 1) if where == "far corner" else where
    clip = _clip(spec)
    planted = _plant(name, clip, t, h, w)
    emb = [_capture(model, EMBEDDINGS[name], x) for x in (clip, planted)]
    changed = (emb[1] - emb[0]).abs().sum(-1)[0]  # (tokens,)
    assert changed.nonzero().flatten().tolist() == [_token_index(name, t, h, w)]
    vol = [spec.reshape(e, e) for e in emb]
    cell = (vol[1] - vol[0]).abs().sum(1)[0]  # (T', H', W')
    assert cell.nonzero().tolist() == [[t, h, w]]
    layer = [_capture(model, spec.layers[0], x) for x in (clip, planted)]
    diff = (spec.reshape(layer[1], None) - spec.reshape(layer[0], None)).norm(dim=1)[0]
    flat = diff.flatten()
    assert divmod(int(flat.argmax()), gh * gw) == (t, h * gw + w)
    assert flat.topk(2).values[1] < 0.5 * flat.max()


@pytest.mark.parametrize("name", NAMES)
def test_gradcam_of_the_registry_layer_matches_an_independent_computation(name):
    """res.first_layer_raw = relu(sum_k mean(g_k) A_k) with tokens placed by index arithmetic, not TokenGrid."""
    model, spec = _small(name, seed=1)
    clip = _clip(spec, seed=2)
    res = vidcam.explain(
        model, clip, target=7, layer=list(spec.layers), reshape=spec.reshape, method="gradcam"
    )
    acts = []
    module = model.get_submodule(spec.layers[0])
    handle = module.register_forward_hook(
        lambda m, a, o: acts.append(o[0] if isinstance(o, tuple) else o)
    )
    try:
        score = model(clip)[0, 7]
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(score, acts[0])
    gt, gh, gw = GRID[name]
    a_vol = torch.empty(acts[0].shape[-1], gt, gh, gw)
    g_vol = torch.empty_like(a_vol)
    for t in range(gt):
        for h in range(gh):
            for w in range(gw):
                i = _token_index(name, t, h, w)
                a_vol[:, t, h, w], g_vol[:, t, h, w] = acts[0][0, i].detach(), g[0, i]
    weights = g_vol.flatten(1).mean(1)
    want = torch.relu((weights[:, None, None, None] * a_vol).sum(0))
    torch.testing.assert_close(res.first_layer_raw[0, 0], want, rtol=1e-4, atol=1e-6)
    assert res.maps.shape == (1, 1, spec.input.clip_len, 64, 64)
    assert want.max() > 0


@pytest.mark.parametrize("name", NAMES)
def test_class_token_heads_give_the_last_block_no_patch_gradient(name):
    """Why TimeSformer and ViViT explain the last block's input: its output's patch tokens never
    reach the class-token head (VideoMAE mean-pools all tokens of its last block)."""
    model, spec = _small(name)
    blocks = model.get_submodule(f"net.{zoo_hf.ARCHS[name].blocks}")
    acts = {}
    hooks = [
        blocks[i].register_forward_hook(
            lambda m, a, o, i=i: acts.__setitem__(i, o[0] if isinstance(o, tuple) else o)
        )
        for i in (0, 1)
    ]
    try:
        out = model(_clip(spec))
    finally:
        for hk in hooks:
            hk.remove()
    g0, g1 = torch.autograd.grad(out[0, 3], [acts[0], acts[1]])
    cls = zoo_hf.ARCHS[name].cls
    assert g0[:, cls:].abs().min() > 0
    if name == "videomae":
        assert g1.abs().min() > 0 and spec.layers[0].endswith(".1")
    else:
        assert g1[:, cls:].abs().max() == 0 and spec.layers[0].endswith(".0")


@pytest.mark.parametrize("name", NAMES)
def test_gradient_free_prefix_gives_the_full_graph_gradients(name):
    """prefix.record_forward on HF blocks (TimeSformer's return a tuple): the captured tokens are
    a leaf (no graph before them), logits and gradients equal full recording, grad mode kept."""
    model, spec = _small(name)
    layer = [(spec.layers[0], model.get_submodule(spec.layers[0]))]
    clip = _clip(spec)
    results = {}
    for full in (False, True):
        with torch.no_grad():  # the caller's mode must come back
            with torch.enable_grad():
                out, store = record_forward(model, clip, layer, full_graph=full)
                cap = store[spec.layers[0]].tensor
                (g,) = torch.autograd.grad(out[0, 5], cap)
            assert not torch.is_grad_enabled()
        results[full] = (out.detach(), g, cap.grad_fn)
    assert results[False][2] is None and results[True][2] is not None
    torch.testing.assert_close(results[False][0], results[True][0])
    torch.testing.assert_close(results[False][1], results[True][1])


@pytest.mark.parametrize("name", NAMES)
def test_model_comes_back_unchanged(name):
    model, spec = _small(name)
    model.train()
    model.net.classifier.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(m, m.training) for m in model.modules()]
    vidcam.explain(
        model, _clip(spec), target="topk:2", layer=list(spec.layers), reshape=spec.reshape
    )
    assert all(m.training == f for m, f in flags)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert not model.net.classifier.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_input_specs_follow_the_processors_and_configs():
    from transformers import (
        TimesformerConfig,
        TimesformerVideoProcessor,
        VideoMAEConfig,
        VideoMAEVideoProcessor,
        VivitConfig,
        VivitVideoProcessor,
    )

    for name, proc, cfg in [
        ("videomae", VideoMAEVideoProcessor(), VideoMAEConfig()),
        ("timesformer", TimesformerVideoProcessor(), TimesformerConfig()),
        ("vivit", VivitVideoProcessor(), VivitConfig()),
    ]:
        spec = get_spec(name)
        inp = spec.input
        assert inp.crop == (proc.crop_size["height"], proc.crop_size["width"]) == (224, 224)
        assert inp.resize_short == proc.size["shortest_edge"]
        assert inp.clip_len == cfg.num_frames
        # the listed (static) entry equals the one fitted to a default-config model
        model = zoo_hf.HfVideoClassifier(torch.nn.Identity())
        model.net.config = cfg
        assert spec.for_model(model).layers == spec.layers
        assert spec.for_model(model).reshape.grid == spec.reshape.grid
        pixels = torch.tensor([0.0, 0.2, 1.0])  # what the processor makes of [0, 1] pixels
        factor = proc.rescale_factor * 255
        scaled = pixels * factor - (1 if name == "vivit" else 0)
        for c in range(3):
            want = (scaled - proc.image_mean[c]) / proc.image_std[c]
            torch.testing.assert_close((pixels - inp.mean[c]) / inp.std[c], want)


@pytest.mark.parametrize("name", NAMES)
def test_weights_directory_and_files_round_trip(name, tmp_path):
    from safetensors.torch import save_file

    model, spec = _small(name, seed=3)
    clip = _clip(spec)
    with torch.no_grad():
        want = model(clip)
    model.net.save_pretrained(tmp_path / "dir")
    lm = load_model(name, weights=tmp_path / "dir")
    assert "local directory" in lm.weights_source and lm.reshape.grid == GRID[name]
    with torch.no_grad():
        torch.testing.assert_close(lm.module(clip), want)
    state = model.net.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    torch.save({"state_dict": state}, tmp_path / "w.pt")
    arch = {**zoo_hf.TINY, "image_size": 64, **SMALL[name]}  # a file holds no architecture
    for f in ("w.safetensors", "w.pt"):
        built = get_spec(name).build(weights=tmp_path / f, **arch)
        with torch.no_grad():
            torch.testing.assert_close(built(clip), want)
    with pytest.raises(VidcamError, match="do not fit model"):
        get_spec(name).build(weights=tmp_path / "w.pt", **{**arch, "hidden_size": 48})


def test_hub_weights_offline_is_one_clear_line():
    with pytest.raises(VidcamError) as err:
        load_model("videomae", pretrained=True)
    msg = str(err.value)
    assert "MCG-NJU/videomae-base-finetuned-kinetics" in msg and "--weights DIR" in msg
    assert "--random-weights" in msg and "\n" not in msg
    assert get_spec("videomae").weights.status() == "no"  # empty Hugging Face cache


@pytest.mark.parametrize("name", NAMES)
def test_vidcam_explain_end_to_end(name, tmp_path, capsys):
    src = write_video(tmp_path / "clip.mkv", pattern_frames(12, 64, 64), fps=25)
    out, js = tmp_path / "out.mp4", tmp_path / "out.json"
    torch.manual_seed(0)
    rc = main(
        ["explain", str(src), "-o", str(out), "--json", str(js), "--model", name,
         "--random-weights", "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "shorter than one clip" in err  # 12 frames, clips of 8 to 32
    data = json.loads(js.read_text())
    want = {"videomae": "videomae.encoder.layer.1", "timesformer": "timesformer.encoder.layer.0"}
    assert data["layers"] == ["net." + want.get(name, "vivit.layers.0")]  # the tiny config's
    assert data["frames"] == 12 and len(data["importance"]) == 12
    assert out.stat().st_size > 0


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_and_hf_directory_agree(name, tmp_path):
    """The registry's entry with a save_pretrained directory and ``hf:DIR`` of the same
    directory share one code path: same input spec, layer, token grid and logits."""
    from vidcam.models.hf_auto import open_hf

    model, spec = _small(name, seed=4)
    model.net.save_pretrained(tmp_path / "dir")
    reg = load_model(name, weights=tmp_path / "dir", device="cpu")
    auto = open_hf(str(tmp_path / "dir"), device="cpu", progress=False)
    assert auto.input == reg.input == spec.input
    assert auto.layer == reg.layer == spec.layers[0]
    assert auto.reshape.grid == reg.reshape.grid == GRID[name]
    assert (auto.reshape.order, auto.reshape.cls) == (reg.reshape.order, reg.reshape.cls)
    assert auto.labels is None and len(reg.labels) == 400  # placeholders vs Kinetics names
    clip = _clip(spec)
    with torch.no_grad():
        torch.testing.assert_close(auto.module(clip), reg.module(clip))
