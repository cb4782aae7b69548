"""``dreamreel batch --ray``: the items of a batch dreamt on a Ray cluster instead of local worker processes.

:class:`BatchOnRay` checks the Ray settings, connects (``distributed.connect``) and runs the items through
``executors.OnRay``: inputs and outputs travel through Ray's object store, and this process alone
publishes the files; the caller owns the manifest. ``batch.ray_setup`` and ``batch.ray_work`` are what each
Ray worker runs (the model once, then one item at a time). Ray itself is imported only when a batch asks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DreamError
from .executors import Failure, OnRay, sweep_scratch


TMP_PREFIX = "dreamreel-ray-"


def sweep_stale_folders() -> None:
    """Remove the item folders of workers that died without cleaning up (SIGKILL, a lost node)."""
    sweep_scratch(TMP_PREFIX)


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
               gpus_per_item: float | None = None, jobs: int = 1, is_input=None) -> "BatchOnRay":
        """Check the settings (one-line DreamErrors) and that Ray imports; nothing connects yet.

        ``address``: a cluster address, or None/"" for ``RAY_ADDRESS`` or a fresh local cluster.
        ``cpus_per_item``: CPUs (= torch threads) per worker [default: this process's torch threads, so the
        outputs are those of a run without Ray]. ``gpus_per_item``: GPUs per worker, fractions pack several on
        one GPU [default: 1 when the cluster has GPUs].
        """
        from .distributed import import_ray

        address = address or None
        if address and (Path(address).exists() or (is_input is not None and is_input(address))):
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
        """Join the cluster (one-line DreamErrors); ``notes`` says what the caller should tell the user."""
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

    @classmethod
    def from_flags(cls, address: str | None, values: dict, jobs: int, is_input=None) -> "BatchOnRay | None":
        """``--ray``, ``--cpus-per-item``, ``--gpus-per-item`` (raw flag values) as a BatchOnRay; None without --ray."""
        from .options import parse_value

        given = {k: parse_value(k, v, "--" + k.replace("_", "-")) for k, v in values.items() if v is not None}
        if address is None:
            if given:
                raise DreamError(f"--{next(iter(given)).replace('_', '-')} needs --ray")
            return None
        return cls.create(address, cpus_per_item=given.get("cpus_per_item"), gpus_per_item=given.get("gpus_per_item"),
                          jobs=jobs, is_input=is_input)

    def executor(self) -> OnRay:
        gpus = self.gpus if self.gpus is not None else (1.0 if self.cluster.gpus() > 0 else 0.0)
        return OnRay(self.cluster, cpus=self.cpus if not gpus else 1, gpus=gpus, scratch=TMP_PREFIX)

    @staticmethod
    def tasks(items: list) -> list:
        """Each item's meta and the reader of its input bytes (read only when the item is dispatched)."""
        out = []
        for it in items:
            src, dst = Path(it.input), Path(it.output)
            meta = {"input": it.input, "output": it.output, "kind": it.kind, "input_name": src.name,
                    "output_name": dst.name, "mtime_ns": src.stat().st_mtime_ns if src.exists() else 0}
            out.append((meta, src.read_bytes))
        return out

    @staticmethod
    def publish(item, res) -> dict:
        """A worker's result for ``item``, its output and sidecar published here atomically; the manifest's fields."""
        from .io.images import atomic_path
        from .io.sidecar import sidecar_path
        from .render.frames import Checkpoint

        if isinstance(res, Failure):
            return {"status": "failed", "reason": res.reason, "seconds": None, "node": None}
        if res["status"] == "done":
            out = Path(item.output)
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out) as tmp:
                tmp.write_bytes(res.pop("output_bytes"))
            with atomic_path(sidecar_path(out)) as tmp:  # the worker's sidecar, its versions included
                tmp.write_text(json.dumps(res.pop("sidecar"), indent=2, default=str) + "\n")
            if item.kind == "video":  # an older local run's partial render of it is superseded
                Checkpoint(out).remove()
        return res
