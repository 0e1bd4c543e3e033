"""The report page in a real browser: headless Chromium loads it from disk (file://), plays
the video, seeks by clicking the timeline, blends the source, and takes a screenshot.

Skips only when no Chromium binary is found (Debian: ``apt-get install -y chromium``)."""

from __future__ import annotations

import json
from urllib.parse import unquote

import av
import cv2
import numpy as np
import pytest
from cdp import Browser, find_chromium
from report_run import HOSTILE_FILE, sample_run

from vidcam.report import write_batch_index, write_video_report
from vidcam.report.env import quote_rel

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary found (install Debian's: apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """One sample run for the module (its files are only read)."""
    return sample_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory, shared_run):
    base = tmp_path_factory.mktemp("browser")
    run = shared_run
    (base / "pages dir").mkdir()
    page = write_video_report(
        base / "pages dir" / "report #1.html",
        explanation=run.explanation,
        video=run.video,
        source=run.source,
        preview=run.preview,
        settings={"model": "sample"},
    )
    with Browser(CHROMIUM, page.as_uri(), base / "profile", width=1280, height=900) as b:
        b.call("Page.enable")
        b.call("Page.reload")  # with Page events on: a dialog (alert) would be reported
        b.wait_for("document.readyState === 'complete'")
        b.wait_for("document.getElementById('annotated').readyState >= 2")
        b.wait_for("document.getElementById('source').readyState >= 2")
        yield b, run


def test_page_loads_with_its_videos_and_nothing_injected(browser):
    b, run = browser
    assert b.evaluate("document.getElementById('annotated').duration") == pytest.approx(5.0, 0.05)
    assert b.evaluate("document.getElementById('source').duration") == pytest.approx(5.0, 0.05)
    assert b.evaluate("document.getElementById('annotated').videoWidth") == 224
    assert b.evaluate("document.getElementById('sheet').naturalWidth") > 0  # the sheet loaded
    assert b.evaluate("document.getElementById('title').textContent") == HOSTILE_FILE
    assert b.evaluate("document.scripts.length") == 2
    assert b.evaluate("document.querySelectorAll('[onerror], img:not(#sheet)').length") == 0
    assert b.evaluate("document.querySelectorAll('#timeline circle.pt').length") == 4 * 4
    assert b.evaluate("document.getElementById('view-controls').hidden") is False
    assert not [e for e in b.events if e.get("method") == "Page.javascriptDialogOpening"]


def test_play_advances_and_the_cursor_follows(browser):
    b, _ = browser
    b.evaluate("document.getElementById('annotated').currentTime = 0")
    b.evaluate("document.getElementById('annotated').play()", await_promise=True)
    t = b.wait_for(
        "(v => v.currentTime > 0.4 && v.currentTime)(document.getElementById('annotated'))"
    )
    assert b.evaluate("document.getElementById('annotated').paused") is False
    assert b.evaluate("document.getElementById('source').paused") is False  # synced
    b.evaluate("document.getElementById('annotated').pause()")
    state = json.loads(
        b.evaluate(
            "JSON.stringify({t: annotated.currentTime, s: source.currentTime,"
            " x: +cursor.getAttribute('x1'), d: timeline.dataset})"
        )
    )
    assert state["t"] >= t
    x0, x1, dur = float(state["d"]["x0"]), float(state["d"]["x1"]), float(state["d"]["duration"])
    assert state["x"] == pytest.approx(x0 + (x1 - x0) * state["t"] / dur, abs=0.5)
    b.wait_for("Math.abs(source.currentTime - annotated.currentTime) < 0.15")


@pytest.mark.parametrize("fraction", [0.6, 0.2])
def test_click_on_the_timeline_seeks(browser, fraction):
    b, _ = browser
    b.evaluate("document.getElementById('annotated').pause()")
    b.evaluate("document.getElementById('timeline').scrollIntoView({block: 'center'})")
    r = json.loads(
        b.evaluate("JSON.stringify(document.getElementById('plot-area').getBoundingClientRect())")
    )
    b.click(r["left"] + fraction * r["width"], r["top"] + r["height"] / 2)
    want = fraction * 5.0
    b.wait_for(f"Math.abs(annotated.currentTime - {want}) < 0.02 && !annotated.seeking")
    b.wait_for(f"Math.abs(source.currentTime - {want}) < 0.15")
    x = b.evaluate("+cursor.getAttribute('x1')")
    d = json.loads(b.evaluate("JSON.stringify(timeline.dataset)"))
    assert x == pytest.approx(
        float(d["x0"]) + (float(d["x1"]) - float(d["x0"])) * fraction, abs=0.5
    )


