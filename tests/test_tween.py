"""In-between frames (--interpolate N): counts, rates and audio of the files, where in-betweens put the content,
how sharp they are, and what resume and bad input do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io import ffmpeg
from dreamreel.io.outputs import count_frames, read_frames
from dreamreel.render import tween

from mediautil import write_clip

TINY = ["--size", "64", "--first-octaves", "1", "--steps", "1", "-q"]
STILL = ["--lr", "0", "--sigma", "0", "--jitter", "0", "--view-scale", "0", "--view-rotate", "0"]  # frames unchanged


def _median_change(frames) -> float:
    return float(np.median([np.abs(b.astype(np.float32) - a).mean() for a, b in zip(frames, frames[1:])]))


def _audio_seconds(path: Path, tmp: Path) -> float:
    track = tmp / f"{path.stem}.audio.mka"
    assert ffmpeg.run(["-y", "-i", str(path), "-map", "0:a:0", "-c", "copy", str(track)]).returncode == 0
    return ffmpeg.probe(track)["duration"]


def _square_centre(frame: np.ndarray) -> float:
    """x of the bright square's centroid."""
    bright = frame.astype(np.float32).mean(axis=2) > 128
    return float(np.nonzero(bright)[1].mean())


def _square_frame(x: int, w: int = 96, h: int = 64) -> np.ndarray:
    frame = np.full((h, w, 3), 40, np.uint8)
    frame[24:40, x:x + 16] = 230
    return frame


def test_inbetween_puts_a_shifted_square_half_way():
    a, b = _square_frame(20), _square_frame(28)
    h, w = a.shape[:2]
    f_ab = np.zeros((h, w, 2), np.float32)
    f_ab[..., 0] = 8.0
    mid = tween.inbetween(a, b, f_ab, -f_ab, 0.5)
    assert _square_centre(a) + 4 == pytest.approx(_square_centre(mid), abs=0.3)
    quarter = tween.inbetween(a, b, f_ab, -f_ab, 0.25)
    assert _square_centre(a) + 2 == pytest.approx(_square_centre(quarter), abs=0.3)


def test_video_inbetweens_follow_the_flow_of_a_moving_square(tmp_path):
    """A real clip through the CLI (the dream switched off): the in-between's square is half-way along."""
    src = write_clip(tmp_path / "sq.mp4", [_square_frame(12 + 6 * k) for k in range(6)], fps=10, quality=10)
    out = tmp_path / "o"
    assert main(["video", str(src), "-o", str(out) + "/", "--interpolate", "2", *STILL, "--deflicker", "0", "-q"]) == 0
    frames = list(read_frames(out))
    assert len(frames) == 12
    for k in range(1, 5):  # the in-between after dreamt frame k lies half-way to frame k + 1
        before, mid, after = (_square_centre(frames[i]) for i in (2 * k, 2 * k + 1, 2 * k + 2))
        assert after - before == pytest.approx(6, abs=0.5)
        assert mid == pytest.approx((before + after) / 2, abs=0.5)


def test_zoom_inbetweens_follow_the_motion(tmp_path):
    pic = tmp_path / "sq.png"
    import imageio.v3 as iio

    iio.imwrite(pic, _square_frame(20))
    out = tmp_path / "z"
    assert main(["zoom", str(pic), "-o", str(out) + "/", "--size", "96", "--frames", "4", "--zoom", "1",
                 "--shift", "6,0", "--interpolate", "3", "--first-octaves", "1", "--color-match", "none",
                 *STILL, "-q"]) == 0
    frames = list(read_frames(out))
    assert len(frames) == 12
    xs = [_square_centre(f) for f in frames[:10]]
    assert np.diff(xs) == pytest.approx(np.full(9, 2.0), abs=0.35)  # 6 px per dreamt frame, in steps of a third


def test_zoom_interpolate_4_multiplies_frames_and_fps_and_keeps_the_duration(tmp_path, data_dir):
    track = tmp_path / "t.wav"
    assert ffmpeg.run(["-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(track)]).returncode == 0
    plain, inter = tmp_path / "p.mp4", tmp_path / "i.mp4"
    for out, n in ((plain, "1"), (inter, "4")):
        assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out), "--audio", str(track), "--fps", "6",
                     "--interpolate", n, *TINY]) == 0
    assert count_frames(plain, check=True) == 6 and count_frames(inter, check=True) == 24
    assert ffmpeg.probe(plain)["fps"] == 6 and ffmpeg.probe(inter)["fps"] == 24
    assert _audio_seconds(inter, tmp_path) == pytest.approx(_audio_seconds(plain, tmp_path), abs=0.05)
    assert _audio_seconds(inter, tmp_path) == pytest.approx(1.0, abs=0.05)
    side = json.loads(inter.with_suffix(".json").read_text())
    assert side["frames"] == 24 and side["fps"] == 24 and side["interpolate"]["dreamt_frames"] == 6
    assert side["interpolate"]["factor"] == 4 and len(side["per_frame"]) == 6


