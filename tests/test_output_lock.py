"""One render per output: a second render or --resume of an output that a running dreamreel writes is refused in
one line (exit 2), and a lock left by a killed render is taken over. Real processes, tiny renders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamreel.errors import DreamError
from dreamreel.io.outputs import count_frames
from dreamreel.render.runtime import output_lock

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ZOOM = ["--size", "48", "--octaves", "1", "--steps", "1", "--first-octaves", "1", "-q"]


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamreel", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def _start_long_zoom(folder: Path, source: Path) -> subprocess.Popen:
    """A zoom render of z.mp4 long enough to be running while the test acts (it is stopped by the test)."""
    proc = subprocess.Popen([sys.executable, "-m", "dreamreel", "zoom", str(source), "-o", "z.mp4", *ZOOM,
                             "--frames", "5000"], cwd=folder, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(folder.glob(".z*.tmp.mp4")):  # the model is loaded, frames go out
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    return proc


def test_a_second_render_or_resume_of_a_running_output_is_refused(tmp_path, data_dir):
    first = _start_long_zoom(tmp_path, data_dir / "chelsea.png")
    try:
        assert (tmp_path / ".z.mp4.lock").read_text() == str(first.pid)
        for extra in ([], ["--resume"]):
            r = _cli("zoom", data_dir / "chelsea.png", "-o", "z.mp4", *ZOOM, "--frames", "8", *extra, cwd=tmp_path)
            assert r.returncode == 2, r.stderr
            assert r.stderr.strip() == (f"dreamreel: error: 'z.mp4' is being written by another dreamreel (process "
                                        f"{first.pid}) (wait for it to finish, or choose another output path)")
        assert first.poll() is None  # the first one never noticed
    finally:
        first.send_signal(signal.SIGINT)
        err = first.communicate(timeout=120)[1]
    assert first.returncode == 130, err
    assert not (tmp_path / ".z.mp4.lock").exists()
    done = json.loads((tmp_path / ".z.mp4.resume" / "state.json").read_text())["frames_done"]
    assert count_frames(tmp_path / "z.mp4") == done >= 1  # what the first one finished is what the file holds


def test_a_lock_left_by_a_killed_render_is_taken_over(tmp_path, data_dir):
    first = _start_long_zoom(tmp_path, data_dir / "chelsea.png")
    first.kill()
    first.wait(timeout=60)
    assert (tmp_path / ".z.mp4.lock").exists()  # SIGKILL: no cleanup, but the flock died with the process
    r = _cli("zoom", data_dir / "chelsea.png", "-o", "z.mp4", *ZOOM, "--frames", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert count_frames(tmp_path / "z.mp4") == 3 and not (tmp_path / ".z.mp4.lock").exists()


def test_the_lock_is_per_output_and_released_on_error(tmp_path):
    out = tmp_path / "sub" / "o.png"
    with output_lock(out) as lock:
        assert lock == tmp_path / "sub" / ".o.png.lock" and lock.read_text() == str(os.getpid())
        with output_lock(tmp_path / "other.png"):
            pass
        with pytest.raises(DreamError, match="is being written by another dreamreel"):
            with output_lock(out):  # a second open file description is refused even in one process
                pass
    assert not (tmp_path / "sub").exists()  # the folder made for the lock alone is gone again
    with pytest.raises(RuntimeError):
        with output_lock(out):
            raise RuntimeError
    with output_lock(out):
        pass


def test_a_batch_into_a_folder_another_batch_writes_is_refused(tmp_path, data_dir, capsys):
    from dreamreel.cli.commands import main

    out = tmp_path / "out"
    with output_lock(out / "manifest.json"):  # what a running batch holds
        code = main(["batch", str(data_dir / "chelsea.png"), "--out-dir", str(out), "--size", "48", "--octaves", "1",
                     "--steps", "1", "-q", "--resume"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("dreamreel: error: ") and "is being written by another dreamreel" in err
        assert sorted(p.name for p in out.iterdir()) == [".manifest.json.lock"]
    assert main(["batch", str(data_dir / "chelsea.png"), "--out-dir", str(out), "--size", "48", "--octaves", "1",
                 "--steps", "1", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.json", "chelsea.png", "manifest.json"]
