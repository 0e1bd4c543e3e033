"""``vidcam export fiftyone`` / :func:`to_fiftyone`: a batch output as a FiftyOne dataset.

One video sample per explained clip (the source video is the sample's media), with frame-level
heatmaps per method, predictions, ground truth, metrics and links (:mod:`vidcam.export.samples`).

- **Heatmaps** are PNG files (``map_path``) at a reduced resolution, written under
  ``BATCH_DIR/fiftyone-maps/DATASET/RUN/`` (``heatmaps="array"`` stores them in the database
  instead; see docs/fiftyone.md for the measurements behind the default).
- **Failed rows** of the batch are not samples (their video often cannot be decoded, and
  they have no maps): they are counted, and listed in ``dataset.info["vidcam"]["failed"]``.
- **Persistent, idempotent:** the dataset records its batch folder in
  ``dataset.info["vidcam"]``. Exporting the same batch again updates its samples in place,
  keyed by ``vidcam_key`` (sample ids and tags are kept; no duplicates; samples whose row is
  gone or failed are removed). ``overwrite=True`` rebuilds the dataset; a dataset of any
  other origin is refused without it.
- **Nothing half-written:** everything is checked and every heatmap computed before the
  database is touched; a new or rebuilt dataset is filled under a temporary name and renamed
  at the end (deleted on any error); an old run's heatmap folder is removed only after success.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcam.errors import VidcamError
from vidcam.export.batch_reader import BatchRecords, FailedRow, read_batch
from vidcam.export.samples import (
    PreparedClip,
    check_clip,
    color_scheme,
    field_name,
    fill_sample,
    prepare_clip,
    to_sample,
)
from vidcam.progress import Progress
from vidcam.video.render import check_alpha, colormap_lut
from vidcam.video.scale import DEFAULT_NORMALIZE, check_normalize

FORMAT = "vidcam-fiftyone/1"
HEATMAPS = ("png", "array")
MAPS_FOLDER = "fiftyone-maps"
INSTALL = "pip install 'vidcam[fiftyone]'"


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`to_fiftyone` did: the dataset's name, its samples (``added`` new,
    ``updated`` in place, ``removed``), frames written, the heat fields {field: method id},
    the batch's failed rows (not exported) and the seconds it took."""

    dataset: str
    samples: int
    added: int
    updated: int
    removed: int
    frames: int
    heat_fields: dict[str, str]
    failed: tuple[FailedRow, ...]
    seconds: float


def import_fiftyone() -> Any:
    """The ``fiftyone`` module, or a one-line :class:`VidcamError` saying how to install it."""
    try:
        return importlib.import_module("fiftyone")
    except ImportError as exc:
        if exc.name not in ("fiftyone", None) and not str(exc.name).startswith("fiftyone"):
            raise
        raise VidcamError(f"FiftyOne is not installed: {INSTALL}") from None


def to_fiftyone(
    batch_dir: str | Path,
    dataset: str,
    *,
    overwrite: bool = False,
    normalize: str | None = None,
    colormap: str | None = None,
    alpha: float | None = None,
    heatmaps: str = "png",
    max_side: int = 256,
    progress: bool = False,
) -> ExportSummary:
    """Export the finished batch in ``batch_dir`` to the FiftyOne dataset ``dataset``.

    ``normalize`` / ``colormap`` / ``alpha``: the display scale, colour map and opacity the
    batch rendered with (default: what its maps record, else the batch defaults video, jet,
    0.6). ``heatmaps``: ``"png"`` (files, default) or ``"array"`` (in the database);
    ``max_side``: the heatmaps' longer side in pixels (the source's aspect; never enlarged).
    """
    started = time.perf_counter()
    _check_options(dataset, heatmaps, max_side, overwrite)
    records = read_batch(batch_dir)
    look = _look(records, normalize, colormap, alpha)
    _check_sources(records)
    fo = import_fiftyone()
    existing = _owned(fo, dataset, records.folder, overwrite)
    in_place = existing is not None and not overwrite
    run_dir = _run_dir(records.folder, dataset) if heatmaps == "png" else None
    tally = _Tally()
    try:
        source: Iterable[PreparedClip] = _prepare(records, look, max_side, run_dir, progress)
        if run_dir is not None:  # every heatmap on disk before the database is touched
            source = list(source)
        elif in_place:  # arrays stream into the database: every clip's files checked first
            for c in records.clips:
                check_clip(c)
        stream = tally.count(source)
        info = functools.partial(_info, records, look, tally, run_dir, heatmaps, max_side)
        if in_place:
            counts = _update(fo, existing, stream, records, info, look)
        else:
            counts = _rebuild(fo, dataset, stream, info, look)
    except BaseException as exc:
        if run_dir is not None and not isinstance(exc, PartlyUpdated):
            shutil.rmtree(run_dir, ignore_errors=True)  # no sample refers to it
        raise
    if run_dir is not None:
        _remove_old_runs(run_dir)
    return ExportSummary(
        dataset=dataset,
        samples=tally.samples,
        frames=tally.frames,
        heat_fields=dict(tally.heat),
        failed=records.failed,
        seconds=round(time.perf_counter() - started, 3),
        **counts,
    )


