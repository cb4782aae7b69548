"""The overlapped clip stages: order kept, the slowest stage sets the pace, errors and stops land where they should."""

import threading
import time

import numpy as np
import pytest

import dreamreel
from dreamreel.render import pipeline
from dreamreel.render.pipeline import Ahead, Behind, with_flow


def _slow(n, seconds, log=None):
    try:
        for i in range(n):
            time.sleep(seconds)
            yield i
    finally:
        if log is not None:
            log.append(threading.current_thread().name)


def test_a_stage_ahead_keeps_the_order_and_overlaps_its_consumer():
    t0 = time.perf_counter()
    got = []
    for i in Ahead(lambda: _slow(10, 0.04)):
        time.sleep(0.04)  # the consumer's own work
        got.append(i)
    wall = time.perf_counter() - t0
    assert got == list(range(10))
    assert wall < 0.8 * (10 * 0.08)  # overlapped: ~0.44 s, in sequence 0.8 s


def test_an_error_in_a_stage_reaches_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("damaged frame 3")

    stage, got = Ahead(items), []
    with pytest.raises(ValueError, match="damaged frame 3"):
        for i in stage:
            got.append(i)
    assert got == [1, 2]
    assert list(stage) == []  # over: no hang on a second look


def test_closing_a_stage_stops_its_thread_which_closes_its_iterator():
    log = []
    stage = Ahead(lambda: _slow(1000, 0.001, log), depth=2, name="t")
    assert next(stage) == 0
    stage.close()
    assert log == ["dreamreel-t"]  # the generator's finally ran, in the stage's own thread
    assert not stage._thread.is_alive()


def test_with_flow_pairs_each_frame_with_the_one_before_from_the_first_dreamt_on():
    items = list(with_flow(iter([10, 11, 12, 13]), lambda a, b: (a, b), first=1, prepare=lambda f: -f))
    assert [f for f, _, _ in items] == [10, 11, 12, 13]
    assert [r[0] if r else None for _, r, _ in items] == [None, None, (11, 12), (12, 13)]
    assert all(r[1] >= 0 for _, r, _ in items if r)
    assert [p for _, _, p in items] == [None, -11, -12, -13]  # frames skipped before ``first`` are not prepared


class _ListWriter:
    def __init__(self, fail_at=None):
        self.frames, self.closed, self.aborted, self.fail_at = [], False, False, fail_at

    def append(self, frame):
        if len(self.frames) == self.fail_at:
            raise OSError("disk full")
        time.sleep(0.01)
        self.frames.append(frame)

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


def test_a_writer_behind_writes_every_frame_in_order_before_it_closes():
    inner = _ListWriter()
    w = Behind(inner)
    for i in range(8):
        w.append(i)
    w.close()
    assert inner.frames == list(range(8)) and inner.closed


def test_a_write_error_behind_is_raised_by_close():
    inner = _ListWriter(fail_at=2)
    w = Behind(inner)
    for i in range(4):
        try:
            w.append(i)
        except OSError:
            break
    with pytest.raises(OSError, match="disk full"):
        w.close()
    assert inner.frames == [0, 1] and not inner.closed


class _Inline:
    """The stage run in the consumer's thread: the clip as it was rendered before the stages overlapped."""

    def __init__(self, make, **kw):
        self._it = iter(make())

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self):
        self._it.close()


def test_an_overlapped_clip_is_frame_for_frame_the_sequential_one(clip, monkeypatch):
    kw = dict(end=5 / 25, size=48, steps=1, seed=3)
    overlapped = list(dreamreel.clip(clip, **kw))
    monkeypatch.setattr(pipeline, "Ahead", _Inline)
    inline = list(dreamreel.clip(clip, **kw))
    assert len(overlapped) == len(inline) >= 4
    assert all(np.array_equal(a, b) for a, b in zip(overlapped, inline))
    assert not np.array_equal(overlapped[0], overlapped[-1])
