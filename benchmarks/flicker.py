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

Deflicker (``--deflicker S``, default on with a flow): the flow mode is run with ``--deflicker 0`` and with S,
and the frame-to-frame change of the *still* regions (source pixels that neither move, by the source's flow,
nor change by more than a few grey levels) is compared, beside each run's dream strength:

    still_ratio=X     still-region change added by the dream, with the filter / without (target <= 0.5)
    strength_ratio=X  mean |dream - source| with the filter / without (the same strength: within ~10%)

``--clip patch`` dreams a clip made here instead: a still photo (coffee.png) with a slowly moving patch.

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
    ap.add_argument("--deflicker", default=None, help="the deflicker strength compared with 0 [default: the video command's]")
    a, extra = ap.parse_known_args(argv)  # anything else is passed on as a dreamreel video flag (e.g. --jitter 8)

    import torch

    torch.set_num_threads(a.threads)
    import imageio.v3 as iio

    from dreamreel.api import prepare_clip
    from dreamreel.cli import build_parser
    from dreamreel.cli.flags import given
    from dreamreel.render.carry import carry_flow
    from dreamreel.render.clip import plan_clip, render_video
    from dreamreel.io.outputs import read_frames
    from dreamreel.io.images import from_uint8
    from dreamreel.render.runtime import Engine, run_dream
    from dreamreel.io.readers import iter_frames
    from dreamreel.render.flow import clip_flow, still_change, still_masks, temporal_inconsistency

    if a.clip == "patch":
        a.clip = str(patch_clip(Path(tempfile.mkdtemp(prefix="flicker-"))))
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

    from dreamreel.render.deflicker import DEFAULT_DEFLICKER

    deflicker = a.deflicker or f"{DEFAULT_DEFLICKER:g}"
    plan, job = setup("farneback", "--deflicker", "0")
    info = plan_clip(clip, plan, job)
    size = info.size
    engine = Engine.load(plan)  # one model for every run

    source = list(iter_frames(clip, start=job.start, end=job.end, size=size))
    motion = clip_flow(source, method="farneback")
    ti_source = temporal_inconsistency(source, motion)
    still = still_masks(source, motion)
    still_source = still_change(source, still)

    runs = {"none": setup("none"), "farneback": (plan, job), "deflicker": setup("farneback", "--deflicker", deflicker)}
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
                             "still": still_change(frames, still) - still_source,
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

    print_still(results["farneback"], results["deflicker"], deflicker, still, still_source)
    if a.sheet:
        pick = np.linspace(0, len(source) - 1, min(6, len(source))).round().astype(int)
        rows = [np.concatenate([frames[i] for i in pick], axis=1)
                for frames in (source, none["frames"], flow["frames"])]
        iio.imwrite(a.sheet, np.concatenate(rows, axis=0))
        print(f"sheet {a.sheet}: rows source / none / farneback, frames {list(pick)}")
    return 0


def print_still(off: dict, on: dict, deflicker: str, still: list, still_source: float) -> None:
    """The still regions' change added by the dream without and with the deflicker filter, beside the strengths."""
    print(f"still regions: {np.mean([m.mean() for m in still]):.1%} of the pixels; the source's own change there "
          f"{still_source:.3f}")
    print(f"deflicker 0: still_change_added={off['still']:.3f} dream_strength={off['strength']:.2f}; deflicker {deflicker}: "
          f"still_change_added={on['still']:.3f} dream_strength={on['strength']:.2f}")
    print(f"still_ratio={on['still'] / off['still']:.3f} ({'meets' if on['still'] <= 0.5 * off['still'] else 'MISSES'} "
          f"<= 0.5); strength_ratio={on['strength'] / off['strength']:.3f}")


def patch_clip(folder: Path) -> Path:
    """A clip made here: coffee.png held still, a 40x40 patch of chelsea.png crossing it at 1 px a frame."""
    import imageio.v3 as iio

    from dreamreel.io.writer import open_writer

    data = Path(__file__).resolve().parents[2] / "shared/data"
    still = iio.imread(data / "coffee.png")[..., :3][::2, ::2]
    patch = iio.imread(data / "chelsea.png")[..., :3][100:140, 200:240]
    out = folder / "patch.mp4"
    with open_writer(out, fps=12, crf=10) as w:
        for k in range(36):
            frame = still.copy()
            y, x = 60, 40 + k
            frame[y:y + 40, x:x + 40] = patch
            w.append(frame)
    return out


if __name__ == "__main__":
    sys.exit(main())
