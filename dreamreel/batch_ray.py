"""``dreamreel batch --ray``: the items of a batch dreamt on a Ray cluster instead of local worker processes.

:class:`BatchOnRay` checks the Ray settings, connects (``distributed.connect``) and runs the items through
``distributed.run_items``: inputs and outputs travel through Ray's object store, and this process alone
publishes the files; the caller owns the manifest. :func:`batch_setup` and :func:`batch_work` are what each
Ray worker runs (the model once, then one item at a time). Ray itself is imported only when a batch asks for it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .batch import Item, Runner, media_kind
from .errors import DreamError


TMP_PREFIX = "dreamreel-ray-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_folders() -> None:
    """Remove the item folders of workers that died without cleaning up (SIGKILL, a lost node): each folder is
    named after its worker's process id, and only folders of processes no longer running go."""
    for d in Path(tempfile.gettempdir()).glob(TMP_PREFIX + "*-*"):
        pid = d.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def batch_setup(options: dict):
    sweep_stale_folders()
    return Runner(options)


def batch_work(runner, meta: dict, data: bytes) -> dict:
    """In a worker: write the input bytes to a private folder, dream it there, return the output and sidecar
    bytes (the sidecar's input/output paths are the driver's). Never raises but for a dying process."""
    from .distributed import node_label
    from .io.sidecar import sidecar_path

    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
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


@dataclass
class BatchOnRay:
    """``batch --ray``: the checked Ray settings, the connection, and the run that publishes results here.

    ``notes`` collects what the caller should tell the user (the library prints nothing).
    """

    address: str | None
    cpus: int
    gpus: float | None  # None: 1 per worker when the cluster has GPUs, else none
    cluster: object = None  # distributed.Cluster, once connected
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, address: str | None = None, *, cpus_per_item: int | None = None,
               gpus_per_item: float | None = None, jobs: int = 1) -> "BatchOnRay":
        """Check the settings (one-line DreamErrors) and that Ray imports; nothing connects yet.

        ``address``: a cluster address, or None/"" for ``RAY_ADDRESS`` or a fresh local cluster.
        ``cpus_per_item``: CPUs (= torch threads) per worker [default: this process's torch threads, so the
        outputs are those of a run without Ray]. ``gpus_per_item``: GPUs per worker, fractions pack several on
        one GPU [default: 1 when the cluster has GPUs].
        """
        from .distributed import import_ray

        address = address or None
        if address and (Path(address).exists() or media_kind(Path(address))):
            raise DreamError(f"--ray took {address!r} as the cluster address",
                             "put --ray after the inputs, or write --ray=ADDRESS")
        if jobs != 1:
            raise DreamError("--jobs and --ray do not mix: Ray runs one worker per --cpus-per-item CPUs (or GPU)")
        if gpus_per_item is not None and gpus_per_item > 1 and gpus_per_item != int(gpus_per_item):
            raise DreamError(f"bad value {gpus_per_item!r} for --gpus-per-item", "a fraction <= 1, or a whole number")
        if cpus_per_item is None:
            import torch

            cpus_per_item = torch.get_num_threads()
        import_ray()
        return cls(address, int(cpus_per_item), gpus_per_item)

    def connect(self) -> None:
        from .distributed import connect

        self.cluster = connect(self.address)
        if self.gpus is not None and self.cluster.gpus() == 0:
            self.cluster.close()
            raise DreamError(f"--gpus-per-item {self.gpus:g}, but the Ray cluster has no GPUs",
                             "leave it out to run on the CPUs")
        most = self.cluster.max_node_cpus()
        if 0 < most < self.cpus and (self.gpus is None and self.cluster.gpus() == 0):
            self.notes.append(f"no Ray node has {self.cpus} CPUs: workers use {most} (outputs can differ from a "
                              f"run with {self.cpus} torch threads)")
            self.cpus = most

    def run(self, todo: list[int], items: list, options: dict, record) -> None:
        """Dream ``items[todo]`` on the cluster; publish each result atomically, then ``record(i, result)``.

        Ctrl-C: the workers are killed, the items at hand stay pending ("interrupted"), and KeyboardInterrupt
        goes on to the caller (which writes the manifest). The connection is closed in any case.
        """
        from .distributed import Failure, run_items
        from .io.images import atomic_path
        from .io.sidecar import sidecar_path
        from .render.frames import Checkpoint

        gpus = self.gpus if self.gpus is not None else (1.0 if self.cluster.gpus() > 0 else 0.0)
        work = []
        for i in todo:
            it = items[i]
            src, out = Path(it.input), Path(it.output)
            meta = {"input": it.input, "output": it.output, "kind": it.kind, "input_name": src.name,
                    "output_name": out.name, "mtime_ns": src.stat().st_mtime_ns if src.exists() else 0}
            work.append((meta, src.read_bytes))
        started: set[int] = set()
        try:
            results = run_items(self.cluster, work, setup=batch_setup, setup_arg=options, work=batch_work,
                                cpus=self.cpus if not gpus else 1, gpus=gpus, started=started)
            try:
                for k, res in results:
                    i = todo[k]
                    if isinstance(res, Failure):
                        res = {"status": "failed", "reason": res.reason, "seconds": None, "node": None}
                    if res["status"] == "done":
                        out = Path(items[i].output)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with atomic_path(out) as tmp:
                            tmp.write_bytes(res.pop("output_bytes"))
                        with atomic_path(sidecar_path(out)) as tmp:  # the worker's sidecar, its versions included
                            tmp.write_text(json.dumps(res.pop("sidecar"), indent=2, default=str) + "\n")
                        if items[i].kind == "video":  # an older local run's partial render of it is superseded
                            Checkpoint(out).remove()
                    started.discard(k)
                    record(i, res)
            finally:
                results.close()
        except KeyboardInterrupt:
            for k in started:  # dispatched, not finished
                items[todo[k]].reason = "interrupted"
            raise
        finally:
            self.cluster.close()
