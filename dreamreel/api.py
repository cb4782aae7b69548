"""The Python verbs: dream a still, a zoom or a clip, from a path or an array, into arrays or a file.

Every verb takes the options of the one table (``options.OPTIONS``) as keywords, plus ``preset=``, and resolves
them exactly as the CLI does (the same command defaults, the same checks). The CLI and batch call these.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DreamError
from .options import OPTION_KEYS, command_defaults, merge_values, parse_value


@dataclass
class Prepared:
    """A command's options resolved and validated, before any weights load (what ``--dry-run`` prints)."""

    command: str
    values: dict[str, Any]
    plan: Any  # plan.DreamPlan
    source: Any  # render.runtime.Source, or the clip's path
    image: Any  # (1,3,H,W) tensor, or None (noise, clips)
    size: tuple[int, int]
    settings: Any  # engine.DreamSettings (zoom: each later frame's; clip: each frame's)
    job: Any = None  # zoom.ZoomJob / clip.VideoJob
    first_settings: Any = None  # zoom: the first frame's
    clip: Any = None  # clip.ClipPlan
    raft: str | None = None
    inputs: list = field(default_factory=list)  # every file read (source, preset, timeline, weights): no output on one


def resolve_values(command: str, given: dict[str, Any], preset: str | None = None, *, where=None):
    """Merge keywords/flags with a preset and the command's defaults; (values, preset name)."""
    from .options import canonical_keys
    from .presets import load_preset

    given = canonical_keys(given, where or (lambda k: k))
    unknown = [k for k in given if k not in OPTION_KEYS]
    if unknown:
        from .errors import did_you_mean

        raise DreamError(f"unknown option {unknown[0]!r}", did_you_mean(unknown[0], OPTION_KEYS) or "see dreamreel.options.OPTIONS")
    p = load_preset(preset) if preset else None
    pvalues = p.values if p else {}
    flow = None
    if command == "video":
        flow = parse_value("flow", given["flow"], where("flow") if where else "--flow") if given.get("flow") is not None \
            else pvalues.get("flow", OPTION_KEYS["flow"].default)
    values = merge_values(given, pvalues, command_defaults(command, flow), where=where)
    _size_and_octaves(values, given, where)
    return values, (p.name if p else None)


def _size_and_octaves(values: dict[str, Any], given: dict[str, Any], where=None) -> None:
    """Octave sizes (``octaves = "224,285,345"``) end at the output's longer side, so they and ``size`` can
    disagree. The one the user gave wins: a given size rescales a preset's octave sizes (ratios kept), given
    octave sizes drop a preset's size; both given and disagreeing is refused."""
    octs, size = values["octaves"], values["size"]
    if not isinstance(octs, list) or size is None:
        return
    long = max(size) if isinstance(size, tuple) else size
    if long == octs[-1]:
        return
    size_given, octs_given = given.get("size") is not None, given.get("octaves") is not None
    if size_given and octs_given:
        flag = (lambda k: where(k)) if where else (lambda k: "--" + k)
        raise DreamError(f"{flag('size')} {long} and {flag('octaves')} {','.join(map(str, octs))} disagree: the "
                         f"last octave is the output's longer side", f"drop one, or end the octaves at {long}")
    if octs_given:
        values["size"] = None
    else:
        values["octaves"] = [max(1, round(o * long / octs[-1])) for o in octs]


def input_files(values: dict[str, Any], preset: str | None, *sources) -> list[Path]:
    """Every file a command reads: its sources, the preset file, and each file the option table says an option
    names (``Option.file``: masks, guides, the audio track, the timeline, a weights file)."""
    from .options import file_values
    from .presets import available

    out = [Path(s) for s in sources if s is not None]
    if preset:
        out.append(available().get(preset, Path(preset)))
    return out + [Path(path) for _, path in file_values(values)]


def _source(image):
    """A path / "noise[:WxH]" -> (Source, None); an array or tensor -> (Source, (1,3,H,W) tensor)."""
    import torch

    from .render.runtime import Source, parse_source

    if isinstance(image, (str, Path)):
        return parse_source(str(image)), None
    from .io.images import image_array

    rgb = image_array(image)
    return Source(None), torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def prepare_still(image, *, preset: str | None = None, where=None, **options) -> Prepared:
    from .plan import resolve_plan
    from .render.recorders import records_still
    from .render.runtime import load_source

    values, pname = resolve_values("dream", options, preset, where=where)
    plan = resolve_plan(values, pname)
    source, tensor = _source(image)
    if tensor is None:  # tiled and unrecorded: an 8-bit file stays uint8 (4x less than float32; read by strips)
        tensor, size = load_source(source, plan, compact=bool(plan.tile) and not records_still(values))
    else:
        size = plan.output_size((tensor.shape[-1], tensor.shape[-2]))
    return Prepared("dream", values, plan, source, tensor, size, plan.settings(size),
                    inputs=input_files(values, preset, source.path))


