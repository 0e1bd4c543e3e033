"""A training helper for a user's own loop: CE + Hinton KD + explanation (Grad-CAM++) loss.

    distiller = ExplanationDistiller(teacher, student, "block3", "conv3", exp_weight=1.0)
    for clips, labels in loader:
        out = distiller.loss(clips, labels)      # dict of tensors
        opt.zero_grad(); out["loss"].backward(); opt.step()

The teacher is frozen: its logits and maps come from vidcam's engine (:class:`Explainer`, eval
mode, no graph), once per batch or precomputed with :meth:`teacher_outputs`. The student's map
comes from :func:`vidcam.cam.differentiable.differentiable_cam` in the student's current mode,
from the same forward as its logits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcam.cam.differentiable import DiffMethod, differentiable_cam
from vidcam.cam.explainer import Explainer
from vidcam.cam.layers import LayerArg
from vidcam.cam.methods import DEFAULT_METHOD
from vidcam.distill.losses import EPS, explanation_loss, kd_loss
from vidcam.errors import VidcamError


@dataclass(frozen=True)
class TeacherOutputs:
    """The frozen teacher on a batch: ``logits`` (N, classes), ``maps`` per layer (N, 1, t, h, w)
    for the labelled class; detached."""

    logits: torch.Tensor
    maps: tuple[torch.Tensor, ...]


def _layers(arg: LayerArg | Sequence[LayerArg], what: str) -> list[LayerArg]:
    items = [arg] if isinstance(arg, str | nn.Module) else list(arg)
    if not items:
        raise VidcamError(f"{what}: give at least one layer (a dotted name or a submodule)")
    return items


class ExplanationDistiller:
    """Losses for training ``student`` from a frozen ``teacher``.

    Args:
        teacher, student: classifiers taking the same clip (N, C, T, H, W).
        teacher_layer, student_layer: a layer each, or equal-length sequences (layer pairs).
        ce_weight, kd_weight, exp_weight: weights of cross-entropy, Hinton KD and the
            explanation loss in ``loss``; a zero weight skips that term's computation.
        temperature: KD temperature T.
        method: CAM of both maps ("gradcam++" default, or "gradcam").
        grid: common (t, h, w) grid of the explanation loss (None: the finer per axis).
        eps: normalisation epsilon of the maps (see :func:`vidcam.distill.normalize_map`).
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        teacher_layer: LayerArg | Sequence[LayerArg],
        student_layer: LayerArg | Sequence[LayerArg],
        *,
        ce_weight: float = 1.0,
        kd_weight: float = 0.0,
        exp_weight: float = 1.0,
        temperature: float = 4.0,
        method: DiffMethod = DEFAULT_METHOD,
        grid: tuple[int, int, int] | None = None,
        eps: float = EPS,
    ) -> None:
        for what, m in (("teacher", teacher), ("student", student)):
            if not isinstance(m, nn.Module):
                raise VidcamError(f"{what}: expected a torch.nn.Module, got {type(m).__name__}")
        self.teacher_layers = _layers(teacher_layer, "teacher_layer")
        self.student_layers = _layers(student_layer, "student_layer")
        if len(self.teacher_layers) != len(self.student_layers):
            raise VidcamError(
                f"teacher_layer has {len(self.teacher_layers)} layers, student_layer "
                f"{len(self.student_layers)}; give layer pairs of equal length"
            )
        for name, w in (
            ("ce_weight", ce_weight),
            ("kd_weight", kd_weight),
            ("exp_weight", exp_weight),
            ("temperature", temperature),
        ):
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
                raise VidcamError(f"{name} must be a finite number, got {w!r}")
            if w < 0 or (name == "temperature" and w == 0):
                raise VidcamError(
                    f"{name} must be {'>' if name == 'temperature' else '>='} 0, got {w}"
                )
        self.teacher, self.student = teacher, student
        self.ce_weight, self.kd_weight, self.exp_weight = ce_weight, kd_weight, exp_weight
        self.temperature, self.method, self.grid, self.eps = temperature, method, grid, eps
        self._explainer = Explainer(teacher, self.teacher_layers, method=method)

    def teacher_outputs(self, clips: torch.Tensor, labels: torch.Tensor) -> TeacherOutputs:
        """The teacher's logits and per-layer maps for ``labels`` (N,); no graph kept."""
        labels = _check_labels(labels, clips)
        expl = self._explainer(clips, labels[:, None])
        if expl.logits is None:
            raise VidcamError("teacher: its output is not an (N, classes) score matrix")
        return TeacherOutputs(expl.logits, tuple(r.detach() for r in expl.raw_per_layer))

    def loss(
        self,
        clips: torch.Tensor,
        labels: torch.Tensor,
        teacher: TeacherOutputs | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses on one batch: keys ``loss`` (the weighted sum, to backward), ``ce``, ``kd``,
        ``exp`` (0-dim; zero tensors for skipped terms) and ``logits`` (N, classes).

        ``teacher``: precomputed :meth:`teacher_outputs` for this batch (None: computed now).
        """
        labels = _check_labels(labels, clips)
        need_teacher = self.kd_weight > 0 or self.exp_weight > 0
        if need_teacher and teacher is None:
            teacher = self.teacher_outputs(clips, labels)
        zero = clips.new_zeros(())
        exp = zero
        if self.exp_weight > 0:
            cam = differentiable_cam(
                self.student, clips, labels[:, None], layer=self.student_layers, method=self.method
            )
            logits = cam.logits
            exp = explanation_loss(cam.maps, teacher.maps, grid=self.grid, eps=self.eps)
        else:
            logits = self.student(clips)
        ce = F.cross_entropy(logits, labels) if self.ce_weight > 0 else zero
        kd = kd_loss(logits, teacher.logits, self.temperature) if self.kd_weight > 0 else zero
        total = self.ce_weight * ce + self.kd_weight * kd + self.exp_weight * exp
        return {"loss": total, "ce": ce, "kd": kd, "exp": exp, "logits": logits}


def _check_labels(labels: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise VidcamError("labels: expected a 1-D integer tensor of class indices (N,)")
    if labels.shape[0] != clips.shape[0]:
        raise VidcamError(f"labels: {labels.shape[0]} labels for a batch of {clips.shape[0]} clips")
    return labels.long()
