"""``dreamreel batch``: flags, the manifest's progress and the exit status; the work is in ``dreamreel.batch``
(``dreamreel.batch_ray`` with --ray)."""

from __future__ import annotations

import argparse
import sys

from .flags import add_options, given


def cmd_batch(args) -> int:
    from tqdm import tqdm

    from ..batch import plan_batch, run_batch
    from ..render.runtime import check_path_text

    check_path_text(args.out_dir, "--out-dir")
    for text in args.inputs:
        check_path_text(text, "input")
    options = {**given(args), "preset": args.preset}
    options.pop("jobs", None)
    ray_values = {k: options.pop(k, None) for k in ("cpus_per_item", "gpus_per_item")}  # --ray: not dream options

    def say(line: str) -> None:
        tqdm.write(f"dreamreel: {line}", file=sys.stderr)

    plan = plan_batch(args.inputs, args.out_dir, options, resume=args.resume, jobs=args.jobs, ray=args.ray,
                      ray_values=ray_values, say=say)
    if args.dry_run:
        print("\n".join(plan.lines()))
        return 0
    result = run_batch(plan, show_progress=not args.quiet, say=say)
    c = result.counts
    print(f"batch: {c['done']} done, {c['failed']} failed of {len(plan.items)} -> {plan.out_dir} "
          f"({result.manifest.path.name}; {result.seconds:.1f} s)", file=sys.stderr)
    return 0 if c["failed"] == 0 and c["pending"] == 0 else 1


def register(sub) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to the CLI's subparsers."""
    from ..options import VIDEO_DEFAULTS

    p = sub.add_parser("batch", help="dream many images and videos into a folder", description=(
        "Dream every input into --out-dir: images become dreamt stills (DIR/<stem>.png, with the dream command's "
        "defaults), videos dreamt clips (DIR/<stem>.mp4, with the video command's defaults and the source's "
        "audio). Folders (their media files, not recursive) and globs expand, sorted; a name taken twice gets "
        "-2, -3, .... DIR/manifest.json lists every input with its status (done, failed and why, pending), "
        "output and seconds, rewritten after each item. One failing input does not stop the others. "
        "Exit status: 0 when every input is done, 1 when some failed (see the manifest), 2 for bad arguments "
        "(nothing is dreamt), 130 when interrupted (finished items are kept; continue with --resume)."))
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, or globs ('clips/*.mp4')")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the outputs, their sidecars and manifest.json")
    p.add_argument("--resume", action="store_true",
                   help="skip inputs the manifest lists as done whose output is still there (never rewritten), "
                        "continue an interrupted clip from its checkpoint, and dream the rest")
    p.add_argument("--jobs", default=1, metavar="N",
                   help="worker processes, each loading the model once and using cores/N torch threads; CPU only "
                        "(with a GPU, items run one at a time and N > 1 is refused: the GPU already runs one dream at "
                        "a time, and N models would split its memory). Small items cannot keep several cores busy "
                        "from one process: on a shared 2-core machine, 16 stills at 96 px took 16 s with --jobs 2 "
                        "and 67-220 s with --jobs 1 [default: 1]")
    g = p.add_argument_group("Ray (pip install 'dreamreel[ray]')")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the items on a Ray cluster: ADDRESS (e.g. 10.0.0.5:6379), else the one RAY_ADDRESS "
                        "names, else a fresh local one. Workers load the model once, get inputs through Ray's "
                        "object store and send back the output and sidecar, which this process publishes; a worker "
                        "that dies is restarted and its item retried. Put --ray after the inputs (or --ray=ADDRESS)")
    add_options(p, {"batch": ("cpus_per_item", "gpus_per_item")}, titles={"batch": "Ray workers (with --ray)"})
    add_options(p, {"video": None, "output": None, "dream": None},
                titles={"video": f"videos (each frame: --octaves 1 --steps {VIDEO_DEFAULTS['steps'][0]} --lr "
                                 f"{VIDEO_DEFAULTS['lr'][0][0]:g}, or --steps 3 with --flow none, unless given)"})
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_batch)
    return p
