"""The result of ``vidcam evaluate``: typed records in, one JSON document out (schema 2,
documented in docs/evaluate_json.md).

:class:`EvalResult` holds the run's options (:class:`~vidcam.evaluate.options.EvalOptions`),
the model (:class:`ModelInfo`), one :class:`~vidcam.evaluate.records.ClipRecord` per clip,
the mean curves, the typed :class:`~vidcam.evaluate.summary_records.Summary` and the
:class:`Timing`. The tables read the typed records; :meth:`EvalResult.to_json` writes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from vidcam.evaluate.fills import ROAD_NOISE, ROAD_TOL
from vidcam.evaluate.keys import KIND_SUFFIX
from vidcam.evaluate.options import EvalOptions, fill_grid
from vidcam.evaluate.records import ClipRecord
from vidcam.evaluate.references import CENTRE_SIGMA, REFERENCE_HELP
from vidcam.evaluate.summary_records import Summary
from vidcam.models.handle import ModelHandle

#: the JSON output's schema: ``schema_version`` 2 added the score kinds, paired win rates,
#: per-fill ranks, the spatial mode, ground-truth formats, references and ``pointing_tol``
SCHEMA = "vidcam.evaluate"
SCHEMA_VERSION = 2

#: what each score kind's keys mean (the JSON's ``options.score_kinds``, keyed by suffix)
KIND_HELP: dict[str, str] = {
    "prob": "probability ratio: score after masking / Y",
    "logp": "log-probability difference: log p(masked) − log p(clip)",
    "logit": "logit difference: logit(masked) − logit(clip)",
}


@dataclass(frozen=True)
class ModelInfo:
    """The evaluated model: registry ``name``, where its ``weights`` came from (None: see the
    registry), the explained ``layers``, the clip length and the crop (h, w)."""

    name: str
    weights: str | None
    layers: tuple[str, ...]
    clip_len: int
    crop: tuple[int, int]

    @classmethod
    def of(cls, em: ModelHandle) -> ModelInfo:
        return cls(
            em.name,
            em.weights_source,
            tuple(em.layers),
            em.input.clip_len,
            tuple(em.input.crop),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": self.weights,
            "layers": list(self.layers),
            "clip_len": self.clip_len,
            "crop": list(self.crop),
        }


@dataclass
class Counters:
    """What a run did: masked forwards, ROAD solves, engine calls and their seconds, Score-CAM
    and perturbation (RISE, extremal) masked clips."""

    masked_forwards: int = 0
    road_solves: int = 0
    engine_seconds: float = 0.0
    engine_forwards: int = 0
    scorecam_clips: int = 0
    perturbation_clips: int = 0


@dataclass(frozen=True)
class Timing:
    """Wall time of the run, clips per minute (None for a zero time), torch's threads, the
    device and the :class:`Counters`."""

    seconds: float
    clips_per_minute: float | None
    torch_threads: int
    device: str
    counters: Counters

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "clips_per_minute": self.clips_per_minute,
            "torch_threads": self.torch_threads,
            "device": self.device,
            **asdict(self.counters),
        }


def options_json(opts: EvalOptions) -> dict[str, Any]:
    """The JSON's ``options``: every setting of the run and what its keys mean."""
    return {
        "baseline": opts.baseline,
        "steps": opts.steps,
        "seed": opts.seed,
        "target": opts.target,
        "spatial": opts.spatial,
        "score": "softmax probability of the target class (for Y, O and the curves)",
        "score_kinds": {KIND_SUFFIX[k]: v for k, v in KIND_HELP.items()},
        "fills": list(opts.fills),
        "fractions": list(opts.fractions),
        "fill_steps": opts.fill_steps,
        "units": list(opts.units),
        "road_noise": ROAD_NOISE,
        "road_tol": ROAD_TOL,
        "fill_grids": {f: list(fill_grid(f, opts)) for f in opts.fills},
        "relative": "keep_/remove_ scores and *_rel_<fill> curves are the target's score "
        "divided by Y (its score on the whole clip)",
        "batch": opts.batch,
        "methods": list(opts.evaluated),
        "references": {r: REFERENCE_HELP[r] for r in opts.references},
        "centre_sigma": CENTRE_SIGMA,
        "pointing_tolerance": opts.tolerance,
    }


@dataclass(frozen=True)
class EvalResult:
    """One run: ``opts`` (checked), ``model_info``, ``records`` (one per clip, in input
    order), ``curves`` (the mean curves: map -> curve key -> values), ``overview`` (the typed
    summary) and ``run_timing``. ``options`` / ``model`` / ``clips`` / ``summary`` /
    ``timing`` are the JSON's sections (derived, read-only)."""

    opts: EvalOptions
    model_info: ModelInfo
    records: tuple[ClipRecord, ...]
    curves: dict[str, dict[str, list[float]]]
    overview: Summary
    run_timing: Timing | None = None

    @cached_property
    def options(self) -> dict[str, Any]:
        return options_json(self.opts)

    @cached_property
    def model(self) -> dict[str, Any]:
        return self.model_info.to_json()

    @cached_property
    def clips(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.records]

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self.overview.to_json()

    @cached_property
    def timing(self) -> dict[str, Any]:
        return {} if self.run_timing is None else self.run_timing.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "options": self.options,
            "model": self.model,
            "summary": self.summary,
            "mean_curves": self.curves,
            "clips": self.clips,
            "timing": self.timing,
        }
