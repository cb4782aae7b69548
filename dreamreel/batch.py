"""``dreamreel batch``: dream many stills and clips into one folder, with a manifest that survives anything.

Inputs (files, folders, globs) expand to a sorted list of items: images become dreamt stills
(``DIR/<stem>.png``), videos dreamt clips (``DIR/<stem>.mp4``, audio kept). ``DIR/manifest.json`` lists every
item with its status (done / failed with a one-line reason / pending), output and seconds, and is rewritten
atomically after each item, so a crash or Ctrl-C never loses track of what is finished. ``--resume`` skips
items done in the manifest whose output is still there (their files are not touched) and continues an
interrupted clip from its checkpoint.

Each worker loads the model once and reuses it for every item. ``--jobs N`` runs N worker processes on the
CPU, each with cores/N torch threads; with a GPU, items run one at a time (N > 1 is refused).
``batch_ray.BatchOnRay`` runs the items on a Ray cluster instead (``batch --ray``). The items run through an
``executors.Executor`` (this process, local processes, or Ray); :func:`plan_batch` and :func:`run_batch` are
the ``dreamreel.batch`` verb, which the CLI calls.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DreamError
from .manifest import MANIFEST, Item, Manifest, input_key

GLOB_CHARS = set("*?[")


# ---------------------------------------------------------------- inputs


def media_kind(path: Path) -> str | None:
    """"video" (by suffix, or an animated GIF), "image" (a still suffix or a still GIF), or None."""
    from .io.images import STILL_SUFFIXES
    from .io.readers import is_video_path

    if is_video_path(path):
        return "video"
    if path.suffix.lower() in STILL_SUFFIXES or path.suffix.lower() == ".gif":
        return "image"
    return None


def expand_inputs(inputs: list[str], notes: list[str]) -> list[Item]:
    """Files as given, folders' media files (sorted, not recursive), glob matches (sorted); the same file once.

    A missing path, an empty glob or a file that is neither image nor video becomes a failed item (the others
    still run); non-media files inside folders are skipped with a note.
    """
    items: list[Item] = []
    seen: set[str] = set()

    def add(path: Path, kind: str | None, reason: str | None = None) -> None:
        key = os.path.realpath(path) if path.exists() else str(path)
        if key in seen:
            return
        seen.add(key)
        items.append(Item(str(path), kind, status="failed" if reason else "pending", reason=reason))

    def add_file(path: Path) -> None:
        if any(ord(c) < 32 or ord(c) == 127 for c in str(path)):
            add(path, None, "its name holds a control character (a newline?); rename it")
            return
        kind = media_kind(path)
        add(path, kind, None if kind else f"not an image or video file ({path.suffix or 'no suffix'})")

    for text in inputs:
        p = Path(text)
        if p.is_dir():
            entries = sorted(e for e in p.iterdir() if not e.name.startswith("."))
            skipped = [e.name for e in entries if e.is_file() and media_kind(e) is None]
            for e in entries:
                if e.is_file() and media_kind(e):
                    add_file(e)
            if skipped:
                shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
                notes.append(f"skipped {len(skipped)} file{'s' * (len(skipped) > 1)} in {text} that "
                             f"{'are' if len(skipped) > 1 else 'is'} not an image or video: {shown}")
        elif p.exists():
            add_file(p)
        elif GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                add(p, None, "no files match this pattern")
            for f in files:
                if media_kind(f):
                    add_file(f)
            skipped = [f.name for f in files if media_kind(f) is None]
            if skipped:
                notes.append(f"skipped {len(skipped)} file{'s' * (len(skipped) > 1)} matching {text} that "
                             f"{'are' if len(skipped) > 1 else 'is'} not an image or video: {', '.join(skipped[:5])}")
        else:
            add(p, None, "does not exist")
    return items


def assign_outputs(items: list[Item], out_dir: Path, previous: dict[str, dict], reserved: list[Path] = ()) -> None:
    """``DIR/<stem>.png`` or ``.mp4``; a stem already taken (by another item, an input in DIR, or the manifest)
    gets ``-2``, ``-3``, ... (so does one that would land on a ``reserved`` file: what the options read). Outputs derive from ``out_dir`` and the inputs only: an item known from a previous
    manifest keeps its ``-N`` name only when that name is one this item could get (``DIR/<stem>[-N].<suffix>``),
    so a tampered manifest cannot point an output anywhere else."""
    taken = {"manifest"}
    for old in previous.values():  # names a previous run wrote stay reserved for their own inputs
        if (name := own_name(old.get("output"), old.get("input"), old.get("kind"), out_dir)) is not None:
            taken.add(Path(name).stem.lower())
    for it in items:
        old = previous.get(input_key(it.input))
        if it.kind and old and old.get("kind") == it.kind:
            if (name := own_name(old.get("output"), it.input, it.kind, out_dir)) is not None:
                it.output = str(out_dir / name)
    inputs_here = {os.path.realpath(p) for p in [*(it.input for it in items), *reserved] if Path(p).exists()}
    for it in items:
        if not it.kind or it.output:
            continue
        stem, suffix = Path(it.input).stem, _suffix(it.kind)
        name, n = stem, 1
        while name.lower() in taken or os.path.realpath(out_dir / (name + suffix)) in inputs_here:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name.lower())
        it.output = str(out_dir / (name + suffix))


def _suffix(kind: str) -> str:
    return ".png" if kind == "image" else ".mp4"


def own_name(output, input_path, kind, out_dir: Path) -> str | None:
    """The file name of a manifest's ``output`` if it is one the item's input could get in ``out_dir``
    (``<stem>.<suffix>`` or ``<stem>-N.<suffix>``, directly in ``out_dir``), else None."""
    import re

    if not (isinstance(output, str) and isinstance(input_path, str) and kind in ("image", "video")):
        return None
    out = Path(output)
    if os.path.realpath(out.parent) != os.path.realpath(out_dir):
        return None
    stem = Path(input_path).stem
    if not re.fullmatch(re.escape(stem) + r"(-[1-9]\d{0,5})?" + re.escape(_suffix(kind)), out.name):
        return None
    return out.name


# ---------------------------------------------------------------- the verb


@dataclass
class BatchPlan:
    """A checked batch: its items (outputs assigned, done ones from --resume marked), the options and the executor."""

    out_dir: Path
    items: list[Item]
    todo: list[int]
    skipped: int
    options: dict
    notes: list[str]
    jobs: int
    on_ray: object = None  # batch_ray.BatchOnRay with --ray

    def lines(self) -> list[str]:
        """The --dry-run listing."""
        out = []
        for it in self.items:
            state = "done, kept" if it.status == "done" else it.status if it.status == "failed" else "to dream"
            out.append(f"{it.kind or '-':6s} {it.input}  ->  {it.output or it.reason}  ({state})")
        out.append(f"{len(self.todo)} to dream into {self.out_dir}/, {self.skipped} already done, "
                   f"{sum(1 for it in self.items if it.status == 'failed')} cannot be used; "
                   + ("on Ray" if self.on_ray is not None else f"{self.jobs} worker{'s' * (self.jobs > 1)}"))
        return out


def _workers(options: dict, jobs: int, ray, say) -> int:
    """--jobs checked against the device and the cores (before the plans: a GPU conflict is the user's)."""
    from .api import resolve_values
    from .engine import pick_device

    cores = os.cpu_count() or 1
    if jobs > 1 and ray is None:
        values, _ = resolve_values("video", {k: v for k, v in options.items() if k != "preset"}, options.get("preset"))
        device = pick_device(values["device"])
        if device.type != "cpu":
            raise DreamError(f"--jobs {jobs} runs several models side by side, but the dream runs on {device.type}: "
                             "one GPU dreams one item at a time", "use --jobs 1, or --device cpu")
        if jobs > cores:
            say(f"--jobs {jobs} is more than the {cores} CPU cores: using {cores}")
            jobs = cores
    return jobs


def plan_batch(inputs: list[str], out_dir, options: dict, *, resume: bool = False, jobs=1,
               ray: str | None = None, ray_values: dict | None = None, say=lambda line: None) -> BatchPlan:
    """Check everything a batch needs before anything is written (one-line DreamErrors); ``say`` gets notes."""
    from .api import prepare_plans
    from .batch_ray import BatchOnRay
    from .render.clip import check_flow_method

    from .options import parse_value

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DreamError(f"--out-dir {str(out_dir)!r} is a file, not a folder")
    jobs = _workers(options, parse_value("jobs", jobs, "--jobs"), ray, say)
    job, _, _ = prepare_plans(options)  # validates every option now
    check_flow_method(job.flow)
    on_ray = BatchOnRay.from_flags(ray, ray_values or {}, jobs, is_input=lambda a: media_kind(Path(a)) is not None)  # checked (and Ray imported) before anything is written
    notes: list[str] = []
    items = expand_inputs(inputs, notes)
    previous = Manifest.read(out_dir) if resume else {}
    reads = option_inputs(options)
    assign_outputs(items, out_dir, previous, reserved=reads)
    check_batch_outputs(items, out_dir, reads)
    for note in notes:
        say(note)
    if not items:
        raise DreamError("no images or videos to dream in the inputs given")
    if not any(it.kind for it in items):
        first = items[0]
        raise DreamError(f"nothing to dream: {first.input}: {first.reason}"
                         + (f" (and {len(items) - 1} more inputs that cannot be used)" if len(items) > 1 else ""))
    skip = set()
    if resume:
        for i, it in enumerate(items):
            old = previous.get(input_key(it.input))
            if (it.kind and old and old.get("status") == "done" and Path(it.output).exists()
                    and own_name(old.get("output"), it.input, it.kind, out_dir) == Path(it.output).name):
                it.status, it.seconds, it.node = "done", old.get("seconds"), old.get("node")
                skip.add(i)
    todo = [i for i, it in enumerate(items) if it.kind and i not in skip]
    return BatchPlan(out_dir, items, todo, len(skip), options, notes, jobs, on_ray)


@dataclass
class BatchResult:
    manifest: Manifest
    counts: dict[str, int]
    seconds: float


def option_inputs(options: dict) -> list[Path]:
    """The files the batch's options read (preset, masks, guides, weights): no output may land on one."""
    from .api import input_files, resolve_values

    values, _ = resolve_values("video", {k: v for k, v in options.items() if k != "preset"}, options.get("preset"))
    return input_files(values, options.get("preset"))


def check_batch_outputs(items, out_dir: Path, reads: list[Path]) -> None:
    """Refuse a batch whose outputs, their sidecars, the clips' resume folders or the manifest would land on an
    input (the options' files or the items themselves)."""
    from .render.runtime import check_outputs

    outs = [Path(it.output) for it in items if it.kind and it.output]
    videos = [Path(it.output) for it in items if it.kind == "video" and it.output]
    check_outputs([*reads, *(it.input for it in items if it.kind)], [*outs, out_dir / MANIFEST], sidecars=outs,
                  checkpoints=videos)


def failure_line(item) -> str:
    """``failed: INPUT: REASON`` in one line that stays under 200 characters with the CLI's ``dreamreel: ``
    (the reason is cut, not the input)."""
    from .errors import MAX_LINE, short_path

    head = f"failed: {short_path(item.input, 60)}: "
    reason = " ".join(str(item.reason).split())
    room = MAX_LINE - len("dreamreel: ") - len(head)
    return head + (reason if len(reason) <= room else reason[:room - 3] + "...")


def run_batch(plan: BatchPlan, *, show_progress: bool = False, say=lambda line: None) -> BatchResult:
    """Dream ``plan``'s items, rewriting the manifest after each; ``say`` gets the failure lines as they come.
    One batch per folder at a time: a second one (or a --resume) is refused while the manifest's lock is held.

    Ctrl-C/SIGTERM: the items at hand keep what they finished, the manifest is written, and the interruption goes
    on carrying the summary line in its outcome."""
    from .render.runtime import output_lock

    if plan.on_ray is not None and plan.todo:  # a cluster that cannot be reached is exit 2, nothing written
        plan.on_ray.connect()
        for note in plan.on_ray.notes:
            say(note)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(plan.out_dir / MANIFEST):
        return _run_locked(plan, show_progress, say)


def _run_locked(plan: BatchPlan, show_progress: bool, say) -> BatchResult:
    from tqdm import tqdm

    from .outcome import reraise

    items, todo, on_ray = plan.items, plan.todo, plan.on_ray
    manifest = Manifest(plan.out_dir, items, {k: v for k, v in plan.options.items() if v is not None}, plan.notes)
    for it in items:
        if it.status == "failed":
            say(failure_line(it))
    manifest.write()
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="batch", unit="item", dynamic_ncols=True,
               disable=not show_progress)

    def record(k: int, res: dict) -> None:
        it = items[todo[k]]
        if on_ray is not None:
            res = on_ray.publish(it, res)
        it.status, it.reason, it.seconds = res["status"], res["reason"], res["seconds"]
        it.node = res.get("node")
        manifest.write()
        if it.status == "failed":
            say(failure_line(it))
        if it.status != "pending":
            bar.update(1)

    def stopped(k: int, res: dict | None) -> None:  # started, not finished: what the worker said, else interrupted
        it = items[todo[k]]
        if res is None:
            it.reason = "interrupted"
        else:
            it.status, it.reason, it.seconds = res["status"], res["reason"], res["seconds"]

    try:
        if todo:
            setup, work, executor = _executor(plan, bar)
            tasks = on_ray.tasks([items[i] for i in todo]) if on_ray is not None else \
                [({"item": items[i], "show_progress": show_progress and plan.jobs == 1}, None) for i in todo]
            executor.run(tasks, setup, plan.options, work, record, stopped)
    except KeyboardInterrupt as exc:
        bar.close()
        manifest.write()
        c = manifest.counts()
        reraise(exc, summary=f"batch interrupted: {c['done']} of {len(items)} done, {c['failed']} failed; "
                             f"{manifest.path} says which; continue with --resume")
    bar.close()
    manifest.write()
    return BatchResult(manifest, manifest.counts(), time.perf_counter() - manifest.t0)


