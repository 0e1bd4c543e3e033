"""HTML reports: one page per explained video and an index over a batch.

Self-contained and offline: one folder, relative percent-encoded links, charts as inline SVG
drawn in Python (:mod:`vidcam.report.charts`), a small inline script only for interaction
(cursor, seeking, blending, sorting); every page reads fine with JavaScript disabled. Pages
are Jinja2 templates with autoescape (:mod:`vidcam.report.env`), written atomically.

- :func:`write_video_report` — the annotated video with its source (beside, or blended over
  it), a timeline of per-window class probabilities and per-frame temporal importance whose
  cursor follows playback and whose click seeks, the contact sheet, settings, metrics.
- :func:`write_batch_index` — ``OUT_DIR/index.html``: a sortable table of the batch rows,
  per-class mean importance profiles, the failures.
- :func:`report_from_args` / :func:`check_report_args` — ``vidcam explain --report``.
"""

from __future__ import annotations

from vidcam.report.batch_page import write_batch_index
from vidcam.report.glue import check_report_args, report_from_args, settings_from_args
from vidcam.report.video_page import write_video_report

__all__ = [
    "check_report_args",
    "report_from_args",
    "settings_from_args",
    "write_batch_index",
    "write_video_report",
]
