"""The ``dreamreel`` command: a thin layer that parses flags into the objects the Python API takes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import DreamError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage block."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _plan_from_args(args, defaults=None):
    from .options import merge_values, resolve_plan
    from .presets import load_preset

    preset = load_preset(args.preset) if args.preset else None
    values = merge_values(args, preset.values if preset else None, defaults)
    return resolve_plan(values, preset.name if preset else None), preset


def _print_plan(plan, settings, extra_lines=()):
    from .options import plan_lines

    for line in plan_lines(plan, settings, plan.objective()):
        print(line)
    for line in extra_lines:
        print(line)


def cmd_dream(args) -> int:
    from .recorders import recorders_from_args, recorder_outputs
    from .render import check_outputs, check_still_output, dream_still, load_source, parse_source

    output = Path(args.output)
    check_still_output(output)
    source = parse_source(args.input)
    check_outputs([source.path], [output, *recorder_outputs(args)])
    plan, _ = _plan_from_args(args)
    _, size = load_source(source, plan)
    settings = plan.settings(size)
    if args.dry_run:
        print(f"input      {source.label}")
        print(f"output     {output}  {size[0]}x{size[1]}")
        _print_plan(plan, settings)
        return 0
    recorders = recorders_from_args(args, settings)
    if plan.guide:  # art (issue 14): the guide match at the start and the end, for the sidecar
        from .guide import GuideMatch

        recorders.append(GuideMatch())
    from .recorders import recording

    with recording(recorders):
        data = dream_still(plan, source, output, recorders=recorders, show_progress=not args.quiet)
    msg = f"wrote {output} ({data['seconds']:.1f} s)"
    if "target_probability" in data:
        tp = data["target_probability"]
        msg += f"; p({tp['class']}) {tp['start']:.3f} -> {tp['end']:.3f}"
    for g in data.get("guide", []):
        msg += f"; guide match {g['match_start']:.3f} -> {g['match_end']:.3f}, distance {g['distance_start']:.3f} -> {g['distance_end']:.3f}"
    print(msg, file=sys.stderr)
    return 0


ZOOM_DEFAULTS = {"frames": 48, "fps": 12.0, "zoom": 1.04, "rotate": 0.0, "shift": "0,0", "first_octaves": 3}


def _zoom_value(args, preset, key, parse):
    """A zoom option: explicit flag, else the preset's, else the default."""
    raw = getattr(args, key)
    if raw is None and preset is not None and key in preset.extra:
        raw = preset.extra[key]
        if isinstance(raw, list):
            raw = ",".join(str(v) for v in raw)
    if raw is None:
        raw = ZOOM_DEFAULTS[key]
    try:
        return parse(raw)
    except (TypeError, ValueError):
        raise DreamError(f"bad value {raw!r} for --{key.replace('_', '-')}") from None


def _positive(kind):
    def parse(v):
        x = kind(v)
        if x <= 0:
            raise ValueError
        return x

    return parse


