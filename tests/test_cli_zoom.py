import json
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io.outputs import read_frames

INTERRUPTIBLE = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from dreamreel.cli.commands import main; sys.exit(main(sys.argv[1:]))")


def test_zoom_mp4_has_every_frame_at_the_fps_and_frames_differ(tmp_path, data_dir):
    out = tmp_path / "z.mp4"
    code = main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), "--frames", "8", "--fps", "12", "--zoom", "1.05",
                 "--size", "128", "--octaves", "1", "--steps", "2", "--seed", "1", "-q"])
    assert code == 0
    frames = list(read_frames(out))
    assert len(frames) == 8
    assert iio.immeta(out)["fps"] == pytest.approx(12.0)
    diffs = [np.abs(frames[i].astype(float) - frames[i - 1]).mean() for i in range(1, 8)]
    assert min(diffs) > 3.0
    side = json.loads((tmp_path / "z.json").read_text())
    assert len(side["per_frame"]) == 8 and side["per_frame"][3]["zoom"] == pytest.approx(1.05)
    assert all(r["seconds"] > 0 for r in side["per_frame"])


def test_zoom_from_noise_to_a_looping_gif(tmp_path):
    out = tmp_path / "z.gif"
    assert main(["zoom", "noise", "-o", str(out), "--frames", "5", "--fps", "10", "--zoom", "1.05", "--size", "96",
                 "--octaves", "1", "--steps", "2", "--seed", "1", "-q"]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape == (5, 96, 96, 3)
    assert iio.immeta(out)["loop"] == 0


def test_progress_animation_has_a_frame_per_step_plus_the_start(tmp_path, data_dir):
    code = main(["dream", str(data_dir / "coffee.png"), "-o", str(tmp_path / "p.png"), "--size", "128", "--octaves", "2",
                 "--steps", "4", "--progress", str(tmp_path / "p.mp4"), "--seed", "1", "-q"])
    assert code == 0
    frames = list(read_frames(tmp_path / "p.mp4"))
    assert len(frames) == 9
    # every frame at the final size, plus a caption strip below the image
    assert frames[0].shape[1] == 128 and frames[0].shape[0] > 86
    assert json.loads((tmp_path / "p.json").read_text())["progress"]["frames"] == 9


def _zoom_args(out):
    return ["zoom", "noise", "-o", str(out), "--frames", "40", "--size", "48", "--octaves", "1", "--steps", "1",
            "--first-octaves", "1", "--seed", "3", "-q"]


def test_ctrl_c_keeps_finished_frames_and_resume_matches_an_uninterrupted_run(tmp_path):
    part, full = tmp_path / "part", tmp_path / "full"
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, *_zoom_args(str(part) + "/")],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tmp_path.glob("*/*.png")) + list(tmp_path.glob(".*/*.png"))) < 4:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    kept = sorted(part.glob("frame_*.png"))
    assert 1 <= len(kept) < 40
    assert f"holds {len(kept)} of 40 frames" in err
    assert main(_zoom_args(str(part) + "/") + ["--resume"]) == 0
    assert main(_zoom_args(str(full) + "/")) == 0
    a, b = sorted(part.glob("frame_*.png")), sorted(full.glob("frame_*.png"))
    assert len(a) == len(b) == 40
    assert all(np.array_equal(iio.imread(x), iio.imread(y)) for x, y in zip(a, b))
    assert not (tmp_path / ".part.resume").exists()


def test_resume_of_a_finished_render_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / "z.gif"
    args = ["zoom", "noise", "-o", str(out), "--frames", "3", "--size", "48", "--octaves", "1", "--steps", "1",
            "--first-octaves", "1", "-q"]
    assert main(args) == 0
    before = out.stat().st_mtime_ns
    assert main(args + ["--resume"]) == 0
    assert out.stat().st_mtime_ns == before
    assert "already complete" in capsys.readouterr().err


def test_zoom_rejects_a_bad_output_type_and_a_bad_timeline(tmp_path, data_dir, capsys):
    assert main(["zoom", "noise", "-o", str(tmp_path / "z.avi"), "--size", "48"]) == 2
    assert main(["zoom", "noise", "-o", str(tmp_path / "z.mp4"), "--size", "48", "--timeline", str(tmp_path / "no.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[1]
    assert list(tmp_path.iterdir()) == []


def test_zoom_overlay_has_one_heatmap_frame_per_output_frame(tmp_path, data_dir):
    code = main(["zoom", str(data_dir / "coffee.png"), "-o", str(tmp_path / "z.mp4"), "--frames", "4", "--size", "96",
                 "--octaves", "1", "--first-octaves", "1", "--steps", "1", "--overlay", str(tmp_path / "o.gif"), "-q"])
    assert code == 0
    overlay = list(read_frames(tmp_path / "o.gif"))
    frames = list(read_frames(tmp_path / "z.mp4"))
    assert len(overlay) == len(frames) == 4
    assert overlay[0].shape[:2] == frames[0].shape[:2] == (64, 96)  # the output's size: caption and scale drawn inside
    # the heatmap tints the frame: the overlay is not the plain frame
    assert np.abs(overlay[1][:64].astype(float) - frames[1][:64]).mean() > 10


def test_zoom_overlay_feature_out_of_range_is_one_line_and_leaves_nothing(tmp_path, capsys):
    code = main(["zoom", "noise", "-o", str(tmp_path / "z.gif"), "--frames", "2", "--size", "64", "--octaves", "1",
                 "--first-octaves", "1", "--steps", "1", "--overlay", str(tmp_path / "o.gif"), "--overlay-feature", "999", "-q"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range for block13" in err[0]
    assert list(tmp_path.iterdir()) == []
