"""Knowledge distillation with explanations (Grad-CAM++ paper §5) for video students.

:func:`explanation_loss` matches normalised Grad-CAM++ maps of a student to a frozen teacher's,
:func:`kd_loss` is Hinton's logit distillation, and :class:`ExplanationDistiller` combines them
with cross-entropy for a user's own training loop. The student's maps are differentiable
(:mod:`vidcam.cam.differentiable`).
"""

from __future__ import annotations

from vidcam.distill.distiller import ExplanationDistiller, TeacherOutputs
from vidcam.distill.losses import common_grid, explanation_loss, kd_loss, normalize_map
from vidcam.distill.student import STUDENT_LAYER, TinyStudent

__all__ = [
    "STUDENT_LAYER",
    "ExplanationDistiller",
    "TeacherOutputs",
    "TinyStudent",
    "common_grid",
    "explanation_loss",
    "kd_loss",
    "normalize_map",
]