def cmd_zoom(args) -> int:
    from .options import parse_octaves
    from .recorders import FrameOverlay, ProgressRecorder, recording
    from .render import check_outputs, check_video_output, load_source, parse_source
    from .schedule import Timeline, ZoomJob, load_timeline, parse_shift, render_zoom

    output = check_video_output(Path(args.output))
    source = parse_source(args.input)
    progress = Path(args.progress) if args.progress else None
    overlay = check_video_output(Path(args.overlay)) if args.overlay else None
    check_outputs([source.path], [output, progress, overlay])
    plan, preset = _plan_from_args(args, defaults={"octaves": 1, "steps": [3]})
    frames = _zoom_value(args, preset, "frames", _positive(int))
    fps = _zoom_value(args, preset, "fps", _positive(float))
    zoom = _zoom_value(args, preset, "zoom", _positive(float))
    rotate = _zoom_value(args, preset, "rotate", float)
    shift = parse_shift(_zoom_value(args, preset, "shift", str))
    first = _zoom_value(args, preset, "first_octaves", parse_octaves)
    timeline = load_timeline(args.timeline) if args.timeline else Timeline()
    timeline = timeline.with_defaults(zoom=zoom, rotate=rotate, shift_x=shift[0], shift_y=shift[1])
    job = ZoomJob(frames=frames, fps=fps, timeline=timeline, first_octaves=first, octaves=plan.octaves,
                  steps=plan.steps, crf=args.crf)
    _zoom_art(args, job, output)  # art (issue 14): --audio/--react, --loop
    frames = job.frames
    _, size = load_source(source, plan)
    first_settings = plan.settings(size, octaves=first)
    each = plan.settings(size)
    if args.dry_run:
        print(f"input      {source.label}")
        print(f"output     {output}  {frames} frames at {fps:g} fps, {size[0]}x{size[1]}")
        print(f"motion     zoom {zoom:g}  rotate {rotate:g} deg  shift {shift[0]:g},{shift[1]:g} px per frame"
              + (f"  (timeline {args.timeline}: {len(timeline.keys)} keys)" if args.timeline else ""))
        if job.audio_features is not None:
            print(f"audio      {args.audio}  {job.audio_features.duration:.2f} s -> {frames} frames; react "
                  + (", ".join(f"{r.key} {r.low:g}..{r.high:g} by {r.feature}" for r in job.reacts) or "nothing"))
        if job.loop:
            print(f"loop       the last {job.loop} rendered frames fade into the first ({frames + job.loop} rendered)")
        print("first frame:")
        _print_plan(plan, first_settings)
        print("each later frame:")
        _print_plan(plan, each)
        return 0
    recorder = ProgressRecorder(progress, every=args.progress_every, fps=args.video_fps,
                                caption=not args.no_caption) if progress else None
    overlays = [FrameOverlay(overlay, fps=fps, feature=args.overlay_feature, caption=not args.no_caption,
                             append=args.resume)] if overlay else []
    with recording(([recorder] if recorder else []) + overlays):
        data = render_zoom(plan, source, output, job, resume=args.resume, show_progress=not args.quiet,
                           progress_recorder=recorder, frame_recorders=overlays)
    print(f"wrote {output}: {frames} frames at {fps:g} fps ({data['seconds']:.1f} s)", file=sys.stderr)
    return 0


def _zoom_art(args, job, output: Path) -> None:
    """zoom --audio/--react and --loop onto ``job`` (issue 14); one-line DreamErrors for bad combinations."""
    if args.react and not args.audio:
        raise DreamError("--react needs --audio TRACK")
    if args.audio:
        from .art import audio_job

        job.audio_features, job.react, job.reacts, job.audio = audio_job(
            args.audio, job.fps, args.react, frames_flag=args.frames is not None, output=output)
        job.frames = job.audio_features.frames
    if args.loop_frames is not None and not args.loop:
        raise DreamError("--loop-frames needs --loop")
    if args.loop:
        from .loop import default_loop_frames

        if args.resume:
            raise DreamError("--loop renders cannot --resume", "render the loop again without --resume")
        if job.frames < 4:
            raise DreamError(f"--loop needs at least 4 frames (got {job.frames})")
        n = default_loop_frames(job.frames, job.fps) if args.loop_frames is None else args.loop_frames
        if not 1 <= n <= job.frames // 2:
            raise DreamError(f"--loop-frames {n} is out of range for {job.frames} frames", f"use 1-{job.frames // 2}")
        job.loop = n


def cmd_models(args) -> int:
    from .models import list_models

    for spec in list_models():
        print(f"{spec.name:20s} {spec.description}")
        print(f"{'':20s} default layer {spec.default_layer}; weights: {spec.weights_source}")
    return 0


def cmd_layers(args) -> int:
    from .models import get_spec

    spec = get_spec(args.model)
    print(f"{spec.name}: dreamable layers (features)")
    for name, channels in spec.layer_channels.items():
        note = spec.notes.get(name, "")
        mark = "  (default)" if name == spec.default_layer and "default" not in note else ""
        print(f"  {name:16s} {channels:5d}  {note}{mark}")
    print("  logits            1000  class targets: --target CLASS")
    return 0


def cmd_presets(args) -> int:
    from .presets import available, load_preset

    for name in available():
        print(f"{name:28s} {load_preset(name).description}")
    return 0


