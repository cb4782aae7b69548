"""Whole-process wall time: ``dreamreel dream`` against the peer (peer.py), and the light CLI commands.

Each round runs every command once as a fresh process, the order flipping every round; the best
of the rounds is reported (the machine's noise only ever adds time). Torch threads are left at
their default, as the real programs run. Prints ``ratio_googlenet=X`` and ``ratio_inception_v3=Y``
(dreamreel's wall time over the peer's; the issue's target is <= 0.5) and the light commands' seconds.
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def best_of(cmds: dict[str, list[str]], rounds: int) -> dict[str, float]:
    best = {k: float("inf") for k in cmds}
    items = list(cmds.items())
    for r in range(rounds):
        for name, cmd in (items if r % 2 == 0 else items[::-1]):
            best[name] = min(best[name], timed(cmd))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--input", default=str(DATA / "chelsea.png"))
    ap.add_argument("--only", choices=sorted(DREAM_ARGS), default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for every process [default: unset, as users run them]; 1 on a loaded box, "
                         "where threads that wait on each other turn every op into a scheduling lottery")
    a = ap.parse_args()
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        light = {c: [PY, "-m", "dreamreel", c] for c in ("--help", "models", "presets")}
        t = best_of(light, a.rounds)
        for c, v in t.items():
            print(f"dreamreel {c:8s} {v:.2f} s (best of {a.rounds})")
        for config, args in DREAM_ARGS.items():
            if a.only and config != a.only:
                continue
            cmds = {
                "dreamreel": [PY, "-m", "dreamreel", "dream", a.input, "-o", f"{tmp}/d.png", "-q", *args],
                "peer": [PY, str(ROOT / "benchmarks" / "peer.py"), config, "--input", a.input, "--output", f"{tmp}/p.png"],
            }
            t = best_of(cmds, a.rounds)
            print(f"{config}: dreamreel {t['dreamreel']:.2f} s, peer {t['peer']:.2f} s (whole processes, best of {a.rounds})")
            print(f"ratio_{config}={t['dreamreel'] / t['peer']:.3f}")


if __name__ == "__main__":
    main()