def _check_sources(records: BatchRecords) -> None:
    for c in records.clips:
        if not c.source.is_file():
            raise VidcamError(
                f"batch row {c.key!r}: its source video {str(c.source)!r} is missing "
                "(the FiftyOne sample plays it); put it back or rerun vidcam batch"
            )


class _Tally:
    """What went into the dataset, counted as the prepared clips stream past (their frames,
    which may hold arrays, are not kept)."""

    def __init__(self) -> None:
        self.samples = self.frames = 0
        self.heat: dict[str, str] = {}
        self.skipped: set[str] = set()
        self.metrics: set[str] = set()

    def count(self, source: Iterable[PreparedClip]) -> Iterator[PreparedClip]:
        for p in source:
            self.samples += 1
            self.frames += len(p.frames)
            self.heat |= p.heat
            self.skipped |= set(p.skipped_panels)
            self.metrics |= set(p.clip.metrics)
            yield p


class PartlyUpdated(VidcamError):
    """The database failed during an in-place update (its samples may refer to the new
    heatmap folder, which is therefore kept): exporting again completes it."""


def _check_options(dataset: str, heatmaps: str, max_side: int, overwrite: bool) -> None:
    if not isinstance(dataset, str) or not dataset.strip():
        raise VidcamError(f"dataset {dataset!r}: give a non-empty dataset name")
    if heatmaps not in HEATMAPS:
        raise VidcamError(f"heatmaps {heatmaps!r} must be one of {', '.join(HEATMAPS)}")
    if isinstance(max_side, bool) or not isinstance(max_side, int) or not 8 <= max_side <= 4096:
        raise VidcamError(f"max_side must be a whole number of pixels in 8..4096, got {max_side!r}")
    if not isinstance(overwrite, bool):
        raise VidcamError(f"overwrite must be True or False, got {overwrite!r}")


def _look(
    records: BatchRecords, normalize: str | None, colormap: str | None, alpha: float | None
) -> dict[str, Any]:
    """The display scale, colour map and opacity: given, else recorded by the batch's maps,
    else the batch defaults."""
    recorded = {k: v for c in records.clips for k, v in c.render.items()}
    given = {"normalize": normalize, "colormap": colormap, "alpha": alpha}
    defaults = {"normalize": DEFAULT_NORMALIZE, "colormap": "jet", "alpha": 0.6}
    look = {k: given[k] if given[k] is not None else recorded.get(k, defaults[k]) for k in defaults}
    check_normalize(look["normalize"])
    colormap_lut(look["colormap"])
    check_alpha(look["alpha"])
    return look


def _owned(fo: Any, name: str, folder: Path, overwrite: bool) -> Any:
    """The existing dataset ``name`` (None when there is none); refuses one that is not this
    batch's export unless ``overwrite``."""
    try:  # the first database access: FiftyOne connects (or starts its own mongod) here
        exists = fo.dataset_exists(name)
    except Exception as exc:
        text = " ".join(str(exc).split())
        raise VidcamError(
            f"FiftyOne's database cannot be used ({type(exc).__name__}: {text}); check "
            "FIFTYONE_DATABASE_URI, or run python -m vidcam.export.mongod"
        ) from None
    if not exists:
        return None
    ds = fo.load_dataset(name)
    info = ds.info.get("vidcam") if isinstance(ds.info, dict) else None
    mine = isinstance(info, dict) and info.get("batch_dir") == str(folder)
    if not mine and not overwrite:
        origin = (
            f"the export of batch {info.get('batch_dir')!r}"
            if isinstance(info, dict)
            else "not a vidcam export"
        )
        raise VidcamError(
            f"dataset {name!r} already exists ({origin}); pass --overwrite to replace it, "
            "or choose another --dataset"
        )
    return ds


def _run_dir(folder: Path, dataset: str) -> Path:
    """A new folder for this export's heatmap images: ``fiftyone-maps/SLUG/run-XXXX``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)[:80]
    digest = hashlib.sha256(dataset.encode()).hexdigest()[:8]
    parent = folder / MAPS_FOLDER / f"{slug}-{digest}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    except OSError as exc:
        raise VidcamError(
            f"cannot write heatmaps into {str(parent)!r}: {exc.strerror}; "
            "the batch folder must be writable (or use heatmaps='array')"
        ) from None


def _remove_old_runs(run_dir: Path) -> None:
    """Earlier exports' heatmap folders (no sample refers to them any more)."""
    for old in run_dir.parent.glob("run-*"):
        if old != run_dir and old.is_dir():
            try:
                shutil.rmtree(old)
            except OSError as exc:  # the export itself is complete: say so, do not fail it
                warnings.warn(f"an old heatmap folder stays behind: {exc}", stacklevel=2)


