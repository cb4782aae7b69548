"""The prepared GPU check script keeps working on the CPU: every step runs and the table reports each figure."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


def test_the_gpu_check_runs_every_step_on_the_cpu_and_prints_its_table(tmp_path):
    proc = _run("--cpu", str(tmp_path / "logs"), env={"GPU_CHECK_TINY": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout[proc.stdout.index("== dreamreel GPU check"):]
    rows = dict(re.findall(r"^(.+?)\s{2,}(.+)$", table, re.M))
    assert rows["mode"].startswith("CPU") and rows["torch"].startswith("2.")
    assert re.fullmatch(r"\d+ skipped in [\d.]+s \(exit 0\)", rows["tests"])  # the CUDA tests, collected and skipped
    assert float(rows["speedup (fast path / eager fp32)"]) > 0
    assert 0 < float(rows["overlap (clip pipeline / slowest stage)"]) <= 1.5
    assert rows["fps_1080p (googlenet, 10 steps/frame)"] == "not taken (CPU)"
    assert re.fullmatch(r"[\d.]+ fps, \d+ MiB", rows["googlenet->inception4c 64x36 zoom 10 steps fast"])
    assert {p.name for p in (tmp_path / "logs").iterdir()} >= {"environment.txt", "install.log", "tests.log",
                                                                "throughput.log"}


def test_the_gpu_check_refuses_a_missing_outdir_in_one_line():
    proc = _run("--cpu")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "OUTDIR" in proc.stderr
    proc = _run("--gpu", "x")
    assert proc.returncode == 2 and "unknown option --gpu" in proc.stderr
