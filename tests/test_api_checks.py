"""The Python verbs check what they are given: every keyword against the verb (refused, never dropped), every
array (shape, dtype, range, finiteness) before any work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dreamreel
from dreamreel.io.images import image_array
from dreamreel.options import COMMAND_OPTIONS, OPTIONS, command_keys

TINY = dict(size=64, octaves=1, steps=1)


@pytest.mark.parametrize("verb, key, value, words", [
    ("dream", "frames", 3, "dream() takes no frames= keyword (an option of zoom())"),
    ("dream", "blend", 0.5, "dream() takes no blend= keyword (an option of clip())"),
    ("dream", "progress", "p.mp4", "dream() returns arrays and writes nothing, so it cannot honour progress="),
    ("dream", "activations", "a.mp4", "cannot honour activations="),
    ("zoom", "progress", "p.mp4", "zoom() returns arrays and writes nothing, so it cannot honour progress="),
    ("zoom", "crf", 20, "cannot honour crf="),
    ("zoom", "blend", 0.5, "zoom() takes no blend="),
    ("clip", "overlay", "o.mp4", "clip() returns arrays and writes nothing, so it cannot honour overlay="),
    ("clip", "frames", 3, "clip() takes no frames= keyword (an option of zoom())"),
    ("write_dream", "frames", 3, "write_dream() takes no frames= keyword"),
    ("write_dream", "jobs", 2, "a batch option"),
    ("write_zoom", "activations", "a.mp4", "write_zoom() takes no activations= keyword (an option of dream())"),
    ("write_clip", "progress", "p.mp4", "write_clip() takes no progress= keyword (an option of dream() and zoom())"),
])
def test_a_keyword_the_verb_cannot_honour_is_refused(verb, key, value, words, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = data_dir / ("realshort.mp4" if "clip" in verb else "chelsea.png")
    out = {"write_dream": ["o.png"], "write_zoom": ["o.mp4"], "write_clip": ["o.mp4"]}.get(verb, [])
    with pytest.raises(dreamreel.DreamError) as exc:
        result = getattr(dreamreel, verb)(source, *out, **TINY, **{key: value})
        list(result) if verb in ("zoom", "clip") else None
    assert words in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_every_verb_takes_exactly_its_commands_flags():
    """The Python keywords and the CLI's flags come from one table (COMMAND_OPTIONS)."""
    from dreamreel.cli.commands import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in COMMAND_OPTIONS:
        flags = {a.dest for a in sub[command]._actions} & {o.key for o in OPTIONS}
        assert flags == command_keys(command), command
    assert "progress" not in command_keys("dream", writes=False) and "frames" in command_keys("zoom", writes=False)


Z = np.zeros((40, 56, 3))
BAD_ARRAYS = [
    (Z + 200.0, "float64 array of shape (40, 56, 3): its values run from 200 to 200, outside [0, 1]", "divide it by 255"),
    (torch.full((3, 40, 56), 255.0), "float32 tensor of shape (3, 40, 56): its values run from 255", "divide it by 255"),
    (Z.astype(np.int64), "int64 array of shape (40, 56, 3): int64 values are not accepted", "uint8 or uint16"),
    (Z * np.nan, "it holds NaN or infinite values", "floats in [0, 1]"),
    (np.full((40, 56), np.inf, np.float32), "it holds NaN or infinite values", "HxW, HxWx3 or HxWx4"),
    (Z.astype(object), "object array of shape (40, 56, 3): object values are not accepted", "uint8"),
    (np.zeros((40, 56, 5), np.uint8), "uint8 array of shape (40, 56, 5): it has 5 channels", "HxWx4"),
    (torch.zeros(2, 3, 40, 56), "float32 tensor of shape (2, 3, 40, 56): a batch of 2 images", "one image at a time"),
    (np.zeros((0, 0, 3), np.uint8), "uint8 array of shape (0, 0, 3): it is empty", "HxW"),
    (torch.zeros(1, 4, 40, 56), "it is not (3,H,W) or (1,3,H,W)", "tensor"),
    (np.zeros(5), "it is not HxW, HxWx3 or HxWx4", "HxW"),
    (Z - 0.5, "values run from -0.5 to -0.5", "scale it to [0, 1]"),
]


@pytest.mark.parametrize("array, words, hint", BAD_ARRAYS, ids=range(len(BAD_ARRAYS)))
@pytest.mark.parametrize("verb", ["dream", "zoom"])
def test_an_array_that_is_not_an_image_is_refused_saying_what_was_given(verb, array, words, hint):
    with pytest.raises(dreamreel.DreamError) as exc:
        getattr(dreamreel, verb)(array, **TINY)
    assert words in exc.value.message and hint in exc.value.hint and len(str(exc.value)) < 200, str(exc.value)


def test_accepted_arrays_are_read_on_one_scale():
    """A mid-grey in every accepted form reads as the same float image."""
    forms = [np.full((4, 6, 3), 128, np.uint8), np.full((4, 6), 128, np.uint8),
             np.full((4, 6, 3), 128 * 257, np.uint16), np.full((4, 6, 3), 128 / 255, np.float64),
             np.dstack([np.full((4, 6, 3), 128, np.uint8), np.full((4, 6), 255, np.uint8)]),
             torch.full((3, 4, 6), 128 / 255), torch.full((1, 3, 4, 6), 128, dtype=torch.uint8),
             torch.full((3, 4, 6), 128 / 255, dtype=torch.bfloat16)]
    for a in forms:
        rgb = image_array(a)
        assert rgb.shape == (4, 6, 3) and rgb.dtype == np.float32
        np.testing.assert_allclose(rgb, 128 / 255, atol=2e-3)


def test_a_float_tensor_in_0_1_dreams_like_the_same_uint8_array():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    a = dreamreel.dream(u8, **TINY)
    b = dreamreel.dream(torch.from_numpy(u8).permute(2, 0, 1).float() / 255, **TINY)
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1
