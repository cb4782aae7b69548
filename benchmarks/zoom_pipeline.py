"""Zoom pipeline: is warping, quantising, encoding and writing hidden behind dreaming?

Prints ``pipeline_ratio=X`` last: wall time of a zoom render divided by the time spent inside
the dream engine in the same run (target <= 1.05). Before that, the peak memory (max RSS) of a
300-frame render against a 30-frame one, each in its own child process (target: within 10%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import DATA, machine

CHILD = """
import resource, sys
from dreamreel.cli.commands import main
code = main(sys.argv[1:])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def zoom(out: Path, frames: int, size: int, steps: int) -> list[str]:
    return ["zoom", str(DATA / "coffee.png"), "-o", str(out), "--frames", str(frames), "--size", str(size),
            "--octaves", "1", "--first-octaves", "1", "--steps", str(steps), "--seed", "1", "-q"]


def peak_rss_kb(args: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=root,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return int(proc.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=48)
    a = ap.parse_args()
    print(f"machine: {machine()}")
    from dreamreel.cli.commands import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        small = peak_rss_kb(zoom(Path(tmp) / "m30.mp4", 30, 96, 1))
        large = peak_rss_kb(zoom(Path(tmp) / "m300.mp4", 300, 96, 1))
        print(f"peak memory: 30 frames {small / 1024:.0f} MiB, 300 frames {large / 1024:.0f} MiB, "
              f"ratio {large / small:.3f} (target <= 1.10)")
        out = Path(tmp) / "z.mp4"
        # The product's main job: the demo's zoom preset (320 px, block7+block14, 3 steps a frame), fewer frames.
        assert cli(["zoom", str(DATA / "chelsea.png"), "-o", str(out), "--preset", "zoom", "--frames", str(a.frames), "-q"]) == 0
        data = json.loads(out.with_suffix(".json").read_text())
    print(f"zoom preset, {a.frames} frames: wall {data['seconds']:.2f} s, inside the engine {data['dream_seconds']:.2f} s")
    print(f"pipeline_ratio={data['seconds'] / data['dream_seconds']:.3f}")


if __name__ == "__main__":
    main()
