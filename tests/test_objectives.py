import pytest
import torch

from dreamreel.errors import DreamError
from dreamreel.engine.objectives import Features, Layer, Sum, features, layer, parse_layer_spec, parse_target_spec, resolve_class, target


def _grad(model, objective, x):
    x = x.clone().requires_grad_(True)
    value = objective(model(x, objective.layers))
    (g,) = torch.autograd.grad(value, x)
    return g


def test_layer_gradient_equals_sum_of_feature_gradients_scaled_by_one_over_features(lite0):
    spec, model = lite0
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    whole = layer("block3").bind(spec)
    channels = spec.layer_channels["block3"]
    summed = sum(_grad(model, features("block3", f).bind(spec), x) for f in range(channels)) / channels
    g = _grad(model, whole, x)
    assert channels == 40
    assert (g - summed).abs().max().item() < 1e-5 * g.abs().max().item() + 1e-7


def test_weighted_sum_reads_like_the_article():
    obj = layer("inception4c") + 0.5 * target("bubble")
    assert isinstance(obj, Sum)
    assert [(w, type(t).__name__) for w, t in obj.terms()] == [(1.0, "Layer"), (0.5, "Target")]
    assert obj.layers == {"inception4c", "logits"}


def test_weighted_objective_value_is_the_weighted_sum():
    acts = {"a": torch.ones(1, 4, 2, 2), "b": torch.full((1, 2, 3, 3), 2.0)}
    obj = 2.0 * Layer("a") + Features("b", [1]) - Layer("b")
    # layer a: 16/4 = 4 -> 8; feature b1: 9*2 = 18; layer b: 36/2 = 18
    assert obj(acts).item() == pytest.approx(8.0 + 18.0 - 18.0)


@pytest.mark.parametrize(
    "text, indices", [("Mixed_6e:3,7", (3, 7)), ("Mixed_6e:0-7", tuple(range(8))), ("m:1,4-5", (1, 4, 5))]
)
def test_feature_specs_parse_lists_and_ranges(text, indices):
    obj = parse_layer_spec(text)
    assert isinstance(obj, Features) and obj.indices == indices


def test_layer_spec_weight_and_target_weight():
    assert parse_layer_spec("block10@0.25").terms()[0][0] == 0.25
    w, t = parse_target_spec("junco, snowbird@3").terms()[0]
    assert w == 3.0 and t.cls == "junco, snowbird"


def test_classes_resolve_case_insensitively_by_alias_and_index():
    cats = ["tench", "junco", "Egyptian cat", "bubble"]
    assert resolve_class("BUBBLE", cats) == 3
    assert resolve_class("junco, snowbird", cats) == 1
    assert resolve_class("2", cats) == 2
    with pytest.raises(DreamError, match="did you mean 'bubble'"):
        resolve_class("bubbel", cats)
    with pytest.raises(DreamError, match="out of range"):
        resolve_class("9", cats)


def test_binding_rejects_unknown_layers_and_out_of_range_features(lite0):
    spec, _ = lite0
    with pytest.raises(DreamError, match="did you mean 'block10'"):
        layer("blok10").bind(spec)
    with pytest.raises(DreamError, match="feature 112 is out of range for block10"):
        features("block10", [0, 112]).bind(spec)