def prepare_zoom(image, *, preset: str | None = None, where=None, **options) -> Prepared:
    from .plan import resolve_plan
    from .presets import load_preset
    from .render import art
    from .render.runtime import load_source
    from .render.zoom import ZoomJob

    values, pname = resolve_values("zoom", options, preset, where=where)
    plan = resolve_plan(values, pname)
    zoom_set = options.get("zoom") is not None or bool(preset and "zoom" in load_preset(preset).values)
    effects = art.zoom_effects(values, frames_given=options.get("frames") is not None)
    job = ZoomJob(fps=values["fps"], timeline=zoom_timeline(values, zoom_set),
                  first_octaves=values["first_octaves"], octaves=plan.octaves, steps=plan.steps, crf=values["crf"],
                  color_match=values["color_match"],
                  travel=values["travel"], travel_weight=values["travel_weight"],
                  interpolate=values["interpolate"], draft=values["draft"], **effects)
    if job.loop and job.interpolate > 1:
        raise DreamError("--interpolate does not work with --loop (the loop's fade reorders the frames)",
                         "leave one of them out")
    job.timeline.bind(job.frames + job.loop, job.fps)  # every schedule's every frame, checked before any work
    from .render.zoom import check_timeline_objectives

    check_timeline_objectives(plan, job.timeline)  # before the source is read
    source, tensor = _source(image)
    if tensor is None:
        tensor, size = load_source(source, plan)
    else:
        size = plan.output_size((tensor.shape[-1], tensor.shape[-2]))
    if job.draft:  # the same job at half the size, one step per frame
        from .render.preview import draft_timeline, draft_values

        values = draft_values(values, size, plan.spec.min_size)
        plan = resolve_plan(values, pname)
        job = replace(job, timeline=draft_timeline(job.timeline), first_octaves=1, octaves=1, steps=[1])
        size = plan.output_size((tensor.shape[-1], tensor.shape[-2]) if tensor is not None else source.noise_size)
    if values["depth"]:
        from .render.camera import CAMERA_KEYS
        from .engine.masks import open_mask

        timeline = job.timeline
        if not any(k in CAMERA_KEYS for k in {*timeline.schedules, *(k for key in timeline.keys for k in key.values)}):
            raise DreamError("--depth shapes the 3D camera's picture, and no 3D key is set",
                             "add --translation-z or a --rotation-3d-x/y/z")

        depth = open_mask(values["depth"], what="depth map")
        depth.check(size)
        job = replace(job, depth=depth)
    return Prepared("zoom", values, plan, source, tensor, size, plan.settings(size), job,
                    first_settings=plan.settings(size, octaves=values["first_octaves"]),
                    inputs=input_files(values, preset, source.path, *job.timeline.mask_files()))


def zoom_timeline(values: dict[str, Any], zoom_set: bool = True):
    """The zoom's timeline: the --timeline file's keys and schedules, then --parseq's tables, then the flags'
    constants and schedules for the keys neither sets. A 3D camera flies without the default zoom (1.0 unless
    ``zoom_set``: given as a flag, keyword or in the preset)."""
    from .options import SCHEDULE_KEYS, weight_schedule
    from .render.camera import CAMERA_KEYS
    from .render.timeline import Timeline, load_parseq, load_timeline
    from .schedule import Schedule

    timeline = load_timeline(values["timeline"]) if values["timeline"] else Timeline()
    set_keys = {k for key in timeline.keys for k in key.values} | set(timeline.schedules)
    if values["parseq"]:
        tables = load_parseq(values["parseq"])
        if both := sorted(set(tables) & set_keys):
            raise DreamError(f"--timeline and --parseq both set {both[0]!r}", "set each key in one place")
        timeline = Timeline(timeline.keys, {**timeline.schedules, **tables})
        set_keys |= set(tables)
    shift = values["shift"]
    flags = {k: values[k] for k in SCHEDULE_KEYS if k != "blend"}
    flags["shift_x"] = shift[0] if values["shift_x"] is None else values["shift_x"]
    flags["shift_y"] = shift[1] if values["shift_y"] is None else values["shift_y"]
    for key in ("lr", "sigma", "steps"):  # these are the plan's unless scheduled
        if not isinstance(flags[key], Schedule):
            del flags[key]
    for key in ("layer", "target"):  # the flags' specs with a scheduled weight: the timeline evaluates them per frame
        if any(weight_schedule(spec, key) for spec in values[key]):
            flags[key] = values[key]
    if not zoom_set and any(flags.get(k) is not None or k in set_keys for k in CAMERA_KEYS):
        flags["zoom"] = 1.0
    return timeline.with_defaults(**flags)


