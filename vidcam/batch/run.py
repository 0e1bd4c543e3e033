"""``vidcam.batch.run``: plan the run, skip what is already done, execute, index.

1. Inputs -> items with unique keys (:mod:`vidcam.batch.inputs`) -> output names
   (:mod:`vidcam.batch.layout`).
2. Per item: a verified done marker -> a ``skipped`` row (its outputs are not touched); an
   earlier failure with the same settings and input -> its ``failed`` row again (unless
   ``retry_failed``); everything else is to do (partial outputs are redone).
3. The executor (in-process, or Ray actors) does the videos; each row is streamed to
   ``index.jsonl`` as it arrives, with a progress line (done / failed / remaining,
   videos/min, ETA); at the end (also after Ctrl-C or a signal) ``index.jsonl`` is rewritten
   with one row per input, plus ``summary.csv`` and ``index.html``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vidcam.batch.attempt import output_kinds
from vidcam.batch.guard import InputSet, output_conflict
from vidcam.batch.index import IndexWriter
from vidcam.batch.inputs import Item, expand_inputs
from vidcam.batch.layout import RUN_FILES, Outputs, plan_layout
from vidcam.batch.options import DEFAULT_VIDEO_TIMEOUT, BatchOptions
from vidcam.batch.rows import base_row
from vidcam.batch.state import failed_row, fingerprint, own_state, verified_row, written_before
from vidcam.errors import VidcamError
from vidcam.paths import check_writable
from vidcam.progress import Progress, clock
from vidcam.video.options import ExplainOptions

Task = tuple[Item, Outputs, str]  # (item, its outputs, its settings fingerprint)
OnRow = Callable[[dict[str, Any]], None]


def run(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    recursive: bool = False,
    alpha: float = 0.6,
    colormap: str = "jet",
    evaluate: bool = False,
    allow_partial: bool = False,
    retry_failed: bool = False,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    video_timeout: float | None = DEFAULT_VIDEO_TIMEOUT,
    explain: ExplainOptions | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Explain every video of ``inputs`` (files, folders, ``.csv`` / ``.jsonl`` manifests)
    into ``out_dir``; returns the index rows (one per input, in input order).

    The pipeline's options are the fields of :class:`~vidcam.video.options.ExplainOptions`
    (documented there; not ``progress``), as keyword arguments (``model="sample",
    side_by_side="gradcam,layercam"``), as ``explain=ExplainOptions(...)`` (or a dict), or
    both (the keywords then replace those fields). Reruns skip videos whose outputs are complete and verified; ``retry_failed`` redoes
    failures; ``allow_partial`` accepts damaged inputs as ``vidcam explain --allow-partial``
    does. ``executor="ray"`` runs on Ray (``workers`` actors, ``ray_address``).
    ``overwrite`` lets outputs replace existing files that no earlier run of that video wrote
    (never an input of the run); ``video_timeout`` (seconds, None: no limit) turns a video that
    takes longer into a failed row.
    """
    options = BatchOptions(
        explain=_explain_of(explain, kwargs),
        alpha=alpha,
        colormap=colormap,
        evaluate=evaluate,
        allow_partial=allow_partial,
        retry_failed=retry_failed,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        progress=progress,
        overwrite=overwrite,
        video_timeout=video_timeout,
    )
    out = _out_dir(out_dir)
    items = expand_inputs(inputs, recursive=recursive, exclude=out)
    read = InputSet([*(it.path for it in items), *(it.gt for it in items), *inputs])
    _check_run_files(out, read)
    layout = plan_layout(out, [it.key for it in items], avoid=read.holds)
    execute = _executor(options)  # fails now (e.g. Ray missing), before any work
    rows, todo = _plan(items, layout, options, read)
    return _execute(items, rows, todo, options, IndexWriter(out), execute)


def _explain_of(
    explain: ExplainOptions | Mapping[str, Any] | None, kwargs: dict[str, Any]
) -> ExplainOptions | Mapping[str, Any]:
    """``explain`` with the keyword options applied (a dict stays a dict: see
    :class:`BatchOptions`)."""
    if isinstance(explain, ExplainOptions):
        return explain.replace(**kwargs) if kwargs else explain
    return {**(explain or {}), **kwargs}


