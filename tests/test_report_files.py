"""The report's rough edges (issue 27 item 11), without a browser: time ticks spaced by their
labels' widths and window names placed without overlap (by hand), the codec check, the Files
section (what a page needs beside it), embedding (data: URIs, limits, one-line refusals) and
the command line's glue for ``--report-embed``. The browser side: test_report_browser.py."""

from __future__ import annotations

import html

import pytest
from report_run import HOSTILE_DIR, Tags, resolve, sample_run

from vidcam.errors import VidcamError
from vidcam.report import write_video_report


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return sample_run(tmp_path_factory.mktemp("report_files"))


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
    )
    return p, p.read_text(encoding="utf-8")


def test_time_ticks_by_the_width_of_their_labels():
    from vidcam.report.charts import GAP, TICK_FONT, text_width, time_ticks

    # "10:00" = 4 digits × 0.64 em + ":" 0.34 em = 2.9 em × 11 px = 31.9 px; 1-minute ticks
    # on 838 px are 83.8 px apart (50 s would make 12 ticks: more than 10)
    assert text_width("10:00", TICK_FONT) == pytest.approx(31.9)
    ticks = time_ticks(600, 838.0)
    assert ticks == [(60.0 * m, f"{m}:00") for m in range(11)]
    # the same video on 300 px: 60 s ticks 30 px apart < 31.9 + GAP; 120 s ticks 60 px apart
    assert [label for _, label in time_ticks(600, 300.0)] == [f"{m}:00" for m in range(0, 11, 2)]
    assert 30.0 < text_width("10:00", TICK_FONT) + GAP < 60.0
    # two hours: 15-minute ticks, h:mm:ss past the hour
    labels = [label for _, label in time_ticks(7200, 838.0)]
    assert labels[:2] == ["0:00", "15:00"] and labels[4:6] == ["1:00:00", "1:15:00"]
    assert labels[-1] == "2:00:00" and len(labels) == 9
    # under a minute: seconds on the 1-2-5 steps
    assert [label for _, label in time_ticks(30, 838.0)] == [f"{s} s" for s in range(0, 31, 5)]
    assert time_ticks(0.0, 838.0) == [(0.0, "0 s")]


def test_window_names_placed_without_overlap_changes_first():
    from vidcam.report.charts import place_labels, text_width

    w = text_width("ab", 10.0)  # 1.28 em × 10 = 12.8 px
    assert w == pytest.approx(12.8)
    wanted = [(100.0, 50.0, "ab"), (110.0, 50.0, "ab"), (125.0, 50.0, "cd"), (200.0, 50.0, "ab")]
    got = place_labels(wanted, (0.0, 400.0), size=10.0, gap=6.0)
    # changes first: "ab" at 100 (box 93.6..106.4), "cd" at 125 (118.6..131.4: 12.2 px from
    # the first, more than the 6 px gap), "ab" at 200; then the repeat at 110 (103.6..116.4)
    # overlaps the first and is left out
    assert [(t.x, t.text) for t in got] == [(100.0, "ab"), (125.0, "cd"), (200.0, "ab")]
    # a name at the plot's edge moves inside it; one wider than the plot is left out
    (edge,) = place_labels([(1.0, 50.0, "ab")], (0.0, 400.0), size=10.0)
    assert edge.x == pytest.approx(6.4) and edge.box[0] == pytest.approx(0.0)
    assert place_labels([(50.0, 50.0, "x" * 100)], (0.0, 100.0)) == ()
    # at different heights two names may share x
    got = place_labels([(100.0, 20.0, "ab"), (100.0, 60.0, "cd")], (0.0, 400.0), size=10.0)
    assert len(got) == 2


def test_probe_media_reads_the_codec(run, tmp_path):
    import cv2
    import numpy as np

    from vidcam.report.media import probe_media

    m = probe_media(run.video)
    assert (m.kind, m.playable, m.why, m.mime) == ("video", True, "", "video/mp4")
    assert m.codec.endswith("(h264)") and (m.width, m.height) == (224, 112)
    mp4v = tmp_path / "mp4v.mp4"
    out = cv2.VideoWriter(str(mp4v), cv2.VideoWriter_fourcc(*"mp4v"), 8, (64, 48))
    for i in range(8):
        out.write(np.full((48, 64, 3), 20 * i, np.uint8))
    out.release()
    m = probe_media(mp4v)
    assert not m.playable and (m.width, m.height) == (64, 48)
    assert m.why == (
        "it holds MPEG-4 part 2 (mpeg4) video (container: MP4), which browsers do not play"
    )
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video", encoding="utf-8")
    m = probe_media(bad)
    assert not m.playable and m.why.startswith("it could not be read (")
    assert probe_media(run.preview).kind == "image" and probe_media(run.preview).playable


def test_page_lists_the_files_it_needs_and_they_resolve(run, page):
    path, text = page
    tags = Tags(text)
    assert "This page is not self-contained" in text and "--report-embed" in text
    rows = text.split('<table id="files">')[1].split("</table>")[0]
    hrefs = [a["href"] for a in Tags(rows).find("a")]
    assert [resolve(path, h) for h in hrefs] == [
        run.video.resolve(), run.source.resolve(), run.preview.resolve()]  # fmt: skip
    shown = html.escape(f"../{HOSTILE_DIR}/annotated #1 ?.mp4", quote=False)
    assert f"<code>{shown}</code>" in rows  # the path as the reader must keep it
    assert "self-contained" not in text.split("This page is not self-contained")[0]
    assert not tags.find("div", **{"class": "unplayable"})


