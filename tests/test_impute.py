"""ROAD noisy linear imputation on video volumes: hand-computed stencils and exact invariants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidcam.errors import VidcamError
from vidcam.evaluate.impute import EMPTY_FILL, neighbour_sum, noisy_linear_impute


def _gradient(t: int = 8, h: int = 10, w: int = 12, dtype=torch.float32) -> torch.Tensor:
    """(1, 3, T, H, W) volumes v = a·t + b·h + c·w + d, one (a, b, c, d) per channel."""
    tt, hh, ww = torch.meshgrid(*(torch.arange(n, dtype=dtype) for n in (t, h, w)), indexing="ij")
    coef = [(0.02, 0.03, -0.01, 0.4), (-0.05, 0.01, 0.02, 0.7), (0.0, 0.0, 0.04, 0.1)]
    return torch.stack([a * tt + b * hh + c * ww + d for a, b, c, d in coef])[None]


def _blob_case(shape=(2, 2, 8, 32, 32), frac: float = 0.9, seed: int = 0):
    """A textured clip and a ROAD-style mask: the top ``frac`` of a smooth random saliency map."""
    g = torch.Generator().manual_seed(seed)
    n, c, t, h, w = shape
    low = torch.rand(n, c, 2, 4, 4, generator=g)
    clip = F.interpolate(low, size=(t, h, w), mode="trilinear") + 0.05 * torch.rand(
        shape, generator=g
    )
    sal = F.interpolate(torch.rand(n, 1, 2, 4, 4, generator=g), size=(t, h, w), mode="trilinear")
    thr = sal.flatten(1).quantile(1 - frac, dim=1).view(-1, 1, 1, 1, 1)
    return clip, sal > thr


@pytest.mark.parametrize("neighbours", [26, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_gradient_is_reproduced_in_a_hole(neighbours, dtype):
    vol = _gradient(dtype=dtype)
    remove = torch.zeros(1, 8, 10, 12, dtype=torch.bool)
    remove[:, 2:6, 3:7, 3:9] = True  # off the border: the symmetric stencil is exact for linear v
    out = noisy_linear_impute(vol, remove, noise=0, neighbours=neighbours)
    assert out.dtype == dtype
    assert (out - vol).abs().max() < 1e-4  # tol=1e-5 (relative residual)
    tight = noisy_linear_impute(vol, remove, noise=0, neighbours=neighbours, tol=1e-13)
    assert (tight - vol).abs().max() < (1e-5 if dtype == torch.float32 else 1e-10)


def test_known_voxels_bitwise_unchanged_and_inputs_untouched():
    clip, remove = _blob_case(frac=0.5)
    clip_before, remove_before = clip.clone(), remove.clone()
    out = noisy_linear_impute(clip, remove, generator=torch.Generator().manual_seed(1))
    assert torch.equal(clip, clip_before) and torch.equal(remove, remove_before)
    keep = ~remove.expand_as(clip)
    assert torch.equal(out[keep], clip[keep])
    assert not torch.equal(out[~keep], clip[~keep])
    assert out.data_ptr() != clip.data_ptr()


def test_removed_voxel_content_is_ignored():
    clip, remove = _blob_case(frac=0.5)
    dirty = torch.where(remove, float("nan"), clip)
    a = noisy_linear_impute(clip, remove, noise=0)
    b = noisy_linear_impute(dirty, remove, noise=0)
    assert torch.equal(a, b)


def test_single_voxel_centre_26_weights_by_hand():
    # face 4/56, edge 2/56, corner 1/56: one face neighbour 14, one edge 28, one corner 56.
    vol = torch.zeros(1, 1, 3, 3, 3)
    vol[0, 0, 0, 1, 1] = 14.0  # face
    vol[0, 0, 0, 0, 1] = 28.0  # edge
    vol[0, 0, 2, 2, 2] = 56.0  # corner
    vol[0, 0, 1, 1, 1] = 99.0  # the removed voxel's own value is ignored
    remove = torch.zeros(1, 3, 3, 3, dtype=torch.bool)
    remove[0, 1, 1, 1] = True
    out = noisy_linear_impute(vol, remove, noise=0)
    assert out[0, 0, 1, 1, 1].item() == pytest.approx(14 * 4 / 56 + 28 * 2 / 56 + 56 / 56)  # 3


def test_single_voxel_corner_drops_outside_neighbours():
    # corner (0,0,0) keeps 3 faces, 3 edges, 1 corner: D = 3·4 + 3·2 + 1 = 19.
    vol = torch.ones(1, 1, 3, 3, 3)
    vol[0, 0, 1, 0, 0] = 20.0
    remove = torch.zeros(1, 1, 3, 3, 3, dtype=torch.bool)
    remove[0, 0, 0, 0, 0] = True
    out = noisy_linear_impute(vol, remove, noise=0)
    assert out[0, 0, 0, 0, 0].item() == pytest.approx((4 * 20 + 4 * 2 + 2 * 3 + 1) / 19)  # 5


def test_single_voxel_6_neighbours_by_hand():
    vol = torch.zeros(1, 1, 3, 3, 3)
    for value, (t, h, w) in enumerate(
        [(0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)], 1
    ):
        vol[0, 0, t, h, w] = float(value)
    vol[0, 0, 0, 0, 0] = 100.0  # a corner: not a 6-neighbour
    remove = torch.zeros(1, 3, 3, 3, dtype=torch.bool)
    remove[0, 1, 1, 1] = True
    out = noisy_linear_impute(vol, remove, noise=0, neighbours=6)
    assert out[0, 0, 1, 1, 1].item() == pytest.approx(21 / 6)


def test_single_frame_is_roads_2d_stencil():
    # T = 1: direct neighbours 1/6, diagonal 1/12, as in ROAD's NoisyLinearImputer.
    img = torch.tensor([[12.0, 6.0, 0.0], [12.0, 7.0, 0.0], [0.0, 0.0, 0.0]]).view(1, 1, 1, 3, 3)
    remove = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    remove[0, 0, 1, 1] = True
    out = noisy_linear_impute(img, remove, noise=0)
    assert out[0, 0, 0, 1, 1].item() == pytest.approx((6 + 12) / 6 + 12 / 12)  # 4


def test_neighbour_sum_is_conv3d_with_the_documented_kernels():
    u = torch.rand(2, 3, 4, 5, 6, dtype=torch.float64)
    k26 = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    k26 = k26[:, None, None] * k26[None, :, None] * k26[None, None, :]
    k26[1, 1, 1] = 0  # face 4, edge 2, corner 1
    k6 = torch.zeros(3, 3, 3, dtype=torch.float64)
    for i in [(0, 1, 1), (2, 1, 1), (1, 0, 1), (1, 2, 1), (1, 1, 0), (1, 1, 2)]:
        k6[i] = 1
    for nb, k in [(26, k26), (6, k6)]:
        ref = F.conv3d(u.reshape(6, 1, 4, 5, 6), k[None, None], padding=1).reshape_as(u)
        assert torch.allclose(neighbour_sum(u, nb), ref, atol=1e-12)


def test_large_hole_converges_and_batch_is_independent():
    clip, remove = _blob_case(frac=0.9)
    out = noisy_linear_impute(clip, remove, noise=0)
    ref = noisy_linear_impute(clip.double(), remove, noise=0, tol=1e-11, max_iter=5000)
    assert (out.double() - ref).abs().max() < 1e-3
    solo = noisy_linear_impute(clip[1:, 1:], remove[1:], noise=0)
    assert (solo - out[1:, 1:]).abs().max() < 1e-3
    # the imputed values solve the stencil equations: each equals its neighbours' weighted mean
    d = neighbour_sum(torch.ones(1, 1, 8, 32, 32, dtype=torch.float64))
    mean = neighbour_sum(ref) / d
    assert (mean - ref)[remove.expand_as(ref)].abs().max() < 1e-8


def test_noise_only_on_removed_voxels_with_requested_std():
    clip, remove = _blob_case(shape=(1, 3, 8, 32, 32), frac=0.5)
    clean = noisy_linear_impute(clip, remove, noise=0)
    gen = torch.Generator().manual_seed(3)
    noisy = noisy_linear_impute(clip, remove, noise=0.05, generator=gen)
    again = noisy_linear_impute(
        clip, remove, noise=0.05, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(noisy, again)
    m = remove.expand_as(clip)
    assert torch.equal(noisy[~m], clip[~m])
    diff = (noisy - clean)[m]
    assert diff.numel() > 10_000
    assert diff.std().item() == pytest.approx(0.05, rel=0.05)
    assert abs(diff.mean().item()) < 0.005


def test_all_removed_clip_gets_the_documented_fill():
    clip, remove = _blob_case(shape=(2, 3, 4, 8, 8), frac=0.5)
    remove[0] = True
    out = noisy_linear_impute(clip, remove, noise=0)
    assert EMPTY_FILL == 0.5
    assert torch.equal(out[0], torch.full_like(out[0], EMPTY_FILL))
    solo = noisy_linear_impute(clip[1:], remove[1:], noise=0)
    assert (out[1:] - solo).abs().max() < 1e-5
    noisy = noisy_linear_impute(
        clip, remove, noise=0.01, generator=torch.Generator().manual_seed(0)
    )
    assert 0.005 < (noisy[0] - EMPTY_FILL).std().item() < 0.02


def test_dtypes_are_kept():
    vol = _gradient(t=4, h=6, w=6, dtype=torch.float64)
    remove = torch.zeros(1, 1, 4, 6, 6, dtype=torch.bool)
    remove[..., 1:3, 2:4, 2:4] = True
    out = noisy_linear_impute(vol, remove, noise=0)
    assert out.dtype == torch.float64 and (out - vol).abs().max() < 1e-9
    half = vol.half()
    out16 = noisy_linear_impute(half, remove, noise=0)
    assert out16.dtype == torch.float16
    assert torch.equal(out16[~remove.expand_as(half)], half[~remove.expand_as(half)])


@pytest.mark.parametrize(
    ("clip", "remove", "kwargs", "word"),
    [
        (torch.rand(3, 4, 5, 6), torch.zeros(3, 4, 5, 6, dtype=torch.bool), {}, "clip"),
        (
            torch.zeros(1, 3, 4, 5, 6, dtype=torch.uint8),
            torch.zeros(1, 4, 5, 6, dtype=torch.bool),
            {},
            "clip",
        ),
        (torch.rand(1, 3, 0, 5, 6), torch.zeros(1, 0, 5, 6, dtype=torch.bool), {}, "clip"),
        (torch.rand(1, 3, 4, 5, 6), torch.zeros(1, 4, 5, 6), {}, "remove"),
        (torch.rand(1, 3, 4, 5, 6), torch.zeros(1, 3, 4, 5, 6, dtype=torch.bool), {}, "remove"),
        (torch.rand(1, 3, 4, 5, 6), torch.zeros(2, 4, 5, 6, dtype=torch.bool), {}, "remove"),
        (torch.rand(1, 3, 4, 5, 6), torch.zeros(1, 4, 5, 7, dtype=torch.bool), {}, "remove"),
        (
            torch.rand(1, 3, 4, 5, 6),
            torch.zeros(1, 4, 5, 6, dtype=torch.bool),
            {"neighbours": 8},
            "neighbours",
        ),
        (
            torch.rand(1, 3, 4, 5, 6),
            torch.zeros(1, 4, 5, 6, dtype=torch.bool),
            {"noise": -1.0},
            "noise",
        ),
        (torch.rand(1, 3, 4, 5, 6), torch.zeros(1, 4, 5, 6, dtype=torch.bool), {"tol": 0.0}, "tol"),
        (
            torch.rand(1, 3, 4, 5, 6),
            torch.zeros(1, 4, 5, 6, dtype=torch.bool),
            {"max_iter": -1},
            "max_iter",
        ),
    ],
)
def test_bad_arguments_raise(clip, remove, kwargs, word):
    with pytest.raises(VidcamError, match=word):
        noisy_linear_impute(clip, remove, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    clip, remove = _blob_case(frac=0.9)
    cpu = noisy_linear_impute(clip, remove, noise=0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    gpu = noisy_linear_impute(clip.cuda(), remove.cuda(), noise=0, generator=gen)
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-3
    noisy = noisy_linear_impute(clip.cuda(), remove.cuda(), generator=gen)
    keep = ~remove.cuda().expand_as(noisy)
    assert torch.equal(noisy[keep], clip.cuda()[keep])
