"""Token features of the multi-view model: camera rays in Plücker coordinates.

Everything here is torch, batched, and used identically in training and at
inference. World frame: the calibration's (metres, z up); the *subject frame*
is the world frame translated to :func:`subject_origin`.
"""
from __future__ import annotations

import torch
from torch import Tensor

PELVIS = 0

#: Metres; the depth of the DLT point along a ray is divided by this.
DEPTH_SCALE = 5.0

#: DLT points farther than this from the subject origin (metres) count as missing.
MAX_OFFSET_M = 2.5


def subject_origin(dlt: Tensor) -> Tensor:
    """Origin of the subject frame: median over frames of the DLT pelvis.

    dlt: (B, T, J, 3) world metres, NaN where not triangulated. Falls back to
    the median over every finite joint, then 0. Returns (B, 3).
    """
    pelvis = torch.nanmedian(dlt[:, :, PELVIS], dim=1).values  # (B, 3)
    anyj = torch.nanmedian(dlt.reshape(dlt.shape[0], -1, 3), dim=1).values
    out = torch.where(torch.isfinite(pelvis), pelvis, anyj)
    return torch.nan_to_num(out, nan=0.0)


#: (joint, joint, metres): limb bones and their median length over the training windows of
#: the synthetic mocap pool (H36M-17 joints of :func:`video3d.keypoints.coco_to_h36m`).
REFERENCE_BONES = ((11, 12, 0.281), (14, 15, 0.281), (12, 13, 0.256), (15, 16, 0.256),
                   (4, 5, 0.404), (1, 2, 0.404), (5, 6, 0.454), (2, 3, 0.454))


def subject_size(dlt: Tensor, limits: tuple[float, float] = (0.5, 1.5)) -> Tensor:
    """Size of each subject relative to the training bodies, from its limb lengths.

    dlt: (B, T, J, 3) world metres, NaN where not triangulated. For every limb bone the
    median length over frames; the size is the sum of those medians over the sum of the
    :data:`REFERENCE_BONES` lengths (bones never triangulated left out), clipped to
    ``limits``; 1 where no bone is seen. Returns (B,).
    """
    ratios_num = torch.zeros(dlt.shape[0], dtype=dlt.dtype)
    ratios_den = torch.zeros(dlt.shape[0], dtype=dlt.dtype)
    for a, b, ref in REFERENCE_BONES:
        length = torch.nanmedian((dlt[:, :, a] - dlt[:, :, b]).norm(dim=-1), dim=1).values  # (B,)
        seen = torch.isfinite(length)
        ratios_num += torch.where(seen, length, torch.zeros_like(length))
        ratios_den += seen.to(dlt.dtype) * ref
    size = torch.where(ratios_den > 0, ratios_num / ratios_den.clamp_min(1e-9), torch.ones_like(ratios_num))
    return size.clamp(*limits)


def ray_features(normalized: Tensor, scores: Tensor, rotations: Tensor, centers: Tensor,
                 view_mask: Tensor, dlt: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Build the model inputs.

    normalized: (B, V, T, J, 2) undistorted normalised image coordinates (x/z, y/z), NaN = unseen;
    scores: (B, V, T, J) confidences; rotations: (B, V, 3, 3) world -> camera;
    centers: (B, V, 3) camera centres, world metres; view_mask: (B, V) bool, False = padding;
    dlt: (B, T, J, 3) world metres, NaN where not triangulated.
    Returns (tokens (B, T, V, J, 11), mask (B, T, V, J) bool, dlt_centred (B, T, J, 3)
    with 0 where missing, dlt_missing (B, T, J) bool, origin (B, 3)).
    """
    origin = subject_origin(dlt)
    dlt_c = dlt - origin[:, None, None]
    missing = ~torch.isfinite(dlt_c).all(dim=-1)
    missing = missing | (torch.nan_to_num(dlt_c, nan=0.0).norm(dim=-1) > MAX_OFFSET_M)
    dlt_c = torch.where(missing[..., None], torch.zeros_like(dlt_c), dlt_c)
    seen = torch.isfinite(normalized).all(dim=-1) & (scores > 0) & view_mask[:, :, None, None]
    xy = torch.nan_to_num(normalized, nan=0.0)
    d_cam = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)  # (B, V, T, J, 3)
    d = torch.einsum("bvki,bvtjk->bvtji", rotations, d_cam)  # R^T d_cam
    d = d / d.norm(dim=-1, keepdim=True)
    c = (centers - origin[:, None])[:, :, None, None].expand_as(d)  # (B, V, T, J, 3)
    m = torch.cross(c, d, dim=-1)
    rel = dlt_c[:, None] - c
    depth = (rel * d).sum(-1, keepdim=True)
    perp = rel - depth * d
    conf = torch.where(seen, scores, torch.zeros_like(scores))[..., None]
    tokens = torch.cat([d, m, conf, perp, depth / DEPTH_SCALE], dim=-1)
    tokens = tokens * seen[..., None]
    return (tokens.permute(0, 2, 1, 3, 4).contiguous(), seen.permute(0, 2, 1, 3).contiguous(),
            dlt_c, missing, origin)
