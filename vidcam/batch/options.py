"""The settings of a batch run: the same model / method / rendering options as ``vidcam explain``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vidcam.errors import VidcamError
from vidcam.video.options import ExplainOptions
from vidcam.video.render import check_alpha, colormap_lut

EXECUTORS = ("local", "ray")
DEFAULT_VIDEO_TIMEOUT = 3600.0  # seconds one batch video may take before it becomes a failed row


@dataclass(frozen=True)
class BatchOptions:
    """Options of :func:`vidcam.batch.run`. ``explain``: the pipeline's
    :class:`~vidcam.video.options.ExplainOptions` (a dict of its fields is accepted too, e.g.
    ``{"model": "sample"}``, and converted once); its ``progress`` is the worker's, never the
    pipeline's (a dict may not set it)."""

    explain: ExplainOptions = field(default_factory=ExplainOptions)
    alpha: float = 0.6
    colormap: str = "jet"
    evaluate: bool = False
    allow_partial: bool = False
    retry_failed: bool = False
    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    progress: bool = True
    overwrite: bool = False
    video_timeout: float | None = DEFAULT_VIDEO_TIMEOUT
    #: the values a dict ``explain`` spelled differently from the typed fields (e.g.
    #: ``side_by_side="gradcam,layercam"``): the fingerprint keeps them as spelled
    _spelled: tuple[tuple[str, Any], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.explain, Mapping):
            if "progress" in self.explain:
                raise VidcamError("explain options: progress cannot be set for a batch")
            typed = ExplainOptions.of(self.explain)  # validates names and values before any work
            object.__setattr__(self, "_spelled", _respelled(self.explain, typed))
            object.__setattr__(self, "explain", typed)
        else:
            ExplainOptions.of(self.explain)  # anything else: a one-line error
        check_alpha(self.alpha)
        colormap_lut(self.colormap)
        if self.executor not in EXECUTORS:
            raise VidcamError(f"executor {self.executor!r} must be one of {', '.join(EXECUTORS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise VidcamError(f"workers must be >= 1, got {self.workers!r}")
        if not isinstance(self.overwrite, bool):
            raise VidcamError(f"overwrite must be True or False, got {self.overwrite!r}")
        _check_timeout(self.video_timeout)
        if not isinstance(self.explain.model, str) and self.executor == "ray":
            raise VidcamError("executor 'ray' needs a registered model name, not an nn.Module")

    def fingerprint_settings(self) -> dict[str, Any]:
        """What changes a video's outputs (not the device, batch size, executor or progress)."""
        full = {**asdict(self.explain), **dict(self._spelled)}  # defaults filled: API == CLI
        e = {k: v for k, v in full.items() if k not in ("device", "batch_size", "progress")}
        if not isinstance(e["model"], str):
            e["model"] = type(e["model"]).__name__
        return {
            "explain": e,
            "alpha": self.alpha,
            "colormap": self.colormap,
            "evaluate": self.evaluate,
        }

    def on_device(self, device: str) -> BatchOptions:
        """A copy whose pipeline runs on ``device`` (the fingerprint's spelling kept)."""
        new = replace(self, explain=self.explain.replace(device=device))
        object.__setattr__(new, "_spelled", self._spelled)
        return new


def _respelled(given: Mapping[str, Any], typed: ExplainOptions) -> tuple[tuple[str, Any], ...]:
    """The given values that ``typed`` holds in another form (as today's fingerprints have them)."""
    out = []
    for k, v in given.items():
        held = getattr(typed, k)
        if v is not held and (type(v) is not type(held) or v != held):
            out.append((k, v))
    return tuple(out)


def _check_timeout(value: object) -> None:
    """``video_timeout``: None (no limit) or a finite number of seconds > 0."""
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 < float(value) < float("inf")):  # rejects nan, inf, <= 0
        raise VidcamError(
            f"video_timeout must be a number of seconds > 0 (or None for no limit), got {value!r}"
        )
