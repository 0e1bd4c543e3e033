"""Faithfulness metrics of the Grad-CAM++ paper (Chattopadhyay et al., 2018, sec. 5.1).

``Y``: the model's score for class c on the clip; ``O``: its score on the explanation map
``E = heatmap ⊙ clip``. vidcam uses softmax probabilities for both. All inputs are 1D tensors
over clips; results are percentages (Python floats).

Scores that differ by at most ``TOL`` (absolute, in probability) count as equal: the same clip
scored in a batch of another size differs by float round-off (~1e-7), and the all-ones map's
``E`` is the clip itself.
"""

from __future__ import annotations

import torch

from vidcam.errors import VidcamError

TOL = 1e-6


def _pair(y: torch.Tensor, o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if y.shape != o.shape or y.dim() != 1 or y.numel() == 0:
        raise VidcamError(f"Y and O must be equal-length 1D tensors, got {y.shape} and {o.shape}")
    return y.double(), o.double()


def drops(y: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """Per-clip relative drop ``max(0, Y − O) / Y`` (0 where Y is 0)."""
    y, o = _pair(y, o)
    return torch.where(y > 0, (y - o).clamp(min=0) / y.clamp(min=1e-300), torch.zeros_like(y))


def average_drop(y: torch.Tensor, o: torch.Tensor) -> float:
    """Average Drop % = mean(max(0, Y − O) / Y) · 100 (lower is better)."""
    return float(drops(y, o).mean() * 100)


def increase_in_confidence(y: torch.Tensor, o: torch.Tensor, tol: float = TOL) -> float:
    """% Increase in Confidence = mean(1[Y < O]) · 100 (higher is better; ``O > Y + tol``)."""
    y, o = _pair(y, o)
    return float((o > y + tol).double().mean() * 100)


def win_percent(
    o_a: torch.Tensor, o_b: torch.Tensor, y: torch.Tensor, tol: float = TOL
) -> tuple[float, float]:
    """Win % of method A over B and of B over A (they sum to 100).

    A wins a clip when its drop in confidence is smaller, i.e. ``(Y − O_A)/Y < (Y − O_B)/Y``
    (unclamped, so two maps that both raise the score are still compared); as Y is the same for
    both, that is ``O_A > O_B``. Ties (``|O_A − O_B| <= tol``, e.g. two identical maps) count half
    to each method.
    """
    y, o_a = _pair(y, o_a)
    _, o_b = _pair(y, o_b)
    tie = (o_a - o_b).abs() <= tol
    win = ((o_a > o_b) & ~tie).double() + 0.5 * tie.double()
    a = float(win.mean() * 100)
    return a, 100.0 - a
