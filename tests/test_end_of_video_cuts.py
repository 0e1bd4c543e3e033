"""No held heat across a scene cut at the ends of a video (issue 26, item 1).

The first and last frames of a video lie outside every window's trusted slices and show the
nearest one (held). When a shot cut lies between, that slice shows the other shot: the heat
sits where the object of the previous shot was, on content that is not there (``bikes.mp4``:
its last 8 frames come after a cut). Clips: the hand-made ``PadMotionNet`` of
``test_edges_time_space`` (its CAM is |Δ|: heat on what moves), an object circling in shot A,
a static texture of another scene in shot B. The reference blends are built from the spool
with ``MapBlender`` directly: without cuts (the blending before cuts were known) and with them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_video
from test_edges_time_space import SIZE, SPEC, PadMotionNet, circling, scene

from vidcam.video.map_pass import Placers, blended, display_scale, explained_frames
from vidcam.video.pipeline import analyze
from vidcam.video.results import UNEXPLAINED
from vidcam.video.shots import find_cuts
from vidcam.video.to_source import MapBlender, frame_importance

N = 48  # frames; windows of 16 at hop 8 trust samples 3..12: the first 3 and last 3 are held


def other_shot(n: int) -> np.ndarray:
    """Shot B: a static scene of another texture on a darker background, nothing moves."""
    f = scene(n, seed=5)
    f[:, 16:48, 16:48] = 40
    return f


def clip(cut: int, where: str) -> np.ndarray:
    """N frames: shot A (the circling object) with shot B before frame ``cut`` ("start") or
    from frame ``cut`` on ("end")."""
    a = circling(N)
    if where == "start":
        return np.concatenate([other_shot(cut), a[cut:]])
    return np.concatenate([a[:cut], other_shot(N - cut)])


def analysed(tmp_path, frames: np.ndarray):
    path = write_video(tmp_path / "clip.mkv", frames, fps=25)
    opts = dict(spec=SPEC, method="gradcam", progress=False, stride=8, spatial="full")
    return analyze(path, model=PadMotionNet(), **opts)


def reference(an, cuts=()) -> torch.Tensor:
    """(F, H, W) display heat on the source grid, blended by ``MapBlender`` with ``cuts``
    (times) known from the start, scaled and placed as pass 2 does."""
    scale = display_scale(an, "video")
    sups, name = an.supports, an.panels[0].id
    blender = MapBlender(
        sups,
        lambda i: {k: scale.window(k, v, sups[i]) for k, v in an.spool.get(i).items()},
        cuts=cuts,
    )
    place, out = Placers(an), []
    for t in an.times:
        m = scale.frame(blender.at(float(t))[0][name])
        out.append(place(name, tuple(m.shape), False)(m).clamp_(0, 1))
    return torch.stack(out)


def rendered(an) -> tuple[torch.Tensor, list]:
    frames = list(explained_frames(an, "video"))
    return torch.stack([f.heatmap for f in frames]), frames


@pytest.mark.parametrize(
    ("where", "cut", "lost"), [("end", 45, range(45, N)), ("start", 2, (0, 1))]
)
def test_no_heat_on_frames_held_across_a_cut(tmp_path, where, cut, lost):
    """End: frames 45-47 (shot B) would show the slice of frame 44 (shot A); start: frames 0
    and 1 (shot B) the slice of frame 3 (shot A). Frame 2 starts shot A: it keeps its hold."""
    frames = clip(cut, where)
    assert find_cuts(frames) == [cut]
    with analysed(tmp_path, frames) as an:
        heat, got = rendered(an)
        old = reference(an)  # held across the cut
        lost = list(lost)
        kept = [i for i in range(N) if i not in lost]
        # the old blending shows heat there: the other shot's object, as on bikes.mp4
        assert all(float(old[i].max()) > 0.2 for i in lost), [float(old[i].max()) for i in lost]
        assert all(float(heat[i].max()) == 0.0 for i in lost)
        assert [f.explained for f in got] == [i not in lost for i in range(N)]
        assert all(got[i].importance == 0.0 and got[i].window.note == UNEXPLAINED for i in lost)
        assert all(got[i].window.note == "" for i in kept)
        # every other frame is what it was, bit for bit; all frames as with the cut known
        assert torch.equal(heat[kept], old[kept])
        assert torch.equal(heat, reference(an, cuts=[float(an.times[cut])]))
        # the rendered caption says why there is no heat
        lines = [w.caption(an.model.labels) for _, _, w in blended(an, "video")]
        assert all(UNEXPLAINED in lines[i] for i in lost)
        assert not any(UNEXPLAINED in lines[i] for i in kept)
        # importance with the cut known (pass 1, once it detects cuts): 0 there, else as it was
        energies = [
            an.spool.get(i)[an.panels[0].id].float().mean((1, 2)) for i in range(len(an.spool))
        ]
        base = frame_importance(an.supports, energies, an.times)
        cut_imp = frame_importance(an.supports, energies, an.times, [float(an.times[cut])])
        assert (cut_imp[lost] == 0).all() and (base[lost] > 0).all()
        np.testing.assert_array_equal(cut_imp[kept], base[kept])
        # pass 1 finds the cut itself: the analysis (strip, JSON) carries that importance
        assert an.cuts == (cut,)
        assert an.summary().to_json()["cuts"] == [cut]  # the JSON says where shots change
        assert (an.importance[lost] == 0).all() and (an.importance[kept] > 0).all()


def test_cuts_known_from_pass_one_give_the_same_frames(tmp_path):
    frames = clip(45, "end")
    with analysed(tmp_path, frames) as an:
        found, _ = rendered(an)
        an.cuts = (45,)
        given, got = rendered(an)
        assert torch.equal(found, given)
        assert [f.explained for f in got] == [i < 45 for i in range(N)]


def test_a_clip_without_cuts_is_unchanged(tmp_path):
    frames = circling(N)
    assert find_cuts(frames) == []
    with analysed(tmp_path, frames) as an:
        heat, got = rendered(an)
        assert torch.equal(heat, reference(an))  # the blending without cuts, bit for bit
        assert all(f.explained and f.window.note == "" for f in got)
        assert [f.importance for f in got] == [float(v) for v in an.importance]
        assert heat.shape == (N, SIZE, SIZE) and float(heat[-1].max()) > 0


def test_saved_maps_and_the_export_keep_the_cut(tmp_path):
    """A batch's ``.maps.npz`` carries the cuts: its blender (what ``vidcam export`` and the
    FiftyOne heatmaps read) shows no heat on the frames after the cut, as the MP4 does."""
    from vidcam.batch.maps_io import load_maps, save_maps
    from vidcam.export.heatmaps import frame_heatmaps

    frames = clip(45, "end")
    with analysed(tmp_path, frames) as an:
        raw = load_maps(save_maps(tmp_path / "clip.maps.npz", an))
    assert raw.cuts.tolist() == [45]
    name = an.panels[0].id
    blender = raw.blender()
    peaks = [float(blender.at(float(t))[0][name].max()) for t in raw.times]
    assert all(p == 0.0 for p in peaks[45:]) and all(p > 0 for p in peaks[:45])
    heats = list(frame_heatmaps(raw, max_side=64))
    assert [h.window for h in heats[45:]] == [-1] * (N - 45)
    assert all(int(h.maps[name].max()) == 0 for h in heats[45:])
    assert all(h.window >= 0 for h in heats[:45])