def write_batch(inputs, out_dir, *, preset: str | None = None, resume: bool = False, jobs: int = 1,
                ray: str | None = None, cpus_per_item: int | None = None, gpus_per_item: float | None = None,
                show_progress: bool = False, **options) -> BatchResult:
    """Dream every input (files, folders, globs) into ``out_dir`` as ``dreamreel batch`` does; ``ray``: a cluster
    address ("" for RAY_ADDRESS or a fresh local cluster). Options are the dream and video keywords."""
    inputs = [str(i) for i in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    plan = plan_batch(inputs, out_dir, {**options, "preset": preset}, resume=resume, jobs=jobs, ray=ray,
                      ray_values={"cpus_per_item": cpus_per_item, "gpus_per_item": gpus_per_item})
    return run_batch(plan, show_progress=show_progress)


def _executor(plan: BatchPlan, bar):
    """(setup, work, executor) for ``plan``: Ray, local worker processes, or this process."""
    from .executors import InProcess, LocalProcesses

    from .batch_worker import batch_setup, batch_work, ray_setup, ray_work

    if plan.on_ray is not None:
        return ray_setup, ray_work, plan.on_ray.executor()
    if plan.jobs > 1:
        cores = os.cpu_count() or 1
        return batch_setup, batch_work, LocalProcesses(plan.jobs, max(1, cores // plan.jobs), what="batch worker")
    names = [Path(plan.items[i].input).name for i in plan.todo]
    return batch_setup, batch_work, InProcess(on_start=lambda k: bar.set_postfix_str(names[k]))
