"""Training's view of the torch.distributed set-up (moved to :mod:`fsanet_geo.distributed`).

Kept so that ``from fsanet_geo.train.distributed import init_distributed`` goes on working.
"""

from __future__ import annotations

from fsanet_geo.distributed import DistContext, init_distributed

__all__ = ["DistContext", "init_distributed"]
