"""The preview contact sheet: a grid of frames spread over the video, each with its heat, from
the Python API and the CLI; checked before any work and written atomically."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.video import write_preview
from vidcam.video.decode import iter_frames, probe
from vidcam.video.preview import ContactSheet, preview_indices

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "moving_right_2x.mp4"
TILE, BAND, GAP, HEAD, FOOT = 360, 34, 6, 44, 40


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[..., ::-1]


def test_preview_indices_spread_over_the_video():
    assert preview_indices(120, 12) == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 105, 115]
    assert preview_indices(5, 12) == [0, 1, 2, 3, 4]
    assert preview_indices(0, 12) == []


def test_api_preview_grid_and_heat(tmp_path):
    png = tmp_path / "p.png"
    res = write_preview(SAMPLE, png, model="sample", progress=False)
    assert res.frames == 16 and [p.name for p in tmp_path.iterdir()] == ["p.png"]
    sheet = _read(png)
    info = probe(SAMPLE)
    th = round(info.height * TILE / info.width)
    cell_h = th + BAND
    assert sheet.shape == (HEAD + 3 * (cell_h + GAP) + FOOT, 4 * TILE + 5 * GAP, 3)
    picks = preview_indices(16, 12)
    frames = {f.index: f.image for f in iter_frames(SAMPLE) if f.index in picks}
    hot = []
    for k, i in enumerate(picks):
        r, c = divmod(k, 4)
        y, x = HEAD + r * (cell_h + GAP), GAP + c * (TILE + GAP)
        tile = sheet[y : y + th, x : x + TILE].astype(int)
        src = cv2.resize(frames[i], (TILE, th), interpolation=cv2.INTER_LINEAR).astype(int)
        d = np.abs(tile - src).max(-1)
        hot.append((d > 60).mean())
        assert (d <= 6).mean() > 0.5, (i, (d <= 6).mean())  # mostly the source, untouched
        band = sheet[y + th : y + cell_h, x : x + TILE]
        assert band.max() > 200  # caption text (time, label) and the importance bar
    assert min(hot) > 0.005, hot  # every tile shows heat somewhere
    header = sheet[:HEAD]
    assert (np.abs(header.astype(int) - (255, 190, 40)).sum(-1) < 30).sum() == 0  # no bars
    lut_red = (header[..., 0] > 120) & (header[..., 1] < 40) & (header[..., 2] < 40)
    assert lut_red.sum() > 20  # the legend's colour bar reaches the colormap's red


def test_cli_video_and_preview_together_and_preview_alone(tmp_path):
    out, png = tmp_path / "o.mp4", tmp_path / "o.png"
    args = ["explain", str(SAMPLE), "--model", "sample", "--quiet"]
    assert main([*args, "-o", str(out), "--preview", str(png)]) == 0
    assert out.exists() and _read(png).shape[1] == 4 * TILE + 5 * GAP
    only = tmp_path / "only.jpg"
    assert main([*args, "--preview", str(only), "--normalize", "frame"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "o.png", "only.jpg"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--preview", "{d}/exists.png"], "already exists"),
        (["--preview", "{d}/p.gif"], r"must end in \.png"),
        (["--preview", "{d}/nodir/p.png"], "does not exist"),
        (["--preview", "{d}/same.png", "--json", "{d}/same.png"], "must be different"),
        ([], "nothing to write"),
    ],
)
def test_cli_preview_refused_before_any_work(tmp_path, capsys, monkeypatch, extra, needle):
    (tmp_path / "exists.png").write_bytes(b"keep")
    import vidcam.video.pipeline as pipeline

    def no_work(*a, **k):
        raise AssertionError("the model ran before the paths were checked")

    monkeypatch.setattr(pipeline, "explain_pass", no_work)
    out = ["-o", str(tmp_path / "o.mp4")] if "--json" in extra else []
    argv = ["explain", str(SAMPLE), "--model", "sample", "--quiet", *out]
    argv += [a.format(d=tmp_path) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidcam explain: error: "), err
    assert re.search(needle, err[0]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.png"]
    assert (tmp_path / "exists.png").read_bytes() == b"keep"


def test_contact_sheet_unit(tmp_path):
    lut = np.stack([np.arange(256), np.zeros(256), 255 - np.arange(256)], 1).astype(np.uint8)
    s = ContactSheet(6, rows=2, cols=3, title="t", legend="scale: whole video", lut=lut)
    assert s.picks == [0, 1, 2, 3, 4, 5]
    for i in s.picks:
        assert s.wants(i)
        s.add(i, np.full((50, 100, 3), 40 * i, np.uint8), time=i / 10, label="x", importance=0.5)
        assert not s.wants(i)
    img = s.image()
    assert img.shape == (44 + 2 * (180 + 34 + 6), 3 * 360 + 4 * 6, 3)  # no footer: no times
    assert tuple(img[44 + 220 + 10, 6 + 2 * 366 + 10]) == (200, 200, 200)  # tile 5, row 2
    with pytest.raises(VidcamError, match="row"):
        ContactSheet(4, rows=0)
    p = s.write(tmp_path / "s.png")
    assert _read(p).shape == img.shape and [x.name for x in tmp_path.iterdir()] == ["s.png"]
