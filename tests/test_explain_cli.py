"""The whole pipeline: evidence lands on the right source pixels, outputs round-trip, and the
CLI refuses every bad input with one line, exit status 2, no output and an untouched input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import MOTION_SPEC, MotionNet, moving_square, pattern_frames, write_video

from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.models.sample_net import SAMPLE_CLASSES
from vidcam.video import explain_video, write_explained_video
from vidcam.video.decode import iter_frames, probe

H, W = 72, 128  # non-square: resize 48 x 85, centre crop 48 x 48 = source x 27.1 .. 99.4
CORNER = (2, 30, 34, 62)  # y0, x0, y1, x1 where the square moves: top left of the crop


@pytest.fixture(scope="module")
def motion_video(tmp_path_factory):
    frames = moving_square(40, H, W, box=CORNER, size=8)
    frames[20:] = frames[20]  # moves for 20 frames, then stands still
    return write_video(tmp_path_factory.mktemp("motion") / "motion.mkv", frames, fps=25)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_evidence_lands_on_the_moving_corner(motion_video):
    with pytest.warns(RuntimeWarning, match="constant"):  # the still half has no evidence
        res = explain_video(
            motion_video,
            model=MotionNet(),
            spec=MOTION_SPEC,
            labels=["motion", "still"],
            progress=False,
        )
    assert res.heatmaps.shape == (40, H, W) and res.heatmaps.dtype == torch.uint8
    heat = res.heatmaps[:16].double()  # frames well inside the moving part
    y0, x0, y1, x1 = CORNER
    inside = heat[:, y0 - 2 : y1 + 2, x0 - 2 : x1 + 2].sum()
    assert inside / heat.sum() >= 0.95
    # left of the crop (source x < 27) the model saw nothing: exactly zero heat
    assert res.heatmaps[:, :, :27].max() == 0
    # time: the moving half matters, the still half does not
    assert res.importance[:14].min() > 0.3
    assert res.importance[28:].max() < 0.05
    assert res.importance.max() == pytest.approx(1.0)
    assert all(w.top[0][0] == 0 for w in res.windows[:2])  # "motion" wins while it moves
    assert res.frames == 40 and res.times[1] == pytest.approx(0.04)


def test_written_video_roundtrip_vfr_and_side_by_side(videos, tmp_path):
    src = videos["vfr"]
    out = tmp_path / "vfr_out.mp4"
    res = write_explained_video(
        src, out, model=MotionNet(), spec=MOTION_SPEC, progress=False, side_by_side=True
    )
    info_in, info_out = probe(src), probe(out)
    assert (info_out.width, info_out.height) == (2 * info_in.width, info_in.height)
    assert [f.time for f in iter_frames(out)] == [f.time for f in iter_frames(src)]
    assert res.heatmaps is None and len(res.importance) == 10
    # two different panels: Grad-CAM | Grad-CAM++ maps of a deeper net differ (MotionNet's
    # single feature map makes both methods agree, so use the sample net with random weights)
    from vidcam.models.registry import load_model

    torch.manual_seed(0)
    lm = load_model("sample", pretrained=False)
    api = explain_video(
        src, model=lm.module, spec=lm.input, layer="block3", progress=False, side_by_side=True
    )
    assert list(api.panels) == ["gradcam", "gradcam++"]
    a, b = api.panels["gradcam"].float(), api.panels["gradcam++"].float()
    assert a.shape == b.shape == (10, info_in.height, info_in.width)
    assert (a - b).abs().max() > 10  # not the same map twice (uint8 scale)
    assert torch.equal(api.heatmaps, api.panels["gradcam++"])  # the requested method's


def test_odd_size_gif_and_audio(videos, tmp_path):
    gif = tmp_path / "odd.gif"
    write_explained_video(videos["odd"], gif, model=MotionNet(), spec=MOTION_SPEC, progress=False)
    frames = list(iter_frames(gif))
    assert len(frames) == 12 and frames[0].image.shape == (61, 97, 3)
    mp4 = tmp_path / "odd.mp4"
    write_explained_video(videos["odd"], mp4, model=MotionNet(), spec=MOTION_SPEC, progress=False)
    assert (probe(mp4).width, probe(mp4).height) == (98, 62)
    with_audio = tmp_path / "audio.mp4"
    write_explained_video(
        videos["h264_audio"], with_audio, model=MotionNet(), spec=MOTION_SPEC, progress=False
    )
    with av.open(str(with_audio)) as c:
        assert len(c.streams.audio) == 1
        assert c.streams.video[0].frames == 30
        audio_s = sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].rate
    assert audio_s == pytest.approx(2.0, abs=0.15)  # 30 frames at 15 fps: the whole track
    # the GIF and the MP4 carry the same annotated frames (up to palette and chroma noise)
    mp4_frames = [f.image for f in iter_frames(mp4)]
    for g, m in zip(frames, mp4_frames, strict=True):
        assert np.abs(g.image.astype(int) - m[:61, :97].astype(int)).mean() < 12


def test_short_video_warns_and_still_renders(tmp_path):
    src = write_video(tmp_path / "short.mkv", pattern_frames(3, 32, 32), fps=25)
    with pytest.warns(UserWarning, match="shorter than one clip"):
        res = explain_video(src, model=MotionNet(), spec=MOTION_SPEC, progress=False)
    assert res.frames == 3 and res.windows[0].padded
    assert any("shorter than one clip" in w for w in res.warnings)


def test_cli_sample_model_with_json(videos, tmp_path, capsys):
    torch.manual_seed(0)
    out = tmp_path / "o.mp4"
    js = tmp_path / "o.json"
    rc = main(
        [
            "explain",
            str(videos["lossless"]),
            "-o",
            str(out),
            "--model",
            "sample",
            "--random-weights",
            "--json",
            str(js),
            "--target",
            "topk:2",
            "--quiet",
        ]
    )
    assert rc == 0
    assert capsys.readouterr().err == ""
    data = json.loads(js.read_text())
    assert data["frames"] == 20 and len(data["importance"]) == 20
    assert max(data["importance"]) == pytest.approx(1.0)
    assert data["layers"] == ["block3"]
    w0 = data["windows"][0]
    assert w0["frames"] == list(range(16))  # stride 1, 16 frames
    assert data["windows"][-1]["frames"][-1] == 19  # last window aligned to the end
    assert len(w0["targets"]) == 2
    assert [t["index"] for t in w0["targets"]] == [p["index"] for p in w0["top"][:2]]
    probs = [p["prob"] for p in w0["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    labels = {p["label"] for w in data["windows"] for p in w["top"]}
    assert labels <= set(SAMPLE_CLASSES)
    assert probe(out).frames == 20


def test_cli_guided_side_by_side(videos, tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "g.mp4"
    rc = main(
        [
            "explain",
            str(videos["lossless"]),
            "-o",
            str(out),
            "--model",
            "sample",
            "--random-weights",
            "--method",
            "guided-gradcam++",
            "--side-by-side",
            "--quiet",
            "--colormap",
            "inferno",
            "--alpha",
            "0.7",
        ]
    )
    assert rc == 0
    assert probe(out).width == 128
    # the CAM panel and the guided product are different pictures
    for frame in list(iter_frames(out))[::5]:
        left, right = frame.image[:, :64].astype(int), frame.image[:, 64:].astype(int)
        assert np.abs(left - right).mean() > 5
    torch.manual_seed(0)
    from vidcam.models.registry import load_model

    lm = load_model("sample", pretrained=False)
    api = explain_video(
        videos["lossless"],
        model=lm.module,
        spec=lm.input,
        layer="block3",
        method="guided-gradcam++",
        side_by_side=True,
        progress=False,
    )
    assert list(api.panels) == ["gradcam++", "guided-gradcam++"]
    assert api.panels["gradcam++"].shape == (20, 48, 64)
    assert api.panels["guided-gradcam++"].shape == (20, 48, 64, 3)


def _bad_cases(videos, tmp_path):
    ok = videos["lossless"]
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    empty = tmp_path / "empty.mkv"
    c = av.open(str(empty), "w")
    s = c.add_stream("ffv1", rate=25)
    s.width = s.height = 16
    c.start_encoding()
    c.close()
    return {
        "missing": ([str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "a.mp4")], "does not exist"),
        "directory": ([str(tmp_path), "-o", str(tmp_path / "a.mp4")], "not a file"),
        "garbage": ([str(videos["garbage"]), "-o", str(tmp_path / "a.mp4")], "not a readable"),
        "audio only": ([str(videos["audio_only"]), "-o", str(tmp_path / "a.mp4")], "only audio"),
        "no frames": ([str(empty), "-o", str(tmp_path / "a.mp4")], "not a readable|no decodable"),
        "same file": ([str(ok), "-o", str(ok), "--overwrite"], "is the input"),
        "exists": ([str(ok), "-o", str(existing)], "already exists"),
        "extension": ([str(ok), "-o", str(tmp_path / "a.avi")], r"\.mp4, \.mov"),
        "no dir": ([str(ok), "-o", str(tmp_path / "no" / "a.mp4")], "does not exist"),
        "colormap": ([str(ok), "-o", str(tmp_path / "a.mp4"), "--colormap", "nope"], "viridis"),
        "alpha": ([str(ok), "-o", str(tmp_path / "a.mp4"), "--alpha", "2"], "alpha"),
        "target": (
            [str(ok), "-o", str(tmp_path / "a.mp4"), "--target", "moving_lefft"],
            "did you mean 'moving_left'",
        ),
        "cuda": ([str(ok), "-o", str(tmp_path / "a.mp4"), "--device", "cuda"], "CUDA"),
    }


def test_cli_bad_inputs(videos, tmp_path, capsys):
    cases = _bad_cases(videos, tmp_path)
    if torch.cuda.is_available():
        del cases["cuda"]
    hashes = {p: _sha(p) for p in tmp_path.iterdir() if p.is_file()}
    hashes.update({p: _sha(p) for p in videos.values()})
    for name, (args, needle) in cases.items():
        capsys.readouterr()
        rc = main(["explain", *args, "--model", "sample", "--random-weights", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith("vidcam explain: error: "), name
        assert "Traceback" not in err
        import re

        assert re.search(needle, lines[0]), (name, lines[0])
    assert {p: _sha(p) for p in hashes} == hashes  # no input touched
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["empty.mkv", "exists.mp4"]  # no output, no temporary file


def test_truncated_input_gives_output_and_a_warning(videos, tmp_path, capsys):
    """A truncated file (21 of 60 frames decode) is refused in one line; with --allow-partial
    the decodable part is explained, with a warning."""
    out = tmp_path / "t.mp4"
    argv = ["explain", str(videos["truncated"]), "-o", str(out), "--model", "sample"]
    argv += ["--random-weights", "--quiet"]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--allow-partial" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
    assert main([*argv, "--allow-partial"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and ("truncated" in err or "stopped" in err)
    n = len(list(iter_frames(out)))
    assert 0 < n < 60


def test_target_by_class_index(motion_video):
    """Class 1 ("still" = minus the motion energy) has no positive gradient anywhere: every
    window's Grad-CAM++ map is constant, reported once with a count, and rendered as zeros."""
    with pytest.warns(RuntimeWarning, match=r"constant.*\(x9\)"):
        res = explain_video(
            motion_video,
            model=MotionNet(),
            spec=MOTION_SPEC,
            target="still",
            labels=["motion", "still"],
            progress=False,
        )
    assert all(w.targets == (1,) for w in res.windows) and len(res.windows) == 9
    assert res.heatmaps.max() == 0


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_render_leaves_nothing(videos, tmp_path, monkeypatch, exc):
    """An interrupt or error mid-render (encoder thread running) leaves no output, no temporary
    file, and an existing output untouched."""
    import vidcam.video as pipeline

    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise exc()
        return args[1][0].heat[..., None].repeat(3, 2)

    monkeypatch.setattr(pipeline.Renderer, "__call__", lambda self, *a, **k: boom(*a, **k))
    with pytest.raises(exc):
        write_explained_video(
            videos["lossless"],
            out,
            model=MotionNet(),
            spec=MOTION_SPEC,
            progress=False,
            overwrite=True,
        )
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]


