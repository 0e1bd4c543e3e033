"""One video, start to finish: explain, render, write every output, then the done marker.

:class:`VideoWorker` opens the model ONCE (:func:`~vidcam.models.open.open_model`) and
passes its :class:`~vidcam.models.handle.ModelHandle` to the pipeline for every video; both executors use it (the Ray
executor inside its actors). :meth:`VideoWorker.process` never raises for a bad video: the
failure becomes a ``failed`` row with its one-line error (signals and Ctrl-C still stop).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from vidcam.batch.aggregates import centre_energy, temporal_profile, video_top
from vidcam.batch.guard import InputSet, identities, output_conflict
from vidcam.batch.inputs import Item
from vidcam.batch.layout import Outputs
from vidcam.batch.maps_io import load_maps, save_maps
from vidcam.batch.options import BatchOptions
from vidcam.batch.segment import segment_clip
from vidcam.batch.state import (
    own_state,
    write_done,
    write_failed,
    write_started,
    written_before,
)
from vidcam.errors import VidcamError
from vidcam.models.open import open_model
from vidcam.paths import write_text
from vidcam.video import analyze, render_analysis
from vidcam.video.decode import time_limit
from vidcam.video.setup import ExplainOptions


def base_row(item: Item, target: str | None) -> dict[str, Any]:
    """A row of the index schema with nothing computed yet."""
    return {
        "key": item.key,
        "input": str(item.path),
        "status": "failed",
        "error": None,
        "label": item.label,
        "target": target,
        "outputs": {},
        "top": [],
        "frames": 0,
        "duration": 0.0,
        "seconds": 0.0,
        "temporal_profile": [],
        "centre_energy": None,
        "metrics": None,
    }


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, VidcamError) else f"{type(exc).__name__}: {text}"


class VideoWorker:
    """Holds the model; :meth:`process` turns one :class:`Item` into its outputs and row."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        e = dict(options.explain)
        self.handle = open_model(
            e.pop("model", "i3d"),
            spec=e.pop("spec", None),
            labels=e.pop("labels", None),
            layer=e.pop("layer", None),
            weights=e.pop("weights", None),
            pretrained=e.pop("pretrained", True),
            card=e.pop("card", None),
            device=e.get("device", "auto"),
            progress=False,
        )
        self.explain = e

    def _pipeline_options(self, target: str | None) -> dict[str, Any]:
        """The pipeline's options for one video: the handle built once, never the name."""
        o = dict(self.explain, progress=False, model=self.handle)
        if target is not None:
            o["target"] = target
        return o

    def target_of(self, item: Item) -> str | None:
        t = item.target if item.target is not None else self.options.explain.get("target")
        return None if t is None else str(t)

    def kinds(self) -> list[str]:
        """The output kinds of every video of this run."""
        return ["video", "json", "maps", "preview", "report"] + (
            ["metrics"] if self.options.evaluate else []
        )

    def refusal(self, item: Item, out: Outputs) -> str | None:
        """Why ``item``'s outputs may not be written (outside ``-o``, an input, a file no
        earlier run of this video wrote without ``overwrite``), else None."""
        why = out.outside()
        if why is None:
            why = output_conflict(
                out,
                self.kinds(),
                InputSet([item.path, item.gt]),
                written_before(out),
                own_state(out),
                overwrite=self.options.overwrite,
            )
        return why

    def process(self, item: Item, out: Outputs, fp: str) -> dict[str, Any]:
        """Do ``item`` into ``out``; returns its ``done`` or ``failed`` row (``fp``: settings)."""
        started = time.perf_counter()
        row = base_row(item, self.target_of(item))
        refused = self.refusal(item, out)
        if refused is not None:  # nothing is written, replaced or removed for this video
            row["error"] = refused
            return row
        for p in out.stale_temps():
            p.unlink(missing_ok=True)
        planned = [out.rel(k) for k in self.kinds()]
        try:
            _check_input(item.path)
        except VidcamError as exc:
            return self._failed(row, exc, out, fp, item, planned, started)
        earlier = written_before(out)
        before = identities(out.out_dir / r for r in planned)
        write_started(out, fp, item.path, planned)
        try:
            with time_limit(self.options.video_timeout):
                self._run(item, out, row)
        except Exception as exc:  # a bad video is a row, never the end of the run
            # a failed row has no outputs: nothing this attempt or an earlier run of this
            # video wrote stays; a file vidcam did not write and did not replace stays
            for p, ident in before.items():
                mine = identities([p])[p] != ident or out.rel_of(p) in earlier
                if mine and p.is_file() and not p.is_symlink():
                    p.unlink(missing_ok=True)
            return self._failed(row, exc, out, fp, item, planned, started)
        row["seconds"] = round(time.perf_counter() - started, 3)
        row["status"] = "done"
        write_done(out, row, fp, item.path)
        return row

    def _failed(self, row, exc, out, fp, item, planned, started) -> dict[str, Any]:
        row.update(status="failed", error=one_line(exc), outputs={})
        row["seconds"] = round(time.perf_counter() - started, 3)
        write_failed(out, row, fp, item.path, planned)
        return row

    def _run(self, item: Item, out: Outputs, row: dict[str, Any]) -> None:
        if self.options.evaluate and item.gt is not None and not item.start:
            from vidcam.evaluate.gt import read_file_gt

            _check_input(item.gt, "ground truth")  # a FIFO would block the batch
            read_file_gt(Path(item.gt))  # .json or .npz; a bad one fails the row before any work
        o = self._pipeline_options(row["target"])
        normalize = o.pop("normalize", "video")
        with warnings.catch_warnings(), segment_clip(item.path, item.start, item.end) as src:
            warnings.simplefilter("ignore")  # they are kept in the explanation's JSON
            with analyze(src, allow_partial=self.options.allow_partial, **o) as analysis:
                result = render_analysis(
                    analysis,
                    out.path("video"),
                    normalize=normalize,
                    alpha=self.options.alpha,
                    colormap=self.options.colormap,
                    preview=out.path("preview"),
                )
                save_maps(out.path("maps"), analysis, meta=self._meta(item, analysis))
            faithful = self._clip_metrics(src, item, row["target"]) if self.options.evaluate else {}
        result.model = self.handle.name
        doc = result.to_json()
        doc["input"] = str(item.path)
        if item.start is not None or item.end is not None:
            doc["segment"] = {"start": item.start or 0.0, "end": item.end}
        write_text(out.path("json"), json.dumps(doc, indent=1))
        written = {k: out.rel(k) for k in ("video", "json", "maps", "preview")}
        raw = load_maps(out.path("maps"))
        heat = raw.heat
        row.update(
            top=video_top(result.windows, result.labels),
            frames=result.frames,
            duration=round(float(doc["duration"]), 6),
            temporal_profile=temporal_profile(result.importance),
            centre_energy=centre_energy(heat, raw.geometry, raw.model_crop)
            if heat is not None
            else None,
        )
        if self.options.evaluate:
            from vidcam.batch.evaluate import map_metrics

            row["metrics"] = map_metrics(raw, row["top"], item.label) | faithful
            write_text(
                out.path("metrics"),
                json.dumps({"key": item.key, "metrics": row["metrics"]}, indent=1),
            )
            written["metrics"] = out.rel("metrics")
        page = _write_report(out, doc, item, written, row["metrics"], self._settings(row))
        if page:
            written["report"] = out.rel("report")
        row["outputs"] = written

    def _clip_metrics(self, src, item: Item, target: str | None) -> dict[str, float]:
        """``vidcam evaluate``'s per-clip scores of the rendered method(s) (guided ones: their
        CAM), see :mod:`vidcam.batch.evaluate`."""
        from vidcam.batch.evaluate import clip_metrics

        eo = ExplainOptions(**self.options.explain)
        methods = list(dict.fromkeys(p.base.id for p in eo.panels))
        engine = {"softmax": True} if eo.softmax else {}
        return clip_metrics(
            self.handle,
            src,
            methods,
            target=target,
            # a segment's frames no longer match the ground truth's frame indices
            gt=item.gt if not item.start else None,
            engine=engine,
            batch=max(4, eo.batch_size or 1),
        )

    def _meta(self, item: Item, analysis) -> dict[str, Any]:
        return {
            "input": str(item.path),
            "start": item.start or 0.0,
            "model": self.handle.name,
            "method": analysis.method.id,
            "layers": list(analysis.layers),
            "spatial": analysis.spatial,
            "fps": float(analysis.info.fps),
            # how the MP4 rendered the maps (the FiftyOne export renders them the same way)
            "normalize": str(self.options.explain.get("normalize", "video")),
            "colormap": self.options.colormap,
            "alpha": self.options.alpha,
        }

    def _settings(self, row: dict[str, Any]) -> dict[str, str]:
        e = self.options.explain
        s = {
            "model": self.handle.name,
            "method": str(e.get("method", "gradcam++")),
            "target": str(row["target"] or "top1"),
        }
        for k in ("layer", "clip_len", "stride", "spatial", "normalize", "softmax"):
            if e.get(k) not in (None, False):
                s[k] = str(e[k])
        s["device"] = str(self.handle.device)
        return s


