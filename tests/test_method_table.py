"""The method table (vidcam.cam.methods.METHODS) drives the engine, the command line and the
report: every row runs through ``explain``, its columns change what is computed, a new method is
one row plus one function, and the table stays importable without torch."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidcam.cam import dispatch, methods
from vidcam.cam.explainer import Explainer, explain
from vidcam.cam.methods import METHODS, Method
from vidcam.cam.perturbation import Perturbation
from vidcam.errors import VidcamError

ENGINE_ROWS = [m for m in METHODS.values() if m.engine]
GUIDED_ROWS = [m for m in METHODS.values() if m.guided]
SMALL = Perturbation(masks=8, steps=2)


class Net(nn.Module):
    """conv -> ReLU -> conv -> ReLU (the explained ``block``) -> pool -> linear: 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv3d(4, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)).mean((2, 3, 4)))


@pytest.fixture(scope="module")
def net() -> Net:
    return Net().eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 3, 4, 8, 8)


def test_the_table_and_the_light_choices_import_no_torch():
    code = (
        "import sys\n"
        "import vidcam.cam.methods, vidcam.cli.choices, vidcam.evaluate.choices\n"
        "print('TORCH' if 'torch' in sys.modules else 'LIGHT')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "LIGHT", out.stdout + out.stderr


def test_rows_are_complete_and_consistent():
    assert list(METHODS) == [m.id for m in METHODS.values()]  # keyed by their own id
    for m in METHODS.values():
        assert m.kind in methods.KINDS and m.title and m.cost, m
        assert re.fullmatch(r"#[0-9a-f]{6}", m.color), m
        assert m.base.engine and m.base.id == m.cam  # a guided row names an engine row
        if m.engine:
            assert callable(dispatch.map_function(m.id)), m  # every engine row dispatches
        else:
            assert m.guided and not m.function and m.kind == m.base.kind
        if m.gradients_option:  # only a gradient row can take gradients=
            assert m.kind == methods.GRADIENT and m.gradients in ("positive", "all")
        if m.slow:
            assert m.scores_masked_clips  # slow = masked forwards, never the forward alone
    titles = [m.title for m in METHODS.values()]
    assert len(set(titles)) == len(titles)
    assert methods.DEFAULT_METHOD in methods.ENGINE_METHODS


@pytest.mark.parametrize("row", ENGINE_ROWS, ids=lambda m: m.id)
def test_every_engine_row_is_explained(row, net, clip):
    res = explain(net, clip, "topk:2", layer="block", method=row.id, perturbation=SMALL)
    assert res.method == row.id and res.maps.shape == (2, 2, 4, 8, 8)
    assert float(res.maps.min()) >= 0.0 and float(res.maps.max()) <= 1.0
    assert res.layers == (("block",) if row.needs_layer else ("input",))
    # the kind's cost, counted by the engine: the forward alone, or masked forwards beside it
    assert (res.forwards > 1) == row.scores_masked_clips
    assert (res.masked_clips > 0) == row.scores_masked_clips


def test_a_callable_target_is_refused_exactly_by_the_rows_that_score_masked_clips(net, clip):
    def fn(out):
        return out[:, 0]

    for row in ENGINE_ROWS:
        if row.scores_masked_clips:
            with pytest.raises(VidcamError, match="masked clips by class"):
                explain(net, clip, fn, layer="block", method=row.id, perturbation=SMALL)
        else:
            assert explain(net, clip, fn, layer="block", method=row.id).maps.shape[1] == 1


def test_guided_rows_are_refused_by_the_engine_with_the_way_to_compute_them(net, clip):
    for row in GUIDED_ROWS:
        with pytest.raises(VidcamError, match="guided_cam"):
            explain(net, clip, layer="block", method=row.id)


def test_the_gradients_column_is_what_separates_layercam_from_hirescam(net, clip, monkeypatch):
    """LayerCAM and HiResCAM share one map function; their rows differ in ``gradients``. A
    LayerCAM row switched to ``gradients="all"`` computes HiResCAM's map, bit for bit."""
    hires = explain(net, clip, [0, 2], layer="block", method="hirescam")
    layer = explain(net, clip, [0, 2], layer="block", method="layercam")
    assert not torch.equal(layer.raw_per_layer[0], hires.raw_per_layer[0])
    row = METHODS["layercam"]
    monkeypatch.setitem(METHODS, "layercam", Method(**{**vars(row), "gradients": "all"}))
    switched = explain(net, clip, [0, 2], layer="block", method="layercam")
    assert torch.equal(switched.raw_per_layer[0], hires.raw_per_layer[0])


def test_the_pooled_column_decides_where_pooling_applies(net, clip):
    for row in ENGINE_ROWS:
        if row.pooled:
            volume = explain(net, clip, 0, layer="block", method=row.id)
            frame = explain(net, clip, 0, layer="block", method=row.id, pooling="frame")
            assert volume.weights_per_layer[0].shape[-1] == 1  # one weight per channel
            assert frame.weights_per_layer[0].shape[-1] == 4  # one per time slice (t = 4)
        else:
            with pytest.raises(VidcamError, match="pooling='frame' applies to"):
                Explainer(net, "block", method=row.id, pooling="frame")


def test_the_softmax_column_names_the_rows_with_the_softmax_variant(net, clip):
    for row in ENGINE_ROWS:
        if row.softmax:
            res = explain(net, clip, 1, layer="block", method=row.id, softmax=True)
            assert res.method == row.id + "/softmax"
        else:
            with pytest.raises(VidcamError, match="softmax variant"):
                Explainer(net, "block", method=row.id, softmax=True)


def energy_map(req: dispatch.MapRequest) -> dispatch.MethodMap:
    """The toy method of the README's "Adding a method": Σ_c A_c², the same for every target."""
    energy = req.acts.square().sum(1, keepdim=True)  # (N, 1, t, h, w)
    raw = energy.expand(-1, req.k, -1, -1, -1)
    return dispatch.MethodMap(raw=raw, weights=torch.ones(*raw.shape[:2], 1))


def test_a_new_method_is_one_row_and_one_function(net, clip, monkeypatch):
    row = Method("energy", "Activation energy", methods.ACTIVATION_ONLY, "energy_map",
                 "#000080", methods.FORWARD_ONLY)  # fmt: skip
    monkeypatch.setitem(METHODS, row.id, row)
    monkeypatch.setattr(dispatch, "energy_map", energy_map, raising=False)
    res = explain(net, clip, "topk:3", layer="block", method="energy")
    # the same map computed independently: the block's output, squared, summed over
    # channels, upsampled trilinearly to the clip and min-max normalised per clip
    with torch.no_grad():
        acts = net.block(net.stem(clip))
        up = F.interpolate(acts.square().sum(1, keepdim=True), size=(4, 8, 8), mode="trilinear")
    lo = up.amin((1, 2, 3, 4), keepdim=True)
    hi = up.amax((1, 2, 3, 4), keepdim=True)
    expected = ((up - lo) / (hi - lo)).expand(-1, 3, -1, -1, -1)
    torch.testing.assert_close(res.maps, expected, rtol=1e-5, atol=1e-6)
    assert res.method == "energy" and res.forwards == 1 and res.targets.shape == (2, 3)
    # it runs beside the others from the same forward, and the panels know it
    both = Explainer(net, "block", method=("energy", "gradcam")).explain_all(clip, 0)
    assert torch.equal(both["energy"].maps[:, :1], res.maps[:, :1])
    assert [p.id for p in methods.panels_for("energy", True)] == ["gradcam++", "energy"]


def test_a_row_whose_function_is_missing_says_what_to_write(net, clip, monkeypatch):
    row = Method("nofn", "No function", methods.ACTIVATION_ONLY, "nofn_map", "#000001",
                 methods.FORWARD_ONLY)  # fmt: skip
    monkeypatch.setitem(METHODS, row.id, row)
    with pytest.raises(VidcamError, match=r"def nofn_map\(req: MapRequest\) -> MethodMap"):
        explain(net, clip, layer="block", method="nofn")


def test_default_panels_pair_each_row_with_its_partner_in_table_order():
    order = list(METHODS)
    for row in METHODS.values():
        pair = row.side_by_side()
        assert row in pair and len(pair) == 2
        assert [order.index(p.id) for p in pair] == sorted(order.index(p.id) for p in pair)
        partner = next(p for p in pair if p is not row)
        assert partner.id == (row.cam if row.guided else row.pair_with)


def test_cli_method_choices_are_every_row():
    from vidcam.cli import parse

    for row in METHODS.values():
        assert parse(["explain", "in.mp4", "--method", row.id]).method == row.id
    with pytest.raises(SystemExit) as e:
        parse(["explain", "in.mp4", "--method", "layrcam"])
    assert e.value.code == 2


def test_cli_help_lists_every_row(capsys):
    from vidcam.cli import main

    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    text = re.sub(r"\s+", "", capsys.readouterr().out)
    for row in METHODS.values():
        assert row.id in text


def test_report_colours_are_the_table_and_all_distinct():
    from vidcam.evaluate.plot import COLORS, REFERENCE_COLORS

    assert {m: COLORS[m] for m in METHODS} == {m.id: m.color for m in METHODS.values()}
    colours = [COLORS[k] for k in (*METHODS, *REFERENCE_COLORS)]
    assert len(set(colours)) == len(colours)


def test_titles_appear_on_the_report_page(tmp_path):
    from conftest import pattern_frames, write_video

    from vidcam.report import write_video_report

    video = write_video(tmp_path / "v.mkv", pattern_frames(4, 32, 32))
    explanation = {"windows": [], "panels": list(METHODS), "method": "gradcam"}
    page = write_video_report(tmp_path / "p.html", explanation=explanation, video=video)
    text = page.read_text(encoding="utf-8")
    for i, row in enumerate(METHODS.values(), start=1):
        assert f"<li>{row.title} (panel {i}," in text
    # without a list: the default pair of the method, by title
    explanation = {"windows": [], "method": "guided-gradcam++", "width": 32}
    page = write_video_report(
        tmp_path / "q.html",
        explanation=explanation,
        video=video,
        settings={"side_by_side": "yes"},
    )
    text = page.read_text(encoding="utf-8")
    assert "<li>Grad-CAM++ (panel 1," in text and "<li>Guided Grad-CAM++ (panel 2," in text
