"""The Python verbs, called as the README shows them (tiny sizes), with the CLI's defaults."""

import json

import numpy as np

import dreamreel
from dreamreel.io.readers import probe_video
from dreamreel.options import OPTION_KEYS, VIDEO_DEFAULTS, ZOOM_DEFAULTS


def test_dream_a_still_to_an_array_with_the_dream_defaults(data_dir):
    still = dreamreel.dream(data_dir / "coffee.png", size=64, octaves=1, steps=2)
    assert still.dtype == np.uint8 and max(still.shape[:2]) == 64 and still.shape[2] == 3
    p = dreamreel.prepare_still(data_dir / "coffee.png")
    assert p.plan.steps == OPTION_KEYS["steps"].default and p.plan.octaves == OPTION_KEYS["octaves"].default


def test_zoom_yields_frames_without_writing_and_uses_the_zoom_defaults(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = list(dreamreel.zoom(data_dir / "coffee.png", frames=5, size=48, first_octaves=1, steps=1))
    assert len(frames) == 5 and all(max(f.shape[:2]) == 48 and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[4])
    assert list(tmp_path.iterdir()) == []
    p = dreamreel.prepare_zoom(data_dir / "coffee.png")
    assert p.plan.octaves == ZOOM_DEFAULTS["octaves"] and p.plan.steps == ZOOM_DEFAULTS["steps"]
    assert p.job.frames == 48 and p.job.fps == 12.0


def test_write_zoom_mp4_and_sidecar(data_dir, tmp_path):
    out = tmp_path / "zoom.mp4"
    result = dreamreel.write_zoom(data_dir / "coffee.png", out, frames=4, size=48, first_octaves=1, steps=1)
    assert result.frames == 4 and out.is_file()
    assert json.loads(out.with_suffix(".json").read_text())["frames"] == 4


def test_write_clip_keeps_the_audio_with_the_video_defaults(data_dir, tmp_path):
    out = tmp_path / "dreamt.mp4"
    fps = probe_video(data_dir / "realshort.mp4").fps
    result = dreamreel.write_clip(data_dir / "realshort.mp4", out, end=6 / fps, size=48)
    info = probe_video(out)
    assert result.frames == 6 and info.n_frames == 6 and info.has_audio
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["parameters"]["steps"] == VIDEO_DEFAULTS["steps"] and side["audio"] is True


def test_dream_takes_an_array_and_rejects_unknown_options(data_dir):
    import pytest

    rng = np.random.default_rng(0)
    still = dreamreel.dream(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), octaves=1, steps=1)
    assert still.shape == (40, 56, 3)
    with pytest.raises(dreamreel.DreamError, match="did you mean 'steps'"):
        dreamreel.dream(data_dir / "coffee.png", stepz=1)
