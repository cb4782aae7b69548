"""Transformation robustness, gradient conditioning, colour matching, and zooms that keep their look."""

import numpy as np
import pytest
import torch

from dreamreel.render import draw
from dreamreel.cli import main
from dreamreel.engine.conditioning import (color_gradient, color_stats, lapnorm, laplacian_merge, laplacian_split,
                                    match_color)
from dreamreel.io.outputs import read_frames
from dreamreel.engine import Dreamer, DreamSettings, Octave
from dreamreel.engine.objectives import layer
from dreamreel.engine.transforms import Warp, compose, jitter, random_rotate, random_scale, standard_transforms


def _smooth(h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_warps_are_seeded_and_invertible():
    t = standard_transforms(16, 0.15, 10, 4)
    a, b = t(torch.Generator().manual_seed(3)), t(torch.Generator().manual_seed(3))
    assert a == b and a != t(torch.Generator().manual_seed(4))
    ident = a.then(a.inverse())
    assert np.allclose(ident.a, (1, 0, 0, 1), atol=1e-12) and np.allclose(ident.t, (0, 0), atol=1e-9)
    x = _smooth()
    back = a.inverse().apply(a.apply(x))
    inner = (slice(None), slice(None), slice(16, -16), slice(16, -16))  # away from the reflected border
    assert (back - x)[inner].abs().mean().item() < 0.01
    assert (a.apply(x) - x)[inner].abs().mean().item() > 0.02  # it did move


def test_an_integer_jitter_warp_is_a_shift_and_compose_multiplies():
    x = _smooth()
    shifted = Warp(t=(3.0, 0.0)).apply(x)
    assert torch.allclose(shifted[..., 3:], x[..., :-3], atol=1e-5)
    g = torch.Generator().manual_seed(0)
    w = compose(random_scale([1.1]), random_rotate([90.0]), jitter(0))(g)
    assert np.allclose(w.a, (0.0, -1.1, 1.1, 0.0), atol=1e-12)


def test_robust_steps_are_deterministic_with_a_seed_and_a_few_views_reach_every_pixel(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block5").bind(spec))
    s = DreamSettings((Octave((64, 48), 3, (0.03, 0.03)),), jitter=8, scale=0.15, rotate=10, lapnorm=3, color="decorrelated")
    x = _smooth(48, 64)
    a = d.dream(x, s, generator=torch.Generator().manual_seed(1)).image
    b = d.dream(x, s, generator=torch.Generator().manual_seed(1)).image
    c = d.dream(x, s, generator=torch.Generator().manual_seed(2)).image
    assert torch.equal(a, b) and not torch.equal(a, c)
    gen = torch.Generator().manual_seed(0)
    g = sum(d.gradient(x, warp=standard_transforms(8, 0.15, 10)(gen))[0].abs() for _ in range(8))  # a few steps' views
    plain, _, _ = d.gradient(x)
    cover = lambda t: (t.abs().sum(dim=1) > 0).float().mean().item()  # noqa: E731
    assert g.shape == x.shape and cover(g) >= 0.95 * cover(plain) > 0.5
    assert not torch.allclose(g, plain)


def test_lapnorm_balances_the_bands_of_a_fine_dominated_gradient():
    g = torch.Generator().manual_seed(0)
    fine = torch.randn(1, 3, 64, 64, generator=g)  # white noise: nearly all energy in the finest band
    coarse = torch.nn.functional.interpolate(torch.randn(1, 3, 8, 8, generator=g), size=(64, 64), mode="bilinear")
    grad = 10 * fine + 0.1 * coarse
    bands = laplacian_split(grad, 4)
    assert torch.allclose(laplacian_merge(bands), grad, atol=1e-4)  # the pyramid is exact
    rms = lambda t: [b.pow(2).mean().sqrt().item() for b in laplacian_split(t, 4)]  # noqa: E731
    before, after = rms(grad), rms(lapnorm(grad, 4))
    assert max(before) / min(before) > 10
    assert max(after) / min(after) < 3


def test_decorrelated_step_damps_chroma_and_luminance_step_changes_no_colour():
    g = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    grey = g.mean(dim=1, keepdim=True)
    chroma = lambda t: (t - t.mean(dim=1, keepdim=True)).pow(2).mean().item()  # noqa: E731
    d = color_gradient(g, "decorrelated")
    assert chroma(d) / d.pow(2).mean().item() < 0.5 * chroma(g) / g.pow(2).mean().item()
    lum = color_gradient(g, "luminance")
    assert chroma(lum) < 1e-12 and torch.allclose(lum[:, :1], grey)
    assert torch.equal(color_gradient(g, "rgb"), g)


@pytest.mark.parametrize("space", ["rgb", "decorrelated"])
def test_match_color_gives_the_reference_channel_means_and_stds(space):
    ref_img = _smooth(seed=1) * 0.5 + 0.25
    img = (_smooth(seed=2) * 0.3 + torch.tensor([0.5, 0.1, 0.3]).view(1, 3, 1, 1)).clamp(0, 1)
    out = match_color(img, color_stats(ref_img, space), space)
    m, s = color_stats(out, space)
    rm, rs = color_stats(ref_img, space)
    assert torch.allclose(m, rm, atol=0.01) and torch.allclose(s, rs, rtol=0.05)
    assert torch.equal(match_color(img, color_stats(ref_img, "rgb"), "none"), img)


def test_overlay_with_a_legend_keeps_the_frame_size_and_draws_the_scale():
    img = np.full((120, 160, 3), 128, np.uint8)
    heat = np.linspace(0, 1, 16 * 12).reshape(12, 16)
    out = draw.overlay_frame(img, heat, value_range=(0.0, 1.0), caption="frame 1", legend="block13 mean activation")
    assert out.shape == img.shape
    plain = draw.overlay_frame(img, heat, value_range=(0.0, 1.0))
    top_right = (slice(0, 30), slice(100, 160))
    assert np.abs(out[top_right].astype(int) - plain[top_right]).mean() > 10  # the scale is drawn there
    assert np.array_equal(out[40:80, 10:60], plain[40:80, 10:60])  # and nowhere in the middle


def test_zoom_keeps_contrast_and_colour_of_its_first_frames(tmp_path, data_dir):
    out = tmp_path / "z"
    code = main(["zoom", str(data_dir / "coffee.png"), "-o", str(out) + "/", "--frames", "30", "--size", "64",
                 "--first-octaves", "1", "--steps", "2", "-q"])
    assert code == 0
    frames = [f.astype(np.float32) for f in read_frames(out)]
    assert len(frames) == 30
    std = [f.std() for f in frames]
    mean = [f.mean(axis=(0, 1)) for f in frames]
    assert abs(std[-1] / std[9] - 1) <= 0.25
    assert np.all(np.abs(mean[-1] - mean[9]) <= 20)
    assert np.abs(frames[-1] - frames[-2]).mean() > 1.0  # still moving and dreaming


def test_zoom_without_colour_matching_is_still_available(tmp_path, data_dir):
    out = tmp_path / "z"
    code = main(["zoom", str(data_dir / "coffee.png"), "-o", str(out) + "/", "--frames", "3", "--size", "64",
                 "--first-octaves", "1", "--steps", "1", "--color-match", "none", "-q"])
    assert code == 0 and len(list(read_frames(out))) == 3
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(tmp_path / "y/"), "--color-match", "lab", "-q"]) == 2
