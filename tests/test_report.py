"""The HTML report pages, rendered from a small real run of the sample model: structure (the
video decodes, one chart point per window, links resolve), escaping and atomic writes."""

from __future__ import annotations

import json

import av
import pytest
from report_run import HOSTILE_DIR, HOSTILE_FILE, Tags, resolve, sample_run

from vidcam.errors import VidcamError
from vidcam.report import write_batch_index, write_video_report
from vidcam.report.charts import sparkline, timeline
from vidcam.report.env import link_inside, quote_rel
from vidcam.report.glue import settings_from_args


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return sample_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(run):
    pages = run.source.parent.parent / "pages dir"
    pages.mkdir()
    p = write_video_report(
        pages / "report.html",
        explanation=run.explanation,
        video=run.video,
        source=run.source,
        preview=run.preview,
        settings={"model": "sample", "weights": "bundled", "side_by_side": "yes"},
        metrics={"remove_20": 0.25, "deletion_voxel": 0.125},
    )
    return p, p.read_text(encoding="utf-8")


def test_links_are_percent_encoded_path_segments():
    assert quote_rel("a b/#1?/100%.mp4") == "a%20b/%231%3F/100%25.mp4"
    assert quote_rel("javascript:alert(1)") == "javascript%3Aalert%281%29"
    assert link_inside("sub/clip 1.html") == "sub/clip%201.html"
    for bad in ("/etc/passwd", "../up.html", "a/../../b", "javascript:alert(1)", "", None, 3):
        assert link_inside(bad) is None, bad


def test_timeline_geometry_by_hand():
    ex = {
        "duration": 4.0,
        "times": [0.0, 1.0, 2.0, 3.0],
        "importance": [0.0, 1.0, 0.5, 0.25],
        "windows": [
            {
                "index": 0,
                "start": 0.0,
                "end": 2.0,
                "top": [
                    {"index": 3, "label": "a", "prob": 0.8},
                    {"index": 1, "label": "b", "prob": 0.2},
                ],
            },
            {
                "index": 1,
                "start": 2.0,
                "end": 3.0,
                "top": [
                    {"index": 1, "label": "b", "prob": 0.6},
                    {"index": 2, "label": "c", "prob": 0.3},
                ],
            },
        ],
    }
    tl = timeline(ex, k=2, width=244, height=144)  # plot: x 44..230, y 14..114
    assert (tl.x0, tl.x1, tl.y_top, tl.y_bottom) == (44.0, 230.0, 14.0, 114.0)
    # mean probabilities: b (0.2+0.6)/2 = 0.4 > a 0.4? a = (0.8+0)/2 = 0.4: tie -> lower index
    assert [s.label for s in tl.series] == ["the window's top class", "b", "a"]
    top, b, a = tl.series
    assert [(p.name, p.value, round(p.x, 6)) for p in top.points] == [
        ("a", 0.8, 90.5), ("b", 0.6, 160.25)]  # fmt: skip
    assert [p.known for p in a.points] == [True, False]
    assert [(p.t, p.value) for p in b.points] == [(1.0, 0.2), (2.5, 0.6)]
    assert [(round(p.x, 6), round(p.y, 6)) for p in b.points] == [(90.5, 94.0), (160.25, 54.0)]
    assert [p.value for p in a.points] == [0.8, 0.0] and (a.missing, b.missing) == (1, 0)
    assert tl.importance_area == (
        "44.00,114.00 44.00,114.00 90.50,14.00 137.00,64.00 183.50,89.00 183.50,114.00"
    )
    # 0.5 s ticks would be 186 / 8 = 23.25 px apart, less than "0.5 s" (2.6 em × 11 px = 28.6
    # px) plus the 6 px gap: the next step, 1 s, is 46.5 px apart
    assert [(round(x, 6), label) for x, label in tl.x_ticks] == [
        (44.0, "0 s"), (90.5, "1 s"), (137.0, "2 s"), (183.5, "3 s"), (230.0, "4 s")]  # fmt: skip
    assert [(round(t.x, 2), t.text) for t in tl.top_labels] == [(90.5, "a"), (160.25, "b")]
    sp = sparkline([0.0, 1.0, 0.5], width=24, height=12)
    assert sp.line == "2.00,10.00 12.00,2.00 22.00,6.00"


