"""Fold BatchNorm into the preceding convolution for inference.

In eval mode a BatchNorm (frozen or trainable, running statistics) after a convolution is
an affine map per output channel, ``y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta``,
so it can be merged into the conv: ``W' = W * s``, ``b' = (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. The folded model computes the same function (within float
rounding, tested at 1e-5) with one pass over each feature map fewer.

A folded model is for inference only: its state dict no longer has the BN entries, so
:func:`fsanet_geo.model.files.checkpoint.save_checkpoint` refuses it (checkpoints always hold the
unfolded weights); :func:`~fsanet_geo.model.files.checkpoint.load_inference_model` loads a checkpoint and folds it.

Pairs found: a module's children ``convN`` + ``bnN`` (torchvision's ResNet stem and blocks)
and consecutive ``Conv2d`` -> BN children of an ``nn.Sequential`` (the downsample branch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

FOLDED_ATTRIBUTE = "bn_folded"
"""Set to True on a model whose BatchNorms were folded (checked by ``save_checkpoint``)."""

_BatchNorms = (FrozenBatchNorm2d, nn.BatchNorm2d)


def _scale_shift(bn: nn.Module) -> tuple[Tensor, Tensor]:
    """(scale, shift) Tensor[C] each, with BN(y) = y * scale + shift in eval mode."""
    mean, var = bn.running_mean, bn.running_var
    weight = bn.weight if bn.weight is not None else torch.ones_like(mean)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(mean)
    scale = weight * torch.rsqrt(var + bn.eps)
    return scale, bias - mean * scale


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    """A new Conv2d (with bias) equal to ``bn(conv(x))`` in eval mode."""
    scale, shift = _scale_shift(bn)
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    folded.bias.copy_(conv_bias * scale + shift)
    folded.weight.requires_grad_(False)
    folded.bias.requires_grad_(False)
    return folded


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and isinstance(bn, _BatchNorms)
        and not bn.training
        and bn.running_mean.numel() == conv.out_channels
    )


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that follows a conv, in place; returns the count.

    Call it on a model in eval mode (trainable BatchNorms still in training mode are left
    alone, since their output depends on the batch). Marks the model as folded.
    """
    count = 0
    for parent in list(model.modules()):
        children = dict(parent.named_children())
        if isinstance(parent, nn.Sequential):
            names = list(children)
            pairs = list(zip(names, names[1:]))
        else:
            pairs = [(n, "bn" + n[4:]) for n in children if n.startswith("conv") and "bn" + n[4:] in children]
        for conv_name, bn_name in pairs:
            conv, bn = children[conv_name], children[bn_name]
            if _foldable(conv, bn):
                setattr(parent, conv_name, fold_conv_bn(conv, bn))  # type: ignore[arg-type]
                setattr(parent, bn_name, nn.Identity())
                children[conv_name], children[bn_name] = getattr(parent, conv_name), nn.Identity()
                count += 1
    setattr(model, FOLDED_ATTRIBUTE, True)
    return count


def is_folded(model: nn.Module) -> bool:
    """Whether :func:`fold_batchnorm` ran on ``model`` (or on the model it wraps)."""
    inner = getattr(model, "module", model)
    return bool(getattr(model, FOLDED_ATTRIBUTE, False) or getattr(inner, FOLDED_ATTRIBUTE, False))
