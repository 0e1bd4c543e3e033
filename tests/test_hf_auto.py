"""``hf:DIR``: any Hugging Face video classifier opened from its ``save_pretrained`` directory.

Small random VideoMAE, TimeSformer and ViViT configs (hidden 32, 2 blocks, 32-64 px, 4-8 frames,
3 named classes) are saved and opened offline; the handle's logits are compared with the HF
model's own on the same input, its labels, input spec and token grid with values computed by
hand from the config, its mean/std with the HF processor's own output on the same pixels.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="transformers not installed: pip install 'vidcam[transformers]'"
)

import vidcam  # noqa: E402
from vidcam.errors import VidcamError  # noqa: E402
from vidcam.models import zoo_hf  # noqa: E402
from vidcam.models.hf_auto import open_hf  # noqa: E402

LABELS = {0: "pour", 1: "stir", 2: "wipe"}
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
#: name -> (config class, model class, config options); grids differ per axis
CASES = {
    "videomae": (
        "VideoMAEConfig",
        "VideoMAEForVideoClassification",
        {"image_size": 48, "patch_size": 16, "num_frames": 8, "tubelet_size": 2},
    ),
    "timesformer": (
        "TimesformerConfig",
        "TimesformerForVideoClassification",
        {"image_size": 32, "patch_size": 8, "num_frames": 6},
    ),
    "vivit": (
        "VivitConfig",
        "VivitForVideoClassification",
        {"image_size": 64, "num_frames": 4, "tubelet_size": [2, 16, 16]},
    ),
}
#: by hand: (frames / tubelet depth, image / patch, image / patch)
GRID = {"videomae": (4, 3, 3), "timesformer": (6, 4, 4), "vivit": (2, 4, 4)}
#: by hand: the last block for VideoMAE's mean-pooled head, else the last block's input
LAYER = {
    "videomae": "net.videomae.encoder.layer.1",
    "timesformer": "net.timesformer.encoder.layer.0",
    "vivit": "net.vivit.layers.0",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VIDCAM_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _model(name: str, seed: int = 0, **extra):
    config_cls, model_cls, options = CASES[name]
    config = getattr(transformers, config_cls)(
        **SMALL, intermediate_size=64, **options, id2label=LABELS, **extra
    )
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(config).eval()


def _save(model, path):
    model.save_pretrained(path)
    return path


def _pixels(name: str, n: int = 2, seed: int = 1) -> torch.Tensor:
    """(N, T, C, H, W): Hugging Face's layout."""
    options = CASES[name][2]
    size = options["image_size"]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, options["num_frames"], 3, size, size, generator=g)


@pytest.mark.parametrize("name", list(CASES))
def test_handle_gives_the_hf_models_logits_labels_grid_and_layer(name, tmp_path):
    model = _model(name)
    path = _save(model, tmp_path / name)
    h = open_hf(str(path), device="cpu", progress=False)
    x = _pixels(name)
    with torch.no_grad():
        want = model(pixel_values=x).logits
        got = h.module(x.transpose(1, 2))  # vidcam's (N, C, T, H, W)
    assert got.shape == (2, 3)
    torch.testing.assert_close(got, want)
    assert h.labels == ("pour", "stir", "wipe")
    assert h.reshape.grid == GRID[name]
    assert h.reshape.cls == (0 if name == "videomae" else 1)
    assert h.reshape.order == ("hwt" if name == "timesformer" else "thw")
    assert h.layer == LAYER[name]
    assert h.name == f"hf:{path}" and str(path) in h.weights_source
    assert h.device == torch.device("cpu") and not h.module.training
    size = CASES[name][2]["image_size"]
    inp = h.input
    assert (inp.clip_len, inp.crop) == (CASES[name][2]["num_frames"], (size, size))
    # no preprocessor file: the processor class's defaults, resize scaled from its 224 crop
    short = {"videomae": 224, "timesformer": 224, "vivit": 256}[name] * size / 224
    assert inp.resize_short == round(short)
    assert inp.stride == {"videomae": 4, "timesformer": 32, "vivit": 2}[name] and inp.fps is None
    mean, std = {
        "videomae": ((0.5,) * 3, (0.5,) * 3),
        "timesformer": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        "vivit": ((0.75,) * 3, (0.25,) * 3),  # (p * 2 - 1 - 0.5) / 0.5 = (p - 0.75) / 0.25
    }[name]
    assert inp.mean == pytest.approx(mean) and inp.std == pytest.approx(std)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcampp_on_the_handle_gives_a_map_on_the_token_grid(name, tmp_path):
    h = open_hf(str(_save(_model(name, seed=2), tmp_path / name)), device="cpu", progress=False)
    clip = _pixels(name, n=1, seed=3).transpose(1, 2)
    res = vidcam.Explainer(h.module, h.layer, reshape=h.reshape)(clip, target=1)
    assert res.layers == (h.layer,)
    assert res.first_layer_raw.shape == (1, 1, *GRID[name])
    assert res.first_layer_raw.max() > res.first_layer_raw.min()  # not a constant map
    assert res.maps.shape == (1, 1, *clip.shape[2:])
    assert res.maps.amax() == pytest.approx(1.0) and res.maps.amin() == pytest.approx(0.0)


