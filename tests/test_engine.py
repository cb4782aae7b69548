import pytest
import torch

from dreamreel.engine import Dreamer, DreamSettings, Octave, gaussian_blur, noise_image, octave_sizes
from dreamreel.engine.objectives import layer


def test_lr_and_sigma_interpolate_linearly_as_in_the_article():
    o = Octave((10, 10), 100, (0.5, 0.4), (2.4, 0.8))
    assert o.lr_at(0) == pytest.approx(0.5)
    assert o.lr_at(50) == pytest.approx(0.45)
    assert o.sigma_at(25) == pytest.approx(2.4 * 0.75 + 0.8 * 0.25)


def test_geometric_octaves_end_at_the_output_size_and_explicit_sizes_keep_aspect():
    assert octave_sizes((460, 460), [299, 380, 460]) == [(299, 299), (380, 380), (460, 460)]
    sizes = octave_sizes((600, 400), 3, 1.5)
    assert sizes[-1] == (600, 400)
    assert sizes[0] == (267, 178)


def test_article_noise_is_uniform_tenth_plus_half():
    x = noise_image((64, 48), torch.Generator().manual_seed(0))
    assert x.shape == (1, 3, 48, 64)
    assert 0.5 <= x.min().item() and x.max().item() <= 0.6
    assert x.mean().item() == pytest.approx(0.55, abs=0.005)


def test_gaussian_blur_keeps_the_mean_and_removes_high_frequencies():
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    y = gaussian_blur(x, 1.5)
    assert y.shape == x.shape
    assert y.mean().item() == pytest.approx(x.mean().item(), abs=0.01)
    assert y.std().item() < 0.5 * x.std().item()
    assert torch.equal(gaussian_blur(x, 0.0), x)


def test_raw_step_without_normalisation_is_the_articles_update(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block3").bind(spec))
    x = torch.full((1, 3, 48, 48), 0.5) + 0.01 * torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    g, _, _ = d.gradient(x)
    settings = DreamSettings((Octave((48, 48), 1, (0.3, 0.3)),), normalize="none", jitter=0)
    out = d.dream(x, settings).image
    assert torch.allclose(out, (x + 0.3 * g).clamp(0, 1), atol=1e-6)


def test_dream_raises_the_objective_every_octave_and_keeps_pixels_in_range(lite0, coffee):
    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    settings = DreamSettings(tuple(Octave(s, 4, (0.02, 0.01), (0.5, 0.25)) for s in octave_sizes((96, 64), 2)), jitter=4)
    result = d.dream(coffee, settings, generator=torch.Generator().manual_seed(0))
    assert result.image.shape == (1, 3, 64, 96)
    assert 0.0 <= result.image.min().item() and result.image.max().item() <= 1.0
    for o in result.octaves:
        assert o.objective_end > o.objective_start


def test_callback_sees_every_step_with_activations_of_the_objective_layers(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block5").bind(spec))
    seen = []
    settings = DreamSettings(tuple(Octave(s, 3, (0.02, 0.02)) for s in [(40, 40), (56, 56)]))
    d.dream(torch.rand(1, 3, 56, 56), settings, callback=seen.append)
    assert [s.global_step for s in seen] == list(range(6))
    assert [(s.octave, s.step) for s in seen][3] == (1, 0)
    assert set(seen[0].activations) == {"block5"}
    assert seen[-1].image.shape[-2:] == (56, 56)
    assert not seen[0].activations["block5"].requires_grad


def test_same_seed_gives_the_same_dream(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block5").bind(spec))
    settings = DreamSettings((Octave((48, 48), 3, (0.02, 0.02), (0.5, 0.5)),), jitter=8)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    a = d.dream(x, settings, generator=torch.Generator().manual_seed(5)).image
    b = d.dream(x, settings, generator=torch.Generator().manual_seed(5)).image
    c = d.dream(x, settings, generator=torch.Generator().manual_seed(6)).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_class_target_probability_is_reported_before_and_after(lite0, coffee):
    from dreamreel.engine.objectives import target

    spec, model = lite0
    d = Dreamer(model, target("bubble").bind(spec))
    settings = DreamSettings((Octave((96, 64), 6, (0.02, 0.02), (0.5, 0.5)),), smooth_every=5, jitter=0)
    r = d.dream(coffee, settings)
    start, end = r.target_probability
    assert end > start


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.4])
def test_both_blur_paths_match_a_reference_gaussian(sigma):
    import math

    import torch.nn.functional as F

    x = torch.rand(1, 3, 30, 34, generator=torch.Generator().manual_seed(2))
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k2 = (k[:, None] * k[None, :]) / k.sum() ** 2
    ref = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect").reshape(3, 1, 30 + 2 * r, 34 + 2 * r), k2[None, None])
    assert torch.allclose(gaussian_blur(x, sigma), ref.reshape(1, 3, 30, 34), atol=1e-5)


def test_dense_and_tiled_update_rules_agree_when_one_tile_covers_the_image(lite0, coffee):
    """The two layouts of one step (whole image; tiles and strips in place) give the same image, value and start."""
    from dreamreel.engine import resize
    from dreamreel.engine.objectives import layer
    from dreamreel.engine.update import DenseRule, TiledRule

    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    image = resize(coffee, (72, 48))
    mask = torch.ones(1, 1, 48, 72)
    mask[..., :, :30] = 0.25
    for s in (DreamSettings((), lapnorm=3, color="decorrelated", tile=96, tile_overlap=8),
              DreamSettings((), normalize="none", color="luminance", tile=96, tile_overlap=8)):
        dense, tiled = DenseRule(d, s), TiledRule(d, s)
        src_d, x = dense.start(image, (72, 48))
        src_t, x_t = tiled.start(image, (72, 48))
        assert torch.equal(x, x_t)
        for m in (None, mask):
            gen = torch.Generator().manual_seed(1)
            before_d, y_d, v_d, _ = dense.step(x.clone(), (3, -2), None, gen, 0.02, 0.5, m, True)
            before_t, y_t, v_t, _ = tiled.step(x.clone(), (3, -2), None, gen, 0.02, 0.5, m, True)
            assert torch.equal(before_d, before_t) and torch.equal(v_d, v_t)
            assert float((y_d - x).abs().mean()) > 1e-3  # the step did change the image
            assert float((y_d - y_t).abs().max()) < 1e-5  # measured: 6e-8 (lapnorm and colour per strip), 0
        end_d, end_t = dense.finish(y_d, mask, src_d, (72, 48)), tiled.finish(y_t.clone(), mask, src_t, (72, 48))
        assert float((end_d - end_t).abs().max()) < 1e-5
