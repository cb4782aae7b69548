"""``video --segments N``: one long clip dreamt as N segments in parallel, joined into one file.

The clip's frames are cut into N contiguous runs. Segment s dreams its run with the clip's own frame loop
(``frames.dream_frames`` with a ``clip.ClipStart``), but starts ``segment_overlap`` K frames early: its first frame
(the one K before the run) is dreamt as if the clip had held still (the warm-up of a clip's first frame), then the
dream is carried along the flow for K warm-up frames, so that at the run's first frame the carried dream has
about its steady strength. The warm-up frames are not dropped but cross-faded with the previous segment's last K
frames: two independent dreams of one frame differ in their detail, and a cut from one to the other pops.
Frame k is dreamt with the seed of frame k in a whole render, so segment 0 is frame for frame the start of an
unsegmented render.

Segments run in worker processes on this machine (one model each, cores/N torch threads), or with a Ray
address as items on a Ray cluster (``distributed.run_items``; the clip travels through the object store, the
encoded segment comes back). Each segment is a near-lossless H.264 MP4 of its run; the frames before a seam are
a raised-cosine cross-fade from the previous segment's dream into the next one's warm-up. The driver decodes the
pieces and encodes them once, at --crf, as one stream with the source's audio (one ``io.writer`` output, so it
is published atomically and sound and pictures stay in sync), then writes a sidecar listing the segments.
Nothing here prints: an interrupted or failed join carries an ``outcome.Partial`` whose note says what was kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import DreamError
from .clip import ClipStart

#: Segments travel as near-lossless H.264 and are encoded once, at --crf, as one stream when joined. Joined by
#: stream copy at --crf instead, each piece restarts on a key frame whose quality differs from the P-frames
#: before it (on the ray branch, realshort.mp4 at 96 px: frame-to-frame change 6.9 and 7.3 grey levels into
#: the pieces' first frames against 4.5 inside).
INTERMEDIATE_CRF = 8
DEFAULT_OVERLAP = 4


def split(frames: int, segments: int, overlap: int) -> list[tuple[int, int, int]]:
    """``(warm, start, end)`` per segment: frames ``[start, end)`` are its own, ``[warm, start)`` its warm-up (which
    overlaps the previous segment's last frames and is cross-faded with them)."""
    segments = max(1, min(segments, frames))
    bounds = [round(i * frames / segments) for i in range(segments + 1)]
    overlap = min(overlap, min(b - a for a, b in zip(bounds, bounds[1:])))  # a fade spans at most one run
    return [(max(0, a - overlap), a, b) for a, b in zip(bounds, bounds[1:])]


def seam_report(frames: list[np.ndarray], seams: list[int], sources: list[np.ndarray] | None = None) -> dict:
    """Mean absolute frame-to-frame change (grey levels) into the seam frames against all other frames.

    ``change``: of the output frames; with ``sources``, ``detail_change``: of what the dream added (output
    minus source), which leaves the scene's own motion out and shows a pop more plainly.
    """
    def report(seq):
        d = [float(np.abs(b.astype(np.float32) - a.astype(np.float32)).mean()) for a, b in zip(seq, seq[1:])]
        at = [d[k - 1] for k in seams if 0 < k < len(seq)]
        inside = [v for k, v in enumerate(d, start=1) if k not in seams]
        s, i = float(np.mean(at)) if at else float("nan"), float(np.mean(inside)) if inside else float("nan")
        return {"seam": round(s, 4), "inside": round(i, 4), "ratio": round(s / i, 4) if i > 0 else None}

    out = {"change": report(frames)}
    if sources is not None:
        out["detail_change"] = report([f.astype(np.float32) - s for f, s in zip(frames, sources)])
    return out


def check_segments(values: dict, output: Path, *, resume: bool = False, ray: str | None = None) -> tuple[int, int] | None:
    """``(segments, overlap)`` of the merged options, checked with the rest of the render (one-line DreamErrors);
    None when ``segments`` is not set. ``ray``: a Ray address ("" for RAY_ADDRESS or a local cluster), or None."""
    if values.get("segments") is None:
        if ray is not None:
            raise DreamError("--ray with dreamreel video needs --segments N (the segments are what runs on Ray)")
        return None
    overlap = values["segment_overlap"] if values.get("segment_overlap") is not None else DEFAULT_OVERLAP
    if resume:
        raise DreamError("--resume does not continue a --segments render", "run it again without --resume")
    if values.get("overlay"):
        raise DreamError("--overlay does not work with --segments", "leave one of them out")
    for key in ("interpolate", "preview", "draft"):  # one pass over the clip; segments are joined, not watched
        if values.get(key) not in (None, False, 1):
            raise DreamError(f"--{key.replace('_', '-')} does not work with --segments", "leave one of them out")
    if Path(output).suffix.lower() != ".mp4":
        raise DreamError(f"--segments writes an .mp4, not {str(output)!r}", "name the output OUT.mp4")
    if ray is not None:
        from ..distributed import import_ray

        import_ray()
    return values["segments"], overlap


# ---------------------------------------------------------------- one segment


class SegmentStart(ClipStart):
    """A clip's frames up to ``end`` (exclusive); the first one dreamt gets the clip's first-frame warm-up."""

    def __init__(self, plan, clip, job, input_path: Path, end: int):
        super().__init__(plan, clip, job, input_path)
        self.end = end

    def indices(self, start: int):
        inner = super().indices(start)
        try:
            for k in inner:
                if k >= self.end:
                    return
                yield k
        finally:
            inner.close()


def render_segment(engine, plan, job, clip, path: Path, warm: int, start: int, end: int, out: Path,
                   tail: int = 0) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Dream frames ``[warm, end)`` of the clip (after --start/--every); write ``[start, end - tail)`` to ``out``
    (near-lossless MP4, no audio). Returns the per-frame records of ``[start, end)`` and, as uint8 arrays for the
    cross-fades, the warm-up frames ``[warm, start)`` and the last ``tail`` frames."""
    from ..io.writer import open_writer
    from .frames import dream_frames

    strategy = SegmentStart(plan, clip, job, Path(path), end)
    writer = open_writer(out, fps=clip.fps, crf=INTERMEDIATE_CRF)
    records, head, last = [], [], []
    frames = dream_frames(strategy, engine, start=warm)
    try:
        for k, frame, record in frames:
            if k < start:
                head.append(frame)
            elif k >= end - tail:
                last.append(frame)
            if k >= start:
                if k < end - tail:
                    writer.append(frame)
                records.append(record)
        if end - tail > start:
            writer.close()
        else:
            writer.abort()
    except BaseException:
        writer.abort()
        raise
    finally:
        frames.close()
    w, h = clip.size
    empty = np.zeros((0, h, w, 3), np.uint8)
    return records, np.stack(head) if head else empty, np.stack(last) if last else empty


# what a segment worker runs: one model, then segments (on Ray the clip comes as bytes, the segment goes back so)

SCRATCH = "dreamreel-seg-"


def _setup(plan):
    from .runtime import Engine

    return Engine.load(plan)


def _segment(engine, meta: dict, data: bytes | None) -> dict:
    """One segment: from the clip itself (a local worker), or from its bytes in a scratch folder (a Ray worker)."""
    from ..distributed import node_label
    from ..executors import scratch_dir

    tmp = scratch_dir(SCRATCH) if data is not None else None
    try:
        src, out = Path(meta["path"]), Path(meta["out"])
        if tmp is not None:
            src, out = tmp / ("in" + src.suffix), tmp / "segment.mp4"
            src.write_bytes(data)
        t0 = time.perf_counter()
        records, head, tail = render_segment(engine, meta["plan"], meta["job"], meta["clip"], src, meta["warm"],
                                             meta["start"], meta["end"], out, meta["tail"])
        res = {"records": records, "head": head, "tail": tail, "seconds": round(time.perf_counter() - t0, 3),
               "node": node_label() if tmp is not None else "local"}
        if tmp is not None:
            res["bytes"] = out.read_bytes() if out.exists() else b""
        return res
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the whole clip


def crossfade(old: np.ndarray, new: np.ndarray):
    """Frames going from ``old`` to ``new`` on a raised-cosine ramp (weight of ``new``: 1/2 - cos(pi j/(K+1))/2
    for j = 1..K), whose first and last steps are the smallest, so neither end of the fade shows as a jump."""
    k = len(new)
    for j in range(k):
        w = 0.5 - 0.5 * np.cos(np.pi * (j + 1) / (k + 1))
        yield np.clip(np.rint(old[j] * (1 - w) + new[j].astype(np.float32) * w), 0, 255).astype(np.uint8)


def count_frames(path: Path, job) -> int:
    from ..io.readers import iter_frames

    return sum(1 for _ in iter_frames(path, start=job.start, end=job.end, every=job.every, size=(16, 16)))


def _executor(address: str | None, n: int):
    """Local worker processes (stopped at once on Ctrl-C: a segment keeps nothing), or Ray."""
    from ..executors import LocalProcesses, OnRay

    if address is None:
        workers = min(n, os.cpu_count() or 1)
        return LocalProcesses(workers, max(1, (os.cpu_count() or 1) // workers), finish=False, what="segment worker")
    import torch

    from ..distributed import connect

    cluster = connect(address or None)
    gpus = 1.0 if cluster.gpus() > 0 else 0.0
    return OnRay(cluster, cpus=1 if gpus else torch.get_num_threads(), gpus=gpus, scratch=SCRATCH)


def _run(metas, address: str | None, input_path: Path, output: Path, results, bar) -> None:
    from ..executors import Failure

    def done(k: int, res) -> None:
        if isinstance(res, Failure):
            raise DreamError(f"segment {k + 1} of {output} failed: {res.reason}")
        if res.get("bytes"):
            Path(metas[k]["out"]).write_bytes(res.pop("bytes"))
        results[k] = res
        bar.update(1)

    read = input_path.read_bytes if address is not None else None
    _executor(address, len(metas)).run([(m, read) for m in metas], _setup, metas[0]["plan"], _segment, done)


def _join(metas, results, output: Path, clip, crf: int, audio) -> None:
    """One stream at ``crf``: each seam's cross-fade (the previous segment's dream fading into this one's warm-up),
    then the segment's own frames; the writer muxes the audio and publishes atomically."""
    from ..io.writer import open_writer
    from ..io.outputs import read_frames

    w, h = clip.size
    writer = open_writer(output, fps=clip.fps, crf=crf, audio_from=audio)
    try:
        for k, m in enumerate(metas):
            if k > 0:
                for frame in crossfade(results[k - 1]["tail"], results[k]["head"]):
                    writer.append(frame)
            if m["end"] - m["tail"] > m["start"]:
                for frame in read_frames(m["out"]):
                    writer.append(frame[:h, :w])  # MP4 frames come back padded to even sizes
        writer.close()
    except BaseException:
        writer.abort()  # all or nothing: a half-joined clip is not kept
        raise


def render_segmented(plan, input_path: Path, output: Path, job, clip, *, segments: int,
                     overlap: int = DEFAULT_OVERLAP, ray_address: str | None = None, show_progress: bool = False):
    """Dream ``input_path`` as ``segments`` segments in parallel into ``output`` (MP4 with the source's audio):
    in local worker processes, or on Ray with ``ray_address`` ("" for RAY_ADDRESS or a fresh local cluster).
    Returns a ``frames.FramesResult``. Ctrl-C or an error writes nothing (the exception carries a ``Partial``)."""
    from tqdm import tqdm

    from ..io.sidecar import write_sidecar
    from .audio import clip_audio
    from ..outcome import Partial, reraise
    from .frames import FramesResult

    input_path, output = Path(input_path), Path(output)
    n = clip.frames if clip.exact and clip.info.n_frames else count_frames(input_path, job)
    parts = split(n, segments, overlap)
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="dreamreel-segments-"))
    metas = [{"plan": plan, "job": job, "clip": clip, "path": str(input_path),
              "warm": w, "start": a, "end": b, "out": str(tmp / f"segment{i:04d}.mp4"),
              "tail": parts[i + 1][1] - parts[i + 1][0] if i + 1 < len(parts) else 0}
             for i, (w, a, b) in enumerate(parts)]
    results: dict[int, dict] = {}
    audio = None
    bar = tqdm(total=len(parts), desc="segments", unit="segment", dynamic_ncols=True, leave=False,
               disable=not show_progress)
    try:
        _run(metas, ray_address, input_path, output, results, bar)
        bar.close()
        if clip.info.has_audio:
            audio = clip_audio(input_path, job, clip, tmp)
        _join(metas, results, output, clip, job.crf, audio)
    except BaseException as exc:
        bar.close()
        if isinstance(exc, KeyboardInterrupt):  # an error's own line says enough: nothing is written on one
            reraise(exc, partial=Partial(output, 0, n, 0, f"{len(results)} of {len(parts)} segments were finished; "
                                         f"nothing written to {output}"))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    records = [r for k in sorted(results) for r in results[k]["records"]]
    for m in metas[1:]:  # the frames before a seam are cross-fades
        for r in records:
            if m["warm"] <= r["frame"] < m["start"]:
                j = (r["frame"] - m["warm"] + 1) / (m["start"] - m["warm"] + 1)
                r["crossfade"] = round(float(0.5 - 0.5 * np.cos(np.pi * j)), 4)
    seconds = time.perf_counter() - t_start
    data = {
        "command": "video",
        "input": str(input_path),
        "output": str(output),
        "frames": len(records),
        "fps": clip.fps,
        "size": list(clip.size),
        "audio": audio is not None,
        "start": job.start, "end": job.end, "every": job.every,
        "flow": job.flow,
        "blend": job.blend if job.flow != "none" else None,
        "segments": [{"frames": [m["start"], m["end"]], "dreamt_from": m["warm"], "seconds": results[k]["seconds"],
                      "node": results[k]["node"]} for k, m in enumerate(metas)],
        "segment_overlap": max((m["start"] - m["warm"] for m in metas[1:]), default=0),  # as run (split clamps it)
        **({"segment_overlap_asked": overlap} if any(m["start"] - m["warm"] != overlap for m in metas[1:]) else {}),
        "seams": [m["start"] for m in metas[1:]],
        "on_ray": ray_address is not None,
        "parameters": plan.to_json(),
        "seed": plan.seed,
        "seconds": round(seconds, 3),
        "per_frame": records,
    }
    write_sidecar(output, data)
    return FramesResult(output, len(records), clip.fps, seconds, data)