def prepare_clip(video, *, preset: str | None = None, where=None, **options) -> Prepared:
    from .plan import resolve_plan
    from .render.clip import check_flow_method, job_from_values, plan_clip

    values, pname = resolve_values("video", options, preset, where=where)
    job = job_from_values(values)
    plan = resolve_plan(values, pname)
    raft = check_flow_method(job.flow)
    clip = plan_clip(Path(video), plan, job)
    if job.draft:  # the same job at half the size, one step per frame
        from .render.preview import draft_values

        values = draft_values(values, clip.size, plan.spec.min_size)
        plan = resolve_plan(values, pname)
        clip = plan_clip(Path(video), plan, job)
    return Prepared("video", values, plan, Path(video), None, clip.size, plan.settings(clip.size), job, clip=clip,
                    raft=raft, inputs=input_files(values, preset, Path(video)))


VERBS = {"dream": ("dream", "write_dream"), "zoom": ("zoom", "write_zoom"), "video": ("clip", "write_clip")}


def check_keywords(command: str, options: dict[str, Any], *, writes: bool) -> None:
    """Refuse a keyword the verb cannot honour (rather than drop it): an option of another command (``frames=`` on
    dream), or a recording / output / segments keyword on a verb that returns arrays and writes nothing."""
    from .options import command_keys

    verb = VERBS[command][writes]
    takes = command_keys(command, writes=writes)
    for key in options:
        if key not in OPTION_KEYS or key in takes:
            continue  # an unknown name: resolve_values says so, with a did-you-mean
        if key in command_keys(command):
            raise DreamError(f"{verb}() returns arrays and writes nothing, so it cannot honour {key}=",
                             f"use {VERBS[command][True]}(..., output, {key}=...)")
        verbs = [f"{v}()" for c, vs in VERBS.items() if key in command_keys(c) for v in vs[:1]]
        raise DreamError(f"{verb}() takes no {key}= keyword", f"an option of {' and '.join(verbs)}" if verbs
                         else "a batch option: dreamreel batch")


def check_files(p: Prepared, output: Path) -> None:
    """Refuse a job whose output, sidecar, recordings or resume checkpoint would land on a file it reads (or two
    of them on one path)."""
    from .render.preview import check_preview
    from .render.recorders import recorder_outputs
    from .render.runtime import check_outputs

    if p.values.get("preview"):
        check_preview(Path(p.values["preview"]))
    check_outputs(p.inputs, [output, *recorder_outputs(p.values)], sidecars=[output],
                  checkpoints=[output] if p.command != "dream" else [])


# ---------------------------------------------------------------- the verbs


def dream(image, *, preset: str | None = None, show_progress: bool = False, **options) -> np.ndarray:
    """Dream a still (a path, ``"noise"``, or an HxWx3 array) with the ``dream`` command's defaults; HxWx3 uint8."""
    from .render.still import dream_still

    check_keywords("dream", options, writes=False)
    p = prepare_still(image, preset=preset, **options)
    return dream_still(p.plan, p.source, None, image=p.image, show_progress=show_progress).image


def write_dream(image, output, *, preset: str | None = None, show_progress: bool = False, engine=None,
                **options):
    """Dream a still into ``output`` (.png/.jpg) and ``output``.json; recording options (``progress=``,
    ``activations=``, ``overlay=``) add their files. Returns a ``render.still.StillResult``."""
    from .render.recorders import recording, still_recorders
    from .render.runtime import check_still_output, output_lock
    from .render.still import dream_still

    output = Path(output)
    check_still_output(output)
    check_keywords("dream", options, writes=True)
    p = prepare_still(image, preset=preset, **options)
    check_files(p, output)
    recorders = still_recorders(p.values)
    with output_lock(output), recording(recorders):
        return dream_still(p.plan, p.source, output, image=p.image, recorders=recorders,
                           show_progress=show_progress, engine=engine)


