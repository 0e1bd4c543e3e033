"""Every form of ``--model`` (issue 24): file.py:FUNCTION, package.module:FUNCTION, entry
points, and the one-line errors of a factory that fails, returns the wrong thing, or a model
whose output or labels do not fit."""

from __future__ import annotations

import sys

import pytest
import torch

from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.models.sample_net import SAMPLE_INPUT, SampleNet
from vidcam.models.sources import check_ref, kind_of

NET = '''
import torch
from torch import nn

IMPORTS = globals().setdefault("IMPORTS", [])
IMPORTS.append(1)


class Tiny(nn.Module):
    """(N, 3, T, H, W) -> (N, classes); features: a 3D conv block."""

    def __init__(self, classes=3, ntchw=False):
        super().__init__()
        self.ntchw = ntchw
        self.features = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        if self.ntchw:
            x = x.transpose(1, 2)
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))


SPEC = dict(clip_len=4, crop=[16, 16], resize_short=16, mean=[0.5] * 3, std=[0.25] * 3, stride=1)


def bare():
    torch.manual_seed(0)
    return Tiny()


def mapping():
    return {"module": bare(), "spec": SPEC, "labels": ["a", "b", "c"], "layer": "features"}


def extra_key():
    return {"module": bare(), "spec": SPEC, "colour": "red"}


def raises():
    raise RuntimeError("no GPU left in this universe")


def not_a_module():
    return 42


def wrong_output():
    class Seq(Tiny):
        def forward(self, x):
            return self.features(x)
    return {"module": Seq(), "spec": SPEC}


def bad_labels():
    return {"module": bare(), "spec": SPEC, "labels": ["only", "two"]}


def time_major():
    return {"module": Tiny(ntchw=True), "spec": SPEC}


def scripted():
    return torch.jit.script(bare())
'''


@pytest.fixture
def netfile(tmp_path):
    path = tmp_path / "my nets" / "net.py"
    path.parent.mkdir()
    path.write_text(NET)
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_kinds():
    assert kind_of("r3d_18") == "name"
    assert kind_of("hf:org/name") == "hf"
    assert kind_of("nets/net.py:make") == "file"
    assert kind_of("net.py:make") == "file"
    assert kind_of("pkg.models:make") == "module"
    assert kind_of("model.pt2") == "model_file"


def test_a_file_factory_returning_a_module_needs_a_spec_then_matches_the_module(netfile):
    with pytest.raises(VidcamError, match="no input spec.*--card") as e:
        open_model(f"{netfile}:bare", device="cpu")
    _one_line(e)
    from vidcam.models.spec import InputSpec

    spec = InputSpec(clip_len=4, crop=(16, 16), resize_short=16, stride=1)
    h = open_model(f"{netfile}:bare", spec=spec, device="cpu")
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 16, 16)
    (mod,) = [
        m
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) == str(netfile.resolve())
    ]
    torch.manual_seed(0)
    ref = mod.Tiny().eval()
    with torch.no_grad():
        assert torch.equal(h.module(x), ref(x))
    assert h.name == f"{netfile}:bare" and h.labels is None and h.input == spec


def test_the_file_is_imported_once_under_its_own_name(netfile):
    h1 = open_model(f"{netfile}:mapping", device="cpu")
    h2 = open_model(f"{netfile}:mapping", device="cpu")
    names = [
        n
        for n, m in list(sys.modules.items())
        if n.startswith("vidcam_user_") and getattr(m, "__file__", None) == str(netfile.resolve())
    ]
    assert len(names) == 1
    assert sys.modules[names[0]].IMPORTS == [1]
    assert h1.labels == h2.labels == ("a", "b", "c")
    assert h1.layer == "features" and h1.input.clip_len == 4 and h1.input.crop == (16, 16)
    assert str(netfile.parent) not in sys.path  # the folder was on sys.path while importing


@pytest.mark.parametrize(
    "func,needle",
    [
        ("extra_key", "unknown key 'colour'"),
        ("raises", "raised RuntimeError: no GPU left in this universe"),
        ("not_a_module", "returns a int, not an nn.Module"),
        ("wrong_output", "returns shape (1, 4, 4, 16, 16) for a zero clip"),
        ("bad_labels", "2 class names but model"),
        ("missing", "has no function 'missing' (it defines: "),
        ("scripted", "TorchScript"),
        ("time_major", "input layout"),
    ],
)
def test_factory_errors_are_one_line(netfile, func, needle):
    with pytest.raises(VidcamError) as e:
        open_model(f"{netfile}:{func}", device="cpu")
    assert needle in _one_line(e)