def _prepare(
    records: BatchRecords,
    look: dict[str, Any],
    max_side: int,
    run_dir: Path | None,
    progress: bool,
) -> Iterator[PreparedClip]:
    with Progress(len(records.clips), unit="videos", desc="export", enabled=progress) as bar:
        for i, clip in enumerate(records.clips):
            yield prepare_clip(
                clip,
                normalize=look["normalize"],
                max_side=max_side,
                maps_dir=None if run_dir is None else run_dir / f"{i:05d}",
            )
            bar.update(1)


def _info(
    records: BatchRecords,
    look: dict[str, Any],
    tally: _Tally,
    run_dir: Path | None,
    heatmaps: str,
    max_side: int,
) -> dict[str, Any]:
    """``dataset.info["vidcam"]``: where the dataset comes from and how it was made."""
    return {
        "format": FORMAT,
        "batch_dir": str(records.folder),
        "heatmaps": heatmaps,
        "maps_dir": None if run_dir is None else str(run_dir),
        "max_side": max_side,
        "heat_fields": dict(tally.heat),
        "skipped_panels": sorted(tally.skipped),
        "metrics": {field_name(k): k for k in sorted(tally.metrics)},
        "failed": [{"key": f.key, "input": f.source, "error": f.error} for f in records.failed],
        **look,
    }


def _configure(fo: Any, ds: Any, info: Callable[[], dict], look: dict[str, Any]) -> None:
    """Record the export (``info()``, once every sample is written), and set the App's colours
    and what it shows at first: the labels and the first method's heatmap (FiftyOne hides
    dense labels unless told)."""
    record = info()
    heat = list(record["heat_fields"])
    ds.info["vidcam"] = record
    ds.app_config.color_scheme = color_scheme(fo, heat, look["colormap"], look["alpha"])
    shown = ["prediction", "ground_truth", "frames.prediction", *[f"frames.{f}" for f in heat[:1]]]
    ds.app_config.active_fields = fo.ActiveFields(paths=[p for p in shown if ds.has_field(p)])
    ds.save()


def _rebuild(
    fo: Any,
    name: str,
    prepared: Iterable[PreparedClip],
    info: Callable[[], dict],
    look: dict[str, Any],
) -> dict[str, int]:
    """A new dataset filled under a temporary name, then put in place of ``name``."""
    stamp = f"{time.time_ns():x}"
    tmp = fo.Dataset(f"{name}.vidcam-tmp-{stamp}")
    old = None
    try:
        tmp.add_samples(_samples(fo, prepared), progress=False)
        _configure(fo, tmp, info, look)
        if fo.dataset_exists(name):  # moved aside, deleted only once the new one is in place
            old = fo.load_dataset(name)
            old.name = f"{name}.vidcam-old-{stamp}"
        tmp.name = name
        tmp.persistent = True
    except BaseException:
        with contextlib.suppress(Exception):  # the original error matters, not the cleanup's
            tmp.delete()
        if old is not None:
            with contextlib.suppress(Exception):
                old.name = name
        raise
    if old is not None:
        old.delete()
    return {"added": len(tmp), "updated": 0, "removed": 0}


def _samples(fo: Any, prepared: Iterable[PreparedClip]) -> Iterator[Any]:
    for p in prepared:
        yield to_sample(fo, p)


def _update(
    fo: Any,
    ds: Any,
    prepared: Iterable[PreparedClip],
    records: BatchRecords,
    info: Callable[[], dict],
    look: dict[str, Any],
) -> dict[str, int]:
    """This batch's dataset updated in place, keyed by ``vidcam_key``; samples whose row is
    gone or failed are removed."""
    ids = dict(zip(ds.values("vidcam_key"), ds.values("id"), strict=True))
    keep = {c.key for c in records.clips}
    added = updated = 0
    try:
        for p in prepared:
            if p.clip.key in ids:
                sample = ds[ids[p.clip.key]]
                sample.frames.clear()
                fill_sample(fo, sample, p)
                sample.save()
                updated += 1
            else:
                ds.add_sample(to_sample(fo, p))
                added += 1
        gone = [i for k, i in ids.items() if k not in keep]
        if gone:
            ds.delete_samples(gone)
        _configure(fo, ds, info, look)
    except Exception as exc:
        if isinstance(exc, VidcamError) and not (added or updated):
            raise  # nothing written yet
        text = " ".join(str(exc).split())
        raise PartlyUpdated(
            f"dataset {ds.name!r} was partly updated ({type(exc).__name__}: {text}); "
            "run the export again to complete it"
        ) from exc
    return {"added": added, "updated": updated, "removed": len(gone)}
