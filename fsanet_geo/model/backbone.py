"""Backbones from torchvision giving C3, C4, C5 (strides 8, 16, 32).

- ResNet-18/34/50/101, pytorch style, with :class:`torchvision.ops.FrozenBatchNorm2d`
  everywhere (BatchNorm statistics and affine parameters never change, in ``train()`` too:
  the "norm_eval" convention) and the stem + stage 1 frozen by default.
- Swin-T with its real stage widths: stages 2, 3, 4 give 192, 384, 768 channels; each
  output gets its own LayerNorm (as detection backbones usually do).

Bands other than 3 (``in_channels != 3``): the first conv is rebuilt for C input bands.
With pretrained RGB weights, every band gets the mean of the R, G and B kernels scaled by
3 / C, so a grey image of value v gives the same first-layer response whatever C is
(sum over bands of the kernel equals the sum of the RGB kernels). A weights file whose
first conv already has C input channels is used as is.

Pretrained weights: ``pretrained=True`` downloads torchvision's ImageNet weights
(``IMAGENET1K_V1``) through the weights API; a path loads a local state dict
(``.safetensors``, or a torch file read with ``weights_only=True``); ``False`` keeps
torchvision's random init.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.ops import FrozenBatchNorm2d

from fsanet_geo.errors import CheckpointError, ConfigError

# name -> (builder, ImageNet weights, channels of C2, C3, C4, C5)
_RESNETS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, (64, 128, 256, 512)),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1, (64, 128, 256, 512)),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, (256, 512, 1024, 2048)),
    "resnet101": (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1, (256, 512, 1024, 2048)),
}
SWIN_T_CHANNELS: tuple[int, int, int] = (192, 384, 768)


def adapt_first_conv_weight(weight: Tensor, in_channels: int) -> Tensor:
    """Map an RGB kernel Tensor[O, 3, k, k] to Tensor[O, C, k, k] (see module docstring)."""
    if weight.shape[1] == in_channels:
        return weight
    if weight.shape[1] != 3:
        raise CheckpointError(
            f"first conv has {weight.shape[1]} input bands; cannot map it to {in_channels} bands"
        )
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_channels, -1, -1) * (3.0 / in_channels)


def _replace_conv_in_channels(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A freshly initialised copy of ``conv`` taking ``in_channels`` bands."""
    if conv.in_channels == in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_first_conv_weight(conv.weight, in_channels))
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def load_weights_file(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict without unpickling code (safetensors or ``weights_only`` torch file)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"backbone weights file {p} does not exist")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise CheckpointError(
            f"{p} is not a safetensors or torch state-dict file ({_read_failure(p, exc)})"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{p} does not hold a state dict of tensors")
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone.body.", "backbone."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _read_failure(path: Path, exc: BaseException) -> str:
    """Why a weights file did not load, in words (the unpickler's own errors are a bare ``105``)."""
    if path.stat().st_size == 0:
        return "the file is empty"
    text = str(exc).strip().splitlines()
    reader = "safetensors" if path.suffix == ".safetensors" else "torch.load"
    if isinstance(exc, (KeyError, EOFError, pickle.UnpicklingError)) or not text or text[0].isdigit():
        return f"{reader} cannot read it: not a weights file"
    return f"{reader}: {text[0]}"


def _load_into(
    module: nn.Module,
    state: Mapping[str, Tensor],
    first_conv_key: str,
    in_channels: int,
    source: str,
    ignore_missing_prefixes: tuple[str, ...] = (),
) -> None:
    """Load ``state`` into ``module`` (extra keys such as a classifier are ignored)."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    if first_conv_key in state:
        state[first_conv_key] = adapt_first_conv_weight(state[first_conv_key], in_channels)
    missing = [k for k in own if k not in state and not k.startswith(ignore_missing_prefixes)]
    bad_shapes = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if missing or bad_shapes:
        problems = [f"missing {k}" for k in missing[:3]] + [
            f"{k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
            for k in bad_shapes[:3]
        ]
        raise CheckpointError(f"backbone weights from {source} do not fit: {'; '.join(problems)}")
    module.load_state_dict(state, strict=False)


def _pretrained_state(weights: models.WeightsEnum, pretrained: bool | str) -> tuple[dict[str, Tensor], str]:
    if isinstance(pretrained, (str, Path)):
        return load_weights_file(pretrained), str(pretrained)
    try:
        return dict(weights.get_state_dict(progress=False)), f"torchvision {weights}"
    except Exception as exc:  # noqa: BLE001 - network or cache failures
        raise CheckpointError(
            f"could not get torchvision's {weights} ImageNet weights ({exc}); "
            "download them once or pass a local weights file path"
        ) from exc


class ResNetBackbone(nn.Module):
    """Torchvision ResNet body: ``forward(Tensor[B, C, H, W]) -> [C3, C4, C5]``.

    C3/C4/C5 are at strides 8/16/32 with ``out_channels`` channels (128/256/512 for
    ResNet-18/34, 512/1024/2048 for ResNet-50/101). ``frozen_stages``: -1 none, 0 stem,
    k >= 1 the stem and stages 1..k get ``requires_grad=False``.

    ``first_level=2`` gives [C2, C3, C4] (strides 4/8/16) instead, and drops stage 4.
    ``norm="bn"`` uses trainable BatchNorm (training from scratch) instead of frozen BN.
    """

    def __init__(
        self,
        name: str = "resnet50",
        in_channels: int = 3,
        frozen_stages: int = 1,
        pretrained: bool | str = False,
        *,
        first_level: int = 3,
        norm: str = "frozen_bn",
    ) -> None:
        super().__init__()
        if name not in _RESNETS:
            raise ConfigError(f"unknown ResNet {name!r}: choose one of {', '.join(_RESNETS)}")
        if first_level not in (2, 3):
            raise ConfigError(f"first_level must be 2 or 3, got {first_level}")
        builder, weights, channels = _RESNETS[name]
        norm_layer = {"frozen_bn": FrozenBatchNorm2d, "bn": nn.BatchNorm2d}.get(norm)
        if norm_layer is None:
            raise ConfigError(f"unknown backbone norm {norm!r}: use frozen_bn or bn")
        net = builder(weights=None, norm_layer=norm_layer)
        self.name = name
        self.first_level = first_level
        start = first_level - 2
        self.out_channels: tuple[int, int, int] = channels[start : start + 3]  # type: ignore[assignment]
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4 if first_level == 3 else None
        if pretrained:
            # Load into the RGB layout first, then adapt the first conv to C bands.
            state, source = _pretrained_state(weights, pretrained)
            if "conv1.weight" in state and state["conv1.weight"].shape[1] == in_channels:
                self.conv1 = _replace_conv_in_channels(self.conv1, in_channels)
            _load_into(self, state, "conv1.weight", self.conv1.in_channels, source)
        self.conv1 = _replace_conv_in_channels(self.conv1, in_channels)
        self.frozen_stages = frozen_stages
        self._freeze(frozen_stages)

    def _freeze(self, frozen_stages: int) -> None:
        frozen: list[nn.Module] = []
        if frozen_stages >= 0:
            frozen += [self.conv1, self.bn1]
        frozen += [getattr(self, f"layer{i}") for i in range(1, frozen_stages + 1)]
        frozen = [m for m in frozen if m is not None]
        for module in frozen:
            for param in module.parameters():
                param.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        if self.layer4 is None:
            return [c2, c3, c4]
        return [c3, c4, self.layer4(c4)]


class SwinBackbone(nn.Module):
    """Torchvision Swin-T: ``forward(Tensor[B, C, H, W]) -> [C3, C4, C5]`` NCHW.

    Outputs of stages 2, 3, 4 (strides 8, 16, 32; 192, 384, 768 channels), each passed
    through its own LayerNorm. Input sides must be multiples of 32 (the detector pads).
    ``drop_path`` is the stochastic-depth rate; ``frozen_stages`` as for ResNet
    (0 = patch embedding, k = also stages 1..k).
    """

    def __init__(
        self,
        in_channels: int = 3,
        frozen_stages: int = -1,
        pretrained: bool | str = False,
        drop_path: float = 0.2,
    ) -> None:
        super().__init__()
        # swin_t()'s own arguments, but with our stochastic-depth rate.
        net = SwinTransformer(
            patch_size=[4, 4],
            embed_dim=96,
            depths=[2, 2, 6, 2],
            num_heads=[3, 6, 12, 24],
            window_size=[7, 7],
            stochastic_depth_prob=drop_path,
        )
        self.out_channels: tuple[int, int, int] = SWIN_T_CHANNELS
        self.features = net.features
        self.norms = nn.ModuleList(nn.LayerNorm(c) for c in SWIN_T_CHANNELS)
        patch_conv = self.features[0][0]
        if pretrained:
            state, source = _pretrained_state(models.Swin_T_Weights.IMAGENET1K_V1, pretrained)
            key = "features.0.0.weight"
            if key in state and state[key].shape[1] == in_channels:
                self.features[0][0] = _replace_conv_in_channels(patch_conv, in_channels)
            _load_into(self, state, key, self.features[0][0].in_channels, source, ("norms.",))
        self.features[0][0] = _replace_conv_in_channels(self.features[0][0], in_channels)
        self.frozen_stages = frozen_stages
        if frozen_stages >= 0:
            # features: 0 patch embed, 1 stage 1, 2 merge, 3 stage 2, 4 merge, 5 stage 3, ...
            for index in range(0, 2 * frozen_stages):
                for param in self.features[index].parameters():
                    param.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for index, stage in enumerate(self.features):
            x = stage(x)  # NHWC after the patch embedding
            if index in (3, 5, 7):
                norm = self.norms[(index - 3) // 2]
                outputs.append(norm(x).permute(0, 3, 1, 2).contiguous())
        return outputs


def build_backbone(
    name: str,
    in_channels: int = 3,
    frozen_stages: int = 1,
    pretrained: bool | str = False,
    drop_path: float = 0.0,
    *,
    first_level: int = 3,
    norm: str = "frozen_bn",
) -> ResNetBackbone | SwinBackbone:
    """Backbone by config name (``resnet18|34|50|101`` or ``swin_t``).

    ``first_level`` 3 gives C3-C5 (strides 8/16/32), 2 gives C2-C4 (4/8/16, ResNet only).
    """
    if name == "swin_t":
        return SwinBackbone(in_channels, frozen_stages, pretrained, drop_path)
    return ResNetBackbone(name, in_channels, frozen_stages, pretrained, first_level=first_level, norm=norm)