def test_blend_puts_the_source_over_the_first_panel(browser):
    b, _ = browser
    b.evaluate("document.querySelector('input[value=blend]').click()")
    assert b.evaluate("stage.classList.contains('blend')") is True
    b.evaluate("blend.value = 0.8; blend.dispatchEvent(new Event('input'))")
    fig = json.loads(
        b.evaluate(
            "(f => JSON.stringify({p: getComputedStyle(f).position, o: getComputedStyle(f).opacity,"
            " w: f.getBoundingClientRect().width, W: stage.getBoundingClientRect().width}))"
            "(document.querySelector('figure.source'))"
        )
    )
    assert fig["p"] == "absolute" and float(fig["o"]) == pytest.approx(0.8)
    assert fig["w"] == pytest.approx(fig["W"] / 2, abs=1), fig  # two panels: covers the first
    b.evaluate("document.querySelector('input[value=beside]').click()")
    assert b.evaluate("stage.classList.contains('blend')") is False


def test_screenshot_is_a_real_picture(browser):
    b, _ = browser
    b.evaluate("window.scrollTo(0, 0)")
    png = b.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    view = json.loads(b.evaluate("JSON.stringify([innerHeight, innerWidth])"))
    assert list(img.shape[:2]) == view and view[1] == 1280
    assert img.std() > 20  # not blank
    colours = np.unique(img.reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 50  # video frames with heat, text, the chart


def test_without_javascript_everything_but_interaction_is_there(browser):
    b, _ = browser
    b.call("Emulation.setScriptExecutionDisabled", value=True)
    b.call("Page.reload")
    b.wait_for("document.readyState === 'complete' && !!document.getElementById('windows')")
    b.wait_for("document.getElementById('annotated').readyState >= 1")
    assert b.evaluate("document.getElementById('view-controls').hidden") is True  # no script ran
    assert b.evaluate("document.querySelectorAll('#timeline circle.pt').length") == 4 * 4
    assert b.evaluate("document.querySelectorAll('#windows tbody tr').length") == 4
    assert b.evaluate("document.getElementById('annotated').duration") == pytest.approx(5.0, 0.05)
    assert b.evaluate("document.getElementById('sheet').complete") is True
    b.call("Emulation.setScriptExecutionDisabled", value=False)


def test_batch_index_sorts_by_clicking_a_header(tmp_path):
    def row(key, prob, status="done"):
        top = [{"label": "x", "index": 0, "prob": prob}] if prob is not None else []
        return {"key": key, "status": status, "top": top, "metrics": {"remove_20": prob}}

    rows = [row("b.mp4", 0.5), row("a.mp4", 0.9), row("c.mp4", None, "failed"), row("d", 0.1)]
    page = write_batch_index(tmp_path, rows)
    keys = (
        "[...document.querySelectorAll('#videos tbody tr')].map(r => r.cells[0].textContent.trim())"
    )
    with Browser(CHROMIUM, page.as_uri(), tmp_path / "profile") as b:
        b.wait_for("document.readyState === 'complete' && !!document.getElementById('videos')")
        assert b.evaluate(keys) == ["b.mp4", "a.mp4", "c.mp4", "d"]  # as given, without JS too
        th = "document.querySelectorAll('#videos th')[3]"  # confidence
        for order in (["d", "b.mp4", "a.mp4", "c.mp4"], ["a.mp4", "b.mp4", "d", "c.mp4"]):
            r = json.loads(b.evaluate(f"JSON.stringify({th}.getBoundingClientRect())"))
            b.click(r["left"] + r["width"] / 2, r["top"] + r["height"] / 2)
            assert b.evaluate(keys) == order  # blanks last either way
        b.evaluate("document.querySelectorAll('#videos th')[0].click()")
        assert b.evaluate(keys) == ["a.mp4", "b.mp4", "c.mp4", "d"]
        assert (
            b.evaluate("document.querySelectorAll('#videos th')[0].getAttribute('aria-sort')")
            == "ascending"
        )


# --- the rough edges of issue 27 item 11 ---------------------------------------------------


def _rect(b, expr: str) -> dict:
    return json.loads(b.evaluate(f"JSON.stringify(({expr}).getBoundingClientRect())"))


def _frame_rows_diff(shot: np.ndarray, frame_rgb: np.ndarray, r: dict, h: float) -> np.ndarray:
    """Per screen row of the frame area (r's left/top/width, ``h`` CSS px high): the mean
    absolute difference between the screenshot and the decoded frame scaled to that size."""
    x0, y0, w, h = round(r["left"]), round(r["top"]), round(r["width"]), round(h)
    want = cv2.resize(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), (w, h), cv2.INTER_LINEAR)
    got = shot[y0 : y0 + h, x0 : x0 + w].astype(np.int16)
    return np.abs(got - want.astype(np.int16)).mean(axis=(1, 2))


