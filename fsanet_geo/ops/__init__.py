"""Box overlap kernels and NMS rules, written once for post-processing and the seam merge.

- :mod:`~fsanet_geo.ops.overlap`: IoU / IoS of boxes, element-wise or pairwise, on numpy
  arrays or torch tensors alike.
- :mod:`~fsanet_geo.ops.nms_rules`: the NMS methods, option checks, which pairs interact,
  the soft-NMS decay and the pick order.
- :mod:`~fsanet_geo.ops.sweep_pairs` (torch): pairs within one set of boxes above an overlap.
- :mod:`~fsanet_geo.ops.grid_pairs` (numpy): intersecting pairs between two sets of boxes.
- :mod:`~fsanet_geo.ops.nms` (torch): per-class hard and soft NMS of one image's boxes.

Only ``sweep_pairs`` and ``nms`` import torch; the seam merge stays numpy-only.
"""
