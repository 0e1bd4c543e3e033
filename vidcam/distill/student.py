"""A small 3D CNN student for the motion benchmark (the teacher is the bundled ``sample`` model).

Three Conv3d + BatchNorm + ReLU blocks: ``stem`` (1×4×4, stride 4 in space), ``conv2``
(3×3×3, stride 2), ``conv3`` (3×3×3) -> ``width[2]`` × T/2 × H/8 × W/8 (8 × 14 × 14 for a
16×112×112 clip, the grid of the teacher's ``block3``), then global average pooling and a linear
head. With the default widths (8, 16, 24) it has about 15 k parameters (the teacher: 70 k).
"""

from __future__ import annotations

from torch import nn

STUDENT_LAYER = "conv3"


def _cbr(cin: int, cout: int, kernel, stride, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class TinyStudent(nn.Sequential):
    """(N, 3, T, H, W) clip -> (N, num_classes) logits; explain ``conv3``."""

    def __init__(self, num_classes: int = 6, widths: tuple[int, int, int] = (8, 16, 24)) -> None:
        a, b, c = widths
        super().__init__()
        self.stem = _cbr(3, a, (1, 4, 4), (1, 4, 4), 0)
        self.conv2 = _cbr(a, b, 3, 2, 1)
        self.conv3 = _cbr(b, c, 3, 1, 1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(c, num_classes)
