"""``dreamreel batch``: dream many stills and clips into one folder, with a manifest that survives anything.

Inputs (files, folders, globs) expand to a sorted list of items: images become dreamt stills
(``DIR/<stem>.png``), videos dreamt clips (``DIR/<stem>.mp4``, audio kept). ``DIR/manifest.json`` lists every
item with its status (done / failed with a one-line reason / pending), output and seconds, and is rewritten
atomically after each item, so a crash or Ctrl-C never loses track of what is finished. ``--resume`` skips
items done in the manifest whose output is still there (their files are not touched) and continues an
interrupted clip from its checkpoint.

Each worker loads the model once and reuses it for every item. ``--jobs N`` runs N worker processes on the
CPU, each with cores/N torch threads; with a GPU, items run one at a time (N > 1 is refused).
``batch_ray.BatchOnRay`` runs the items on a Ray cluster instead (``batch --ray``).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DreamError, short_path

MANIFEST = "manifest.json"
GLOB_CHARS = set("*?[")


@dataclass
class Item:
    input: str  # as found (a path string)
    kind: str | None  # "image" | "video" | None (could not be used: see reason)
    output: str | None = None
    status: str = "pending"  # pending | done | failed
    reason: str | None = None
    seconds: float | None = None
    node: str | None = None  # --ray: the node that dreamt it (left out of the manifest without Ray)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if data["node"] is None:
            data.pop("node")
        return data


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


def input_key(path: str) -> str:
    return os.path.realpath(path)


# ---------------------------------------------------------------- manifest


def _manifest_problem(data) -> str | None:
    """Why ``data`` is not a manifest this module wrote, or None."""
    if not isinstance(data, dict) or data.get("command") != "batch" or not isinstance(data.get("items"), list):
        return "no 'command': 'batch' and 'items' list"
    for n, it in enumerate(data["items"], 1):
        if not isinstance(it, dict):
            return f"item {n} is not an object"
        if not isinstance(it.get("input"), str) or not it["input"]:
            return f"item {n} has no input path"
        if it.get("kind") not in ("image", "video", None):
            return f"item {n} has an unknown kind"
        if it.get("status") not in ("pending", "done", "failed"):
            return f"item {n} has an unknown status"
        if it.get("output") is not None and not isinstance(it["output"], str):
            return f"item {n} has a bad output"
        if it.get("seconds") is not None and (not isinstance(it["seconds"], (int, float)) or isinstance(it["seconds"], bool)):
            return f"item {n} has bad seconds"
        if any(ord(c) < 32 for c in it["input"] + (it.get("output") or "")):
            return f"item {n} has a control character in a path"
    return None



class Manifest:
    def __init__(self, out_dir: Path, items: list[Item], options: dict, notes: list[str]):
        self.path = out_dir / MANIFEST
        self.items = items
        self.options = options
        self.notes = notes
        self.t0 = time.perf_counter()

    @staticmethod
    def read(out_dir: Path) -> dict[str, dict]:
        """The previous manifest's items by input (empty when there is none); one that is not a batch manifest
        (garbage, the wrong shape, control characters in its paths) is a one-line DreamError."""
        path = out_dir / MANIFEST
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DreamError(f"cannot --resume: {short_path(path)} is not a readable batch manifest ({type(exc).__name__})",
                             "remove it to start the batch over") from None
        problem = _manifest_problem(data)
        if problem:
            raise DreamError(f"cannot --resume: {short_path(path)} is not a batch manifest ({problem})",
                             "remove it to start the batch over")
        return {input_key(i["input"]): i for i in data["items"]}

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "pending": 0}
        for it in self.items:
            out[it.status] = out.get(it.status, 0) + 1
        return out

    def write(self) -> None:
        """Rewrite the manifest atomically; one that already says the same (a --resume with nothing left to do)
        is left alone, so such a run touches no file at all."""
        from .io.images import atomic_path

        data = {"command": "batch", "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **self.counts(),
                "seconds": round(time.perf_counter() - self.t0, 3), "options": self.options, "notes": self.notes,
                "items": [it.to_json() for it in self.items]}
        try:
            old = json.loads(self.path.read_text())
            volatile = ("updated", "seconds")
            if {k: v for k, v in old.items() if k not in volatile} == \
                    json.loads(json.dumps({k: v for k, v in data.items() if k not in volatile}, default=str)):
                return
        except (OSError, ValueError, AttributeError):
            pass
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


# ---------------------------------------------------------------- work


class Runner:
    """One worker's model (loaded once) and the plans for stills and clips; dreams one item at a time."""

    def __init__(self, options: dict):
        from .api import prepare_plans
        from .render.runtime import Engine

        self.options = options
        self.job, self.video_plan, self.still_plan = prepare_plans(options)
        self.engine = Engine.load(self.video_plan)  # stills and clips share the model and objective
        self.still_engine = dataclasses.replace(self.engine, plan=self.still_plan)

    def run(self, item: Item, *, show_progress: bool) -> dict:
        """Dream ``item`` into its output; returns {"status", "reason", "seconds"} (never raises but Ctrl-C)."""
        t0 = time.perf_counter()
        try:
            if item.kind == "image":
                self._still(Path(item.input), Path(item.output), show_progress)
            else:
                self._clip(Path(item.input), Path(item.output), show_progress)
        except KeyboardInterrupt:
            raise
        except DreamError as exc:
            return {"status": "failed", "reason": str(exc), "seconds": round(time.perf_counter() - t0, 3)}
        except OSError as exc:
            from .errors import os_error_message

            reason = os_error_message(exc)
            return {"status": "failed", "reason": reason, "seconds": round(time.perf_counter() - t0, 3)}
        except Exception as exc:  # one bad input must not stop the batch
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            return {"status": "failed", "reason": f"{type(exc).__name__}: {first}",
                    "seconds": round(time.perf_counter() - t0, 3)}
        return {"status": "done", "reason": None, "seconds": round(time.perf_counter() - t0, 3)}

    def _still(self, src: Path, out: Path, show_progress: bool) -> None:
        from .render.still import dream_still
        from .render.runtime import Source

        dream_still(self.still_plan, Source(src), out, show_progress=show_progress, engine=self.still_engine,
                    desc=src.name)

    def _clip(self, src: Path, out: Path, show_progress: bool) -> None:
        from .render.clip import render_video
        from .render.frames import Checkpoint

        render_video(self.video_plan, src, out, self.job, resume=Checkpoint(out).exists(),
                     show_progress=show_progress, engine=self.engine)


