"""The raw head outputs shared by the head, the targets/losses and the post-processing.

Dimension letters: B = images, K = classes, L = pyramid levels, H_l x W_l = level l's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class HeadOutputs:
    """Per-level raw predictions (lists of length L, finest level first).

    Attributes:
        cls_logits: Tensor[B, K, H_l, W_l] classification logits (sigmoid later).
        box_refine: Tensor[B, 4, H_l, W_l] final (l, t, r, b) distances in input pixels,
            positive. For the plain FCOS head this is its only box prediction.
        centerness: Tensor[B, 1, H_l, W_l] centerness logits.
        box_init: Tensor[B, 4, H_l, W_l] coarse (l, t, r, b) distances in input pixels
            (SAGH only; ``None`` for the plain FCOS head).
    """

    cls_logits: list[Tensor]
    box_refine: list[Tensor]
    centerness: list[Tensor]
    box_init: list[Tensor] | None = None

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H_l, W_l) of each level."""
        return [(int(t.shape[-2]), int(t.shape[-1])) for t in self.cls_logits]