def zoom(image, *, preset: str | None = None, show_progress: bool = False, **options) -> Iterator[np.ndarray]:
    """Yield the frames (HxWx3 uint8) of a zoom dream with the ``zoom`` command's defaults; nothing is written."""
    from .render.zoom import zoom_frames

    check_keywords("zoom", options, writes=False)
    p = prepare_zoom(image, preset=preset, **options)
    return zoom_frames(p.plan, p.source, p.job, image=p.image, show_progress=show_progress)


def write_zoom(image, output, *, preset: str | None = None, resume: bool = False, show_progress: bool = False,
               prepared: Prepared | None = None, **options):
    """Render a zoom into ``output`` (.mp4, .gif or a folder/) and its sidecar; ``progress=``/``overlay=`` record
    too. Returns a ``render.frames.FramesResult``."""
    from .render.preview import preview_recorders
    from .render.recorders import frame_recorders, recording
    from .render.runtime import check_video_output, folder_output, output_lock
    from .render.zoom import render_zoom

    output_text, output = output, check_video_output(output)
    check_keywords("zoom", options, writes=True)
    p = prepared or prepare_zoom(image, preset=preset, **options)
    if p.values["overlay"]:
        check_video_output(p.values["overlay"])
    check_files(p, output)
    recorders = frame_recorders(p.values, p.job.fps, resume=resume) + preview_recorders(p.values)
    with output_lock(output), folder_output(output_text) as output, recording(recorders):
        return render_zoom(p.plan, p.source, output, p.job, resume=resume, show_progress=show_progress,
                           recorders=recorders)


def clip(video, *, preset: str | None = None, show_progress: bool = False, **options) -> Iterator[np.ndarray]:
    """Yield the dreamt frames (HxWx3 uint8) of a video with the ``video`` command's defaults; nothing is written."""
    from .render.clip import clip_frames

    if options.get("segments") is not None:
        raise DreamError("segments= joins its segments into a file: use write_clip")
    check_keywords("video", options, writes=False)
    p = prepare_clip(video, preset=preset, **options)
    return clip_frames(p.plan, p.source, p.job, show_progress=show_progress)


def write_clip(video, output, *, preset: str | None = None, resume: bool = False, show_progress: bool = False,
               prepared: Prepared | None = None, engine=None, ray: str | None = None, **options):
    """Dream a video into ``output`` (.mp4 keeps the source's audio; .gif; a folder/) and its sidecar; ``overlay=``
    records too. ``segments=N`` (``segment_overlap=K``) dreams it as N segments in parallel, in worker processes or
    on the Ray cluster at ``ray`` ("" for RAY_ADDRESS or a fresh local one). Returns a ``render.frames.FramesResult``."""
    from .render.clip import render_video
    from .render.preview import preview_recorders
    from .render.recorders import frame_recorders, recording
    from .render.runtime import check_video_output, folder_output, output_lock
    from .render.segments import check_segments, render_segmented

    output_text, output = output, check_video_output(output)
    check_keywords("video", options, writes=True)
    p = prepared or prepare_clip(video, preset=preset, **options)
    segments = check_segments(p.values, output, resume=resume, ray=ray)
    if segments is not None:
        check_files(p, output)
        with output_lock(output):
            return render_segmented(p.plan, Path(video), output, p.job, p.clip, segments=segments[0],
                                    overlap=segments[1], ray_address=ray, show_progress=show_progress)
    if p.values["overlay"]:
        check_video_output(p.values["overlay"])
    check_files(p, output)
    recorders = frame_recorders(p.values, p.clip.fps, resume=resume, progress=False) + preview_recorders(p.values)
    with output_lock(output), folder_output(output_text) as output, recording(recorders):
        return render_video(p.plan, Path(video), output, p.job, resume=resume, show_progress=show_progress,
                            clip=p.clip, recorders=recorders, engine=engine)


def prepare_plans(options: dict):
    """Batch: (clip job, clip plan, still plan) from one set of options, with each command's defaults."""
    from .plan import resolve_plan
    from .render.clip import job_from_values

    options = dict(options)
    preset = options.pop("preset", None)
    values, pname = resolve_values("video", options, preset)
    job = job_from_values(values)
    video_plan = resolve_plan(values, pname)
    still_values, _ = resolve_values("dream", options, preset)
    return job, video_plan, resolve_plan(still_values, pname)
