"""Watching a render: --preview is rewritten atomically with the latest frame and its number; --draft is the same
job at a quarter of the pixels with one step per frame, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.render.preview import PreviewRecorder

TINY = ["--size", "64", "--first-octaves", "1", "--steps", "1", "-q"]


def test_preview_is_rewritten_every_k_frames_with_the_frame_and_its_number(tmp_path):
    path = tmp_path / "p.png"
    frames = [np.full((40, 60, 3), 30 * k, np.uint8) for k in range(5)]
    seen = []
    with PreviewRecorder(path, every=2) as rec:
        for k, frame in enumerate(frames):
            rec.frame_done(frame, k)
            seen.append(iio.imread(path).copy() if path.exists() else None)
    final = iio.imread(path)
    assert seen[0] is None and seen[1] is not None and rec.writes == 3  # after frames 2 and 4, then the last (5)
    assert np.array_equal(seen[1], seen[2]) and not np.array_equal(seen[2], seen[3])
    assert np.array_equal(seen[1][:40, :60], frames[1]) and np.array_equal(final[:40, :60], frames[4])
    assert final.shape[0] > 40 and not np.array_equal(seen[1][40:], seen[3][40:])  # the number, in a strip below
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # no temporary left beside it


def test_zoom_preview_shows_the_last_frame_of_the_render(tmp_path, data_dir):
    out, preview = tmp_path / "z", tmp_path / "watch.jpg"
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out) + "/", "--frames", "5", "--preview",
                 str(preview), "--preview-every", "2", *TINY]) == 0
    last = iio.imread(out / "frame_000004.png")
    shown = iio.imread(preview)
    h, w = last.shape[:2]
    assert shown.shape[1] >= w and np.abs(shown[:h, :w].astype(float) - last).mean() < 4  # a JPEG of the last frame


@pytest.mark.parametrize("name, words", [("p.gif", "the preview is an image"), ("in.png", "would overwrite the input"),
                                         ("in.png/p.jpg", "is a file, not a folder")])
def test_a_bad_preview_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys, name, words):
    import shutil

    pic = tmp_path / "in.png"
    shutil.copy(data_dir / "chelsea.png", pic)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "o.mp4"
    for dry in ([], ["--dry-run"]):
        assert main(["zoom", str(pic), "-o", str(out), "--preview", str(tmp_path / name), *TINY, *dry]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_video_preview_and_segments_are_refused_together(tmp_path, data_dir, capsys):
    out = tmp_path / "o.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--segments", "2", "--preview",
                 str(tmp_path / "p.jpg"), "-q"]) == 2
    assert "--preview does not work with --segments" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _work(side: dict) -> float:
    """Pixels x steps of a render, from its sidecar (first frame included)."""
    per = side["per_frame"]
    if side["command"] == "zoom":
        first = side["first_frame_octaves"]
        size = side["frame_octaves"][-1]
        return per[0]["steps"] / len(first) * sum(w * h for w, h in first) + sum(r["steps"] for r in per[1:]) * size[0] * size[1]
    w, h = side["size"]
    return sum(r["passes"] * sum(o["steps"] for o in side["frame_octaves"]) for r in per) * w * h


@pytest.mark.parametrize("command", ["zoom", "video"])
def test_draft_is_half_each_side_one_step_a_frame_and_says_so(tmp_path, data_dir, command):
    src = data_dir / ("chelsea.png" if command == "zoom" else "realshort.mp4")
    extra = ["--frames", "4", "--shift", "4,2"] if command == "zoom" else ["--end", "0.3"]
    sides = {}
    for name, flag in (("full", []), ("draft", ["--draft"])):
        out = tmp_path / f"{name}.mp4"
        assert main([command, str(src), "-o", str(out), "--size", "128", *extra, *flag, "-q"]) == 0
        sides[name] = json.loads(out.with_suffix(".json").read_text())
    full, draft = sides["full"], sides["draft"]
    assert draft["draft"] is True and "draft" not in full
    if command == "zoom":
        assert draft["frame_octaves"] == [[64, 42]] and full["frame_octaves"] == [[128, 85]]
        assert [r["steps"] for r in draft["per_frame"]] == [1, 1, 1, 1]
        assert [r["shift"] for r in draft["per_frame"][1:]] == [[2.0, 1.0]] * 3  # the same motion at half the size
    else:
        assert draft["size"] == [64, 48] and full["size"] == [128, 96]
        assert [o["steps"] for o in draft["frame_octaves"]] == [1]
    assert _work(draft) < _work(full) / 3


def test_draft_dry_run_says_it_is_a_draft(tmp_path, data_dir, capsys):
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(tmp_path / "o.mp4"), "--draft", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "draft" in out and "226x150" in out  # chelsea.png is 451x300
    assert list(Path(tmp_path).iterdir()) == []


def test_a_draft_below_the_models_size_is_one_line(tmp_path, data_dir, capsys):
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(tmp_path / "o.mp4"), "--size", "48", "--draft",
                 "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--draft halves 48x32 to 24x16" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
