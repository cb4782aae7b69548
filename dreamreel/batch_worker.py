"""What a batch worker runs: one model (loaded once) for stills and clips, one item at a time, where the item's
input is (this process, a local worker) or from bytes in a scratch folder (a Ray worker)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

from .errors import DreamError
from .manifest import Item


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


def batch_setup(options: dict) -> Runner:
    return Runner(options)


def batch_work(runner: Runner, meta: dict, data) -> dict:
    """One item where its input is (this process or a local worker): the runner's result."""
    return runner.run(meta["item"], show_progress=meta.get("show_progress", False))


def ray_setup(options: dict) -> Runner:
    from .batch_ray import sweep_stale_folders

    sweep_stale_folders()
    return Runner(options)


def ray_work(runner: Runner, meta: dict, data: bytes) -> dict:
    """In a worker: write the input bytes to a private folder, dream it there, return the output and sidecar
    bytes (the sidecar's input/output paths are the driver's). Never raises but for a dying process."""
    from .batch_ray import TMP_PREFIX
    from .distributed import node_label
    from .executors import scratch_dir
    from .io.sidecar import sidecar_path

    tmp = scratch_dir(TMP_PREFIX)
    try:
        src = tmp / "in" / meta["input_name"]
        out = tmp / "out" / meta["output_name"]
        src.parent.mkdir()
        out.parent.mkdir()
        src.write_bytes(data)
        os.utime(src, ns=(meta["mtime_ns"], meta["mtime_ns"]))
        res = dict(runner.run(Item(str(src), meta["kind"], output=str(out)), show_progress=False))
        res["node"] = node_label()
        if res["status"] == "failed" and res.get("reason"):  # name the driver's paths, not this temp copy's
            res["reason"] = driver_paths(res["reason"], {src: meta["input"], out: meta["output"]})
        if res["status"] == "done":
            res["output_bytes"] = out.read_bytes()
            side = json.loads(sidecar_path(out).read_text())
            side["input"], side["output"] = meta["input"], meta["output"]
            side["node"] = res["node"]
            res["sidecar"] = side
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def driver_paths(text: str, paths: dict[Path, str]) -> str:
    """``text`` with each worker path (whole, or as errors.short_path shortened it) replaced by the driver's."""
    import re

    from .errors import short_path

    def swap(m: re.Match) -> str:
        return next((short_path(d) for w, d in paths.items() if str(w).endswith(m.group(1))), m.group(0))

    for worker, driver in paths.items():
        text = text.replace(repr(str(worker)), short_path(driver)).replace(str(worker), driver)
    return re.sub(r"'\.\.\.([^']+)'", swap, text)