def test_normalize_frame_gives_every_frame_its_own_scale():
    """--normalize frame: each frame's heatmap reaches ~1 (one window, no blending)."""
    sample = Path(__file__).resolve().parents[1] / "samples" / "moving_right_2x.mp4"
    per_clip = explain_video(sample, model="sample", progress=False)
    per_frame = explain_video(sample, model="sample", progress=False, normalize="frame")
    title = next(iter(per_frame.panels))
    clip_max = per_clip.panels[title].flatten(1).amax(1).float() / 255
    frame_max = per_frame.panels[title].flatten(1).amax(1).float() / 255
    assert bool((frame_max >= 0.9).all()), frame_max
    assert bool((frame_max >= clip_max - 1e-6).all())
    assert float(clip_max.min()) < 0.9  # the clip scale really differs on this clip
    with pytest.raises(VidcamError, match="normalize"):
        explain_video(sample, model="sample", progress=False, normalize="pixel")


def test_clip_too_short_for_the_model_is_a_one_line_error(tmp_path, capsys):
    sample = Path(__file__).resolve().parents[1] / "samples" / "moving_right_2x.mp4"
    out = tmp_path / "o.mp4"
    args = ["explain", str(sample), "-o", str(out), "--model", "i3d", "--random-weights"]
    rc = main([*args, "--clip-len", "4", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "--clip-len" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_accepts_the_engines_topk_spelling(tmp_path):
    sample = Path(__file__).resolve().parents[1] / "samples" / "moving_right_2x.mp4"
    out = tmp_path / "o.mp4"
    js = tmp_path / "o.json"
    args = ["explain", str(sample), "-o", str(out), "--model", "sample", "--target", "top2"]
    rc = main([*args, "--json", str(js), "--quiet"])
    assert rc == 0 and out.is_file()
    data = json.loads(js.read_text())
    for w in data["windows"]:  # top2 = topk:2: the two best classes of every window
        assert [t["index"] for t in w["targets"]] == [p["index"] for p in w["top"][:2]]


def test_pcm_audio_shorter_than_video_is_reencoded_to_aac_completely(tmp_path):
    """PCM into MP4 is re-encoded to AAC; the encoder's tail is flushed even after source EOF."""
    src = tmp_path / "pcm.mkv"
    frames = pattern_frames(20, 32, 32)
    with av.open(str(src), "w") as c:
        v = c.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 32, 32, "bgr0"
        a = c.add_stream("pcm_s16le", rate=16000)
        a.layout = "mono"
        samples = 0
        while samples < 8000:  # 0.5 s of audio under a 0.8 s video
            chunk = (np.sin(np.arange(samples, samples + 1000) / 10.0) * 8000).astype(np.int16)
            af = av.AudioFrame.from_ndarray(chunk[None], format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, samples
            samples += 1000
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    out = tmp_path / "o.mp4"
    write_explained_video(src, out, model=MotionNet(), spec=MOTION_SPEC, progress=False)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        decoded = sum(f.samples for f in c.decode(audio=0))
    assert decoded >= 8000 - 1024  # all but at most one AAC frame of priming/padding


@pytest.mark.parametrize(("written", "shown"), [(1, "1 frames"), (0, "250 frames")])
def test_summary_counts_the_frames_written(videos, tmp_path, capsys, monkeypatch, written, shown):
    """The summary line reports the result's ``frames_written`` (the encoder's count; 0 = no
    video written, then the frames explained), not the frames the input declared."""

    class Result:
        frames, frames_written, windows, model, method = 250, written, [1, 2], "sample", "m"

    import vidcam.video

    monkeypatch.setattr(vidcam.video, "write_explained_video", lambda *a, **k: Result())
    out = tmp_path / "o.mp4"
    assert main(["explain", str(videos["lossless"]), "-o", str(out), "--model", "sample"]) == 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"wrote {out}: {shown}, 2 windows, sample / m"), line
