"""``dreamreel batch``: flags, the manifest's progress and the exit status; the work is in ``dreamreel.batch``
(``dreamreel.batch_ray`` with --ray)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..batch import MANIFEST, Manifest, Runner, assign_outputs, expand_inputs, input_key, own_name, run_parallel
from ..batch_ray import BatchOnRay
from ..errors import DreamError
from .flags import add_options, given


def cmd_batch(args) -> int:
    from ..api import prepare_plans, resolve_values
    from ..options import parse_value
    from ..engine import pick_device
    from ..render.clip import check_flow_method

    from ..render.runtime import check_path_text

    check_path_text(args.out_dir, "--out-dir")
    for text in args.inputs:
        check_path_text(text, "input")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DreamError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    jobs = parse_value("jobs", args.jobs, "--jobs")
    options = {**given(args), "preset": args.preset}
    options.pop("jobs", None)
    ray_values = {k: options.pop(k, None) for k in ("cpus_per_item", "gpus_per_item")}  # --ray: not dream options
    cores = os.cpu_count() or 1
    if jobs > 1 and args.ray is None:  # before the plans: they refuse an absent device; this conflict is the user's
        values, _ = resolve_values("video", {k: v for k, v in options.items() if k != "preset"}, args.preset)
        device = pick_device(values["device"])
        if device.type != "cpu":
            raise DreamError(f"--jobs {jobs} runs several models side by side, but the dream runs on {device.type}: "
                             "one GPU dreams one item at a time", "use --jobs 1, or --device cpu")
        if jobs > cores:
            print(f"dreamreel: --jobs {jobs} is more than the {cores} CPU cores: using {cores}", file=sys.stderr)
            jobs = cores
    job, video_plan, still_plan = prepare_plans(options)  # validates every option now
    check_flow_method(job.flow)
    on_ray = ray_batch(args, jobs, ray_values)  # --ray: checked (and Ray imported) before anything is written
    notes: list[str] = []
    items = expand_inputs(args.inputs, notes)
    previous = Manifest.read(out_dir) if args.resume else {}
    reads = option_inputs(options)
    assign_outputs(items, out_dir, previous, reserved=reads)
    check_batch_outputs(items, out_dir, reads)
    for note in notes:
        print(f"dreamreel: {note}", file=sys.stderr)
    if not items:
        raise DreamError("no images or videos to dream in the inputs given")
    if not any(it.kind for it in items):
        first = items[0]
        raise DreamError(f"nothing to dream: {first.input}: {first.reason}"
                         + (f" (and {len(items) - 1} more inputs that cannot be used)" if len(items) > 1 else ""))
    skip = set()
    if args.resume:
        for i, it in enumerate(items):
            old = previous.get(input_key(it.input))
            if (it.kind and old and old.get("status") == "done" and Path(it.output).exists()
                    and own_name(old.get("output"), it.input, it.kind, out_dir) == Path(it.output).name):
                it.status, it.seconds, it.node = "done", old.get("seconds"), old.get("node")
                skip.add(i)
    todo = [i for i, it in enumerate(items) if it.kind and i not in skip]
    if args.dry_run:
        for it in items:
            state = "done, kept" if it.status == "done" else it.status if it.status == "failed" else "to dream"
            print(f"{it.kind or '-':6s} {it.input}  ->  {it.output or it.reason}  ({state})")
        print(f"{len(todo)} to dream into {out_dir}/, {len(skip)} already done, "
              f"{sum(1 for it in items if it.status == 'failed')} cannot be used; "
              + ("on Ray" if on_ray is not None else f"{jobs} worker{'s' * (jobs > 1)}"))
        return 0
    from ..render.runtime import output_lock

    with output_lock(out_dir / MANIFEST):  # one batch per folder: a second one (or --resume) is refused
        return run_batch(args, items, todo, on_ray, out_dir, options, notes, jobs, cores)


def run_batch(args, items, todo: list[int], on_ray, out_dir: Path, options: dict, notes: list[str], jobs: int,
              cores: int) -> int:
    """Dream the ``todo`` items into ``out_dir``, rewriting the manifest after each; the exit status."""
    from tqdm import tqdm

    if on_ray is not None and todo:  # a cluster that cannot be reached is exit 2, nothing written
        on_ray.connect()
        for note in on_ray.notes:
            print(f"dreamreel: {note}", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir, items, {k: v for k, v in options.items() if v is not None}, notes)
    for it in items:
        if it.status == "failed":
            print(failure_line(it), file=sys.stderr)
    manifest.write()
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="batch", unit="item", dynamic_ncols=True,
               disable=args.quiet)

    def record(i: int, res: dict) -> None:
        it = items[i]
        it.status, it.reason, it.seconds = res["status"], res["reason"], res["seconds"]
        it.node = res.get("node")
        manifest.write()
        if it.status == "failed":
            tqdm.write(failure_line(it), file=sys.stderr)
        if it.status != "pending":
            bar.update(1)

    try:
        if on_ray is not None:  # the driver publishes each result, then record()s it
            if todo:
                on_ray.run(todo, items, options, record)
        elif jobs == 1:
            runner = Runner(options) if todo else None
            for i in todo:
                bar.set_postfix_str(Path(items[i].input).name)
                try:
                    res = runner.run(items[i], show_progress=not args.quiet)
                except KeyboardInterrupt:
                    items[i].reason = "interrupted"
                    raise
                record(i, res)
        else:
            run_parallel(todo, items, options, jobs, max(1, cores // jobs), record)
    except KeyboardInterrupt as exc:
        bar.close()
        manifest.write()
        c = manifest.counts()
        print(f"dreamreel: batch interrupted: {c['done']} of {len(items)} done, {c['failed']} failed; "
              f"{manifest.path} says which; continue with --resume", file=sys.stderr)
        exc.reported = True
        raise
    bar.close()
    manifest.write()
    c = manifest.counts()
    print(f"batch: {c['done']} done, {c['failed']} failed of {len(items)} -> {out_dir} "
          f"({manifest.path.name}; {time.perf_counter() - manifest.t0:.1f} s)", file=sys.stderr)
    return 0 if c["failed"] == 0 and c["pending"] == 0 else 1


def failure_line(item) -> str:
    """``dreamreel: failed: INPUT: REASON`` in one line under 200 characters (the reason is cut, not the input)."""
    from ..errors import MAX_LINE, short_path

    head = f"dreamreel: failed: {short_path(item.input, 60)}: "
    reason = " ".join(str(item.reason).split())
    room = MAX_LINE - len(head)
    return head + (reason if len(reason) <= room else reason[:room - 3] + "...")


def option_inputs(options: dict) -> list[Path]:
    """The files the batch's options read (preset, masks, guides, weights): no output may land on one."""
    from ..api import input_files, resolve_values

    values, _ = resolve_values("video", {k: v for k, v in options.items() if k != "preset"}, options.get("preset"))
    return input_files(values, options.get("preset"))


def check_batch_outputs(items, out_dir: Path, reads: list[Path]) -> None:
    """Refuse a batch whose outputs, their sidecars, the clips' resume folders or the manifest would land on an
    input (the options' files or the items themselves)."""
    from ..render.runtime import check_outputs

    outs = [Path(it.output) for it in items if it.kind and it.output]
    videos = [Path(it.output) for it in items if it.kind == "video" and it.output]
    check_outputs([*reads, *(it.input for it in items if it.kind)], [*outs, out_dir / MANIFEST], sidecars=outs,
                  checkpoints=videos)


def ray_batch(args, jobs: int, values: dict):
    """``--ray``, ``--cpus-per-item``, ``--gpus-per-item`` as a ``batch_ray.BatchOnRay`` (None without --ray)."""
    from ..options import parse_value

    given_values = {k: parse_value(k, v, "--" + k.replace("_", "-")) for k, v in values.items() if v is not None}
    if args.ray is None:
        if given_values:
            raise DreamError(f"--{next(iter(given_values)).replace('_', '-')} needs --ray")
        return None
    return BatchOnRay.create(args.ray, cpus_per_item=given_values.get("cpus_per_item"),
                             gpus_per_item=given_values.get("gpus_per_item"), jobs=jobs)


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
