"""A clip render's stages overlapped: decode and optical flow run ahead of the dream, encoding behind it.

Each stage is a thread joined to the next by a bounded queue, so the slowest stage sets the pace and the
memory held is a few frames: ``Ahead`` runs an iterator (decoding, then the flow between consecutive source
frames, which needs no dream) up to ``depth`` items ahead of its consumer; ``Behind`` hands frames to a
writer from its own thread. Order is kept (one queue, one thread per stage), an exception reaches the
consumer where the item it replaced would have, and ``close()`` stops a stage's thread, which closes its own
iterator (a generator belongs to the thread that runs it). On CUDA the stage's torch work (RAFT) runs on its
own stream, so it overlaps the dream's kernels instead of queueing behind them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

__all__ = ["Ahead", "Behind", "DEPTH", "with_flow"]

#: Frames a stage may run ahead of the next: two keep every stage busy when their times vary frame to frame.
DEPTH = 2
_POLL_S = 0.05  # how often a blocked stage looks whether it was stopped


def _side_stream():
    """A context running torch work on a CUDA side stream where CUDA is in use, else nothing."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return contextlib.nullcontext()
    return torch.cuda.stream(torch.cuda.Stream())


class Ahead(Iterator):
    """``make()``'s items, produced in a thread up to ``depth`` ahead of whoever iterates this."""

    def __init__(self, make: Callable[[], Iterable], depth: int = DEPTH, name: str = "ahead"):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._over = False
        self._thread = threading.Thread(target=self._run, args=(make,), name=f"dreamreel-{name}", daemon=True)
        self._thread.start()

    def _run(self, make) -> None:
        items = None
        try:
            with _side_stream():
                items = iter(make())
                for item in items:
                    if not self._put(("item", item)):
                        return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self):
        if self._over:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return value
        self._over = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (it finishes the item in hand, then closes its iterator) and wait for it."""
        self._over = True
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_S)  # a producer blocked on a full queue sees the stop
            timeout -= _POLL_S
            if timeout <= 0:
                break


def with_flow(frames: Iterable, flow: Callable | None, first: int, prepare: Callable | None = None) -> Iterator[tuple]:
    """Each of ``frames`` as (frame, flow result, ``prepare(frame)`` or None): the flow result is
    ``(flow(previous frame, frame), its seconds)`` from the frame after index ``first`` on (``first``'s own
    previous frame may come from elsewhere, e.g. a checkpoint), else None."""
    prev = None
    try:
        for k, frame in enumerate(frames):
            result = None
            if flow is not None and prev is not None and k > first:
                t0 = time.perf_counter()
                result = (flow(prev, frame), time.perf_counter() - t0)
            yield frame, result, (prepare(frame) if prepare is not None and k >= first else None)
            prev = frame
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


class Behind:
    """A writer fed from its own thread: ``append`` queues a frame (blocking while ``depth`` wait), ``close``
    writes the queued frames and closes the writer, ``abort`` drops them. A write error is raised by the next
    ``append`` or by ``close``. ``written``: the wrapped writer's count (every frame, once closed)."""

    def __init__(self, writer, depth: int = DEPTH):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dreamreel-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is None:
                try:
                    self._writer.append(frame)
                except BaseException as exc:
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def append(self, frame) -> None:
        self._raise()
        self._queue.put(frame)

    def _drain(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self):
        self._drain()
        self._raise()
        return self._writer.close()

    @property
    def written(self) -> int:
        return self._writer.written

    def abort(self):
        self._error = self._error or RuntimeError("aborted")  # the frames still queued are not written
        self._drain()
        self._error = None
        return self._writer.abort()
