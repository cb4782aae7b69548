"""How much flicker does dreaming add to a clip, with and without carrying the dream along the optical flow?

    python benchmarks/flicker.py [--size 128] [--steps N] [--blend B] [--sheet sheet.png] [other video flags]

On ../shared/data/realshort.mp4 (from the repo root) with the embedded EfficientNet-Lite0, side by side
in one process: the clip is dreamt with ``--flow none`` and with ``--flow farneback`` (lossless PNG
frames, so the encoder adds nothing), and each output's temporal inconsistency is measured against the
*source's* motion (``video.temporal_inconsistency`` with ``video.clip_flow`` of the source frames at
the same size). The added flicker is that minus the source's own. Each mode runs with the per-frame
settings ``dreamreel video`` gives it by default (with flow a frame only tops up the carried dream, so it
takes smaller steps than a frame dreamt from scratch); ``dream_strength`` (mean |dream - source| in grey
levels) shows the two dream about equally strongly, so the comparison is not won by dreaming less. Also
printed: ``none@same``, --flow none at the flow mode's settings (a weaker dream; same_settings_ratio).

    flicker_ratio=X   added flicker with flow / without (target <= 0.5: flow at least halves it)
    flow_fraction=X   flow + occlusion mask seconds / one flow-mode frame's dream seconds (target <= 0.15)

``--steps``/``--blend``/any other ``dreamreel video`` flag apply to both modes. ``--sheet`` saves a contact
sheet (rows: source / none / farneback). Timings are medians of flow and dream measured alternately frame
by frame with one torch thread (on a shared CPU single frames are noisy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLIP = Path(__file__).resolve().parents[2] / "shared/data/realshort.mp4"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(CLIP), help="source clip [default: ../shared/data/realshort.mp4]")
    ap.add_argument("--size", default="128", help="dream size: longer side N [default: 128]")
    ap.add_argument("--steps", default=None, help="dream steps per frame [default: the video command's]")
    ap.add_argument("--blend", default=None, help="blend of the carried detail [default: the video command's]")
    ap.add_argument("--end", default=None, help="stop at this second [default: the whole clip]")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--threads", type=int, default=1, help="torch threads [default: 1, steadier timings on a shared CPU]")
    ap.add_argument("--sheet", default=None, help="save a contact sheet PNG of a few frames")
    a, extra = ap.parse_known_args(argv)  # anything else is passed on as a dreamreel video flag (e.g. --jitter 8)

    import torch

    torch.set_num_threads(a.threads)
    import imageio.v3 as iio

    from dreamreel.api import prepare_clip
    from dreamreel.cli import build_parser
    from dreamreel.cli.flags import given
    from dreamreel.render.clip import carry_flow, plan_clip, render_video
    from dreamreel.io.writer import read_frames
    from dreamreel.io.images import from_uint8
    from dreamreel.render.runtime import Engine, run_dream
    from dreamreel.io.readers import iter_frames
    from dreamreel.render.flow import clip_flow, temporal_inconsistency

    clip = Path(a.clip)
    if not clip.is_file():
        print(f"flicker: {clip} not found", file=sys.stderr)
        return 2
    base = ["video", str(clip), "-o", "unused/", "--size", a.size, "--seed", a.seed, "-q"]
    for flag, v in (("--steps", a.steps), ("--blend", a.blend), ("--end", a.end)):
        if v is not None:
            base += [flag, v]
    base += extra
    parser = build_parser()

    def setup(method, *more):
        args = parser.parse_args(base + ["--flow", method, *more])
        p = prepare_clip(clip, preset=args.preset, **given(args))
        return p.plan, p.job

    plan, job = setup("farneback")
    info = plan_clip(clip, plan, job)
    size = info.size
    engine = Engine.load(plan)  # one model for every run

    source = list(iter_frames(clip, start=job.start, end=job.end, size=size))
    motion = clip_flow(source, method="farneback")
    ti_source = temporal_inconsistency(source, motion)

    runs = {"none": setup("none"), "farneback": (plan, job)}
    if a.steps is None:  # the modes' per-frame defaults differ: also compare at the flow mode's settings
        lr = ",".join(f"{x:g}:{y:g}" for x, y in plan.lr)
        runs["none@same"] = setup("none", "--steps", ",".join(map(str, plan.steps)), "--lr", lr)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (plan_m, job_m) in runs.items():
            out = Path(tmp) / name
            data = render_video(plan_m, clip, out, job_m, show_progress=False, engine=engine, clip=info).sidecar
            frames = list(read_frames(out))
            ti = temporal_inconsistency(frames, motion)
            strength = float(np.mean([np.abs(f.astype(np.float32) - s).mean() for f, s in zip(frames, source)]))
            dream_t = float(np.median([r["dream_seconds"] for r in data["per_frame"]]))
            flow_t = [r["flow_seconds"] for r in data["per_frame"] if r["carried"]]
            results[name] = {"ti": ti, "added": ti - ti_source, "strength": strength, "frames": frames,
                             "steps": plan_m.steps, "dream_t": dream_t,
                             "flow_t": float(np.median(flow_t)) if flow_t else None}

    # Flow (with its occlusion mask, exactly as the render computes it) against one flow-mode frame's dream,
    # interleaved frame by frame so both see the same load on a shared CPU.
    t_flow, t_dream = [], []
    settings = plan.settings(size)
    for k, (prev, cur) in enumerate(zip(source, source[1:])):
        t0 = time.perf_counter()
        carry_flow(prev, cur, "farneback")
        t1 = time.perf_counter()
        run_dream(engine, from_uint8(cur), settings, seed=k, show_progress=False)
        t_flow.append(t1 - t0)
        t_dream.append(time.perf_counter() - t1)
    flow_alone, dream_alone = float(np.median(t_flow)), float(np.median(t_dream))

    none, flow = results["none"], results["farneback"]
    ratio = flow["added"] / none["added"] if none["added"] > 0 else float("nan")
    fraction = flow_alone / dream_alone
    print(f"clip {clip.name}: {len(source)} frames at {size[0]}x{size[1]}; blend {job.blend:g}, seed {plan.seed}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"source_flicker={ti_source:.3f}")
    for name, r in results.items():
        print(f"flow={name:10s} steps={','.join(map(str, r['steps'])):3s} flicker={r['ti']:.3f} added_flicker={r['added']:.3f} "
              f"dream_strength={r['strength']:.2f} added_per_strength={r['added'] / r['strength']:.3f} "
              f"dream_s/frame={r['dream_t']:.4f}")
    print(f"added_flicker_none={none['added']:.3f} added_flicker_flow={flow['added']:.3f}")
    print(f"flicker_ratio={ratio:.3f} ({'meets' if ratio <= 0.5 else 'MISSES'} <= 0.5; each mode at its default steps; "
          f"dream strength flow/none {flow['strength'] / none['strength']:.2f})")
    if "none@same" in results and results["none@same"]["added"] > 0:
        same = results["none@same"]
        print(f"same_settings_ratio={flow['added'] / same['added']:.3f} (both at {','.join(map(str, flow['steps']))} steps, "
              f"the flow mode's lr; "
              f"dream strength flow/none {flow['strength'] / same['strength']:.2f})")
    print(f"flow_fraction={fraction:.3f} ({'meets' if fraction <= 0.15 else 'MISSES'} <= 0.15; "
          f"flow + mask {flow_alone * 1000:.1f} ms vs dream {dream_alone * 1000:.1f} ms per frame at "
          f"{','.join(map(str, plan.steps))} step(s); in the render loop, flow + warp + blend "
          f"{flow['flow_t'] * 1000:.1f} ms vs dream {flow['dream_t'] * 1000:.1f} ms)")

    if a.sheet:
        pick = np.linspace(0, len(source) - 1, min(6, len(source))).round().astype(int)
        rows = [np.concatenate([frames[i] for i in pick], axis=1)
                for frames in (source, none["frames"], flow["frames"])]
        iio.imwrite(a.sheet, np.concatenate(rows, axis=0))
        print(f"sheet {a.sheet}: rows source / none / farneback, frames {list(pick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
