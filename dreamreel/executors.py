"""Where parallel work runs: in this process, in local worker processes, or on a Ray cluster, behind one protocol.

A task list is ``(meta, read_input)`` pairs; each worker calls a picklable ``setup(arg)`` once (it loads the
model) and then ``work(state, meta, data)`` per task, ``data`` being the task's input bytes on Ray (workers
share no file system) and None elsewhere. ``Executor.run`` calls ``on_result(index, result)`` as each task
finishes (in any order; ``result`` is what ``work`` returned, or a :class:`Failure`), in the caller's
process, which alone publishes files. Batch (``dreamreel.batch``) and ``video --segments``
(``render.segments``) are its two users.

Stopping is the same everywhere. Ctrl-C or SIGTERM raises in the caller (``interrupts``); an executor then
stops its workers and calls ``on_stopped(index, result)`` for every task that was started but not reported
(``result``: what a worker said on its way out, or None), and the interruption goes on. Local workers treat
SIGINT and SIGTERM alike (a terminal's Ctrl-C and a process group's SIGTERM reach them too): with
``finish=True`` the task at hand is interrupted and keeps what it finished; otherwise the worker is
stopped at once. On Ray the workers are killed. Workers that copy their inputs keep them in a
:func:`scratch_dir`, which :func:`sweep_scratch` removes once its process is gone, so nothing is left in the
temp folder whatever killed them.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .distributed import Failure  # the one result of a task that did not finish: Ray yields it too
from .errors import DreamError

Task = tuple[dict, "Callable[[], bytes] | None"]
OnResult = Callable[[int, object], None]
OnStopped = Callable[[int, object], None]

__all__ = ["Executor", "Failure", "InProcess", "LocalProcesses", "OnRay", "scratch_dir", "sweep_scratch"]


class Executor(Protocol):
    def run(self, tasks: Sequence[Task], setup: Callable, setup_arg, work: Callable, on_result: OnResult,
            on_stopped: OnStopped | None = None) -> None:
        """Run every task (see the module docstring); returns when all are reported, or raises the interruption."""


# ---------------------------------------------------------------- scratch folders of workers


def scratch_dir(prefix: str) -> Path:
    """A private folder for one task's copies, named after this process so that a sweep knows its owner."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_scratch(prefix: str, wait: float = 0.0) -> None:
    """Remove the scratch folders of processes no longer running (killed workers cannot clean up), waiting up to
    ``wait`` seconds for the ones still dying."""
    deadline = time.monotonic() + wait
    for d in Path(tempfile.gettempdir()).glob(prefix + "*-*"):
        pid = d.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        while _alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- in this process


@dataclass
class InProcess:
    """One worker, this process: no copies, no pickling (``batch --jobs 1``). ``on_start(index)`` before each task."""

    on_start: Callable[[int], None] | None = None

    def run(self, tasks, setup, setup_arg, work, on_result, on_stopped=None) -> None:
        state = setup(setup_arg) if tasks else None
        for i, (meta, _) in enumerate(tasks):
            if self.on_start is not None:
                self.on_start(i)
            try:
                res = work(state, meta, None)
            except KeyboardInterrupt:
                if on_stopped is not None:
                    on_stopped(i, None)
                raise
            on_result(i, res)


# ---------------------------------------------------------------- local worker processes


def _stop_task(signum, frame):
    _ignore_signals()  # a second signal must not cut the task's checkpoint short
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _worker(tasks, results, setup, setup_arg, work, threads: int, finish: bool) -> None:
    """A worker process: ``setup`` once, then tasks from ``tasks`` until None."""
    _ignore_signals()  # the parent decides: it forwards SIGINT (finish) or kills the worker
    results.cancel_join_thread()  # exiting never waits to flush a result the parent no longer reads
    import threading

    import torch
    from tqdm import tqdm

    # tqdm would take a multiprocessing lock, a named semaphore a stopped worker never releases: the resource
    # tracker then warns of "leaked semaphore objects". A thread lock does not.
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    try:
        state = setup(setup_arg)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        results.put(("fatal", None, f"{exc}"))
        return
    results.put(("ready", None, None))
    while (task := tasks.get()) is not None:
        index, meta = task
        if finish:
            signal.signal(signal.SIGINT, _stop_task)
            signal.signal(signal.SIGTERM, _stop_task)
        try:
            res = work(state, meta, None)
            kind = "done"
        except KeyboardInterrupt:
            res, kind = None, "stopped"
        except Exception as exc:  # noqa: BLE001 - raised again in the parent
            res, kind = _picklable(exc), "error"
        finally:
            _ignore_signals()
        results.put((kind, index, res))