def test_video_interpolate_2_doubles_frames_and_fps_with_the_audio_unchanged(tmp_path, data_dir):
    src = data_dir / "realshort.mp4"
    plain, inter = tmp_path / "p.mp4", tmp_path / "i.mp4"
    for out, n in ((plain, "1"), (inter, "2")):
        assert main(["video", str(src), "-o", str(out), "--size", "64", "--end", "0.5", "--interpolate", n, "-q"]) == 0
    n_plain = count_frames(plain, check=True)
    assert count_frames(inter, check=True) == 2 * n_plain
    assert ffmpeg.probe(inter)["fps"] == pytest.approx(2 * ffmpeg.probe(plain)["fps"], abs=0.01)
    assert _audio_seconds(inter, tmp_path) == pytest.approx(_audio_seconds(plain, tmp_path), abs=0.05)


def test_zoom_inbetweens_are_as_sharp_as_the_dreamt_frames_and_change_a_quarter(tmp_path, data_dir):
    outs = {}
    for n in (1, 4):
        out = tmp_path / f"z{n}"
        assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out) + "/", "--size", "96", "--frames", "5",
                     "--zoom", "1.03", "--interpolate", str(n), *TINY[2:]]) == 0
        outs[n] = list(read_frames(out))
    frames = outs[4]
    dreamt = [tween.detail_energy(f) for f in frames[::4]]
    between = [tween.detail_energy(f) for i, f in enumerate(frames[:-3]) if i % 4]
    assert np.mean(between) == pytest.approx(np.mean(dreamt), rel=0.10)
    ratio = _median_change(frames) / _median_change(outs[1])
    assert 0.15 < ratio < 0.4  # about 1/4: the dream's own renewal of the detail is cross-faded too
    assert [np.array_equal(a, b) for a, b in zip(frames[::4], outs[1])] == [True] * 5  # the dreamt frames as they were


def test_resumed_interpolated_zoom_matches_an_uninterrupted_one(tmp_path, data_dir, monkeypatch, capsys):
    import dreamreel.render.runtime as runtime

    args = ["zoom", str(data_dir / "chelsea.png"), "--frames", "6", "--interpolate", "3", *TINY]
    whole = tmp_path / "w"
    assert main([*args, "-o", str(whole) + "/"]) == 0
    out = tmp_path / "r"
    real, calls = runtime.run_dream, []

    def interrupting(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runtime, "run_dream", interrupting)
    capsys.readouterr()
    assert main([*args, "-o", str(out) + "/"]) == 130
    assert f"{out} holds 7 of 18 frames" in capsys.readouterr().err  # the file's frames, in-betweens included
    assert count_frames(out) == 7  # three dreamt frames and the in-betweens between them; none after the last
    state = json.loads((tmp_path / ".r.resume" / "state.json").read_text())
    assert state["frames_done"] == 3
    monkeypatch.setattr(runtime, "run_dream", real)
    assert main([*args, "-o", str(out) + "/", "--resume"]) == 0
    got, want = list(read_frames(out)), list(read_frames(whole))
    assert len(got) == len(want) == 18 and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == 18


@pytest.mark.parametrize("extra, words", [
    (["--interpolate", "0"], "--interpolate"),
    (["--interpolate", "17"], "--interpolate"),
    (["--interpolate", "2", "--loop"], "--loop"),
])
def test_bad_interpolation_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys, extra, words):
    out = tmp_path / "o.mp4"
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out), *extra, *TINY]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamreel: error: ") and words in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_interpolate_with_segments_is_refused(tmp_path, data_dir, capsys):
    out = tmp_path / "o.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--segments", "2", "--interpolate", "2",
                 "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--interpolate does not work with --segments" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_3d_camera_inbetween_is_the_half_move_over_a_depth_map(tmp_path, data_dir):
    """No dream (lr 0): the in-between of a camera move over a depth map is the picture the half move shows."""
    pic, depth = data_dir / "chelsea.png", data_dir / "coffee.png"
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "depth.png", iio.imread(depth)[:300, :451])  # the picture's aspect
    common = ["zoom", str(pic), "--size", "96", "--frames", "2", "--first-octaves", "1", "--color-match", "none",
              "--depth", str(tmp_path / "depth.png"), "--rotation-3d-y", "1", *STILL, "-q"]
    full, half = tmp_path / "f", tmp_path / "h"
    assert main([*common, "-o", str(full) + "/", "--translation-z", "8", "--interpolate", "2"]) == 0
    assert main([*common, "-o", str(half) + "/", "--translation-z", "4", "--rotation-3d-y", "0.5"]) == 0
    f, h = list(read_frames(full)), list(read_frames(half))
    moved = np.abs(f[2].astype(np.float32) - f[0]).mean()
    off = np.abs(f[1].astype(np.float32) - h[1]).mean()
    assert moved > 5 and off < 0.15 * moved, (moved, off)
