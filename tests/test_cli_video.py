"""dreamreel video: frames, rate and audio kept; flow carry; GIF; odd clips; Ctrl-C and --resume; bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from mediautil import write_clip

from dreamreel.cli.commands import main
from dreamreel.io.outputs import read_frames
from dreamreel.io.readers import probe_video

INTERRUPTIBLE = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from dreamreel.cli.commands import main; sys.exit(main(sys.argv[1:]))")


def moving_frames(n, h, w, step=2):
    rng = np.random.default_rng(0)
    import cv2

    big = cv2.GaussianBlur(rng.random((h + 40, w + 2 * step * n + 40, 3)).astype(np.float32), (0, 0), 3.0)
    big = ((big - big.min()) / (big.max() - big.min()) * 255).astype(np.uint8)
    return [big[20:20 + h, 20 + i * step:20 + i * step + w] for i in range(n)]


def test_whole_clip_keeps_every_frame_the_rate_and_the_audio(fast_flags, tmp_path, clip, capsys):
    out = tmp_path / "v.mp4"
    assert main(["video", str(clip), "-o", str(out), "--flow", "farneback", *fast_flags]) == 0
    info = probe_video(out)
    assert info.n_frames == 36 and info.fps == pytest.approx(30.02, abs=0.01) and info.has_audio
    assert info.size == (48, 36)
    err = capsys.readouterr().err
    assert "36 frames at 30.02 fps, audio kept" in err
    side = json.loads((tmp_path / "v.json").read_text())
    assert side["source"] == {"fps": pytest.approx(30.02, abs=0.01), "size": [320, 240], "frames": 36,
                              "duration": pytest.approx(1.2), "audio": True, "variable_frame_rate": False}
    assert side["flow"] == "farneback" and side["blend"] == 0.985 and side["audio"] is True
    assert len(side["per_frame"]) == 36
    assert all(r["carried"] and r["flow_seconds"] > 0 and r["dream_seconds"] > 0 for r in side["per_frame"][1:])
    assert side["per_frame"][0]["passes"] == side["first_frame_passes"] == 10
    frames = list(read_frames(out))
    source = [f for f in read_frames(clip)]
    import cv2

    small = [cv2.resize(f, (48, 36), interpolation=cv2.INTER_AREA) for f in source]
    assert np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(frames, small)]) > 2.5  # it dreams


def test_flow_none_to_a_gif_from_a_time_range(fast_flags, tmp_path, clip):
    out = tmp_path / "v.gif"
    assert main(["video", str(clip), "-o", str(out), "--flow", "none", "--start", "0.3", "--end", "0.6", "--every", "2",
                 *fast_flags]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 5 and frames.shape[1:] == (36, 48, 3)  # frames 9..17 of 36, every 2nd
    side = json.loads((tmp_path / "v.json").read_text())
    assert side["flow"] == "none" and side["blend"] is None and side["audio"] is False
    assert side["fps"] == pytest.approx(30.02 / 2, abs=0.01)
    assert not any(r["carried"] for r in side["per_frame"])


def test_late_start_keeps_the_audio_in_step(fast_flags, tmp_path, clip):
    out = tmp_path / "late.mp4"
    assert main(["video", str(clip), "-o", str(out), "--start", "0.6", "--every", "3", *fast_flags]) == 0
    info = probe_video(out)
    assert info.n_frames == 6 and info.has_audio and info.fps == pytest.approx(30.02 / 3, abs=0.01)
    assert info.duration == pytest.approx(0.6, abs=0.07)  # the audio was cut from 0.6 s on, to the video's length


def test_silent_odd_sized_grayscale_and_variable_rate_clips(tmp_path):
    gray = write_clip(tmp_path / "gray.mkv", [f[..., 0] for f in moving_frames(6, 49, 65)], codec="ffv1",
                      pix_fmt_in="gray", pix_fmt_out="gray")
    out = tmp_path / "g.mp4"
    assert main(["video", str(gray), "-o", str(out), "--octaves", "1", "--steps", "1", "-q"]) == 0
    info = probe_video(out)
    assert info.n_frames == 6 and not info.has_audio and info.size == (66, 50)  # padded to even for H.264
    side = json.loads((tmp_path / "g.json").read_text())
    assert side["size"] == [65, 49] and side["source"]["audio"] is False and side["audio"] is False

    vfr = tmp_path / "vfr.mkv"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=1",
         "-vf", "setpts='if(lt(N,5),N*0.1,0.5+(N-5)*0.3)/TB'", "-fps_mode", "vfr", "-c:v", "libx264", str(vfr)],
        check=True,
    )
    out = tmp_path / "vfr.mp4"
    assert main(["video", str(vfr), "-o", str(out), "--octaves", "1", "--steps", "1", "-q"]) == 0
    info = probe_video(out)
    assert info.n_frames == 10 and info.fps == pytest.approx(9 / 1.7, rel=0.02)  # re-timed at the mean rate


def _frames(folder):
    return [iio.imread(p) for p in sorted(folder.glob("frame_*.png"))]


def test_interrupted_flow_none_render_resumes_to_the_same_frames(fast_flags, tmp_path, clip, monkeypatch, capsys):
    import dreamreel.render.runtime as render

    args = ["video", str(clip), "--flow", "none", "--end", "0.4", *fast_flags]
    real, calls = render.run_dream, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(render, "run_dream", flaky)
    part = tmp_path / "part"
    assert main(args + ["-o", str(part) + "/"]) == 130
    assert len(_frames(part)) == 4 and (tmp_path / ".part.resume" / "state.json").is_file()
    assert "holds 4 of 13 frames; continue with --resume" in capsys.readouterr().err
    monkeypatch.setattr(render, "run_dream", real)
    assert main(args + ["-o", str(part) + "/", "--resume"]) == 0
    assert main(args + ["-o", str(tmp_path / "full") + "/"]) == 0
    a, b = _frames(part), _frames(tmp_path / "full")
    assert len(a) == len(b) == 13 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not (tmp_path / ".part.resume").exists()
    side = json.loads((tmp_path / "part.json").read_text())
    assert side["resumed_at_frame"] == 4 and len(side["per_frame"]) == 13


def test_ctrl_c_keeps_a_playable_mp4_and_resume_continues_it_with_audio(fast_flags, tmp_path, clip, monkeypatch):
    import dreamreel.render.runtime as render

    args = ["video", str(clip), "-o", str(tmp_path / "v.mp4"), "--end", "0.5", *fast_flags]
    real, calls = render.run_dream, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 10 + 6:  # 10 warm-up passes of the first frame, then 5 more frames
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(render, "run_dream", flaky)
    assert main(args) == 130
    info = probe_video(tmp_path / "v.mp4")
    assert info.n_frames == 6 and info.has_audio
    monkeypatch.setattr(render, "run_dream", real)
    assert main(args + ["--resume"]) == 0
    info = probe_video(tmp_path / "v.mp4")
    assert info.n_frames == 16 and info.has_audio and info.fps == pytest.approx(30.02, abs=0.01)


def test_sigint_then_resume_equals_an_uninterrupted_flow_render(tmp_path, clip):
    args = ["video", str(clip), "--flow", "farneback", "--size", "64", "--octaves", "1", "--steps", "2", "--seed", "2", "-q"]
    part = tmp_path / "part"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as in this process (see conftest.one_torch_thread)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, *args, "-o", str(part) + "/"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tmp_path.glob(".part*/*.png"))) < 4:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    kept = len(_frames(part))
    assert 1 <= kept < 36 and f"holds {kept} of 36 frames" in err
    assert err.strip().count("\n") == 0  # one line
    assert main(args + ["-o", str(part) + "/", "--resume"]) == 0
    assert main(args + ["-o", str(tmp_path / "full") + "/"]) == 0
    a, b = _frames(part), _frames(tmp_path / "full")
    assert len(a) == len(b) == 36 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_resume_of_a_finished_render_rewrites_nothing(fast_flags, tmp_path, clip, capsys):
    out = tmp_path / "v.gif"
    args = ["video", str(clip), "-o", str(out), "--end", "0.1", *fast_flags]
    assert main(args) == 0
    before = out.stat().st_mtime_ns
    assert main(args + ["--resume"]) == 0
    assert out.stat().st_mtime_ns == before
    assert "already complete" in capsys.readouterr().err


def test_dry_run_reads_the_clip_but_loads_no_weights(tmp_path, clip, monkeypatch, capsys):
    import dreamreel.render.runtime as render  # Engine.load's create_model

    monkeypatch.setattr(render, "create_model", lambda *a, **k: pytest.fail("weights were loaded"))
    assert main(["video", str(clip), "-o", str(tmp_path / "v.mp4"), "--size", "96", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "36 frames at 30.02 fps, audio" in out and "96x72" in out and "farneback, blend 0.985" in out
    assert "octave 1   96x72  2 steps  lr 0.016->0.016" in out
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory, clip):
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.mp4").write_text("not a video\n" * 20)
    (tmp / "cut.mp4").write_bytes(clip.read_bytes()[:3000])
    writer = imageio_ffmpeg.write_frames(str(tmp / "zero.mp4"), (64, 48), fps=10)
    writer.send(None)
    writer.close()
    return tmp


@pytest.mark.parametrize("name, words", [
    ("empty.mp4", "empty"), ("notes.mp4", "cannot read video"), ("cut.mp4", "cut short"),
    ("zero.mp4", "no video frames"), ("missing.mp4", "file not found"),
])
def test_bad_video_is_one_line_exit_2_and_writes_nothing(fast_flags, name, words, bad_videos, tmp_path, capsys):
    assert main(["video", str(bad_videos / name), "-o", str(tmp_path / "o.mp4"), *fast_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and err[0].startswith("dreamreel: error: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, words", [
    (["--blend", "1.5"], "bad value '1.5' for --blend"),
    (["--flow", "farnback"], "did you mean 'farneback'"),
    (["--start", "0.5", "--end", "0.2"], "must come after"),
    (["--start", "9"], "past the end"),
    (["--every", "0"], "bad value '0' for --every"),
])
def test_bad_video_options_are_one_line_exit_2(fast_flags, extra, words, clip, tmp_path, capsys):
    assert main(["video", str(clip), "-o", str(tmp_path / "o.mp4"), *fast_flags, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert list(tmp_path.iterdir()) == []


def test_an_image_given_as_the_video_says_so(fast_flags, tmp_path, data_dir, capsys):
    assert main(["video", str(data_dir / "coffee.png"), "-o", str(tmp_path / "o.mp4"), *fast_flags]) == 2
    assert "still image, not a video" in capsys.readouterr().err


def test_raft_without_its_weights_is_one_line_before_anything_runs(fast_flags, tmp_path, clip, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert main(["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--flow", "raft", *fast_flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "raft_small" in err[0] and "farneback" in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_a_clip_that_stops_decoding_keeps_the_frames_before_the_damage(fast_flags, tmp_path, clip, monkeypatch, capsys):
    import dreamreel.io.readers as video
    from dreamreel.io.readers import VideoError

    real = video.iter_frames

    def damaged(*a, **k):
        frames = real(*a, **k)

        def gen():
            for i, f in enumerate(frames):
                if i == 3:
                    raise VideoError(f"cannot read video '{clip}': decoding stopped early (corrupt packet)")
                yield f

        return gen()

    monkeypatch.setattr(video, "iter_frames", damaged)
    out = tmp_path / "v.gif"
    assert main(["video", str(clip), "-o", str(out), *fast_flags]) == 0
    assert iio.imread(out, index=None).shape[0] == 3
    assert "decoding stopped early" in capsys.readouterr().err
    assert "decoding stopped early" in json.loads((tmp_path / "v.json").read_text())["stopped_early"]


def test_video_overlay_has_one_heatmap_frame_per_dreamt_frame(tmp_path, clip):
    code = main(["video", str(clip), "-o", str(tmp_path / "v.mp4"), "--size", "64", "--steps", "1", "--end", "0.2",
                 "--overlay", str(tmp_path / "o/"), "-q"])
    assert code == 0
    n = len(list(read_frames(tmp_path / "v.mp4")))
    assert n == 7  # frames with timestamps below 0.2 s at 30.02 fps: 0..6
    assert len(sorted((tmp_path / "o").glob("frame_*.png"))) == n