def _video(t: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return list(rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    "name, processor, options, want",
    [
        (
            "videomae",
            "VideoMAEImageProcessor",
            {
                "image_mean": [0.4, 0.3, 0.2],
                "image_std": [0.2, 0.25, 0.3],
                "size": {"shortest_edge": 56},
                "crop_size": {"height": 48, "width": 48},
            },
            # mean/std as given; resize 56 and crop 48 as given (the model's image size is 48)
            {"mean": (0.4, 0.3, 0.2), "std": (0.2, 0.25, 0.3), "resize_short": 56},
        ),
        (
            "vivit",
            "VivitImageProcessor",
            {
                "image_mean": [0.4, 0.5, 0.6],
                "image_std": [0.5, 0.4, 0.25],
                "rescale_factor": 1 / 127.5,
                "offset": True,
                "size": {"height": 80, "width": 96},
                "crop_size": {"height": 128, "width": 128},
            },
            # [0,255] -> p/127.5 - 1 = 2x - 1 on x in [0,1]: mean (m+1)/2, std s/2; the
            # {height, width} resize counts as its short side 80, scaled by crop 64 / 128
            {"mean": (0.7, 0.75, 0.8), "std": (0.25, 0.2, 0.125), "resize_short": 40},
        ),
    ],
)
def test_preprocessor_config_sets_mean_std_and_resize(name, processor, options, want, tmp_path):
    path = _save(_model(name), tmp_path / name)
    proc = getattr(transformers, processor)(**options)
    proc.save_pretrained(path)
    assert (path / "preprocessor_config.json").is_file()
    h = open_hf(str(path), device="cpu", progress=False)
    inp = h.input
    assert inp.mean == pytest.approx(want["mean"]) and inp.std == pytest.approx(want["std"])
    assert inp.resize_short == want["resize_short"]
    size = CASES[name][2]["image_size"]
    assert inp.crop == (size, size)
    # independent: the HF processor's own output on the same pixels (no resize, no crop)
    frames = _video(CASES[name][2]["num_frames"], size)
    out = proc(frames, do_resize=False, do_center_crop=False, return_tensors="pt")
    hf = out["pixel_values"][0]  # (T, C, H, W)
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).double() / 255
    mean = torch.tensor(inp.mean, dtype=torch.float64)[:, None, None]
    std = torch.tensor(inp.std, dtype=torch.float64)[:, None, None]
    torch.testing.assert_close((x - mean) / std, hf.double(), rtol=1e-5, atol=1e-5)


def test_video_processor_file_is_read_first(tmp_path):
    path = _save(_model("videomae"), tmp_path / "m")
    transformers.VideoMAEImageProcessor(image_mean=[0.1] * 3).save_pretrained(path)
    transformers.VideoMAEVideoProcessor(image_mean=[0.3] * 3).save_pretrained(path)
    assert (path / "video_preprocessor_config.json").is_file()
    assert open_hf(str(path), device="cpu", progress=False).input.mean == pytest.approx((0.3,) * 3)


def test_placeholder_labels_count_as_none_and_weights_options(tmp_path):
    config_cls, model_cls, options = CASES["videomae"]
    config = getattr(transformers, config_cls)(**SMALL, intermediate_size=64, **options)
    config.num_labels = 3  # transformers names them LABEL_0, LABEL_1, LABEL_2
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(config).eval()
    path = _save(model, tmp_path / "m")
    assert json.loads((path / "config.json").read_text())["id2label"]["2"] == "LABEL_2"
    h = open_hf(str(path), device="cpu", progress=False)
    assert h.labels is None
    x = _pixels("videomae", n=1)
    with torch.no_grad():
        want = model(pixel_values=x).logits
    # a weights file loaded into the directory's architecture; random weights of it
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "w.safetensors")
    hw = open_hf(str(path), weights=tmp_path / "w.safetensors", device="cpu", progress=False)
    hr = open_hf(str(path), pretrained=False, device="cpu", progress=False)
    with torch.no_grad():
        torch.testing.assert_close(hw.module(x.transpose(1, 2)), want)
        assert not torch.allclose(hr.module(x.transpose(1, 2)), want)
    assert "w.safetensors" in hw.weights_source and "random" in hr.weights_source


