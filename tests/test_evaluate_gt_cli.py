"""`vidcam evaluate` on clips with ground truth in every format, over the whole frame
(``--spatial full / tiles / center``), against independent computations."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcam.cli import main
from vidcam.evaluate.gt_masks import write_mask_gt
from vidcam.evaluate.options import EvalOptions
from vidcam.evaluate.pipeline import evaluate
from vidcam.evaluate.synth import SynthConfig, make_clip, write_clip
from vidcam.models.open import open_model
from vidcam.video.spatial import tile_offsets

NAME = "v_MovingRight_g01_c01"
FAST = ["--methods", "gradcam", "--fill", "blur", "--fractions", "20", "--units", "none"]


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """One 112×224 clip whose two actors sit left and right of the centre crop, its JSON, the
    same boxes as a pyannot pickle (x, y, w, h) and as a mask file."""
    d = tmp_path_factory.mktemp("wide")
    clip = make_clip(11, "moving_right", instances=1, config=SynthConfig(width=224))
    videos = d / "videos"
    videos.mkdir()
    write_clip(clip, videos / f"{NAME}.mp4")
    gt_json = json.loads((videos / f"{NAME}.json").read_text())
    jdir = d / "json"
    jdir.mkdir()
    (videos / f"{NAME}.json").rename(jdir / f"{NAME}.json")
    t0, t1 = clip.interval
    boxes = np.array([clip.boxes[t][0] for t in range(t0, t1)], dtype=np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.uint8)
    db = {
        np.str_(f"MovingRight/{NAME}"): {
            "numf": np.uint8(16),
            "label": 1,
            "annotations": [{"label": 1, "sf": t0, "ef": t1, "boxes": xywh}],
        }
    }
    pkl = d / "pyannot.pkl"
    pkl.write_bytes(pickle.dumps(db, protocol=3))
    masks = np.zeros((16, 112, 224), dtype=bool)
    for t in range(t0, t1):
        x0, y0, x1, y1 = clip.boxes[t][0]
        masks[t, y0:y1, x0:x1] = True
    mdir = d / "masks"
    mdir.mkdir()
    write_mask_gt(mdir / f"{NAME}.npz", masks, label="moving_right", interval=(t0, t1))
    return videos / f"{NAME}.mp4", gt_json, jdir, pkl, mdir


def _run(video: Path, out: Path, *extra: str) -> dict:
    argv = ["evaluate", str(video), "--device", "cpu", "--quiet", "--json", str(out), *FAST]
    assert main([*argv, *extra]) == 0
    return json.loads(out.read_text())


def _centre_energy(gt: dict, frames, window, offset) -> float:
    """Energy in box of the centre Gaussian (sigma a quarter of each side), by hand."""
    h, w = window
    ys = (np.arange(h) + 0.5 - h / 2) / (0.25 * h)
    xs = (np.arange(w) + 0.5 - w / 2) / (0.25 * w)
    g = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    shares = []
    for f in frames:
        if not gt["boxes"][f]:
            continue
        inside = np.zeros((h, w), dtype=bool)
        for x0, y0, x1, y1 in gt["boxes"][f]:
            inside[
                max(0, y0 - offset[0]) : y1 - offset[0], max(0, x0 - offset[1]) : x1 - offset[1]
            ] = True
        shares.append(float((g * inside).sum() / g.sum()))
    return sum(shares) / len(shares)


@pytest.mark.parametrize(
    "spatial, window, offset", [("full", (112, 224), (0, 0)), ("center", (112, 112), (0, 56))]
)
def test_localization_covers_the_window_explained(wide, tmp_path, spatial, window, offset):
    video, gt, jdir, _, _ = wide
    data = _run(
        video,
        tmp_path / "r.json",
        "--gt",
        str(jdir),
        "--spatial",
        spatial,
        "--references",
        "centre",
    )
    assert data["schema"] == "vidcam.evaluate" and data["schema_version"] == 2
    clip = data["clips"][0]
    assert clip["spatial"] == spatial and tuple(clip["window"]) == window
    centre = clip["methods"]["centre"]
    assert centre["energy_pg"] == pytest.approx(
        _centre_energy(gt, clip["frames"], window, offset), rel=1e-5
    )
    # the localization table prints the centre prior's row
    assert data["options"]["pointing_tolerance"] == 15.0
    assert "centre" in data["summary"]["methods"]


def test_pickle_masks_and_json_give_the_same_localization(wide, tmp_path, capsys):
    video, _, jdir, pkl, mdir = wide
    runs = {
        name: _run(
            video,
            tmp_path / f"{name}.json",
            "--gt",
            str(gt),
            "--spatial",
            "full",
            "--references",
            "centre,random",
        )["clips"][0]
        for name, gt in (("json", jdir), ("pickle", pkl), ("masks", mdir))
    }
    keys = ("energy_pg", "pointing", "pointing_tol", "coverage", "temporal", "iou")
    for m in ("gradcam", "centre", "random"):
        ref = {k: runs["json"]["methods"][m][k] for k in keys}
        assert ref["energy_pg"] is not None
        for other in ("pickle", "masks"):
            got = {k: runs[other]["methods"][m][k] for k in keys}
            assert got == pytest.approx(ref, abs=1e-9), (m, other)
    assert (
        runs["pickle"]["gt_label"] == "MovingRight" and runs["masks"]["gt_label"] == "moving_right"
    )
    assert "pyannot.pkl" in runs["pickle"]["gt_origin"]


def test_tiles_score_the_mean_of_the_tiles(wide, tmp_path):
    video, _, jdir, _, _ = wide
    em = open_model("sample", device="cpu", progress=False)
    opts = EvalOptions(
        methods=("gradcam",),
        fills=("blur",),
        fractions=(0.2,),
        units=(),
        references=("centre",),
        spatial="tiles",
        gt_dir=jdir,
        quiet=True,
    )
    res = evaluate([video], em, opts)
    clip = res.clips[0]
    assert clip["spatial"] == "tiles" and clip["window"] == [112, 224]
    # independently: decode the sampled frames, cut the tiles, average their probabilities
    import av

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    x = torch.from_numpy(np.stack([frames[i] for i in clip["frames"]])).float() / 255
    x = x.permute(3, 0, 1, 2)[None]  # (1, 3, T, 112, 224)
    mean = torch.tensor(em.input.mean).view(1, 3, 1, 1, 1)
    std = torch.tensor(em.input.std).view(1, 3, 1, 1, 1)
    probs = [
        em.module((x[..., o : o + 112] - mean) / std).softmax(-1) for o in tile_offsets(224, 112)
    ]
    y = torch.stack(probs).mean(0)[0, clip["target"]]
    assert clip["Y"] == pytest.approx(float(y), abs=2e-3)  # H.264's decoder vs PyAV: same frames
    assert clip["Y_logp"] == pytest.approx(float(torch.log(y)), abs=5e-3)


def test_model_options_and_device_errors(wide, tmp_path, capsys):
    video = wide[0]
    data = _run(video, tmp_path / "r.json", "--no-pretrained", "--references", "none")
    assert data["model"]["weights"].startswith("random")
    data = _run(
        video, tmp_path / "r2.json", "--random-weights", "--references", "none", "--layer", "block2"
    )
    assert data["model"]["layers"] == ["block2"]
    assert main(["evaluate", str(video), "--device", "meta", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--device 'meta'" in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", str(video), "--gt", str(tmp_path / "missing.pkl"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(video), "--pointing-tolerance", "nan", "--quiet"]) == 2
    assert "tolerance" in capsys.readouterr().err


def test_fill_none_measures_localization_only(wide, tmp_path):
    video, _, jdir, _, _ = wide
    out = tmp_path / "r.json"
    argv = ["evaluate", str(video), "--device", "cpu", "--quiet", "--json", str(out)]
    argv += ["--methods", "gradcam", "--fill", "none", "--units", "none", "--gt", str(jdir)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    rec = data["clips"][0]["methods"]["gradcam"]
    assert not any(k.startswith(("remove_", "keep_")) for k in rec)
    assert rec["energy_pg"] is not None and "ranking" not in data["summary"]
    assert data["timing"]["masked_forwards"] == 5 + 1  # E for gradcam + 4 references + baseline


def test_the_centre_prior_is_in_every_localization_table(wide, tmp_path):
    from vidcam.evaluate.outputs import format_table

    video, gt, jdir, _, _ = wide
    em = open_model("sample", device="cpu", progress=False)
    base = dict(methods=("gradcam",), fills=(), units=(), gt_dir=jdir, quiet=True, spatial="full")
    alone = evaluate([video], em, EvalOptions(references=("random",), **base))
    scored = evaluate([video], em, EvalOptions(references=("centre",), **base))
    clip = alone.clips[0]
    assert "centre" not in clip["methods"]
    # measured without a masked forward, and equal to the scored centre map's localization
    scored_centre = scored.clips[0]["methods"]["centre"]
    assert clip["centre_prior"] == {k: scored_centre[k] for k in clip["centre_prior"]}
    assert clip["centre_prior"]["energy_pg"] == pytest.approx(
        _centre_energy(gt, clip["frames"], (112, 224), (0, 0)), rel=1e-5
    )
    assert alone.summary["centre_prior"]["energy_pg"] == clip["centre_prior"]["energy_pg"]
    assert "| centre prior |" in format_table(alone)
