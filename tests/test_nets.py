"""Our GoogLeNet/InceptionV3/ResNet50/VGG against torchvision's: same keys, same outputs, no torchvision import."""

import subprocess
import sys

import pytest
import torch

from dreamreel.models import create_model, get_spec
from dreamreel.models.fold import fold_batchnorms


def _randomise_batchnorm_stats(model, seed=0):
    """Non-trivial running statistics, so loading and folding are really exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _torchvision(name):
    import torchvision.models as tvm

    torch.manual_seed(0)
    kwargs = {"aux_logits": True, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    net = getattr(tvm, name)(weights=None, **kwargs)
    _randomise_batchnorm_stats(net)
    return net.eval()


@pytest.mark.parametrize("name, layer, size", [("googlenet", "inception4c", 64), ("inception_v3", "Mixed_6b", 96),
                                               ("resnet50", "layer2", 64)])
@pytest.mark.parametrize("fold", [False, True])
def test_a_torchvision_state_dict_file_gives_torchvisions_outputs(tmp_path, name, layer, size, fold):
    reference = _torchvision(name)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    spec, model = create_model(name, str(path), fold=fold)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    seen = {}
    hook = getattr(reference, layer).register_forward_hook(lambda m, i, o: seen.__setitem__("act", o))
    with torch.no_grad():
        out = model(x, [layer, "logits"])
        logits = reference((x - model.mean) / model.std)
    hook.remove()
    assert out[layer].shape == seen["act"].shape
    # identical unfolded; folded, the same up to float rounding relative to the activations' scale
    tol = 1e-6 if not fold else 1e-5
    assert _relative_error(out[layer], seen["act"]) <= tol
    assert _relative_error(out["logits"], logits) <= tol


def _relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_vgg_keys_and_shapes_match_torchvision():
    import torchvision.models as tvm

    theirs = {k: v.shape for k, v in tvm.vgg16(weights=None).state_dict().items()}
    ours = get_spec("vgg16").build(None)
    # ours is staged: map its keys back through the stage list (features.N / classifier.N)
    from dreamreel.models.nets import VGG

    assert {k: v.shape for k, v in VGG("vgg16").state_dict().items()} == theirs
    assert ours.stage_names[:3] == ["conv1_1", "relu1_1", "conv1_2"]


def test_folding_keeps_the_function_and_removes_every_batchnorm():
    spec, plain = create_model("efficientnet_lite0", "default", fold=False)
    _, folded = create_model("efficientnet_lite0", "default")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()) == 49
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = plain(x, ["block10", "logits"]), folded(x, ["block10", "logits"])
    assert torch.allclose(a["block10"], b["block10"], rtol=1e-4, atol=1e-4)
    assert torch.allclose(a["logits"], b["logits"], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorms(plain.train())


def test_a_dream_with_an_article_model_never_imports_torchvision():
    code = ("import sys, torch; from dreamreel.models import create_model; "
            "from dreamreel.engine.objectives import target; "
            "spec, m = create_model('googlenet', 'random'); t = target('bubble').bind(spec); "
            "m(torch.rand(1, 3, 64, 64), ['inception4c']); "
            "assert t.label == 'bubble' and len(spec.categories()) == 1000; "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
