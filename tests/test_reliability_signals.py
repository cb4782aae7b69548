"""Signals, partial outputs and resume state: what is on disk after SIGTERM or a double Ctrl-C, what --resume
trusts, and clean frames after a --start on streams a seek cannot start from.

The signal tests run the real CLI in a subprocess and signal it once its writer has opened and it has spent some
CPU time on frames (so the frames it kept do not depend on how busy the machine is). Every count a message,
checkpoint or sidecar gives is checked against the frames decoded from the file.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io.readers import VideoError, iter_frames, probe_video
from dreamreel.io.outputs import read_frames

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads CPU time from /proc")

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ZOOM = ["--size", "48", "--octaves", "1", "--steps", "1", "--first-octaves", "1", "--seed", "3", "-q"]
SLOW = ["--size", "48", "--octaves", "1", "--steps", "4", "--seed", "1", "-q"]  # long enough to be signalled
HOLDS = re.compile(r"(\S+) holds (\d+) of (\d+) frames|(\S+) is unchanged; the new render's (\d+) of (\d+) frames are in (\S+);")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("inf")  # gone
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _signal_render(args: list[str], folder: Path, signals: list[int], cpu: float) -> tuple[int, str]:
    """Run the CLI; once its writer's temp file exists (the model is loaded) and it has spent ``cpu`` more seconds
    of CPU on frames, send ``signals`` 10 ms apart. Returns (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "dreamreel", *args], stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not _temps(folder):
        time.sleep(0.005)
    start = _cpu_seconds(proc.pid)
    while time.time() < deadline and proc.poll() is None and _cpu_seconds(proc.pid) - start < cpu:
        time.sleep(0.005)
    assert proc.poll() is None, "the render finished before it could be signalled"
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.01)
        proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    return proc.returncode, err


def _decoded(path: Path) -> int:
    return sum(1 for _ in read_frames(path))


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert len(lines[0]) < 200 and "Traceback" not in err
    return lines[0]


def _checkpoint(output: Path) -> tuple[dict, np.ndarray]:
    folder = output.parent / f".{output.name}.resume"
    return json.loads((folder / "state.json").read_text()), iio.imread(folder / "last.png")


def _assert_kept(line: str, output: Path, total: int, shape: tuple, partial: Path) -> int:
    """The message, the file and the checkpoint agree on how many frames were kept, and where."""
    m = HOLDS.search(line)
    assert m, line
    if m.group(1):  # the frames are at the output
        assert partial == output and m.group(1) == str(output) and int(m.group(3)) == total, line
        n = int(m.group(2))
    else:  # a finished output was there: the frames wait in the checkpoint folder
        assert m.group(4) == str(output) and output.parent / m.group(7) == partial and int(m.group(6)) == total, line
        n = int(m.group(5))
    assert 1 <= n < total
    assert _decoded(partial) == n
    state, last = _checkpoint(output)
    assert state["frames_done"] == n and len(state["records"]) == n and last.shape == shape
    assert _temps(output.parent) == []  # no hidden temp file left behind
    return n


# ---------------------------------------------------------------- SIGTERM and double Ctrl-C


def test_sigterm_during_zoom_keeps_the_finished_mp4_and_resume_replaces_it(tmp_path):
    out = tmp_path / "z.mp4"
    assert main(["zoom", "noise", "-o", str(out), "--frames", "3", *ZOOM]) == 0  # a finished output
    old, old_side = out.read_bytes(), (tmp_path / "z.json").read_bytes()

    args = ["zoom", "noise", "-o", str(out), "--frames", "400", "--zoom", "1.02", *ZOOM]
    code, err = _signal_render(args, tmp_path, [signal.SIGTERM], cpu=0.3)
    assert code == 143, err
    line = _one_line(err)
    assert line.startswith("dreamreel: terminated: ") and line.endswith("; continue with --resume")
    partial = tmp_path / ".z.mp4.resume" / "partial.mp4"
    n = _assert_kept(line, out, 400, (48, 48, 3), partial)
    assert out.read_bytes() == old and (tmp_path / "z.json").read_bytes() == old_side  # the finished one survives

    assert main(args + ["--resume"]) == 0
    assert _decoded(out) == 400
    side = json.loads((tmp_path / "z.json").read_text())
    assert side["frames"] == 400 and len(side["per_frame"]) == 400 and side["resumed_at_frame"] == n
    assert not (tmp_path / ".z.mp4.resume").exists()


