import urllib.error

import pytest
import torch
import torch.nn.functional as F

from dreamreel.errors import DreamError
from dreamreel.io.images import load_image
from dreamreel.models import create_model, get_spec, list_models


@pytest.mark.parametrize(
    "name, accepted",
    [("chelsea.png", {"Egyptian cat", "tabby", "tiger cat"}), ("coffee.png", {"espresso"})],
)
def test_embedded_weights_classify_the_test_photos(lite0, data_dir, name, accepted):
    spec, model = lite0
    x = F.interpolate(load_image(data_dir / name), size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        p = model(x, ["logits"])["logits"].softmax(1)[0]
    top = int(p.argmax())
    assert spec.categories()[top] in accepted
    assert float(p[top]) > 0.6  # README of the data: ~0.8 and ~0.87 with these weights


def test_registry_lists_the_article_models_with_layer_channels():
    names = {s.name for s in list_models()}
    assert {"efficientnet_lite0", "inception_v3", "googlenet", "resnet50", "vgg16", "vgg19"} <= names
    assert get_spec("inception_v3").layer_channels["Mixed_6e"] == 768
    assert get_spec("inception_v3").layer_channels["Mixed_6c"] == 768
    assert get_spec("googlenet").layer_channels["inception4c"] == 512
    assert get_spec("resnet50").layer_channels["layer3"] == 1024
    assert get_spec("vgg16").layer_channels["relu4_3"] == 512
    assert get_spec("efficientnet_lite0").layer_channels["block10"] == 112
    assert len(get_spec("googlenet").categories()) == 1000


def test_unknown_model_suggests_a_close_name():
    with pytest.raises(DreamError, match="did you mean 'googlenet'"):
        get_spec("googlnet")


def _later_stages_never_run(model, layer):
    ran = []
    depth = model.depth_of(layer)
    hooks = [m.register_forward_hook(lambda *a, i=i: ran.append(i)) for i, m in enumerate(model.stages)]
    model(torch.rand(1, 3, 96, 96), [layer])
    for h in hooks:
        h.remove()
    return ran, depth


def test_truncated_model_never_runs_later_layers(lite0):
    _, model = lite0
    ran, depth = _later_stages_never_run(model, "block7")
    assert ran == list(range(depth + 1))
    assert max(ran) < len(model.stages) - 1


def test_truncated_inception_stops_at_mixed_6e():
    spec, model = create_model("inception_v3", "random")
    ran, depth = _later_stages_never_run(model, "Mixed_6e")
    names = [model.stage_names[i] for i in ran]
    assert names[-1] == "Mixed_6e"
    assert not any(n.startswith("Mixed_7") for n in names)


@pytest.mark.parametrize("name", ["googlenet", "resnet50"])
def test_torchvision_weights_load_from_a_local_state_dict(tmp_path, name):
    import torchvision.models as tvm

    torch.manual_seed(0)
    kwargs = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
    reference = getattr(tvm, name)(weights=None, **kwargs).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    spec, model = create_model(name, str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x, ["logits"])["logits"]
        norm = (x - model.mean) / model.std
        theirs = reference(norm)
    theirs = theirs.logits if hasattr(theirs, "logits") else theirs
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_a_state_dict_for_another_model_is_refused(tmp_path):
    import torchvision.models as tvm

    path = tmp_path / "resnet.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), path)
    with pytest.raises(DreamError, match="do not fit googlenet"):
        create_model("googlenet", str(path))


def test_offline_default_weights_name_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(DreamError) as info:
        create_model("googlenet", "default")
    text = str(info.value)
    assert "googlenet-1378be20.pth" in text and str(tmp_path / "hub" / "checkpoints") in text


def test_default_weights_are_read_from_the_hub_cache_when_present(tmp_path, monkeypatch):
    import torchvision.models as tvm

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(tvm.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(),
               tmp_path / "checkpoints" / "googlenet-1378be20.pth")
    spec, model = create_model("googlenet", "default")
    assert model.stage_names[-1] == "logits"