def build_parser() -> Parser:
    from .options import add_dream_arguments, add_frame_overlay_arguments

    parser = Parser(prog="dreamreel", description="Deep-dream stills, zoom videos, progress and activation animations.")
    parser.add_argument("--version", action="version", version=f"dreamreel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("dream", help="dream a still image (or noise)", description="Dream a still image, octave by octave.")
    p.add_argument("input", metavar="INPUT", help="image file, or noise / noise:WxH (the article's uniform(0,1)/10+0.5)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png, .jpg); a sidecar OUT.json is written beside it")
    add_dream_arguments(p)
    _add_recording_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dream)

    p = sub.add_parser("zoom", help="render a zoom dream video", description=(
        "Frame k+1 is frame k's dream, zoomed/rotated/shifted, then dreamt again. "
        "The first frame uses --first-octaves octaves; each later frame --octaves (default 1) and --steps (default 3)."))
    p.add_argument("input", metavar="INPUT", help="image file, or noise / noise:WxH")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.mp4, OUT.gif or a folder OUT/ of PNGs; OUT.json beside it")
    z = p.add_argument_group("zoom")
    z.add_argument("--frames", default=None, metavar="N", help=f"number of frames [default: {ZOOM_DEFAULTS['frames']}]")
    z.add_argument("--fps", default=None, metavar="F", help=f"frames per second [default: {ZOOM_DEFAULTS['fps']:g}]")
    z.add_argument("--zoom", default=None, metavar="Z", help=f"zoom per frame, >1 moves in [default: {ZOOM_DEFAULTS['zoom']}]")
    z.add_argument("--rotate", default=None, metavar="DEG", help="rotation per frame in degrees [default: 0]")
    z.add_argument("--shift", default=None, metavar="DX,DY", help="shift per frame in pixels [default: 0,0]")
    z.add_argument("--timeline", default=None, metavar="FILE", help="TOML keyframes: zoom/rotate/shift interpolated, layer/target/steps switched")
    z.add_argument("--first-octaves", default=None, metavar="N|S1,...", help="the first frame's octaves [default: 3]")
    z.add_argument("--resume", action="store_true", help="continue an interrupted render from its last finished frame")
    z.add_argument("--crf", type=int, default=18, metavar="Q", help="H.264 quality, lower is better [default: 18]")
    a = p.add_argument_group("music and loops")
    a.add_argument("--audio", default=None, metavar="TRACK", help="a track whose duration at --fps sets the frame count; muxed into an MP4")
    a.add_argument("--react", default=None, metavar="KEY=A:B,...", help="parameters following the track: KEY=A:B[@onset] "
                   "(A at silence, B at the loudest frame; @onset follows the attacks), KEY in zoom, rotate, shift_x, shift_y, lr, sigma, steps")
    a.add_argument("--loop", action="store_true", help="a seamless loop: the last frames fade into the first")
    a.add_argument("--loop-frames", type=int, default=None, metavar="N", help="frames of the fade [default: one second, at most a third]")
    add_dream_arguments(p)
    g = p.add_argument_group("recording")
    g.add_argument("--progress", metavar="FILE", help="optimisation progress of the first frame (.mp4, .gif or folder/)")
    g.add_argument("--progress-every", type=int, default=1, metavar="K", help="record every K-th step [default: 1]")
    g.add_argument("--video-fps", type=float, default=12.0, metavar="F", help="frame rate of the progress animation [default: 12]")
    g.add_argument("--no-caption", action="store_true", help="no octave/step caption on recorded frames")
    add_frame_overlay_arguments(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_zoom)

    from .batch import register as register_batch
    from .clips import register as register_video
    from .reproduce import add_parser as register_reproduce

    register_video(sub)
    register_batch(sub)
    register_reproduce(sub)

    p = sub.add_parser("models", help="list the models")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("layers", help="list a model's dreamable layers")
    p.add_argument("--model", default="efficientnet_lite0", metavar="M")
    p.set_defaults(func=cmd_layers)
    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=cmd_presets)
    return parser


def _add_recording_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recording")
    g.add_argument("--progress", metavar="FILE", help="optimisation-progress animation (.mp4, .gif or folder/)")
    g.add_argument("--progress-every", type=int, default=1, metavar="K", help="record every K-th step [default: 1]")
    g.add_argument("--activations", metavar="FILE", help="activation-over-time video (.mp4/.gif) and FILE.csv")
    g.add_argument("--overlay", metavar="FILE", help="per-step activation heatmap over the image (.mp4/.gif)")
    g.add_argument("--overlay-feature", type=int, default=None, metavar="F", help="overlay one feature instead of the mean over features")
    g.add_argument("--video-fps", type=float, default=12.0, metavar="F", help="frame rate of the recordings [default: 12]")
    g.add_argument("--no-caption", action="store_true", help="no octave/step caption on recorded frames")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DreamError as exc:
        print(f"dreamreel: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        if not getattr(exc, "reported", False):
            print("dreamreel: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"dreamreel: error: {exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
