"""The default look: whole layers scored by their squares, class families, and zooms that travel through them."""

import json

import pytest
import torch

from dreamreel.cli import main
from dreamreel.engine.families import FAMILIES, TRAVEL_ORDER, family_indices
from dreamreel.engine.objectives import Family, Layer, build_objective, parse_target_spec, target
from dreamreel.errors import DreamError
from dreamreel.presets import load_preset
from dreamreel.render.travel import family_at, travel_targets


def test_square_layer_gradient_is_the_activation_in_units_of_its_mean():
    z = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]]).repeat(1, 2, 1, 1).requires_grad_(True)  # 2 features
    value = Layer("a", 2, "square")({"a": z})
    mean_abs = z.detach().abs().mean()
    assert value.item() == pytest.approx(0.5 * (z.detach() ** 2).sum().item() / (2 * mean_abs.item()))
    (g,) = torch.autograd.grad(value, z)
    assert torch.allclose(g, z.detach() / (2 * mean_abs))  # the gradient amplifies what is there


def test_sum_layer_gradient_is_the_same_for_every_position():
    z = torch.randn(1, 4, 3, 3).requires_grad_(True)
    (g,) = torch.autograd.grad(Layer("a", 4)({"a": z}), z)
    assert torch.allclose(g, torch.full_like(g, 0.25))


def test_the_default_objective_is_the_models_mix_scored_by_squares(lite0):
    spec, _ = lite0
    obj = build_objective([], [], spec.default_layers, "square").bind(spec)
    terms = [(w, t.name, t.mode) for w, t in obj.terms()]
    assert spec.default_layers == ("block10@0.5", "block13")
    assert terms == [(0.5, "block10", "square"), (1.0, "block13", "square")]
    # a --layer replaces the mix; features stay the article's unscaled sum
    assert [(t.name, type(t).__name__) for _, t in build_objective(["block7:3"], [], spec.default_layers, "square").terms()] == [("block7", "Features")]


def test_a_family_target_is_the_log_sum_exp_of_its_classes_and_its_probability_their_sum(lite0):
    spec, _ = lite0
    fam = parse_target_spec("family:bird@3").bind(spec)
    (w, term), = fam.terms()
    assert w == 3 and isinstance(term, Family) and len(term.indices) == 59
    logits = torch.randn(2, 1000)
    assert term({"logits": logits}).item() == pytest.approx(logits[:, list(term.indices)].logsumexp(1).sum().item(), rel=1e-5)
    p = term.probability(logits)
    assert p.shape == (2,) and torch.allclose(p, logits.softmax(1)[:, list(term.indices)].sum(1))
    assert repr(term) == "target('family:bird')"


def test_every_family_resolves_and_an_unknown_one_is_refused_with_a_hint(lite0):
    spec, _ = lite0
    for name in FAMILIES:
        assert len(family_indices(name, spec.categories())) >= 5
    assert set(TRAVEL_ORDER) <= set(FAMILIES)
    with pytest.raises(DreamError, match="unknown class family 'brid'") as e:
        target("family:brid").bind(spec)
    assert "bird" in e.value.hint


def test_travel_visits_a_new_family_every_leg_after_the_first():
    assert [family_at(24, k) for k in (0, 23, 24, 47, 48)] == [None, None, "bird", "bird", "building"]
    assert family_at(24, 24 * (len(TRAVEL_ORDER) + 1)) == TRAVEL_ORDER[0]  # cycles
    assert family_at(0, 500) is None
    assert travel_targets(10, 150, 25, ["lion@2"]) == ["lion@2", "family:building@150"]
    assert travel_targets(10, 150, 5, []) == []


def test_a_travelling_zoom_records_each_frames_family_in_the_sidecar(tmp_path, data_dir):
    out = tmp_path / "z"
    code = main(["zoom", str(data_dir / "chelsea.png"), "-o", f"{out}/", "--size", "64", "--frames", "5",
                 "--first-octaves", "1", "--steps", "1", "--travel", "2", "-q"])
    assert code == 0
    side = json.loads((tmp_path / "z.json").read_text())
    targets = [r["target"] for r in side["per_frame"]]
    assert targets == [[], [], ["family:bird@150"], ["family:bird@150"], ["family:building@150"]]
    off = tmp_path / "off"
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", f"{off}/", "--size", "64", "--frames", "3",
                 "--first-octaves", "1", "--steps", "1", "--travel", "0", "-q"]) == 0
    assert [r["target"] for r in json.loads((tmp_path / "off.json").read_text())["per_frame"]] == [[], [], []]


def test_the_old_default_look_is_the_wool_preset_and_the_article_presets_keep_the_sum():
    wool = load_preset("wool").values
    assert wool["layer"] == ["block13"] and wool["layer_objective"] == "sum"
    for name in ("lite0-googlenet-4c", "article-googlenet-4c", "lite0-mixed6b-layer", "classic"):
        assert load_preset(name).values["layer_objective"] == "sum"
    assert load_preset("zoom").values["travel"] == 24
