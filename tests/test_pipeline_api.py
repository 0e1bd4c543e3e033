"""The video API's less travelled paths: ExplainedFrame.heatmap, batched windows, errors raised
in the decoding thread."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import MOTION_SPEC, MotionNet, moving_square, write_video

from vidcam.errors import VidcamError
from vidcam.video import explain_video, iter_explained_frames
from vidcam.video.results import ExplainedFrame, WindowResult
from vidcam.video.threads import Prefetch


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    frames = moving_square(24, 48, 64, box=(4, 8, 40, 56), size=8)
    return write_video(tmp_path_factory.mktemp("api") / "m.mkv", frames, fps=25)


def _window() -> WindowResult:
    return WindowResult(index=0, frames=(0,), times=(0.0,), padded=False, top=(), targets=())


def test_heatmap_is_the_requested_methods_panel():
    a, b = torch.zeros(4, 5), torch.ones(4, 5)
    image = torch.full((4, 5, 3), 0.5)
    fr = ExplainedFrame(0, 0, None, {"gradcam": a, "gradcam++": b}, 1.0, _window(), "gradcam")
    assert fr.heatmap is a
    fr = ExplainedFrame(0, 0, None, {"gradcam": a, "gradcam++": b}, 1.0, _window(), "gradcam++")
    assert fr.heatmap is b
    # guided: the heatmap is its CAM's panel, never the RGB product
    guided = {"gradcam++": b, "guided-gradcam++": image}
    fr = ExplainedFrame(0, 0, None, guided, 1.0, _window(), "guided-gradcam++")
    assert fr.heatmap is b
    fr = ExplainedFrame(0, 0, None, {"guided-gradcam++": image}, 1.0, _window(), "guided-gradcam++")
    with pytest.raises(VidcamError, match="no heatmap panel"):
        _ = fr.heatmap


def test_streamed_frames_match_the_collected_ones(motion):
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    res = explain_video(motion, **kw)
    frames = list(iter_explained_frames(motion, **kw))
    assert [f.index for f in frames] == list(range(24))
    for f in frames[::5]:
        assert f.heatmap.shape == (48, 64)
        got = f.heatmap.mul(255).round().to(torch.uint8).cpu()
        assert torch.equal(got, res.heatmaps[f.index])
        assert f.importance == pytest.approx(float(res.importance[f.index]))


def test_batched_windows_give_the_same_explanation(motion):
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    one = explain_video(motion, batch_size=1, **kw)
    three = explain_video(motion, batch_size=3, **kw)
    assert len(one.windows) == len(three.windows) > 3
    assert [w.frames for w in one.windows] == [w.frames for w in three.windows]
    assert (one.heatmaps.int() - three.heatmaps.int()).abs().max() <= 1
    assert one.importance == pytest.approx(three.importance, abs=1e-5)
    for a, b in zip(one.windows, three.windows, strict=True):
        assert [c for c, _, _ in a.top] == [c for c, _, _ in b.top]


def test_an_error_in_the_decoding_thread_reaches_the_consumer():
    def frames():
        yield 1
        yield 2
        raise ValueError("corrupt packet")

    it = Prefetch(frames())
    got = []
    with pytest.raises(ValueError, match="corrupt packet"):
        for x in it:
            got.append(x)
    it.close()
    assert got == [1, 2]
    assert not any(t.name == "vidcam-decode" and t.is_alive() for t in threading.enumerate())


def test_closing_early_stops_the_decoding_thread():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    it = Prefetch(endless(), depth=2)
    assert next(iter(it)) == 0
    it.close()
    assert not it._thread.is_alive()


def test_frames_written_counts_what_the_encoder_wrote(motion, tmp_path, monkeypatch):
    """The input is replaced by a 3-frame clip between the passes: refused before pass 2
    renders a different video than the one explained, and nothing is written (issue 27, 10)."""
    import shutil

    from vidcam.video import pipeline, write_explained_video

    src = tmp_path / "in.mkv"
    shutil.copy(motion, src)
    real = pipeline.explain_pass

    def then_changed(*args, **kwargs):
        analysis = real(*args, **kwargs)
        write_video(src, moving_square(3, 48, 64, box=(4, 8, 40, 56), size=8), fps=25)
        return analysis

    monkeypatch.setattr(pipeline, "explain_pass", then_changed)
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    with pytest.raises(VidcamError, match="changed while vidcam ran"):
        write_explained_video(src, tmp_path / "o.mp4", **kw)
    assert not (tmp_path / "o.mp4").exists()


def test_auto_batch_size_follows_the_input_budget_and_the_free_memory(monkeypatch):
    from vidcam.models.registry import get_spec
    from vidcam.video import memory

    cpu = torch.device("cpu")
    sample = get_spec("sample").input  # 3 x 16 x 112 x 112 float32 = 2.30 MiB a window
    i3d = get_spec("i3d").input  # 3 x 64 x 224 x 224 float32 = 36.75 MiB
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 64 << 30)
    # 20 MiB // 2.30 MiB = 8 (the cap); the whole 360 x 640 frame at 112 short side is
    # 112 x 199: 4.08 MiB -> 4; I3D's window is over the budget alone -> 1
    assert memory.auto_batch_size(sample, 16, (360, 640), "center", cpu) == 8
    assert memory.auto_batch_size(sample, 16, (360, 640), "full", cpu) == 4
    assert memory.auto_batch_size(i3d, 64, (360, 640), "center", cpu) == 1
    # the free memory must hold 256 x the batch's input: 1.5 GiB // (2.30 MiB x 256) = 2
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 3 << 29)
    assert memory.auto_batch_size(sample, 16, (360, 640), "center", cpu) == 2
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 1 << 20)
    assert memory.auto_batch_size(sample, 16, (360, 640), "center", cpu) == 1


def test_auto_batch_gives_the_explanation_of_one_window_per_call(motion):
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    one = explain_video(motion, batch_size=1, **kw)
    auto = explain_video(motion, **kw)  # batch_size=None: 1 and 2 windows per call tried
    assert [w.frames for w in one.windows] == [w.frames for w in auto.windows]
    assert (one.heatmaps.int() - auto.heatmaps.int()).abs().max() <= 1
    assert one.importance == pytest.approx(auto.importance, abs=1e-5)


@pytest.mark.parametrize(
    "error",
    [
        lambda: torch.OutOfMemoryError("CUDA out of memory"),
        lambda: RuntimeError(
            "[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 123 bytes"
        ),
    ],
)
def test_out_of_memory_halves_the_window_batch(motion, monkeypatch, error):
    """A batch the device (or the host: PyTorch's CPU allocator raises a RuntimeError) cannot
    hold is split until it fits; the explanation is that of one window per call."""
    from vidcam.video import explain_pass

    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    one = explain_video(motion, batch_size=1, **kw)
    real = explain_pass.WindowExplainer._explain
    sizes = []

    def tight(self, batch, clip):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise error()
        return real(self, batch, clip)

    monkeypatch.setattr(explain_pass.WindowExplainer, "_explain", tight)
    split = explain_video(motion, batch_size=8, **kw)
    assert max(sizes) > 2 and any(s <= 2 for s in sizes)
    assert [w.frames for w in split.windows] == [w.frames for w in one.windows]
    assert (one.heatmaps.int() - split.heatmaps.int()).abs().max() <= 1


def test_a_model_error_on_one_window_is_one_line(motion, monkeypatch):
    from vidcam.video import explain_pass

    def broken(self, batch, clip):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory\nmore detail")

    monkeypatch.setattr(explain_pass.WindowExplainer, "_explain", broken)
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    with pytest.raises(
        VidcamError, match=r"^the model failed on a clip of shape .*allocate memory;"
    ):
        explain_video(motion, batch_size=1, **kw)


def test_rendering_caps_torch_threads_and_gives_them_back(motion, tmp_path, monkeypatch):
    """Pass 2 (render + encode) runs torch on one CPU thread; the caller's setting is back
    afterwards, also when the pass fails."""
    from vidcam.video import pipeline, write_explained_video

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    real = pipeline._encode

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_encode", spy)
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    try:
        write_explained_video(motion, tmp_path / "o.mp4", **kw)
        assert seen == [1] and torch.get_num_threads() == 2

        def fail(*args, **kwargs):
            raise VidcamError("disk full")

        monkeypatch.setattr(pipeline, "_encode", fail)
        with pytest.raises(VidcamError, match="disk full"):
            write_explained_video(motion, tmp_path / "o2.mp4", **kw)
        assert torch.get_num_threads() == 2 and not (tmp_path / "o2.mp4").exists()
    finally:
        torch.set_num_threads(before)


def test_batch_plan_keeps_the_faster_size_per_window():
    """Warm-up call untimed, then 2 timed calls of each size; the lower best time per window
    wins; a call with fewer windows than asked (the video's end) is not timed."""
    from vidcam.video.batching import BatchPlan

    def run(plan, seconds_per_window):  # each call costs seconds_per_window[size] per window
        sizes = []
        while plan.tuning:
            n = plan.size()
            sizes.append(n)
            plan.done(n, n * seconds_per_window[n])
        return sizes

    plan = BatchPlan(2, tune=True)
    assert run(plan, {1: 0.30, 2: 0.23}) == [1, 2, 1, 2, 1] and plan.size() == 2
    plan = BatchPlan(2, tune=True)
    run(plan, {1: 0.43, 2: 0.57})
    assert plan.size() == 1  # X3D-like: one window per call is faster
    plan = BatchPlan(4, tune=True)
    plan.done(1, 9.0)  # the warm-up, however slow, does not count
    plan.done(4, 4 * 0.2)
    plan.done(1, 0.1)
    plan.done(3, 0.1)  # a short last call: not a sample of size 4
    plan.done(1, 0.1)
    assert not plan.tuning and plan.size() == 1
    fixed = BatchPlan(3, tune=False)
    assert not fixed.tuning and fixed.size() == 3
    assert BatchPlan(1, tune=True).size() == 1 and not BatchPlan(1, tune=True).tuning


def test_auto_plan_is_tuned_only_on_the_cpu_and_capped_by_its_threads():
    from vidcam.video.batching import BatchPlan

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cpu = BatchPlan.auto(8, "cpu")
        assert cpu.tuning and cpu.upper == 2
        torch.set_num_threads(1)
        assert BatchPlan.auto(8, "cpu").upper == 2  # one window vs two, at least
        assert BatchPlan.auto(1, "cpu").upper == 1
        gpu = BatchPlan.auto(32, "cuda")
        assert not gpu.tuning and gpu.size() == 32
    finally:
        torch.set_num_threads(before)


def test_tuned_batches_give_the_same_explanation(motion, monkeypatch):
    """Whatever sizes the plan tries and keeps, the maps equal those of one window per call."""
    from vidcam.video import batching

    calls: list[int] = []
    real = batching.BatchPlan.done

    def spy(self, windows, seconds):
        calls.append(windows)
        real(self, windows, seconds)

    monkeypatch.setattr(batching.BatchPlan, "done", spy)
    monkeypatch.setattr(batching, "TRIALS", 1)  # warm-up, 2, 1: decided within this clip
    kw = dict(model=MotionNet(), spec=MOTION_SPEC, progress=False, spatial="center")
    one = explain_video(motion, batch_size=1, **kw)
    calls.clear()
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the bound: 2 windows a call, whatever the machine
    try:
        auto = explain_video(motion, **kw)
    finally:
        torch.set_num_threads(before)
    assert calls[:3] == [1, 2, 1] and len(calls) > 3  # tuned, then went on with its choice
    assert sum(calls) == len(auto.windows)
    assert [w.frames for w in one.windows] == [w.frames for w in auto.windows]
    assert (one.heatmaps.int() - auto.heatmaps.int()).abs().max() <= 1
    assert one.importance == pytest.approx(auto.importance, abs=1e-5)


def test_out_of_memory_caps_the_batch_plan():
    """A call that had to be halved caps the plan: neither the trials nor the choice ask for
    more windows than fitted."""
    from vidcam.video.batching import BatchPlan

    plan = BatchPlan(4, tune=True)
    plan.done(1, 1.0)  # warm-up
    plan.cap(2)  # the 4-window trial ran out of memory: 2 fitted
    assert plan.size() == 2 and plan.upper == 2
    while plan.tuning:
        plan.done(plan.size(), 0.1 * plan.size())
    assert plan.size() <= 2
    fixed = BatchPlan(8, tune=False)
    fixed.cap(3)
    assert fixed.size() == 3
