"""How batch items scale over Ray workers, what Ray costs per item, and how smooth segment seams are.

    python benchmarks/scale.py [--items 12] [--size 160] [--steps 8]

Side by side in one process, on one local Ray cluster (ray.init, 2 CPUs), torch one thread per worker:

    scaling=X        steady items/s with 2 workers over 1 (the same stills, the same cluster; target >= 1.7 on
                     2 cores), counted once every worker has finished an item (worker start-up is reported apart)
    ray_start_s=X    ray.init of a fresh local cluster
    worker_start_s=X a worker (process + model load) until its first item can run
    overhead_ms=X    per item, driver + object store round trip of a 1 MB input and a 1 MB result (no dream)
    seam_ratio=X     video --segments 3 --segment-overlap 4 on realshort.mp4: frame-to-frame change into the seam
                     frames over the change inside (window_ratio: over the whole cross-fade)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import DATA, machine  # noqa: E402


def _noop_setup(arg):
    return None


def _echo(state, meta, data):
    return {"n": len(data), "bytes": b"x" * len(data)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--size", default="160")
    ap.add_argument("--steps", default="8")
    a = ap.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster
    import numpy as np
    import ray
    import torch

    torch.set_num_threads(1)
    from dreamreel.batch_worker import ray_setup as batch_setup, ray_work as batch_work
    from dreamreel.distributed import Cluster, run_items

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t0
    cluster = Cluster(ray, "local", owned=True)
    try:
        options = {"size": a.size, "octaves": "1", "steps": a.steps, "seed": "1"}  # batch's flags, as the CLI passes them
        srcs = [DATA / "coffee.png", DATA / "chelsea.png"]
        work = []
        for k in range(a.items):
            src = srcs[k % 2]
            meta = {"input": str(src), "output": f"/unused/{k}.png", "kind": "image", "input_name": src.name,
                    "output_name": f"{k}.png", "mtime_ns": src.stat().st_mtime_ns}
            work.append((meta, src.read_bytes))

        def run(workers):
            """Steady items/s: counted from the result by which every worker has finished one item (so each has
            started and loaded its model) to the last; and the seconds to the first result."""
            t = time.perf_counter()
            stamps = []
            for _, res in run_items(cluster, work, setup=batch_setup, setup_arg=options, work=batch_work, cpus=1,
                                    workers=workers):
                assert res["status"] == "done", res
                stamps.append(time.perf_counter() - t)
            return (a.items - workers) / (stamps[-1] - stamps[workers - 1]), stamps[0]

        rates = {1: [], 2: []}
        firsts = []
        for order in ((1, 2), (2, 1)):  # alternate, so machine noise hits both alike
            for w in order:
                rate, first = run(w)
                rates[w].append(rate)
                firsts.append(first)
        r1, r2 = float(np.median(rates[1])), float(np.median(rates[2]))

        payload = [({"k": k}, lambda: b"\0" * (1 << 20)) for k in range(40)]
        t = time.perf_counter()
        for _ in run_items(cluster, payload, setup=_noop_setup, setup_arg=None, work=_echo, cpus=1, workers=1):
            pass
        overhead = (time.perf_counter() - t) / len(payload)
    finally:
        ray.shutdown()

    # segments: the seams against the inside
    from dreamreel.cli import main as cli
    from dreamreel.io.readers import iter_frames
    from dreamreel.io.outputs import read_frames
    from dreamreel.render.segments import seam_report
    import json

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "v.mp4"
        t = time.perf_counter()
        assert cli(["video", str(DATA / "realshort.mp4"), "-o", str(out), "--segments", "3", "--segment-overlap", "4",
                    "--size", "96", "--seed", "1", "-q"]) == 0
        seg_s = time.perf_counter() - t
        side = json.loads(out.with_suffix(".json").read_text())
        frames = list(read_frames(out))
        sources = list(iter_frames(DATA / "realshort.mp4", size=tuple(side["size"])))
        seams = side["seams"]
        window = sorted({k for s in seams for k in range(s - 4, s + 1)})
        rep, win = seam_report(frames, seams, sources), seam_report(frames, window, sources)

    print(f"machine: {machine()}")
    print(f"{a.items} stills at {a.size} px, {a.steps} steps, 1 torch thread per worker, local cluster of 2 CPUs")
    print(f"items_per_s_1={r1:.3f} items_per_s_2={r2:.3f} (runs: {[round(x, 3) for x in rates[1]]} / "
          f"{[round(x, 3) for x in rates[2]]})")
    print(f"scaling={r2 / r1:.3f} ({'meets' if r2 / r1 >= 1.7 else 'MISSES'} >= 1.7)")
    print(f"ray_start_s={ray_start:.2f} worker_start_s={min(firsts):.2f} (first result of a run: worker start + one item)")
    print(f"overhead_ms={overhead * 1000:.1f} per item (1 MB in, 1 MB out, one worker, no dream)")
    print(f"segments: realshort.mp4 at {side['size'][0]}x{side['size'][1]}, 3 segments, overlap 4, {seg_s:.1f} s; "
          f"seams {seams}")
    print(f"seam_change={rep['change']['seam']:.3f} inside_change={rep['change']['inside']:.3f} "
          f"seam_ratio={rep['change']['ratio']:.3f} window_ratio={win['change']['ratio']:.3f} "
          f"detail_seam_ratio={rep['detail_change']['ratio']:.3f} ({'meets' if rep['change']['ratio'] <= 1.5 else 'MISSES'} <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