def test_double_ctrl_c_during_zoom_gif_exits_130_and_everything_agrees(tmp_path, capsys):
    out = tmp_path / "z.gif"
    args = ["zoom", "noise", "-o", str(out), "--frames", "300", *ZOOM]
    code, err = _signal_render(args, tmp_path, [signal.SIGINT, signal.SIGINT], cpu=0.3)
    assert code == 130, err  # not -2: the second Ctrl-C did not break the cleanup
    line = _one_line(err)
    assert line.startswith("dreamreel: interrupted: ")
    assert 1 <= _assert_kept(line, out, 300, (48, 48, 3), out) < 300  # no finished output was there: the frames are at out
    assert not (tmp_path / "z.json").exists()

    assert main(args + ["--resume"]) == 0
    assert f"wrote {out}: 300 frames" in capsys.readouterr().err
    assert _decoded(out) == 300 and json.loads((tmp_path / "z.json").read_text())["frames"] == 300


def test_sigterm_during_video_keeps_frames_with_a_checkpoint(tmp_path, clip):
    out = tmp_path / "v.mp4"
    # the first frame is dreamt 10 times over (about 0.7 s here): signal after it
    code, err = _signal_render(["video", str(clip), "-o", str(out), *SLOW], tmp_path, [signal.SIGTERM], cpu=1.0)
    assert code == 143, err
    n = _assert_kept(_one_line(err), out, 36, (36, 144, 3), out)  # the last dream, its 48x36 source, the written frame
    assert 1 <= n < 36


def test_double_ctrl_c_during_video_keeps_the_finished_output_and_resume_completes(fast_flags, tmp_path, clip, capsys):
    out = tmp_path / "v"
    assert main(["video", str(clip), "-o", str(out) + "/", "--end", "0.2", *fast_flags]) == 0  # 6 finished frames
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    old_side = (tmp_path / "v.json").read_bytes()

    args = ["video", str(clip), "-o", str(out) + "/", "--flow", "none", *SLOW]
    code, err = _signal_render(args, tmp_path, [signal.SIGINT, signal.SIGINT], cpu=0.3)
    assert code == 130, err
    line = _one_line(err)
    _assert_kept(line, out, 36, (36, 96, 3), tmp_path / ".v.resume" / "partial")  # --flow none: no deflicker
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old and (tmp_path / "v.json").read_bytes() == old_side

    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "wrote" in capsys.readouterr().err
    assert len(list(out.glob("frame_*.png"))) == 36 == json.loads((tmp_path / "v.json").read_text())["frames"]
    assert not (tmp_path / ".v.resume").exists()


# ---------------------------------------------------------------- what --resume trusts


def _interrupted_zoom(tmp_path, monkeypatch, out: Path, after: int = 4, frames: int = 12) -> list[str]:
    """A zoom render Ctrl-C'd after ``after`` frames, in this process; returns its arguments."""
    import dreamreel.render.runtime as runtime

    args = ["zoom", "noise", "-o", str(out) + ("/" if not out.suffix else ""), "--frames", str(frames), *ZOOM]
    real, calls = runtime.run_dream, []

    def interrupt(*a, **k):
        calls.append(1)
        if len(calls) == after + 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runtime, "run_dream", interrupt)
    assert main(args) == 130
    monkeypatch.setattr(runtime, "run_dream", real)
    return args


def _refused(args, capsys) -> str:
    capsys.readouterr()
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err
    line = _one_line(err)
    assert line.startswith("dreamreel: error: cannot --resume")
    return line