def test_embed_carries_the_files_inside(run, tmp_path):
    import base64

    p = write_video_report(
        tmp_path / "e.html",
        explanation=run.explanation,
        video=run.video,
        source=run.source,
        preview=run.preview,
        embed=True,
    )
    text = p.read_text(encoding="utf-8")
    tags = Tags(text)
    refs = [a.get("src") or a.get("href") for _, a in tags.tags if a.get("src") or a.get("href")]
    assert len(refs) == 3 and all(r.startswith("data:") for r in refs)  # video, source, sheet
    (main,) = tags.find("video", id="annotated")
    head, body = main["src"].split(",", 1)
    assert head == "data:video/mp4;base64" and base64.b64decode(body) == run.video.read_bytes()
    (sheet,) = tags.find("img", id="sheet")
    assert base64.b64decode(sheet["src"].split(",", 1)[1]) == run.preview.read_bytes()
    assert "This page carries its files inside" in text and "not self-contained" not in text


def test_embed_refuses_files_over_the_limits_in_one_line(run, tmp_path, monkeypatch):
    import vidcam.report.media as media

    kw = dict(explanation=run.explanation, video=run.video, source=run.source, embed=True)
    size = run.video.stat().st_size
    monkeypatch.setattr(media, "EMBED_FILE_LIMIT", size - 1)
    with pytest.raises(VidcamError) as e:
        write_video_report(tmp_path / "e.html", **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--report-embed: the annotated video ")
    assert f"is {size / 1e6:.1f} MB" in msg and "leave out --report-embed" in msg
    monkeypatch.setattr(media, "EMBED_FILE_LIMIT", 10**9)
    total = size + run.source.stat().st_size
    monkeypatch.setattr(media, "EMBED_TOTAL_LIMIT", total - 1)
    with pytest.raises(VidcamError, match=f"the files to embed total {total / 1e6:.1f} MB"):
        write_video_report(tmp_path / "e.html", **kw)
    assert list(tmp_path.iterdir()) == []  # nothing written
    monkeypatch.setattr(media, "EMBED_TOTAL_LIMIT", total)
    assert write_video_report(tmp_path / "e.html", **kw).is_file()


def test_cli_glue_embeds_and_refuses_a_big_source_before_any_work(run, tmp_path, monkeypatch):
    import argparse

    import vidcam.report.media as media
    from vidcam.report import check_report_args, report_from_args

    args = argparse.Namespace(
        input=str(run.source), output=str(run.video), json=None, preview=None,
        report=str(tmp_path / "p.html"), overwrite=False, report_embed=True,
        labels="my labels.txt", card=None,
    )  # fmt: skip
    monkeypatch.setattr(media, "EMBED_FILE_LIMIT", run.source.stat().st_size - 1)
    with pytest.raises(VidcamError, match="--report-embed: the source video"):
        check_report_args(args)
    monkeypatch.undo()
    check_report_args(args)
    with pytest.raises(VidcamError, match="--report-embed needs --report PAGE.html"):
        check_report_args(argparse.Namespace(**{**vars(args), "report": None}))

    class Result:
        def to_json(self):
            return run.explanation

    text = report_from_args(args, Result()).read_text(encoding="utf-8")
    assert Tags(text).find("video", id="annotated")[0]["src"].startswith("data:video/mp4;")
    assert "<th>labels file</th><td>my labels.txt</td>" in text


def test_the_page_shows_the_users_class_names(tmp_path):
    """Issue 24: a model opened with the user's labels (as ``--labels my.txt`` does) is
    explained and reported with those names, never the registry's."""
    import json

    from report_run import write_clip

    from vidcam.models.open import open_model
    from vidcam.video import write_explained_video

    mine = ["reach <b>", "pour", "stir", "wipe", "cut & chop", "idle"]
    handle = open_model("sample", labels=mine, pretrained=False, device="cpu", progress=False)
    registry = open_model("sample", pretrained=False, device="cpu", progress=False).labels
    clip = write_clip(tmp_path / "clip.mp4", n=24)
    video, js = tmp_path / "o.mp4", tmp_path / "o.json"
    write_explained_video(clip, video, model=handle, json_path=js, stride=8, target="topk:3",
                          progress=False)  # fmt: skip
    explanation = json.loads(js.read_text("utf-8"))
    page = write_video_report(
        tmp_path / "p.html", explanation=explanation, video=video, source=clip,
        settings={"labels file": "my.txt"},
    )  # fmt: skip
    text = page.read_text(encoding="utf-8")
    series = [g["data-label"] for g in Tags(text).find("g", **{"class": "series"})][1:]
    assert len(series) == 3 and set(series) <= set(mine)  # the chart's classes
    rows = text.split('<table id="windows">')[1].split("</table>")[0].split("<tr>")[2:]
    tops = [w["top"][0]["label"] for w in explanation["windows"]]
    assert len(rows) == len(tops) >= 2 and set(tops) <= set(mine)
    for row, top in zip(rows, tops, strict=True):  # the windows table, escaped
        assert f"<td>{html.escape(top)}</td>" in row
    assert not [n for n in registry if n in text]  # no registry name anywhere on the page