def test_id2label_that_does_not_cover_the_head_is_one_line(tmp_path):
    path = _save(_model("videomae"), tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    cfg["id2label"] = {"0": "pour", "1": "stir", "5": "wipe"}
    cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VidcamError) as err:
        open_hf(str(path), device="cpu", progress=False)
    assert "id2label" in str(err.value) and "\n" not in str(err.value)


def test_progress_false_prints_nothing_and_restores_the_bars(tmp_path, capfd):
    path = _save(_model("vivit"), tmp_path / "m")
    capfd.readouterr()
    logging = transformers.utils.logging
    assert logging.is_progress_bar_enabled()
    open_hf(str(path), device="cpu", progress=False)
    assert capfd.readouterr().err == ""
    assert logging.is_progress_bar_enabled()


@pytest.mark.parametrize("config_cls", ["VJEPA2Config", "BertConfig"])
def test_model_type_without_a_token_layout_is_one_line(config_cls, tmp_path):
    getattr(transformers, config_cls)().save_pretrained(tmp_path / "m")
    with pytest.raises(VidcamError) as err:
        open_hf(str(tmp_path / "m"), device="cpu", progress=False)
    msg = str(err.value)
    model_type = getattr(transformers, config_cls).model_type
    assert f"model_type {model_type!r}" in msg and "supported: videomae, timesformer, vivit" in msg
    assert "\n" not in msg


class Payload:
    """Pickles to a call of os.system that writes the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_payload_in_pytorch_model_bin_is_refused_and_never_runs(writer, tmp_path):
    path = _save(_model("videomae"), tmp_path / "m")
    (path / "model.safetensors").unlink()
    marker = tmp_path / "MARKER"
    payload = {"videomae.embeddings.patch_embeddings.projection.weight": Payload(str(marker))}
    if writer == "torch.save":
        torch.save(payload, path / "pytorch_model.bin")
    else:
        (path / "pytorch_model.bin").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(VidcamError) as err:
        open_hf(str(path), device="cpu", progress=False)
    msg = str(err.value)
    assert "pytorch_model.bin" in msg and "\n" not in msg
    assert "weights_only=False" not in msg and "arbitrary code" not in msg
    assert "system" in msg  # the refused global, named
    # transformers' own loader (the hub path) refuses it too, as one line
    with pytest.raises(VidcamError) as err2:
        zoo_hf.load_pretrained(
            "AutoModelForVideoClassification", str(path), local_only=True, what="m", fix="x"
        )
    assert "weights_only=False" not in str(err2.value) and "\n" not in str(err2.value)
    assert not marker.exists()


def test_checkpoint_without_a_classifier_is_refused(tmp_path, capfd):
    """A VideoMAEModel (no head) would get a random classifier: refused, as one line, without
    transformers' own load report; its log level comes back."""
    options = CASES["videomae"][2]
    config = transformers.VideoMAEConfig(**SMALL, intermediate_size=64, **options, id2label=LABELS)
    transformers.VideoMAEModel(config).save_pretrained(tmp_path / "base")
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    capfd.readouterr()
    with pytest.raises(VidcamError) as err:
        open_hf(str(tmp_path / "base"), device="cpu", progress=False)
    msg = str(err.value)
    assert "classifier.weight" in msg and "--random-weights" in msg and "\n" not in msg
    assert capfd.readouterr().err == ""
    assert logging.get_verbosity() == level


def test_bad_references_are_one_line(tmp_path):
    cases = {
        "MCG-NJU/not-downloaded": "HF_HUB_OFFLINE",  # a hub id, offline: cache only
        str(tmp_path / "missing" / "deeper" / "dir"): "no such directory",
        str(tmp_path): "config",  # a directory without config.json
    }
    (tmp_path / "file.txt").write_text("x")
    cases[str(tmp_path / "file.txt")] = "is a file"
    cases[""] = "hf:DIR or hf:ORG/NAME"  # nothing after hf:
    for ref, words in cases.items():
        with pytest.raises(VidcamError) as err:
            open_hf(ref, device="cpu", progress=False)
        msg = str(err.value)
        assert words in msg and "\n" not in msg, (ref, msg)
        assert f"hf:{ref}" in msg


def test_unreachable_hub_is_one_line_from_the_cache_without_retries(tmp_path, monkeypatch):
    """Not offline by the environment, but the hub endpoint refuses connections: one probe, then
    the cache only (huggingface_hub would retry for half a minute), one line saying why."""
    import socket

    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "VIDCAM_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    with socket.socket() as server:  # a port that listens, then one that no longer does
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        assert zoo_hf.hub_unreachable() is None
    with pytest.raises(VidcamError) as err:
        open_hf("some-org/some-model", device="cpu", progress=False)
    msg = str(err.value)
    assert "127.0.0.1 cannot be reached" in msg and "\n" not in msg
    assert "hf:some-org/some-model" in msg and "save_pretrained" in msg
