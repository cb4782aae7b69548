"""Deflicker: the residual's temporal filter along the flow steadies the still parts of a dreamt clip without
weakening the dream; bad values are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io.readers import iter_frames
from dreamreel.io.outputs import read_frames
from dreamreel.render.flow import clip_flow, still_change, still_masks

from mediautil import write_clip


def _patch_clip(path, data_dir):
    """A still photo with a small patch crossing it at 1 px a frame."""
    import imageio.v3 as iio

    still = iio.imread(data_dir / "coffee.png")[..., :3][::4, ::4]
    patch = iio.imread(data_dir / "chelsea.png")[..., :3][100:120, 200:220]
    frames = []
    for k in range(14):
        f = still.copy()
        f[30:50, 20 + k:40 + k] = patch
        frames.append(f)
    return write_clip(path, frames, fps=12, quality=10)


@pytest.mark.parametrize("which", ["realshort", "patch"])
def test_deflicker_halves_the_still_regions_change_at_the_same_strength(tmp_path, data_dir, which):
    src = data_dir / "realshort.mp4" if which == "realshort" else _patch_clip(tmp_path / "patch.mp4", data_dir)
    size, end = ("80", "0.5") if which == "realshort" else ("100", "10")
    source = list(iter_frames(src, end=float(end), size=(80, 60) if which == "realshort" else (100, 67)))
    still = still_masks(source, clip_flow(source))
    base = still_change(source, still)
    got = {}
    for strength in ("0", "0.6"):
        out = tmp_path / f"d{strength}"
        assert main(["video", str(src), "-o", str(out) + "/", "--size", size, "--end", end, "--deflicker", strength,
                     "--seed", "1", "-q"]) == 0
        frames = list(read_frames(out))
        assert len(frames) == len(source)
        got[strength] = (still_change(frames, still) - base,
                         float(np.mean([np.abs(f.astype(np.float32) - s).mean() for f, s in zip(frames, source)])))
    (off, strength_off), (on, strength_on) = got["0"], got["0.6"]
    assert sum(m.sum() for m in still) > 0.2 * sum(m.size for m in still)  # the clip has still regions
    assert on <= 0.5 * off, got
    assert strength_on == pytest.approx(strength_off, rel=0.10), got


def test_deflicker_is_on_by_default_with_a_flow_and_recorded(tmp_path, data_dir):
    import json

    out = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--size", "48", "--end", "0.2", "-q"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["deflicker"] == 0.6
    out = tmp_path / "n.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--size", "48", "--end", "0.2",
                 "--flow", "none", "--steps", "1", "-q"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["deflicker"] == 0.0


@pytest.mark.parametrize("extra, words", [
    (["--deflicker", "1.5"], "--deflicker"),
    (["--deflicker", "nan"], "--deflicker"),
    (["--deflicker", "0.5", "--flow", "none"], "--flow none"),
])
def test_bad_deflicker_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys, extra, words):
    out = tmp_path / "o.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--size", "48", *extra, "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamreel: error: ") and words in lines[0], lines
    assert list(tmp_path.iterdir()) == []