def test_page_structure(run, page):
    path, text = page
    tags = Tags(text)
    (main,) = tags.find("video", id="annotated")
    (src,) = tags.find("video", id="source")
    assert resolve(path, main["src"]) == run.video.resolve()
    assert resolve(path, src["src"]) == run.source.resolve()
    with av.open(str(resolve(path, main["src"]))) as c:  # the video element's file decodes
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == run.explanation["frames"] == 40
    assert (frames[0].width, frames[0].height) == (2 * 112, 112)  # two panels side by side
    assert frames[0].format.name == "yuv420p"
    # every relative link and image resolves to a file
    refs = [a["href"] for _, a in tags.tags if a.get("href")] + [
        a["src"] for t, a in tags.tags if t in ("img", "video") and a.get("src")
    ]
    assert len(refs) >= 6
    for r in refs:
        assert resolve(path, r).is_file(), r
    # the chart: one point per window and class series, at the window's mid time
    windows = run.explanation["windows"]
    assert len(windows) == 4
    (svg,) = tags.find("svg", id="timeline")
    dur, x0, x1 = (float(svg[k]) for k in ("data-duration", "data-x0", "data-x1"))
    assert dur == pytest.approx(5.0) and svg["data-windows"] == "4"
    points = tags.find("circle")
    series = tags.find("g", **{"class": "series"})
    assert len(series) == 4 and len(points) == 4 * len(windows)
    assert [g["data-kind"] for g in series] == ["top", "class", "class", "class"]
    for k, g in enumerate(series):
        label = g["data-label"] if k else windows[0]["top"][0]["label"]
        for w, pt in zip(windows, points[k * 4 : (k + 1) * 4], strict=True):
            mid = (w["start"] + w["end"]) / 2
            prob = {e["label"]: e["prob"] for e in w["top"]}.get(label, 0.0)
            prob = w["top"][0]["prob"] if k == 0 else prob  # the top series: the window's best
            assert int(pt["data-window"]) == w["index"]
            assert float(pt["cx"]) == pytest.approx(x0 + (x1 - x0) * mid / dur, abs=0.01)
            assert float(pt["data-prob"]) == pytest.approx(prob, abs=1e-6)
    (area,) = tags.find("polygon", **{"class": "importance"})
    assert len(area["points"].split()) == run.explanation["frames"] + 2
    # the rest of the page: panels, contact sheet, settings, metrics with how to read them
    assert "<li>Grad-CAM (panel 1" in text and "<li>Grad-CAM++ (panel 2" in text
    assert tags.find("img", id="sheet")
    assert "<th>weights</th><td>bundled</td>" in text and "<th>layers</th><td>block3</td>" in text
    assert "<th>spatial</th><td>full</td>" in text
    assert "remove_20" in text and "lower means the map found what the model needs" in text
    assert "as the map&#39;s top voxels (or frames) are deleted first: lower is better" in text
    # interaction is an inline script only: nothing fetched from elsewhere
    assert not tags.find("link") and all("src" not in a for a in tags.find("script"))
    data = json.loads(tags.scripts[0])
    assert data == {"duration": dur, "x0": x0, "x1": x1}


def test_hostile_names_are_text_never_markup(run, page):
    path, text = page
    assert "<script>alert" not in text and "<img src=x" not in text
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;.mp4" in text
    )
    tags = Tags(text)
    assert len(tags.find("script")) == 2  # the page's JSON data and its own script
    assert not [a for _, a in tags.tags if any(k.startswith("on") for k in a)]
    assert [t for t, _ in tags.tags].count("img") == 1  # the contact sheet
    # hostile labels and warnings from the JSON: escaped too, also inside the SVG
    ex = json.loads(json.dumps(run.explanation))
    for w in ex["windows"]:
        for e in w["top"] + w["targets"]:
            e["label"] = '</script><script>alert("label")</script>'
    ex["warnings"] = ["<b onmouseover=alert(3)>warn</b>"]
    p2 = write_video_report(path.with_name("hostile.html"), explanation=ex, video=run.video)
    t2 = p2.read_text(encoding="utf-8")
    tags2 = Tags(t2)
    assert len(tags2.find("script")) == 2 and not tags2.find("b")
    assert "<li>Grad-CAM++ (panel 2" in t2  # no settings: the video's width says 2 panels
    assert "&lt;b onmouseover=alert(3)&gt;warn&lt;/b&gt;" in t2
    assert "&lt;/script&gt;&lt;script&gt;alert(&#34;label&#34;)" in t2


