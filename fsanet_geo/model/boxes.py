"""Point grids and the box encoding shared by training and inference.

Dimension letters: P = points, L = pyramid levels. Every coordinate and distance is in
input-image pixels; boxes are ``(x1, y1, x2, y2)`` and distances ``(l, t, r, b)`` from a
point to the left, top, right and bottom edges of a box.

Inference (post-processing, the detector) imports this module, never the training
targets or losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def make_points(
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[Tensor]:
    """Point centres of every level: ``(x, y) = ((j + 0.5) * stride, (i + 0.5) * stride)``.

    Args:
        sizes: (H_l, W_l) of each level.
        strides: stride of each level in pixels.

    Returns:
        One Tensor[H_l * W_l, 2] of (x, y) pixels per level, row-major (the order of
        ``feature.flatten(2)`` on a [B, C, H_l, W_l] map).
    """
    if len(sizes) != len(strides):
        raise ValueError(f"{len(sizes)} level sizes but {len(strides)} strides")
    points = []
    for (height, width), stride in zip(sizes, strides, strict=True):
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * stride
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=-1))
    return points


def distance_to_boxes(points: Tensor, dist: Tensor) -> Tensor:
    """Decode (l, t, r, b) distances around points into boxes.

    Args:
        points: Tensor[P, 2] (x, y) pixels.
        dist: Tensor[P, 4] (l, t, r, b) pixels.

    Returns:
        Tensor[P, 4] boxes (x1, y1, x2, y2) in pixels (not clipped).
    """
    x, y = points[..., 0], points[..., 1]
    return torch.stack(
        (x - dist[..., 0], y - dist[..., 1], x + dist[..., 2], y + dist[..., 3]), dim=-1
    )


def boxes_to_distances(points: Tensor, boxes: Tensor) -> Tensor:
    """Distances (l, t, r, b) from points to boxes, the inverse of :func:`distance_to_boxes`.

    Args:
        points: Tensor[P, 2] (x, y) pixels.
        boxes: Tensor[P, 4] (x1, y1, x2, y2) pixels.

    Returns:
        Tensor[P, 4]; a component is negative when the point lies beyond that edge.
    """
    x, y = points[..., 0], points[..., 1]
    return torch.stack(
        (x - boxes[..., 0], y - boxes[..., 1], boxes[..., 2] - x, boxes[..., 3] - y), dim=-1
    )