def _picklable(exc: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception that cannot travel: its line does
        return DreamError(f"{type(exc).__name__}: {exc}")


@dataclass
class LocalProcesses:
    """``workers`` spawned processes with ``threads`` torch threads each, one task at a time per worker.

    ``finish``: on an interruption the tasks at hand are interrupted and report what they kept (up to
    ``drain`` seconds); otherwise the workers are terminated at once.
    """

    workers: int
    threads: int
    finish: bool = True
    drain: float = 60.0
    what: str = "worker"  # in messages: "a batch worker could not start"

    def run(self, tasks, setup, setup_arg, work, on_result, on_stopped=None) -> None:
        import multiprocessing as mp
        import queue as queue_mod

        ctx = mp.get_context("spawn")  # no fork of a process that holds torch's thread pools
        inbox, results = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(inbox, results, setup, setup_arg, work, self.threads, self.finish),
                             daemon=True) for _ in range(min(self.workers, len(tasks)) or 1)]
        for p in procs:
            p.start()
        pending, flight, finished = list(range(len(tasks))), set(), 0
        try:
            while finished < len(tasks):
                try:
                    kind, index, res = results.get(timeout=1.0)
                except queue_mod.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise DreamError(f"the {self.what}s stopped unexpectedly") from None
                    continue
                if kind == "fatal":
                    raise DreamError(f"a {self.what} could not start: {res}")
                if kind == "error":  # the task raised: so does the run
                    flight.discard(index)
                    raise res
                if kind in ("done", "stopped"):
                    flight.discard(index)
                    finished += 1
                    if kind == "done":
                        on_result(index, res)
                    elif on_stopped is not None:  # the worker alone was signalled: its task kept what it finished
                        on_stopped(index, None)
                if pending:  # the worker that said "ready" or "done" is free: one task at a time
                    index = pending.pop(0)
                    flight.add(index)
                    inbox.put((index, tasks[index][0]))
        except BaseException:
            self._stop(procs, results, flight, on_stopped)
            raise
        finally:
            for _ in procs:
                inbox.put(None)
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()  # it ignores SIGTERM
                    p.join(timeout=5)

    def _stop(self, procs, results, flight: set, on_stopped) -> None:
        """Stop the tasks at hand: interrupt them and collect what they kept, or terminate their workers."""
        import queue as queue_mod

        said = {}
        for p in procs:
            if not p.is_alive():
                continue
            if not self.finish:
                p.kill()  # a worker ignores SIGTERM (the parent decides), so terminate() would not stop it
                continue
            try:
                os.kill(p.pid, signal.SIGINT)
            except OSError:
                pass
        deadline = time.time() + (self.drain if self.finish else 0)
        while self.finish and len(said) < len(flight) and time.time() < deadline:
            try:
                kind, index, res = results.get(timeout=0.5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if kind in ("done", "stopped"):
                said[index] = res
        if on_stopped is not None:
            for index in sorted(flight):
                on_stopped(index, said.get(index))


# ---------------------------------------------------------------- Ray


@dataclass
class OnRay:
    """A Ray cluster (``distributed.Cluster``): one actor per ``cpus`` CPUs (and ``gpus`` GPUs), restarted and its
    task retried when its process dies. ``scratch``: the prefix of the workers' scratch folders, swept here once
    the workers are gone. The connection is closed when ``run`` returns or raises."""

    cluster: object
    cpus: float
    gpus: float = 0.0
    scratch: str | None = None

    def run(self, tasks, setup, setup_arg, work, on_result, on_stopped=None) -> None:
        from . import interrupts
        from .distributed import run_items

        started: set[int] = set()
        try:
            results = run_items(self.cluster, tasks, setup=setup, setup_arg=setup_arg, work=work, cpus=self.cpus,
                                gpus=self.gpus, started=started)
            try:
                for index, res in results:
                    started.discard(index)
                    on_result(index, res)
            finally:
                results.close()
        except BaseException:
            if on_stopped is not None:
                for index in sorted(started):
                    on_stopped(index, None)
            raise
        finally:
            with interrupts.finishing():
                self.cluster.close()
                if self.scratch:
                    sweep_scratch(self.scratch, wait=5.0)
