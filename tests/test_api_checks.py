"""The Python verbs check what they are given: every keyword against the verb (refused, never dropped), every
array (shape, dtype, range, finiteness) before any work."""

from __future__ import annotations

import numpy as np
import pytest

import dreamreel
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