@pytest.mark.parametrize("name", ["z.mp4", "z.gif", "z"])
def test_resume_refuses_a_partial_that_was_deleted_truncated_or_overwritten(tmp_path, monkeypatch, capsys, name):
    out = tmp_path / name
    args = _interrupted_zoom(tmp_path, monkeypatch, out)
    assert _decoded(out) == 4

    if out.is_dir():
        frames = sorted(out.glob("frame_*.png"))
        frames[1].unlink()  # a gap
        assert "frame_000001.png is missing" in _refused(args, capsys)
        frames[1].write_bytes(b"garbage")
        assert "damaged" in _refused(args, capsys)
        for f in frames[1:]:
            f.unlink(missing_ok=True)
        assert "holds 1 frames, the checkpoint recorded 4" in _refused(args, capsys)
    else:
        data = out.read_bytes()
        out.write_bytes(data[: len(data) * 2 // 3])  # truncated
        _refused(args, capsys)
        out.write_bytes(os.urandom(len(data)))  # overwritten with garbage
        _refused(args, capsys)
        out.unlink()
        assert "is missing" in _refused(args, capsys)
    assert (tmp_path / f".{name}.resume" / "state.json").is_file()  # refused: nothing was changed or removed


def test_resume_refuses_a_wrong_size_or_garbage_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "z"
    args = _interrupted_zoom(tmp_path, monkeypatch, out)
    folder = tmp_path / ".z.resume"
    good = iio.imread(folder / "last.png")
    iio.imwrite(folder / "last.png", np.zeros((40, 48, 3), np.uint8))
    assert "checkpoint image is 40x48x3 uint8, not the 48x48x3" in _refused(args, capsys)
    iio.imwrite(folder / "last.png", np.zeros((48, 48, 4), np.uint8))
    _refused(args, capsys)
    (folder / "last.png").write_bytes(b"\x89PNG garbage")
    assert "unreadable" in _refused(args, capsys)
    iio.imwrite(folder / "last.png", good)
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, "frames_done": 7}))  # records say 4
    assert "damaged" in _refused(args, capsys)
    (folder / "state.json").write_text("[1, 2]")
    assert "damaged" in _refused(args, capsys)
    (folder / "state.json").write_text(json.dumps(state))
    assert main(args + ["--resume"]) == 0  # the intact checkpoint still continues
    assert len(list(out.glob("frame_*.png"))) == 12


def test_ctrl_c_before_the_first_frame_leaves_nothing_and_invites_no_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "z.mp4"
    _interrupted_zoom(tmp_path, monkeypatch, out, after=0)
    line = _one_line(capsys.readouterr().err)
    assert "before the first frame" in line and "nothing written" in line and "--resume" not in line
    assert list(tmp_path.iterdir()) == []

    _interrupted_zoom(tmp_path, monkeypatch, tmp_path / "new" / "dir" / "z.gif", after=0)
    assert list(tmp_path.iterdir()) == []  # nor the folders made for the output

    assert main(["zoom", "noise", "-o", str(out), "--frames", "2", *ZOOM]) == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    _interrupted_zoom(tmp_path, monkeypatch, out, after=0)  # over a finished output: its checkpoint folder goes too
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["z.json", "z.mp4"]


# ---------------------------------------------------------------- seeking real streams


@pytest.fixture(scope="module")
def refresh_clip(tmp_path_factory, clip):
    """realshort.mp4 looped to 3 s as H.264 High 4:4:4 with periodic intra refresh: its sync samples (every 2 s)
    are recovery points, not IDR frames, so a decoder started there has nothing to predict from."""
    path = tmp_path_factory.mktemp("seek") / "refresh.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-stream_loop", "2", "-i", str(clip), "-t", "3",
                    "-c:v", "libx264", "-pix_fmt", "yuv444p", "-x264-params", "keyint=60:intra-refresh=1",
                    "-c:a", "copy", str(path)], check=True)
    return path