def test_controls_sit_under_the_frame_never_over_its_bottom(browser):
    """The burned-in time, legend and importance strip at the frame's bottom stay visible
    with the controls shown: the frame's pixels on screen are the decoded frame's, and the
    controls are drawn in the band below. Without the band (the old layout) they are not."""
    b, run = browser
    b.call("Page.reload")
    b.wait_for("document.readyState === 'complete' && !!document.getElementById('annotated')")
    b.wait_for("annotated.readyState >= 2")
    b.evaluate("annotated.pause(); annotated.currentTime = 0; window.scrollTo(0, 0)")
    b.wait_for("!annotated.seeking && annotated.readyState >= 2")
    with av.open(str(run.video)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")  # (112, 224, 3)
    r = _rect(b, "annotated")
    frame_h = r["width"] * frame.shape[0] / frame.shape[1]
    assert r["height"] - frame_h >= 56, r  # a band for the controls under the frame
    shot = cv2.imdecode(np.frombuffer(b.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    rows = _frame_rows_diff(shot, frame, r, frame_h)
    bottom = rows[int(0.7 * len(rows)) :]  # the time text and the importance strip
    band = shot[round(r["top"] + frame_h) + 2 : round(r["top"] + r["height"]) - 2,
                round(r["left"]) : round(r["left"] + r["width"])]  # fmt: skip
    assert bottom.max() < 10, bottom.round(1)  # nothing drawn over the frame's bottom
    assert (band.max(axis=2) > 150).sum() > 100  # the controls: icons, time, progress bar
    # the old layout (controls over the frame): the same measurement sees them
    b.evaluate("annotated.parentElement.classList.remove('banded')")
    b.wait_for(f"Math.abs(annotated.getBoundingClientRect().height - {frame_h}) < 1")
    shot = cv2.imdecode(np.frombuffer(b.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    covered = _frame_rows_diff(shot, frame, _rect(b, "annotated"), frame_h)
    assert covered[int(0.7 * len(covered)) :].max() > 25
    b.evaluate("annotated.parentElement.classList.add('banded')")


def _encode(path, codec: str, pix: str = "yuv420p", n: int = 10):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, pix
        for i in range(n):
            img = np.full((48, 64, 3), 40, np.uint8)
            img[10:30, 4 + 3 * i : 24 + 3 * i] = 220
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_mp4v(src, dst):
    """``src`` re-encoded by OpenCV's VideoWriter as 'mp4v' (MPEG-4 part 2)."""
    with av.open(str(src)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 8, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return dst


def test_what_the_page_calls_playable_is_what_chromium_plays(tmp_path):
    """The codec check (PyAV, at report time) against the browser itself."""
    from vidcam.report.media import probe_media

    files = [
        _encode(tmp_path / "h264.mp4", "libx264"),
        _encode(tmp_path / "vp9.webm", "libvpx-vp9"),
        _encode(tmp_path / "mpeg4.mp4", "mpeg4"),
        _encode(tmp_path / "mjpeg.avi", "mjpeg", "yuvj420p"),
        _encode(tmp_path / "h264.avi", "libx264"),
        write_mp4v(tmp_path / "h264.mp4", tmp_path / "opencv mp4v.mp4"),
    ]
    page = tmp_path / "codecs.html"
    page.write_text(
        "<!DOCTYPE html>"
        + "".join(f'<video src="{quote_rel(f.name)}" preload="auto" muted></video>' for f in files),
        encoding="utf-8",
    )
    with Browser(CHROMIUM, page.as_uri(), tmp_path / "profile") as b:
        b.wait_for("document.URL.startsWith('file:') && document.readyState === 'complete'")
        b.wait_for(
            "[...document.querySelectorAll('video')].every(v => v.error || v.readyState >= 2)"
        )
        plays = b.evaluate(
            "[...document.querySelectorAll('video')].map(v => !v.error && v.videoWidth > 0)"
        )
    assert plays == [True, True, False, False, False, False]
    assert [probe_media(f).playable for f in files] == plays
    assert "MPEG-4 part 2 (mpeg4)" in probe_media(files[-1]).why


def test_a_source_the_browser_cannot_play_gets_a_note_and_the_annotated_video_plays(
    tmp_path, shared_run
):
    run = shared_run
    source = write_mp4v(run.source, tmp_path / "clip mp4v.mp4")
    page = write_video_report(
        tmp_path / "p.html", explanation=run.explanation, video=run.video, source=source
    )
    with Browser(CHROMIUM, page.as_uri(), tmp_path / "profile", width=1280, height=900) as b:
        b.wait_for("document.URL.startsWith('file:') && document.readyState === 'complete'")
        b.wait_for("annotated.readyState >= 2")
        assert b.evaluate("annotated.videoWidth") == 224 and not b.evaluate("annotated.error")
        assert b.evaluate("document.getElementById('source')") is None  # no black box
        note = b.evaluate("document.getElementById('source-note').innerText")
        assert "The source video cannot be shown here" in note
        assert "MPEG-4 part 2 (mpeg4)" in note and "which browsers do not play" in note
        assert "clip mp4v.mp4" in note
        r, a = _rect(b, "document.getElementById('source-note')"), _rect(b, "annotated")
        assert r["height"] == pytest.approx(r["width"] * 112 / 112, abs=1)  # the source's shape
        assert r["width"] == pytest.approx(a["width"] / 2, abs=1)  # one panel's width
        assert b.evaluate("document.getElementById('view-controls').hidden") is True  # no blend
        href = b.evaluate("document.querySelector('#source-note a').getAttribute('href')")
        assert unquote(href) == "clip mp4v.mp4"


def test_an_embedded_page_needs_no_other_file(tmp_path, shared_run):
    run = shared_run
    page = write_video_report(
        tmp_path / "p.html",
        explanation=run.explanation,
        video=run.video,
        source=run.source,
        preview=run.preview,
        embed=True,
    )
    alone = tmp_path / "elsewhere" / "alone.html"
    alone.parent.mkdir()
    page.rename(alone)  # nothing beside it
    with Browser(CHROMIUM, alone.as_uri(), tmp_path / "profile") as b:
        b.wait_for("document.URL.startsWith('file:') && document.readyState === 'complete'")
        b.wait_for("annotated.readyState >= 2 && source.readyState >= 2 && sheet.complete")
        got = json.loads(
            b.evaluate(
                "JSON.stringify([annotated.duration, annotated.videoWidth, source.duration,"
                " sheet.naturalWidth, [...document.querySelectorAll('[src], [href]')]"
                ".map(e => (e.getAttribute('src') || e.getAttribute('href')).slice(0, 5))])"
            )
        )
    assert got[0] == pytest.approx(5.0, 0.05) and got[1] == 224
    assert got[2] == pytest.approx(5.0, 0.05)
    assert got[3] == cv2.imread(str(run.preview)).shape[1]  # the sheet, decoded
    assert set(got[4]) == {"data:"}  # every src and href is inside the page


def _long_explanation(minutes: float, windows: int, labels: list[str]) -> dict:
    """A synthetic explain JSON: ``minutes`` at 25 fps, ``windows`` evenly spaced windows
    whose top class cycles through ``labels``."""
    n = int(minutes * 60 * 25)
    times = [i / 25 for i in range(n)]
    span = n / 25 / windows
    wins = [
        {
            "index": k,
            "start": k * span,
            "end": (k + 1) * span,
            "top": [
                {"index": k % len(labels), "label": labels[k % len(labels)], "prob": 0.6},
                {
                    "index": (k + 1) % len(labels),
                    "label": labels[(k + 1) % len(labels)],
                    "prob": 0.3,
                },
            ],  # fmt: skip
            "targets": [],
        }
        for k in range(windows)
    ]
    imp = [0.5 + 0.5 * np.sin(i / 50) for i in range(n)]
    return {"duration": n / 25, "times": times, "importance": imp, "windows": wins, "frames": n}


@pytest.mark.parametrize("windows", [12, 1873])
def test_no_two_timeline_labels_overlap_on_a_10_minute_video(tmp_path, shared_run, windows):
    run = shared_run
    labels = ["playing the didgeridoo", "riding mountain bike", "Wi", "tap dancing", "WWWWMMMM"]
    ex = _long_explanation(10, windows, labels)
    page = write_video_report(tmp_path / "long.html", explanation=ex, video=run.video)
    with Browser(CHROMIUM, page.as_uri(), tmp_path / "profile", width=1280, height=900) as b:
        b.wait_for("document.URL.startsWith('file:') && document.readyState === 'complete'")
        boxes = json.loads(
            b.evaluate(
                "JSON.stringify([...timeline.querySelectorAll('text')].map(t => {"
                " const r = t.getBoundingClientRect();"
                " return [t.textContent, t.getAttribute('class'), r.left, r.top, r.right, r.bottom]; }))"
            )
        )
        svg = _rect(b, "timeline")
    ticks = [bx[0] for bx in boxes if bx[1] == "xtick"]
    assert ticks == [f"{m}:00" for m in range(11)]  # one a minute, m:ss
    names = [bx[0] for bx in boxes if bx[1] == "toplabel"]
    assert len(names) >= 4 and set(names) <= set(labels)
    for i, (ta, _, l1, t1, r1, b1) in enumerate(boxes):
        assert svg["left"] <= l1 and r1 <= svg["right"] and svg["top"] <= t1, ta
        assert b1 <= svg["bottom"], ta
        for tb, _, l2, t2, r2, b2 in boxes[i + 1 :]:
            apart = r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1
            assert apart, (ta, tb)