_REPORT_MISSING = False


def _write_report(
    out: Outputs, doc, item: Item, written: dict[str, str], metrics, settings
) -> bool:
    """The per-video HTML page (:mod:`vidcam.report`, imported lazily); False when that
    package is not installed (the row then has no ``report`` output)."""
    global _REPORT_MISSING
    try:
        from vidcam.report import write_video_report
    except ModuleNotFoundError as exc:
        if exc.name not in ("vidcam.report",):
            raise
        if not _REPORT_MISSING:
            warnings.warn("vidcam.report is not available: no HTML pages written", stacklevel=2)
            _REPORT_MISSING = True
        return False
    write_video_report(
        out.path("report"),
        explanation=doc,
        video=out.path("video"),
        source=item.path,
        preview=out.path("preview"),
        settings=settings,
        metrics=metrics,
        overwrite=True,
    )
    return True


def _check_input(path: Path, what: str = "input") -> None:
    """``path`` is a regular file (reading a FIFO or a device would block the batch)."""
    if not path.is_file():
        state = "is not a regular file" if path.exists() else "does not exist"
        raise VidcamError(f"{what} {str(path)!r} {state}")


def set_threads(n: int) -> None:
    """CPU actors share the machine: ``n`` intra-op threads each."""
    torch.set_num_threads(max(1, n))