def test_start_gives_the_frames_decoding_from_the_beginning_gives(fast_flags, refresh_clip, tmp_path):
    full = list(iter_frames(refresh_clip))
    assert len(full) == probe_video(refresh_clip).n_frames == 91
    seeked = imageio_ffmpeg.read_frames(str(refresh_clip), input_params=["-ss", "2.2"])  # what a seek gives
    assert next(seeked) and len(list(seeked)) == 0  # this clip is a real case: no frame comes out
    for start, end in [(2.2, 2.7), (0.5, 0.8)]:
        part = list(iter_frames(refresh_clip, start=start, end=end))
        first = int(np.ceil(start * 30.02))
        assert len(part) == int(np.ceil(end * 30.02)) - first
        assert max(np.abs(a.astype(int) - full[first + i]).mean() for i, a in enumerate(part)) < 0.5

    out = tmp_path / "v"
    assert main(["video", str(refresh_clip), "-o", str(out) + "/", "--start", "2.2", "--end", "2.4",
                 "--flow", "none", *fast_flags]) == 0
    assert len(list(out.glob("frame_*.png"))) == 6


def test_decoder_errors_in_the_kept_frames_are_a_failure_not_a_success(fast_flags, clip, tmp_path, capsys):
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    for off in (20000, 50000):  # inside video packets of the first second
        data[off:off + 300] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="decoding errors"):
        list(iter_frames(damaged, start=0.9))

    out = tmp_path / "v.mp4"
    assert main(["video", str(damaged), "-o", str(out), "--start", "0.9", *fast_flags]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "decoding errors" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.mp4"]


def test_an_interrupted_recording_keeps_the_finished_one_it_would_replace(tmp_path, monkeypatch, capsys):
    from dreamreel.render import recorders

    prog = tmp_path / "p.mp4"
    args = ["dream", "noise:48x48", "-o", str(tmp_path / "d.png"), "--octaves", "1", "--steps", "6", "--progress",
            str(prog), "-q"]
    assert main(args + ["--seed", "1"]) == 0
    old = prog.read_bytes()
    assert _decoded(prog) == 7
    real, calls = recorders.ProgressRecorder.on_step, []

    def interrupt(self, step):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, step)

    monkeypatch.setattr(recorders.ProgressRecorder, "on_step", interrupt)
    capsys.readouterr()
    assert main(args + ["--seed", "2"]) == 130
    err = capsys.readouterr().err
    assert prog.read_bytes() == old  # the finished recording was not replaced by the interrupted one
    assert f"{prog} still holds its earlier progress recording" in err, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left

    calls.clear()
    fresh = tmp_path / "q.mp4"
    assert main(args[:-2] + [str(fresh), "-q", "--seed", "2"]) == 130
    err = capsys.readouterr().err
    assert f"{fresh} holds {_decoded(fresh)} progress frames" in err and _decoded(fresh) >= 1, err


def test_a_tampered_colour_reference_in_the_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "z.mp4"
    args = _interrupted_zoom(tmp_path, monkeypatch, out)
    state_file = tmp_path / ".z.mp4.resume" / "state.json"
    state = json.loads(state_file.read_text())
    assert len(state["color_reference"]) == 2  # the first frame's per-channel mean and std (--color-match rgb)
    for bad in ("garbage", [[1, 2], [3]], [[0.5, 0.5, "x"], [1, 1, 1]], None):
        state["color_reference"] = bad
        state_file.write_text(json.dumps(state))
        assert "colour statistics" in _refused(args, capsys)


def test_a_ctrl_c_after_the_report_is_ignored_through_the_interpreter_shutdown():
    """The finalising interpreter puts Python-level handlers back to the default (terminate): a late Ctrl-C would
    kill the process after its report. Once the CLI is exiting the signals are ignored outright."""
    code = ("import os, signal, sys, time; from dreamreel import interrupts; interrupts.install(); "
            "interrupts.exiting(); print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
            "signal.getsignal(signal.SIGTERM) is signal.SIG_IGN); os.kill(os.getpid(), signal.SIGINT); "
            "time.sleep(0.05); sys.exit(130)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert (done.returncode, done.stdout.split(), done.stderr) == (130, ["True", "True"], "")