def _interrupt_once(signum, frame):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the checkpoint short
    raise KeyboardInterrupt


def _worker(tasks, results, options: dict, threads: int) -> None:
    """A worker process: one model, items from ``tasks`` until None. Ctrl-C interrupts the item at hand only."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)
    try:
        runner = Runner(options)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the batch
        results.put(("fatal", None, f"{exc}"))
        return
    results.put(("ready", None, None))
    while True:
        task = tasks.get()
        if task is None:
            return
        index, item = task
        signal.signal(signal.SIGINT, _interrupt_once)
        try:
            res = runner.run(item, show_progress=False)
        except KeyboardInterrupt:
            res = {"status": "pending", "reason": "interrupted", "seconds": None}
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        results.put(("done", index, res))


def run_parallel(todo: list[int], items: list[Item], options: dict, jobs: int, threads: int, record) -> None:
    """``jobs`` spawned worker processes, one model each, fed one item at a time (so Ctrl-C stops the batch
    after the items at hand, each of which keeps what it finished)."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # no fork of a process that holds torch's thread pools
    tasks, results = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(tasks, results, options, threads), daemon=True)
               for _ in range(min(jobs, len(todo)) or 1)]
    for w in workers:
        w.start()
    pending = list(todo)
    in_flight = finished = 0
    try:
        while finished < len(todo):
            try:
                kind, index, res = results.get(timeout=1.0)
            except queue_mod.Empty:
                if not any(w.is_alive() for w in workers):
                    raise DreamError("the batch workers stopped unexpectedly") from None
                continue
            if kind == "fatal":
                raise DreamError(f"a batch worker could not start: {res}")
            if kind == "done":
                in_flight -= 1
                finished += 1
                record(index, res)
            if pending:  # the worker that said "ready" or "done" is free: one item at a time
                tasks.put((pending[0], items[pending.pop(0)]))
                in_flight += 1
    except KeyboardInterrupt:
        for w in workers:  # the items at hand stop and keep what they finished (a terminal's Ctrl-C reached them too)
            if w.is_alive():
                try:
                    os.kill(w.pid, signal.SIGINT)
                except OSError:
                    pass
        deadline = time.time() + 60
        while in_flight and time.time() < deadline:
            try:
                kind, index, res = results.get(timeout=0.5)
            except queue_mod.Empty:
                if not any(w.is_alive() for w in workers):
                    break
                continue
            if kind == "done":
                in_flight -= 1
                items[index].status, items[index].reason, items[index].seconds = res["status"], res["reason"], res["seconds"]
        raise
    finally:
        for _ in workers:
            tasks.put(None)
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