def test_bad_labels_name_both_counts(netfile):
    with pytest.raises(VidcamError) as e:
        open_model(f"{netfile}:bad_labels", device="cpu")
    assert "has 2 class names but model" in str(e.value) and "outputs 3 classes" in str(e.value)


def test_a_time_major_model_is_told_to_set_the_layout(netfile):
    with pytest.raises(VidcamError) as e:
        open_model(f"{netfile}:time_major", device="cpu")
    assert 'layout = "NTCHW"' in str(e.value) and "runs on (N, T, C, H, W)" in str(e.value)


def test_missing_file_and_function_are_refused_before_importing(tmp_path, netfile):
    with pytest.raises(VidcamError, match="does not exist"):
        check_ref(f"{tmp_path}/nope.py:make")
    with pytest.raises(VidcamError, match="needs the function to call"):
        open_model(str(netfile), device="cpu")


def test_a_package_module_factory(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg_m1"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    h = open_model("userpkg_m1.models:mapping", device="cpu")
    assert h.labels == ("a", "b", "c")
    with pytest.raises(VidcamError, match="no module named 'userpkg_m1.nothing'"):
        open_model("userpkg_m1.nothing:mapping", device="cpu")


def _fake_distribution(root, name: str, target: str) -> None:
    dist = root / "vidcam_fake_models-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vidcam-fake-models\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(f"[vidcam.models]\n{name} = {target}\n")


def test_entry_points_register_names_and_registry_names_win(tmp_path, monkeypatch):
    (tmp_path / "fake_ep_models.py").write_text(
        NET + "\n\ndef sample():\n    raise RuntimeError('the registry should have won')\n"
    )
    _fake_distribution(tmp_path, "tinynet", "fake_ep_models:mapping")
    dist = tmp_path / "vidcam_fake_models-0.1.dist-info"
    (dist / "entry_points.txt").write_text(
        "[vidcam.models]\ntinynet = fake_ep_models:mapping\nsample = fake_ep_models:sample\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "fake_ep_models" not in sys.modules
    h = open_model("tinynet", device="cpu")
    assert h.labels == ("a", "b", "c") and h.name == "tinynet"
    assert open_model("sample", pretrained=False, device="cpu").labels[0] == "moving_left"
    with pytest.raises(VidcamError) as e:
        open_model("tinynett", device="cpu")
    assert "Entry points (vidcam.models): tinynet, sample" in _one_line(e)


def test_only_the_named_entry_point_is_loaded(tmp_path, monkeypatch):
    (tmp_path / "fake_ep_good.py").write_text(NET)
    (tmp_path / "fake_ep_bad.py").write_text("raise SystemExit('imported!')\n")
    dist = tmp_path / "vidcam_fake_models-0.1.dist-info"
    _fake_distribution(tmp_path, "good", "fake_ep_good:mapping")
    (dist / "entry_points.txt").write_text(
        "[vidcam.models]\ngood = fake_ep_good:mapping\nbad = fake_ep_bad:make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert open_model("good", device="cpu").labels == ("a", "b", "c")
    assert "fake_ep_bad" not in sys.modules


def test_user_weights_and_their_labels_load_into_a_factory_module(netfile, tmp_path):
    torch.manual_seed(5)
    src = open_model(f"{netfile}:mapping", device="cpu").module
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save({"state_dict": state, "classes": ["x", "y", "z"]}, path)
    h = open_model(f"{netfile}:mapping", weights=path, device="cpu")
    assert h.labels == ("x", "y", "z")  # the checkpoint's names go with its weights
    got = h.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
    assert "local checkpoint" in h.weights_source


def test_an_nn_module_keeps_its_training_flag_and_gets_a_dry_run():
    net = SampleNet().train()
    h = open_model(net, spec=SAMPLE_INPUT, device="cpu")
    assert h.module is net and net.training  # the dry run ran in eval mode and restored it
    with pytest.raises(VidcamError, match="6 classes"):
        open_model(net, spec=SAMPLE_INPUT, labels=["a"], device="cpu")
