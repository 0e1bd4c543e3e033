"""The settings of a batch run: the same model / method / rendering options as ``vidcam explain``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from vidcam.errors import VidcamError
from vidcam.video.render import check_alpha, colormap_lut
from vidcam.video.setup import ExplainOptions

EXECUTORS = ("local", "ray")
DEFAULT_VIDEO_TIMEOUT = 3600.0  # seconds one batch video may take before it becomes a failed row


@dataclass(frozen=True)
class BatchOptions:
    """Options of :func:`vidcam.batch.run` (``explain``: the pipeline's keyword arguments,
    as :func:`vidcam.video.explain_video` takes them, e.g. ``{"model": "sample"}``)."""

    explain: dict[str, Any] = field(default_factory=dict)
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

    def __post_init__(self) -> None:
        bad = {"progress"} & set(self.explain)
        if bad:
            raise VidcamError(
                f"explain options: {', '.join(sorted(bad))} cannot be set for a batch"
            )
        ExplainOptions(**self.explain)  # validates names and values before any work
        check_alpha(self.alpha)
        colormap_lut(self.colormap)
        if self.executor not in EXECUTORS:
            raise VidcamError(f"executor {self.executor!r} must be one of {', '.join(EXECUTORS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise VidcamError(f"workers must be >= 1, got {self.workers!r}")
        if not isinstance(self.overwrite, bool):
            raise VidcamError(f"overwrite must be True or False, got {self.overwrite!r}")
        _check_timeout(self.video_timeout)
        if not isinstance(self.explain.get("model", "i3d"), str) and self.executor == "ray":
            raise VidcamError("executor 'ray' needs a registered model name, not an nn.Module")

    def fingerprint_settings(self) -> dict[str, Any]:
        """What changes a video's outputs (not the device, batch size, executor or progress)."""
        full = asdict(ExplainOptions(**self.explain))  # defaults filled: API == CLI
        e = {k: v for k, v in full.items() if k not in ("device", "batch_size", "progress")}
        if not isinstance(e["model"], str):
            e["model"] = type(e["model"]).__name__
        return {
            "explain": e,
            "alpha": self.alpha,
            "colormap": self.colormap,
            "evaluate": self.evaluate,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_timeout(value: object) -> None:
    """``video_timeout``: None (no limit) or a finite number of seconds > 0."""
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 < float(value) < float("inf")):  # rejects nan, inf, <= 0
        raise VidcamError(
            f"video_timeout must be a number of seconds > 0 (or None for no limit), got {value!r}"
        )
