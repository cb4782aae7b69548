import csv
import json

import numpy as np
import pytest
import torch

from dreamreel.cli.commands import main
from dreamreel.io.outputs import read_frames
from dreamreel.engine import Dreamer, DreamSettings, Octave
from dreamreel.engine.objectives import layer
from dreamreel.render.activations import ActivationRecorder, max_step_jump, summarize


def test_activation_video_csv_and_summary_from_one_dream(tmp_path, data_dir):
    code = main(["dream", str(data_dir / "coffee.png"), "-o", str(tmp_path / "a.png"), "--size", "128", "--octaves", "2",
                 "--steps", "4", "--activations", str(tmp_path / "a.mp4"), "--seed", "1", "-q"])
    assert code == 0
    frames = list(read_frames(tmp_path / "a.mp4"))
    assert len(frames) >= 8
    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "octave", "layer", "feature", "mean_activation"]
    features: dict[str, set] = {}
    for r in rows:
        features.setdefault(r["layer"], set()).add(int(r["feature"]))
    # the default objective's two layers (block10@0.5 + block13), every feature of each at every step
    assert {k: len(v) for k, v in features.items()} == {"block10": 112, "block13": 192}
    assert len(rows) == 8 * (112 + 192)
    assert {int(r["step"]) for r in rows} == set(range(8)) and {r["octave"] for r in rows} == {"0", "1"}
    summary = json.loads((tmp_path / "a.json").read_text())["activations"]
    layer_summary = summary["layers"]["block13"]  # the default objective's deepest layer
    assert layer_summary["rose_over_10pct"] + layer_summary["did_not"] == 192
    assert 0.0 <= summary["objective_max_step_jump"] <= 1.0


def test_recorded_means_are_the_step_activations_channel_means(lite0):
    spec, model = lite0
    d = Dreamer(model, layer("block5").bind(spec))

    class Engine:
        objective, dreamer = d.objective, d

    Engine.spec = spec
    rec = ActivationRecorder()
    settings = DreamSettings((Octave((48, 48), 3, (0.02, 0.02)),))
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    rec.begin(x, settings, Engine)
    seen = []
    d.dream(x, settings, callback=lambda s: (seen.append(s.activations["block5"].mean(dim=(0, 2, 3))), rec.on_step(s)))
    assert len(rec.means["block5"]) == 3
    for a, b in zip(rec.means["block5"], seen):
        assert torch.allclose(a, b)


def test_summary_counts_features_that_rose_by_more_than_ten_percent():
    means = {"L": np.array([[1.0, 1.0, -2.0, 5.0], [1.2, 1.05, -1.5, 4.0]])}
    s = summarize(means, np.array([1.0, 2.0]), [0, 0])
    # +20% rose; +5% did not; -2 -> -1.5 is +25% of |start|: rose; 5 -> 4 fell
    assert s["layers"]["L"] == {"features": 4, "rose_over_10pct": 2, "did_not": 2}


def test_step_jump_is_small_for_a_smooth_climb_and_large_for_a_jump():
    smooth = np.linspace(0, 1, 50)
    jumpy = np.r_[np.zeros(25), np.ones(25)]
    assert max_step_jump(smooth, [0] * 50) == pytest.approx(1 / 49)
    assert max_step_jump(jumpy, [0] * 50) == pytest.approx(1.0)
    # a jump across an octave boundary (the image grew) does not count
    assert max_step_jump(jumpy, [0] * 25 + [1] * 25) == 0.0


def test_class_target_activation_video_tracks_the_probability(tmp_path, data_dir):
    code = main(["dream", str(data_dir / "chelsea.png"), "-o", str(tmp_path / "t.png"), "--size", "96", "--octaves", "1",
                 "--steps", "6", "--target", "junco", "--sigma", "0", "--jitter", "0", "--activations",
                 str(tmp_path / "t.gif"), "--overlay", str(tmp_path / "o.gif"), "--layer", "block7@0", "-q"])
    assert code == 0
    summary = json.loads((tmp_path / "t.json").read_text())["activations"]
    assert "target_probability_max_step_jump" in summary
    assert len(list(read_frames(tmp_path / "t.gif"))) == 6
    assert len(list(read_frames(tmp_path / "o.gif"))) == 6
