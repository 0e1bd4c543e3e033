"""HTML reports: one page per explained video and an index over a batch.

Offline (nothing is fetched from the network): charts are inline SVG drawn in Python
(:mod:`vidcam.report.charts`), a small inline script adds only interaction (cursor, seeking,
blending, sorting), and every page reads fine with JavaScript disabled. A video page links
its annotated video, source and contact sheet by relative, percent-encoded paths, so it shows
them only while they stay where they are relative to it (the page lists them under "Files");
with ``embed=True`` (``--report-embed``) it carries them inside as data: URIs and needs no
other file (:mod:`vidcam.report.media`: size limits, and which codecs browsers play — a source
they cannot play gets a note instead of a black box). The batch index links the per-video
pages of its folder. Pages are Jinja2 templates with autoescape (:mod:`vidcam.report.env`),
written atomically.

- :func:`write_video_report` — the annotated video with its source (beside, or blended over
  it), a timeline of per-window class probabilities and per-frame temporal importance whose
  cursor follows playback and whose click seeks, the contact sheet, settings, metrics.
- :func:`write_batch_index` — ``OUT_DIR/index.html``: a sortable table of the batch rows,
  per-class mean importance profiles, the failures.
- :func:`report_from_args` / :func:`check_report_args` — ``vidcam explain --report``
  (and ``--report-embed``: ``args.report_embed``); :func:`run_settings` — the settings a page
  shows, from the run's :class:`~vidcam.video.options.ExplainOptions`.
"""

from __future__ import annotations

from vidcam.report.batch_page import write_batch_index
from vidcam.report.glue import (
    check_report_args,
    report_from_args,
    run_settings,
    settings_from_args,
)
from vidcam.report.video_page import write_video_report

__all__ = [
    "check_report_args",
    "report_from_args",
    "run_settings",
    "settings_from_args",
    "write_batch_index",
    "write_video_report",
]
