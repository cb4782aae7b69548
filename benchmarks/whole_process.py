"""Whole-process wall time: ``dreamreel dream`` against the peer, and the light CLI commands.

The peer is gordicaleksa/pytorch-deepdream's own ``deepdream.py`` when a checkout of it is given
(``--peer-dir DIR`` or ``DREAMREEL_PEER_DIR``; its torchvision ``pretrained=True``, removed from torchvision,
switched to ``weights=None``, nothing else changed; its matplotlib and scipy on ``--peer-pythonpath``),
else ``peer.py``'s re-implementation of its algorithm. GoogLeNet->inception4c at 600 px, 4 octaves x 1.8,
10 steps, jitter 32 on both sides (the peer's defaults for lr, smoothing and everything else).

Each pair runs both commands once as fresh processes, the order flipping every pair; the figure is the
median over the pairs of each pair's ratio (dreamreel's wall time over the peer's), with each process's CPU
seconds and the load average beside it: on a shared machine the wall times are noisy, the CPU times less so.
Prints ``ratio_googlenet=X`` (the issue's target: <= 0.5) and ``cpu_ratio_googlenet=Y``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DATA

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

DREAM_ARGS = {
    "googlenet": ["--model", "googlenet", "--weights", "random", "--layer", "inception4c", "--size", "600x400",
                  "--octaves", "4", "--octave-scale", "1.8", "--steps", "10", "--jitter", "32"],
    "inception_v3": ["--model", "inception_v3", "--weights", "random", "--layer", "Mixed_6e", "--size", "460x460",
                     "--octaves", "299,380,460", "--steps", "10", "--jitter", "32"],
}
#: the same dream in the real peer's flags (its lr 0.09 and smoothing 0.5 are its defaults)
PEER_ARGS = ["--img_width", "600", "--model_name", "GOOGLENET", "--layers_to_use", "inception4c",
             "--pyramid_size", "4", "--pyramid_ratio", "1.8", "--num_gradient_ascent_iterations", "10",
             "--spatial_shift_size", "32"]


def timed(cmd: list[str], cwd: Path = ROOT, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pairs(cmds: dict[str, tuple], n: int) -> list[dict[str, tuple[float, float, float]]]:
    """``n`` alternating rounds; each round {name: (wall, cpu, load average at its start)}."""
    items, rounds = list(cmds.items()), []
    for r in range(n):
        row = {}
        for name, (cmd, cwd, env) in (items if r % 2 == 0 else items[::-1]):
            load = os.getloadavg()[0]
            row[name] = (*timed(cmd, cwd, env), load)
        rounds.append(row)
    return rounds


def peer_command(a, config: str, tmp: str) -> tuple:
    """(command, cwd, env) of the peer: the real deepdream.py when a checkout is given, else peer.py."""
    if a.peer_dir and config == "googlenet":
        env = dict(os.environ)
        if a.peer_pythonpath:
            env["PYTHONPATH"] = a.peer_pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        return [PY, "deepdream.py", "--input", str(Path(a.input).resolve()), *PEER_ARGS], Path(a.peer_dir), env
    return [PY, str(ROOT / "benchmarks" / "peer.py"), config, "--input", a.input, "--output", f"{tmp}/p.png"], ROOT, None


def report(config: str, rounds: list[dict], real: bool) -> None:
    for k, row in enumerate(rounds):
        print(f"  pair {k + 1}: " + ", ".join(f"{n} {w:.2f} s wall / {c:.2f} s CPU (load {ld:.1f})"
                                               for n, (w, c, ld) in row.items()), flush=True)
    ratio = statistics.median(r["dreamreel"][0] / r["peer"][0] for r in rounds)
    cpu = statistics.median(r["dreamreel"][1] / r["peer"][1] for r in rounds)
    who = "the real peer (deepdream.py)" if real else "peer.py (its re-implementation)"
    print(f"{config} against {who}: median of {len(rounds)} alternating pairs")
    print(f"ratio_{config}={ratio:.3f}")
    print(f"cpu_ratio_{config}={cpu:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="alternating pairs per dream")
    ap.add_argument("--input", default=str(DATA / "chelsea.png"))
    ap.add_argument("--only", choices=sorted(DREAM_ARGS), default=None)
    ap.add_argument("--peer-dir", default=os.environ.get("DREAMREEL_PEER_DIR"),
                    help="a checkout of gordicaleksa/pytorch-deepdream (googlenet only) [$DREAMREEL_PEER_DIR]")
    ap.add_argument("--peer-pythonpath", default=os.environ.get("DREAMREEL_PEER_PYTHONPATH"),
                    help="where the peer's extra packages (matplotlib, scipy) are [$DREAMREEL_PEER_PYTHONPATH]")
    ap.add_argument("--light", action="store_true", help="also time --help, models and presets")
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for every process [default: unset, as users run them]; 1 on a loaded box, "
                         "where threads that wait on each other turn every op into a scheduling lottery")
    a = ap.parse_args()
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    if a.peer_dir and not (Path(a.peer_dir) / "deepdream.py").is_file():
        sys.exit(f"whole_process.py: no deepdream.py in {a.peer_dir!r}")
    with tempfile.TemporaryDirectory() as tmp:
        if a.light:
            light = {c: ([PY, "-m", "dreamreel", c], ROOT, None) for c in ("--help", "models", "presets")}
            for c, v in pairs(light, a.rounds)[-1].items():
                print(f"dreamreel {c:8s} {v[0]:.2f} s (the last round)")
        for config, args in DREAM_ARGS.items():
            if (a.only and config != a.only) or (a.peer_dir and config != "googlenet"):
                continue
            cmds = {"dreamreel": ([PY, "-m", "dreamreel", "dream", a.input, "-o", f"{tmp}/d.png", "-q", *args], ROOT, None),
                    "peer": peer_command(a, config, tmp)}
            report(config, pairs(cmds, a.rounds), bool(a.peer_dir) and config == "googlenet")


if __name__ == "__main__":
    main()
