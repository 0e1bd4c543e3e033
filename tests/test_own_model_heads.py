"""Fine-tuned heads (issue 24): ``--model ARCH --weights ft.pt`` whose head has another class
count builds the matching head from the checkpoint's shapes, for every registered architecture,
and the class names stored beside the weights are used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.models.registry import MODELS, load_model

SEVEN = [f"act_{i}" for i in range(7)]
ARCHS = [name for name, spec in MODELS.items() if spec.loader is None]


def _seven_class_reference(spec) -> nn.Module:
    """The architecture (small test variant) with its head replaced BY HAND: the module owning
    the last two parameters (weight, bias) becomes a 7-output Linear / Conv3d."""
    torch.manual_seed(0)
    model = spec.make(**spec.test_arch).eval()
    (wk, _), (bk, _) = list(model.named_parameters())[-2:]
    owner = wk.rsplit(".", 1)[0]
    assert bk == owner + ".bias"
    head = model.get_submodule(owner)
    if isinstance(head, nn.Linear):
        new = nn.Linear(head.in_features, 7)
    else:
        new = nn.Conv3d(head.in_channels, 7, head.kernel_size, head.stride, head.padding)
    parent_name, _, attr = owner.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
    return model.eval()


#: torchvision's MViTs take exactly 16 x 224 x 224 (no small variant): a forward costs ~7 s on
#: a loaded CPU, so their whole-model logits are compared at the head (same trunk state below)
HEAD_ONLY = {"mvit_v1_b", "mvit_v2_s"}


@pytest.mark.parametrize("name", ARCHS)
def test_every_registered_architecture_takes_a_7_class_head(name, tmp_path):
    spec = MODELS[name]
    ref = _seven_class_reference(spec)
    path = tmp_path / "ft.pt"
    torch.save({"state_dict": ref.state_dict(), "labels": SEVEN, "epoch": 3}, path)
    loaded = spec.build(weights=path, **spec.test_arch)
    want_state, got_state = ref.state_dict(), loaded.state_dict()
    assert list(got_state) == list(want_state)
    assert all(torch.equal(got_state[k], v) for k, v in want_state.items())
    torch.manual_seed(1)
    if name in HEAD_ONLY:
        owner = list(dict(ref.named_parameters()))[-1].rsplit(".", 1)[0]
        x = torch.randn(2, ref.get_submodule(owner).in_features)
        ref, loaded = ref.get_submodule(owner), loaded.get_submodule(owner)
    else:
        x = torch.randn(1, 3, *spec.test_input)
    with torch.no_grad():
        want, got = ref(x), loaded(x)
    assert want.shape[-1] == 7
    assert torch.equal(got, want)


def _sample_checkpoint(tmp_path, n: int, **extra) -> tuple[nn.Module, object]:
    from vidcam.models.sample_net import SampleNet

    torch.manual_seed(0)
    net = SampleNet(num_classes=n).eval()
    path = tmp_path / f"sample{n}.pt"
    torch.save({"model_state": net.state_dict(), **extra}, path)
    return net, path


def test_checkpoint_labels_are_used_and_logits_match(tmp_path):
    net, path = _sample_checkpoint(tmp_path, 7, classes=SEVEN)
    h = load_model("sample", weights=path, progress=False)
    assert h.labels == tuple(SEVEN)
    x = torch.randn(2, 3, 16, 112, 112)
    with torch.no_grad():
        assert torch.equal(h.module(x), net(x))


def test_labels_as_an_index_mapping(tmp_path):
    _, path = _sample_checkpoint(tmp_path, 7, class_names={str(i): n for i, n in enumerate(SEVEN)})
    assert load_model("sample", weights=path, progress=False).labels == tuple(SEVEN)


def test_a_new_head_without_names_drops_the_registered_ones(tmp_path):
    _, path = _sample_checkpoint(tmp_path, 7)
    assert load_model("sample", weights=path, progress=False).labels is None
    _, path6 = _sample_checkpoint(tmp_path, 6)  # the registered count: registered names kept
    assert load_model("sample", weights=path6, progress=False).labels[0] == "moving_left"


def test_labels_file_overrides_the_checkpoint_and_a_wrong_count_names_both(tmp_path):
    _, path = _sample_checkpoint(tmp_path, 7, labels=SEVEN)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"mine_{i}" for i in range(7)) + "\n\n", encoding="utf-8")
    h = open_model("sample", weights=path, labels=names, device="cpu", progress=False)
    assert h.labels == tuple(f"mine_{i}" for i in range(7))
    names.write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(VidcamError) as e:
        open_model("sample", weights=path, labels=str(names), device="cpu", progress=False)
    assert "3 class names" in str(e.value) and "7 classes" in str(e.value)
    assert str(names) in str(e.value)


def test_stored_labels_of_the_wrong_count_are_refused(tmp_path):
    _, path = _sample_checkpoint(tmp_path, 7, labels=SEVEN[:5])
    with pytest.raises(VidcamError, match="5 class names .* 7 classes"):
        load_model("sample", weights=path, progress=False)


def test_a_mismatch_outside_the_head_still_names_the_keys(tmp_path):
    _, path = _sample_checkpoint(tmp_path, 6)
    state = torch.load(path, weights_only=True)["model_state"]
    state["block1.0.weight"] = torch.zeros(5, 16, 1, 3, 3)
    torch.save(state, path)
    with pytest.raises(VidcamError, match="block1.0.weight"):
        load_model("sample", weights=path, progress=False)
