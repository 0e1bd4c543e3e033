r"""Score-CAM (Wang et al., CVPR Workshops 2020) on video: channel weights from masked forwards.

Every channel k of the activation A (N, C, t, h, w) is upsampled to the clip (trilinear, as the
CAMs are), min-max normalised to H_k ∈ [0, 1], and masks the input, X ⊙ H_k. Its weight is the
target's softmax score on that masked clip::

    w_k^c = softmax(f(X ⊙ H_k))_c                       (the authors' released code)
    w_k^c = softmax(f(X ⊙ H_k))_c − softmax(f(X_b))_c   (``baseline=True``: the paper's
                                                        "increase of confidence", X_b = 0)
    map   = relu(Σ_k w_k^c A_k)

Channels whose map is constant (e.g. all zero after a ReLU) mask nothing informative: as in the
authors' code they are skipped (weight 0, no forward). One masked forward serves all K targets
of a sample (the softmax gives every class). Masked clips are scored in batches of
``batch_size`` (default: as many as fit :data:`SCORE_ELEMENTS` input elements, at most
:data:`MAX_BATCH`), each channel map upsampled only for its batch, so memory stays bounded by the
batch, not by C; everything runs without autograd. Cost: one forward per ``batch_size``
channels per sample — C = 1024 channels on I3D are 1024 masked clips per sample, which is why
Score-CAM is never a default of anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vidcam.cam.maps import normalize_maps, upsample
from vidcam.errors import VidcamError

#: input elements of one masked batch by default (2**25: 128 MiB of float32 clips)
SCORE_ELEMENTS = 1 << 25
#: masked clips per forward at most, by default
MAX_BATCH = 32


@dataclass(frozen=True)
class ScoreWeights:
    """Score-CAM weights (K, N, C, 1, 1, 1) and what they cost: ``forwards`` model calls over
    ``clips`` masked (and baseline) clips."""

    weights: torch.Tensor
    forwards: int
    clips: int


def check_batch_size(batch_size: int | None) -> None:
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise VidcamError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")


def default_batch(clip: torch.Tensor) -> int:
    """Masked clips per forward for ``clip`` (N, C, ...): the element budget, 1..MAX_BATCH."""
    per_clip = max(1, clip[0].numel())
    return max(1, min(MAX_BATCH, SCORE_ELEMENTS // per_clip))


def _probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise VidcamError("scorecam needs a model whose output is (N, classes) scores")
    return out.float().softmax(dim=1)


@torch.no_grad()
def score_weights(
    model: nn.Module,
    clip: torch.Tensor,
    acts: torch.Tensor,
    indices: torch.Tensor,
    *,
    batch_size: int | None = None,
    baseline: bool = False,
) -> ScoreWeights:
    """Score-CAM channel weights of ``acts`` (N, C, t, h, w) for classes ``indices`` (N, K).

    ``clip`` is the model input (N, C_in, T, H, W), or (N, C_in, H, W) with t = 1 maps.
    """
    check_batch_size(batch_size)
    n, c = acts.shape[:2]
    k = indices.shape[1]
    image = clip.dim() == 4
    x5 = clip.unsqueeze(2) if image else clip
    size = tuple(x5.shape[2:])
    batch = batch_size or default_batch(clip)
    weights = torch.zeros(k, n, c, dtype=torch.float32, device=acts.device)
    scored = torch.zeros(n, c, dtype=torch.bool, device=acts.device)
    forwards = clips = 0
    for s in range(n):
        cls = indices[s]
        for start in range(0, c, batch):
            up = upsample(acts[s : s + 1, start : start + batch].float(), size)  # (1, B, T, H, W)
            masks, constant = normalize_maps(up)
            keep = (~constant[0]).nonzero()[:, 0]
            if keep.numel() == 0:
                continue
            masked = x5[s : s + 1] * masks[0, keep, None].to(x5.dtype)  # (B', C_in, T, H, W)
            probs = _probs(model, masked[:, :, 0] if image else masked)  # (B', classes)
            weights[:, s, start + keep] = probs[:, cls].transpose(0, 1)
            scored[s, start + keep] = True
            forwards += 1
            clips += int(keep.numel())
    if baseline:
        base = _probs(model, torch.zeros_like(clip)).gather(1, indices)  # (N, K)
        forwards += 1
        clips += n
        weights = torch.where(scored, weights - base.transpose(0, 1)[:, :, None], 0.0)
    return ScoreWeights(weights[..., None, None, None].to(acts.dtype), forwards, clips)
