"""The GPU path's CPU-checkable half: the compiled step equals eager, and the step loop never reads the device."""

import copy

import pytest
import torch

from dreamreel.engine import Dreamer, DreamSettings, Octave, compiled, fastpath, octave_sizes
from dreamreel.engine.objectives import layer, target


def _settings(size=(64, 48), steps=3, **kw):
    return DreamSettings(tuple(Octave(s, steps, (0.02, 0.01), (0.5, 0.25)) for s in octave_sizes(size, 2)), jitter=4, **kw)


def test_the_compiled_step_equals_the_eager_step(lite0, coffee):
    """aot_eager (dynamo's trace of the forward, AOTAutograd's traced backward) rather than inductor: inductor
    needs 30-150 s of C++ compilation per model on this 2-core machine; the CUDA tests and the benchmark run it."""
    from torch._dynamo.backends.common import aot_autograd
    from functorch.compile import make_boxed_func

    graphs = []

    def counting(gm, example_inputs):
        graphs.append(tuple(example_inputs[0].shape) if example_inputs else ())
        return make_boxed_func(gm.forward)

    spec, model = lite0
    objective = (layer("block4") + 0.5 * target("espresso")).bind(spec)
    x = torch.nn.functional.interpolate(coffee, size=(48, 64), mode="bilinear", antialias=True)
    eager = Dreamer(model, objective, precision="fp32", compile="off")
    fast = Dreamer(model, objective, precision="fp32", compile="on",
                   compile_backend=aot_autograd(fw_compiler=counting, bw_compiler=counting))
    assert fast.path.compiled and not eager.path.compiled and fast.forward is not fast.model
    a = eager.dream(x, _settings(), generator=torch.Generator().manual_seed(5))
    b = fast.dream(x, _settings(), generator=torch.Generator().manual_seed(5))
    assert len(graphs) >= 4  # a forward and a backward graph for each of the two octave shapes (and the end's forward)
    assert torch.allclose(a.image, b.image, atol=1e-5)
    assert (a.image - x).abs().mean() > 0.01  # the dream changed the image, so equal means equal steps
    for oa, ob in zip(a.octaves, b.octaves):
        assert ob.objective_end == pytest.approx(oa.objective_end, rel=1e-4, abs=1e-6)
    assert b.target_probability == pytest.approx(a.target_probability, rel=1e-4)
    n = len(graphs)
    fast.dream(x, _settings(), generator=torch.Generator().manual_seed(6))
    assert len(graphs) == n  # the same shapes again: nothing recompiled


@pytest.mark.parametrize("device, choice, expect", [
    ("cuda", "auto", True), ("cpu", "auto", False), ("mps", "auto", False), ("cpu", "on", True), ("cuda", "off", False),
])
def test_the_step_is_compiled_by_default_on_cuda_only(device, choice, expect):
    assert fastpath.choose(device, compile=choice, amx=False).compiled is expect
    assert ("compiled" in fastpath.choose(device, compile=choice, amx=False).describe()) is expect


def test_an_unknown_compile_choice_is_refused():
    with pytest.raises(ValueError, match="compile"):
        compiled.wanted("cuda", "yes")


@pytest.mark.parametrize("kw, batch", [
    ({}, 1),
    ({}, 2),
    ({"scale": 0.1, "rotate": 5.0, "lapnorm": 4, "color": "decorrelated"}, 1),
    ({"tile": 64, "tile_overlap": 16}, 1),
])
def test_the_step_loop_reads_nothing_back_from_the_device(lite0, kw, batch):
    """The engine on the meta device, which holds no data: any host read of a device value (``.item()``,
    ``float(t)``, ``bool(t)``, ``.cpu()``, ``.tolist()``, printing, ``nonzero``) raises there. Every step runs;
    the first read is the one summary copy after the last octave. On CUDA, test_cuda.py checks the same under
    ``torch.cuda.set_sync_debug_mode("error")``."""
    spec, model = lite0
    d = Dreamer(copy.deepcopy(model), layer("block5").bind(spec), "meta")  # a copy: .to("meta") empties the module
    steps = []
    with pytest.raises(NotImplementedError, match="meta") as info:
        d.dream(torch.rand(batch, 3, 96, 128), _settings((128, 96), **kw), progress=steps.append, evaluate_end=False)
    assert len(steps) == 2 * 3  # both octaves' steps ran before the first host read
    assert info.traceback[-1].name == "_results" and ".cpu()" in str(info.traceback[-1].statement)  # the summary