def test_atomic_writes_and_overwrite(run, page, monkeypatch, tmp_path):
    out = tmp_path / "r.html"
    kw = dict(explanation=run.explanation, video=run.video, source=run.source)
    write_video_report(out, **kw)
    first = out.read_text(encoding="utf-8")
    with pytest.raises(VidcamError, match="already exists"):
        write_video_report(out, overwrite=False, **kw)
    assert out.read_text(encoding="utf-8") == first
    # a failure while rendering leaves the old page untouched and no temporary file
    import vidcam.report.video_page as vp

    def boom(*a, **k):
        raise RuntimeError("render failed")

    monkeypatch.setattr(vp, "render", boom)
    with pytest.raises(RuntimeError):
        write_video_report(out, **kw)
    assert out.read_text(encoding="utf-8") == first
    monkeypatch.undo()
    write_video_report(out, preview=run.preview, **kw)  # overwrite=True by default: replaced
    assert out.read_text(encoding="utf-8") != first and 'id="sheet"' in out.read_text("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_bad_arguments_name_themselves(run, tmp_path):
    with pytest.raises(VidcamError, match="annotated video .* does not exist"):
        write_video_report(tmp_path / "p.html", explanation=run.explanation, video=tmp_path / "x")
    with pytest.raises(VidcamError, match="explanation"):
        write_video_report(tmp_path / "p.html", explanation=[], video=run.video)
    with pytest.raises(VidcamError, match="is the input file"):
        write_video_report(run.video, explanation=run.explanation, video=run.video)
    with pytest.raises(VidcamError, match="out_dir"):
        write_batch_index(tmp_path / "missing", [])
    assert list(tmp_path.iterdir()) == []


def _row(key, status, **kw):
    base = {
        "key": key,
        "input": f"/in/{key}",
        "status": status,
        "error": None,
        "label": None,
        "target": None,
        "outputs": {},
        "top": [],
        "frames": 40,
        "duration": 5.0,
        "seconds": 1.0,
        "temporal_profile": [],
        "centre_energy": None,
        "metrics": None,
    }
    return base | kw


def test_batch_index(run, tmp_path):
    out = tmp_path / "batch"
    sub = out / HOSTILE_DIR
    sub.mkdir(parents=True)
    report = write_video_report(
        sub / "clip #1.html", explanation=run.explanation, video=run.video, source=run.source
    )
    rel = f"{HOSTILE_DIR}/clip #1.html"
    top = [{"label": "moving_right", "index": 1, "prob": 0.75}]
    rows = [
        _row("a.mp4", "failed", error="stale row: replaced below"),
        _row(
            f"{HOSTILE_DIR}/{HOSTILE_FILE}",
            "done",
            top=top,
            outputs={"report": rel},
            temporal_profile=[0.0, 1.0, 0.5],
            metrics={"remove_20": 0.5, "deletion_voxel": 0.25},
        ),
        _row(
            "b.mp4",
            "done",
            top=[{"label": "moving_right", "index": 1, "prob": 0.25}],
            temporal_profile=[1.0, 0.0, 0.5],
            metrics={"remove_20": 0.1},
            outputs={"report": "javascript:alert(1)"},
        ),
        _row(
            "c <script>x</script>.mp4",
            "done",
            top=[{"label": "<i>up</i>", "index": 2, "prob": 0.5}],
            temporal_profile=[0.25, 0.25, 0.25],
            outputs={"report": "../x.html"},
        ),
        _row("a.mp4", "failed", error="decode failed: <b>moov atom not found</b>"),
        _row("d.mp4", "skipped"),
    ]
    page = write_batch_index(out, rows)
    assert page == out / "index.html"
    text = page.read_text(encoding="utf-8")
    tags = Tags(text)
    (table,) = tags.find("table", id="videos")
    body_rows = [a for t, a in tags.tags if t == "tr" and "class" in a]  # the videos table's
    assert [r["class"] for r in body_rows] == ["failed", "done", "done", "done", "skipped"]
    (per_class,) = tags.find("table", id="class-metrics")  # the mean metrics per class
    assert "<td>moving_right</td>" in text and "<td>&lt;i&gt;up&lt;/i&gt;</td>" in text
    hrefs = [a["href"] for _, a in tags.tags if a.get("href")]
    assert hrefs == [quote_rel(rel)]  # the bad report paths give no link
    assert resolve(page, hrefs[0]) == report.resolve()
    assert "decode failed: &lt;b&gt;moov atom not found&lt;/b&gt;" in text
    assert "stale row" not in text and "<b>" not in text and "<i>" not in text
    heads = [a.get("data-type") for t, a in tags.tags if t == "th" and a.get("data-type")]
    assert heads == ["text", "text", "text", "num", "num", "num", "num"]  # remove_20, deletion
    # sortable values: confidence and metrics as plain numbers, blanks for missing ones
    conf = [a.get("data-sort") for t, a in tags.tags if t == "td"][: 5 * 7][3::7]
    assert conf == ["", "0.75", "0.25", "0.5", ""]
    # per class: moving_right's mean profile is (0,1,.5)+(1,0,.5) / 2 = (.5,.5,.5)
    (classes,) = tags.find("div", id="classes")
    sparks = [a["points"] for t, a in tags.tags if t == "polyline"]
    assert sparks == [sparkline([0.5, 0.5, 0.5]).line, sparkline([0.25, 0.25, 0.25]).line]
    assert "2 videos,\n    mean confidence 50.0 %" in text
    assert len(tags.find("script")) == 1
    assert "move or copy the folder as a whole" in text  # what the links need
    with pytest.raises(VidcamError, match="already exists"):
        write_batch_index(out, rows, overwrite=False)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", HOSTILE_DIR]


def test_settings_from_cli_arguments():
    class Args:
        model, weights, random_weights, layer = "i3d", None, False, ["Mixed_5c"]
        method, softmax, target, clip_len, stride = "gradcam++", False, "top1", None, None
        spatial, normalize, alpha, colormap = "auto", "video", 0.6, "jet"
        side_by_side, device = True, "cpu"

    s = settings_from_args(Args())
    assert s["weights"] == "the registry's pretrained weights" and s["layer"] == "Mixed_5c"
    assert s["side_by_side"] == "yes" and s["alpha"] == "0.6" and s["clip length"] == "the model's"


def test_cli_glue_checks_first_then_writes(run, tmp_path):
    import argparse

    from vidcam.report import check_report_args, report_from_args

    page = tmp_path / "p.html"
    args = argparse.Namespace(
        input=str(run.source), output=str(run.video), json=None, preview=str(run.preview),
        report=str(page), overwrite=False, model="sample", weights=None, random_weights=False,
        layer=None, method="gradcam++", side_by_side=True,
    )  # fmt: skip
    check_report_args(args)
    with pytest.raises(VidcamError, match="--report needs -o"):
        check_report_args(argparse.Namespace(**{**vars(args), "output": None}))
    with pytest.raises(VidcamError, match="is the input file"):
        check_report_args(argparse.Namespace(**{**vars(args), "report": str(run.source)}))
    with pytest.raises(VidcamError, match="must be different files"):
        check_report_args(argparse.Namespace(**{**vars(args), "preview": str(page)}))

    class Result:
        def to_json(self):
            return run.explanation

    assert report_from_args(args, Result()) == page
    text = page.read_text(encoding="utf-8")
    assert "<th>weights</th><td>the registry&#39;s pretrained weights</td>" in text
    assert report_from_args(argparse.Namespace(report=None), Result()) is None
    with pytest.raises(VidcamError, match="already exists"):
        check_report_args(args)
