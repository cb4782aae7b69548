"""Work items on a Ray cluster: one model per worker, inputs and outputs through the object store.

:func:`connect` joins a cluster (an address, ``RAY_ADDRESS``, or a fresh local one) and :func:`run_items`
runs a list of work items on Ray actors: each actor calls a picklable ``setup(arg)`` once (it loads the
model) and then ``work(state, meta, data)`` per item, where ``data`` is the item's input as bytes, fetched
from the object store (workers need no shared file system). Results come back to the driver as they
finish, in any order; the driver alone writes files. An actor whose process dies mid-item is restarted by
Ray (its ``setup`` runs again) and the item retried, up to ``retries`` times; a dead actor's item never
yields two results. Ctrl-C on the driver kills the actors and leaves the items at hand unfinished.

``batch --ray`` (``batch_ray.BatchOnRay``) is the first user; ``render.segments`` (``video --segments``) the second.
Nothing here prints or parses flags: the CLI (``cli/batch.py``, ``cli/commands.py``) does.

Float results of the dream depend on torch's thread count (realshort.mp4 at 48 px: frames differ by up to
26 grey levels between 1 and 2 threads; the same thread count gives the same bytes), so each worker runs
torch with as many threads as CPUs it claims, and by default claims what a run without Ray would use:
``torch.get_num_threads()`` in the driver. Outputs are then identical to a run on one machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .errors import DreamError

EXTRA_HINT = "install it with: pip install 'dreamreel[ray]'"


def import_ray():
    """The ``ray`` module, or a one-line DreamError naming the extra that brings it."""
    try:
        import ray
    except ImportError:
        raise DreamError("--ray needs the Ray package, which is not installed", EXTRA_HINT) from None
    return ray


# ---------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """A connection to a Ray cluster; ``close`` disconnects (and stops a local cluster this process started)."""

    ray: object
    address: str  # as given: "local", an address, or "(already connected)"
    owned: bool  # this process called ray.init (and so must call ray.shutdown)
    stderr: tuple | None = None  # while connected: (the terminal's fd, Python's earlier sys.stderr), see _c_stderr_off

    def nodes(self) -> list[dict]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def slots(self, cpus: float, gpus: float) -> int:
        """How many workers claiming ``cpus`` CPUs and ``gpus`` GPUs fit on the live nodes, node by node."""
        total = 0
        for n in self.nodes():
            res = n.get("Resources", {})
            fit = int(res.get("CPU", 0) // cpus) if cpus > 0 else 10**6
            if gpus > 0:
                fit = min(fit, int(res.get("GPU", 0) / gpus + 1e-9))
            total += fit if fit < 10**6 else 0
        return total

    def gpus(self) -> float:
        return float(self.ray.cluster_resources().get("GPU", 0))

    def max_node_cpus(self) -> int:
        return max((int(n.get("Resources", {}).get("CPU", 0)) for n in self.nodes()), default=0)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            with _quiet():  # the actors stop with it: Ray's notices of their tasks in flight say nothing to the user
                self.ray.shutdown()
        if self.stderr is not None:
            _c_stderr_on(self.stderr)
            self.stderr = None


def _c_stderr_off() -> tuple | None:
    """Point file descriptor 2 at /dev/null and sys.stderr at a copy of the terminal's: Ray's C++ core writes its
    own error lines to fd 2 (a signal to the process group: "Failed to push error to driver"), past the one-line
    rule, while everything dreamreel and Ray's Python side say still shows. None where sys.stderr is not fd 2
    (captured by a test or a caller)."""
    import sys

    try:
        if sys.stderr.fileno() != 2:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    old = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=old.encoding, errors=old.errors)
    return saved, old


def _c_stderr_on(state: tuple) -> None:
    import sys

    saved, old = state
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    sys.stderr = old


@contextlib.contextmanager
def _quiet():
    """Standard output and error (the file descriptors: Ray's C++ core writes to them too) go nowhere."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Cluster:
    """Join the Ray cluster at ``address`` (else ``RAY_ADDRESS``, else start a fresh local one).

    A process already connected (``ray.init`` called by the caller, e.g. a test) keeps its connection.
    A cluster that cannot be reached is a one-line DreamError.
    """
    ray = import_ray()
    if ray.is_initialized():
        return Cluster(ray, "(already connected)", owned=False)
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        _check_reachable(address)
    stderr = _c_stderr_off()
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            with _cluster_in_own_session():
                ray.init(address="local", num_cpus=num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        if stderr is not None:
            _c_stderr_on(stderr)
        raise DreamError(f"cannot connect to {where}: {first}",
                         "start one with: ray start --head, or leave out the address for a local cluster") from None
    from . import interrupts

    interrupts.reassert()  # ray.init's SIGTERM handlers (exit 15; a C++ stack dump) give way to the CLI's one
    return Cluster(ray, address or "local", owned=True, stderr=stderr)


@contextlib.contextmanager
def _cluster_in_own_session():
    """Start a local cluster's processes (GCS, raylet, agents; the raylet's workers inherit it) in a session of
    their own. A signal to the driver's process group (``kill -TERM -PGID``, a job scheduler's stop) then
    reaches the driver alone, which stops the work and shuts the cluster down; sent to the raylet as well, it
    would kill the raylet first, and Ray's core then ends the driver with status 1 and no word ("connection to
    the plasma store is failed"), before its own handler could say what was left. The processes still share
    the driver's fate: Ray starts them with a parent-death signal, and a shutdown kills them by pid.
    Ray picks its Popen class from ``ray._private.services``; where a version has none, nothing changes."""
    try:
        from ray._private import services
        base = services.ConsolePopen
    except (ImportError, AttributeError):
        yield
        return

    class Popen(base):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("start_new_session", True)
            super().__init__(*args, **kwargs)

    services.ConsolePopen = Popen
    try:
        yield
    finally:
        services.ConsolePopen = base


def _check_reachable(address: str) -> None:
    """A ``host:port`` that nothing answers on is a DreamError now (ray.init would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray://..., or something Ray itself will judge
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise DreamError(f"cannot connect to the Ray cluster at {address!r}: {exc.strerror or exc}",
                         "start one with: ray start --head, or leave out the address for a local cluster") from None


def node_label() -> str:
    """Where this process runs: host name and the Ray node's id (short), e.g. ``box:3f2a9c1e``."""
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()[:8]
    except Exception:  # noqa: BLE001 - outside Ray
        node = "local"
    return f"{socket.gethostname()}:{node}"


# ---------------------------------------------------------------- the executor


class _Worker:
    """The actor: ``setup`` once (the model), then ``work`` per item."""

    def __init__(self, setup: Callable, setup_arg, work: Callable, threads: int):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.work = work
        self.state = setup(setup_arg)

    def ready(self) -> str:
        return node_label()

    def run(self, meta: dict, data: bytes):
        return self.work(self.state, meta, data)


@dataclass
class Failure:
    """A task whose worker raised, died more often than it is retried, or could not run it at all (every
    executor's, ``executors.Failure``)."""

    reason: str


def run_items(cluster: Cluster, items: Sequence[tuple[dict, Callable[[], bytes] | None]], *, setup: Callable,
              setup_arg, work: Callable, cpus: float = 1, gpus: float = 0, retries: int = 2,
              workers: int | None = None, started: set | None = None) -> Iterator[tuple[int, object]]:
    """Run ``items`` (``(meta, read_input)`` pairs) on Ray actors; yields ``(index, result)`` as each finishes.

    ``read_input()`` gives the item's input bytes; they are put in the object store only when the item is
    dispatched, so the driver holds at most one input per worker. ``result`` is what ``work`` returned, or a
    :class:`Failure`. Each worker takes one item at a time (a slow item does not hold others back), claims
    ``cpus`` CPUs (its torch threads) and ``gpus`` GPUs. A worker that cannot start (its ``setup`` raised)
    is a DreamError. Interrupting the generator (Ctrl-C, ``close``) kills the workers. ``started`` (a set)
    receives the index of each item as it is dispatched.
    """
    ray = cluster.ray
    from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

    n = min(len(items), workers or cluster.slots(cpus, gpus))
    if n < 1:
        what = f"{cpus:g} CPU{'s' * (cpus != 1)}" + (f" and {gpus:g} GPU" if gpus else "")
        raise DreamError(f"no node of the Ray cluster has {what} free for a worker",
                         "lower --cpus-per-item / --gpus-per-item, or add nodes")
    actor_cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=retries)(_Worker)
    actors = [actor_cls.remote(setup, setup_arg, work, max(1, round(cpus))) for _ in range(n)]
    pending = list(range(len(items)))
    flight: dict = {}  # ref -> (actor, index or None for the ready call)
    for a in actors:
        flight[a.ready.remote()] = (a, None)
    done: set[int] = set()

    def dispatch(actor) -> None:
        if pending:
            i = pending.pop(0)
            meta, read = items[i]
            data = ray.put(read()) if read is not None else None
            if started is not None:
                started.add(i)
            flight[actor.run.remote(meta, data)] = (actor, i)

    try:
        while flight:
            ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
            for ref in ready:
                actor, i = flight.pop(ref)
                try:
                    value = ray.get(ref)
                except RayTaskError as exc:  # work raised: report it on the item, keep going
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    if i is None:
                        raise DreamError(f"a Ray worker could not start: {_first_line(cause)}") from None
                    value = Failure(f"{type(cause).__name__}: {_first_line(cause)}")
                except (ActorDiedError, RayActorError) as exc:
                    if i is None or "creation task" in str(exc):
                        raise DreamError(f"a Ray worker could not start: {_creation_error(exc)}") from None
                    value = Failure(f"its Ray worker died {retries + 1} times on it ({_first_line(exc)})")
                if i is not None:
                    if i in done:  # cannot happen with one ref per item; never publish twice regardless
                        continue
                    done.add(i)
                    yield i, value
                dispatch(actor)
    finally:  # interrupted, failed or finished: no worker outlives the run
        if cluster.owned:  # the actors stop with the connection (a kill would print Ray's retry notice per task)
            cluster.close()
        for a in actors if not cluster.owned else ():
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


def _first_line(exc) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _creation_error(exc) -> str:
    """The constructor's own message out of Ray's ActorDiedError text (its last traceback line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("dreamreel.errors.DreamError:", "DreamError:")):
            return ln.split(":", 1)[1].strip()[:200]
    errors = [ln for ln in lines if "Error:" in ln and not ln.startswith("The actor")]
    return (errors[-1] if errors else lines[0] if lines else "unknown error")[:200]
