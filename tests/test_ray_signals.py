"""Ray runs stop like the others: SIGTERM or Ctrl-C of `batch --ray` and `video --segments --ray` exits 143/130 with
one stderr line, leaves no Ray process and no copy of an input in the temp folder, and a second Ctrl-C is ignored.

Each case runs the real CLI in a subprocess that starts its own local Ray cluster, with a private temp folder (Ray's
session folder lands there too, so a process still running from it is one of this run's), and signals it once a
worker holds its copy of an input and has dreamt for a while.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

SLOW = ["--size", "96", "--octaves", "1", "--steps", "400", "--seed", "1", "-q"]  # long enough to be signalled


def _processes_using(folder: Path) -> list[str]:
    """Command lines of the processes that mention ``folder`` (Ray's session folder is inside it)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmd:
            out.append(cmd[:120])
    return out


def _signal_ray_run(args: list[str], tmp: Path, scratch: str, signals: list[tuple[int, float]], group=False):
    """Run ``dreamreel ARGS``; once a worker's scratch folder exists and 2 s have passed, send ``signals``
    ((signal, delay before it)), to the process or its whole group. Returns (exit code, stderr lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp), "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "dreamreel", *args], stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(tmp.glob(scratch + "*")):
        time.sleep(0.1)
    time.sleep(2)
    assert proc.poll() is None, "the run finished before it could be signalled"
    for sig, delay in signals:
        time.sleep(delay)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    for _ in range(50):  # the cluster's processes go with their driver
        if not _processes_using(tmp):
            break
        time.sleep(0.2)
    return proc.returncode, err.strip().splitlines()


@pytest.fixture()
def tmp():
    """A private temp folder with a short path (Ray's sockets live in its session folder: at most 107 bytes)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dr-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _assert_clean(tmp: Path) -> None:
    assert _processes_using(tmp) == []
    assert sorted(p.name for p in tmp.iterdir() if p.name != "ray") == []  # no worker's copy of an input


@pytest.mark.parametrize("signals, group, code", [
    ([(signal.SIGTERM, 0)], False, 143),
    ([(signal.SIGTERM, 0)], True, 143),  # kill -TERM -PGID: the driver's whole group gets it
    ([(signal.SIGINT, 0), (signal.SIGINT, 0.15)], False, 130),  # the second Ctrl-C is ignored
])
def test_a_signalled_batch_on_ray_exits_with_one_line_and_leaves_nothing(signals, group, code, tmp, tmp_path, data_dir):
    out = tmp_path / "out"
    args = ["batch", str(data_dir / "chelsea.png"), str(data_dir / "coffee.png"), "--out-dir", str(out), "--ray", *SLOW]
    rc, err = _signal_ray_run(args, tmp, "dreamreel-ray-", signals, group)
    assert (rc, len(err)) == (code, 1), err
    assert err[0].startswith("dreamreel: batch interrupted: 0 of 2 done, 0 failed;") and len(err[0]) < 200
    _assert_clean(tmp)
    assert not (out / "chelsea.png").exists() and (out / "manifest.json").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130)])
def test_a_signalled_segments_render_on_ray_exits_with_one_line_and_leaves_nothing(sig, code, tmp, tmp_path, data_dir):
    out = tmp_path / "v.mp4"
    args = ["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--segments", "2", "--ray", *SLOW]
    rc, err = _signal_ray_run(args, tmp, "dreamreel-seg-", [(sig, 0)])
    word = "terminated" if sig == signal.SIGTERM else "interrupted"
    assert (rc, err) == (code, [f"dreamreel: {word}: 0 of 2 segments were finished; nothing written to {out}"])
    _assert_clean(tmp)
    assert not out.exists()
