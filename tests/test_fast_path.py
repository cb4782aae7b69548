"""The speed work: batching equals single runs, the fast-path choice per device, no extra passes."""

import pytest
import torch

from dreamreel.engine import fastpath
from dreamreel.engine import Dreamer, DreamSettings, Octave, octave_sizes
from dreamreel.engine.objectives import layer, target


def _settings():
    return DreamSettings(tuple(Octave(s, 3, (0.02, 0.01), (0.5, 0.25)) for s in octave_sizes((56, 40), 2)), jitter=4)


def test_a_batch_of_two_equals_two_single_runs(lite0, coffee):
    spec, model = lite0
    objective = (layer("block7") + 0.5 * target("espresso")).bind(spec)
    d = Dreamer(model, objective, precision="fp32")
    a = torch.nn.functional.interpolate(coffee, size=(40, 56), mode="bilinear", antialias=True)
    b = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    singles = [d.dream(img, _settings(), generator=torch.Generator().manual_seed(7)) for img in (a, b)]
    batch = d.dream_batch(torch.cat([a, b]), _settings(), generator=torch.Generator().manual_seed(7))
    assert len(batch) == 2
    for one, many in zip(singles, batch):
        assert many.image.shape == (1, 3, 40, 56)
        assert torch.allclose(one.image, many.image, atol=1e-4)
        for o1, o2 in zip(one.octaves, many.octaves):
            assert o2.objective_start == pytest.approx(o1.objective_start, rel=1e-4)
            assert o2.objective_end == pytest.approx(o1.objective_end, rel=1e-4)
        assert many.target_probability == pytest.approx(one.target_probability, rel=1e-3)
    # the two images really differ, so a batch that mixed them up would fail above
    assert not torch.allclose(singles[0].image, singles[1].image, atol=1e-2)


def test_a_still_runs_one_forward_per_step_plus_one_for_the_output(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block4").bind(spec))
    calls = []
    hook = model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        d.dream(torch.rand(1, 3, 40, 56), _settings(), evaluate_end=True)
        with_eval = len(calls)
        calls.clear()
        d.dream(torch.rand(1, 3, 40, 56), _settings(), evaluate_end=False)
    finally:
        hook.remove()
    assert with_eval == 6 + 1  # 2 octaves x 3 steps, and one measurement of the output
    assert len(calls) == 6


@pytest.mark.parametrize("device, amx, grouped, precision, expect", [
    ("cpu", True, False, "auto", "bfloat16"),   # GoogLeNet/InceptionV3 on an AMX CPU
    ("cpu", True, True, "auto", None),          # depthwise convs: bf16 measured slower
    ("cpu", False, False, "auto", None),        # no AMX: bf16 would be emulated
    ("cpu", False, False, "bf16", "bfloat16"),  # asked for
    ("cuda", False, True, "auto", "bfloat16"),
    ("cuda", False, False, "fp32", None),
    ("mps", False, False, "auto", None),
])
def test_precision_choice_per_device(device, amx, grouped, precision, expect):
    path = fastpath.choose(device, precision, amx=amx, grouped_convs=grouped)
    assert path.autocast_dtype == expect
    assert path.channels_last == (device in ("cpu", "cuda"))


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        fastpath.choose("cpu", "fp16")


def test_dreamer_on_the_cpu_runs_channels_last_and_keeps_the_image_fp32(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block4").bind(spec))
    assert d.path.channels_last and d.path.autocast_dtype is None  # lite0 has depthwise convs
    out = d.dream(torch.rand(1, 3, 40, 56), _settings()).image
    assert out.dtype == torch.float32 and out.shape == (1, 3, 40, 56)


def test_bf16_gradient_points_the_same_way_as_fp32(lite0):
    spec, model = lite0
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    g32, v32, _ = Dreamer(model, layer("block10").bind(spec), precision="fp32").gradient(x)
    g16, v16, _ = Dreamer(model, layer("block10").bind(spec), precision="bf16").gradient(x)
    assert g16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), 0) > 0.9
    assert float(v16) == pytest.approx(float(v32), rel=0.05)


def test_the_written_down_layer_channels_match_a_shape_pass():
    from dreamreel.models import list_models
    from dreamreel.models.channels import LAYER_CHANNELS

    for spec in list_models():
        if spec.name.startswith("vgg"):
            continue  # building VGG on the meta device alone takes 2 s; its table comes from the same pass
        assert LAYER_CHANNELS[spec.name] == spec.measure_layer_channels(), spec.name
    assert {s.name for s in list_models()} <= set(LAYER_CHANNELS)
