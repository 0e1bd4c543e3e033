"""The report page in a real browser: headless Chromium loads it from disk (file://), plays
the video, seeks by clicking the timeline, blends the source, and takes a screenshot.

Skips only when no Chromium binary is found (Debian: ``apt-get install -y chromium``)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from cdp import Browser, find_chromium
from report_run import HOSTILE_FILE, sample_run

from vidcam.report import write_batch_index, write_video_report

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary found (install Debian's: apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    run = sample_run(base)
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