def _execute(items, rows, todo, options, writer: IndexWriter, execute) -> list[dict[str, Any]]:
    """Stream the known rows, then every finished video's row, into the index; the
    run-level files are rewritten at the end, also after an error or a signal."""
    for r in rows.values():
        writer.append(r)
    status = _Status(len(todo), len(rows), options.progress)

    def on_row(row: dict[str, Any]) -> None:
        rows[row["key"]] = row
        writer.append(row)
        status.update(row)
        writer.maybe_html(_ordered(items, rows))

    try:
        if todo:
            execute(todo, options, on_row)
    finally:
        status.close()
        writer.finish(_ordered(items, rows))
    return _ordered(items, rows)


def _plan(
    items: Sequence[Item], layout: dict[str, Outputs], options: BatchOptions, read: InputSet
) -> tuple[dict[str, dict[str, Any]], list[Task]]:
    """Rows known before any work (skipped, failed earlier, refused) and the videos to do."""
    base = options.fingerprint_settings()
    kinds = output_kinds(options.evaluate)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[Task] = []
    for it in items:
        o = layout[it.key]
        fp = fingerprint({**base, "item": it.settings, "key": it.key})
        done = verified_row(o, fp, it.path)
        if done is not None:
            rows[it.key] = {**done, "status": "skipped"}
            continue
        failed = None if options.retry_failed else failed_row(o, fp, it.path)
        if failed is not None:
            rows[it.key] = failed
            continue
        refused = o.outside() or output_conflict(
            o, kinds, read, written_before(o), own_state(o), overwrite=options.overwrite
        )
        if refused is not None:  # a failed row; nothing written for it (no state file either)
            rows[it.key] = {**base_row(it, None), "error": refused}
            continue
        todo.append((it, o, fp))
    return rows, todo


def _check_run_files(out: Path, read: InputSet) -> None:
    """The run-level files (index.jsonl, summary.csv, ...) are never an input of the run, and
    are regular files or absent (a link would send the rows to its target)."""
    for name in RUN_FILES:
        p = out / name
        hit = read.holds(p)
        if hit is not None:
            raise VidcamError(
                f"the batch's {name} in {str(out)!r} would replace the input {str(hit)!r}; "
                "choose another -o folder"
            )
        if p.is_symlink() or (p.exists() and not p.is_file()):
            kind = "a symbolic link" if p.is_symlink() else "not a regular file"
            raise VidcamError(
                f"{str(p)!r} is {kind}; vidcam never writes through it (remove it, or choose "
                "another -o folder)"
            )


def _ordered(items: Sequence[Item], rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [rows[it.key] for it in items if it.key in rows]


def _out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise VidcamError(f"output folder {str(out_dir)!r} is a file; give a folder")
    if not out.exists():
        check_writable("output folder", out)
        out.mkdir()
    check_writable("output folder", out / "index.jsonl")
    return out


def _executor(options: BatchOptions) -> Callable[[list[Task], BatchOptions, OnRow], None]:
    if options.executor == "ray":
        from vidcam.batch.executor_ray import ray_executor

        return ray_executor(options)
    from vidcam.batch.executor_local import run_local

    return run_local


class _Status:
    """Progress over videos: a bar and one line per finished video (done / failed /
    remaining, videos/min and ETA from :class:`~vidcam.progress.Progress`)."""

    def __init__(self, total: int, carried: int, enabled: bool) -> None:
        self.total = total
        self.done = self.failed = 0
        self.bar = Progress(total, unit="videos", desc="batch", enabled=enabled and total > 0)
        if enabled and carried:
            print(
                f"vidcam batch: {carried} video(s) already done or failed earlier", file=sys.stderr
            )

    def update(self, row: dict[str, Any]) -> None:
        if row["status"] == "failed":
            self.failed += 1
        else:
            self.done += 1
        finished = self.done + self.failed
        rate = self.bar.rate(finished) * 60
        what = f"failed: {row['error']}" if row["status"] == "failed" else f"{row['frames']} frames"
        self.bar.write(
            f"[{finished}/{self.total}] done {self.done}, failed {self.failed}, remaining "
            f"{self.total - finished}, {rate:.2f} videos/min, ETA {clock(self.bar.eta(finished))}"
            f" - {row['key']}: {what}"
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
