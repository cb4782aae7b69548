"""The ``dreamreel`` command: a thin layer that parses flags into the keywords the Python verbs take, prints,
and picks exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import __version__, interrupts
from ..errors import MAX_LINE, DreamError
from ..outcome import Outcome, outcome_of
from .flags import add_options, given, with_negative_values



class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage block."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def print_plan(plan, settings, extra_lines=(), objective=None):
    from ..plan import plan_lines

    for line in plan_lines(plan, settings, objective or plan.objective()):
        print(line)
    for line in extra_lines:
        print(line)


def _check_outputs(p, output: Path) -> None:
    """--dry-run refuses what the render would: an output or sidecar on an input, two outputs on one path."""
    from ..api import check_files

    check_files(p, output)


def cmd_dream(args) -> int:
    from .. import api

    output = Path(args.output)
    if args.dry_run:
        from ..render.runtime import check_still_output

        check_still_output(output)
        p = api.prepare_still(args.input, preset=args.preset, **given(args))
        _check_outputs(p, output)
        print(f"input      {p.source.label}")
        print(f"output     {output}  {p.size[0]}x{p.size[1]}")
        print_plan(p.plan, p.settings)
        return 0
    result = api.write_dream(args.input, output, preset=args.preset, show_progress=not args.quiet, **given(args))
    data = result.report
    msg = f"wrote {output} ({data['seconds']:.1f} s)"
    if "target_probability" in data:
        tp = data["target_probability"]
        msg += f"; p({tp['class']}) {tp['start']:.3f} -> {tp['end']:.3f}"
    for g in data.get("guide", []):
        msg += f"; guide match {g['match_start']:.3f} -> {g['match_end']:.3f}, distance {g['distance_start']:.3f} -> {g['distance_end']:.3f}"
    print(msg, file=sys.stderr)
    return 0


def _frames_line(frames: int, fps: float, interpolate: int) -> str:
    if interpolate == 1:
        return f"{frames} frames at {fps:.4g} fps"
    return (f"{frames * interpolate} frames at {fps * interpolate:.4g} fps ({frames} dreamt, {interpolate - 1} "
            f"in-between{'s' if interpolate > 2 else ''} after each)")


def cmd_zoom(args) -> int:
    from .. import api
    from ..render.runtime import check_video_output

    output = check_video_output(args.output)
    p = api.prepare_zoom(args.input, preset=args.preset, **given(args))
    v = p.values
    if args.dry_run:  # what the render uses: the timeline's values at frame 0 (motion: from frame 0 to 1)
        from ..render.zoom import objective_for

        _check_outputs(p, output)
        timeline = p.job.timeline
        at0, at1 = timeline.at(0), timeline.at(1)
        m = timeline.motion_at(1)
        print(f"input      {p.source.label}")
        print(f"output     {output}  {_frames_line(p.job.frames, v['fps'], p.job.interpolate)}, {p.size[0]}x{p.size[1]}"
              + ("  (draft: half the size, one step per frame)" if p.job.draft else ""))
        print(f"motion     zoom {m.zoom:g}  rotate {m.rotate:g} deg  shift {m.shift[0]:g},{m.shift[1]:g} px per frame"
              f"  colour match {v['color_match']}"
              + (f"  (timeline {v['timeline']}: {len(timeline.keys)} keys; values at frame 0-1)" if v["timeline"] else ""))
        job = p.job
        if scheduled := timeline.describe():
            print("schedules  " + "  ".join(f"{k} {s}" for k, s in scheduled.items()))
        if m.camera is not None:
            depth = f"over {v['depth']}" if v["depth"] else "over a flat picture"
            print(f"camera     forward {m.camera.translation_z:g}/200  rotation {','.join(f'{a:g}' for a in m.camera.rotation)}"
                  f" deg  fov {m.camera.fov:g} deg per frame, {depth}")
        if job.audio_features is not None:
            print(f"audio      {v['audio']}  {job.audio_features.duration:.2f} s -> {job.frames} frames; react "
                  + (", ".join(f"{r.key} {r.low:g}..{r.high:g} by {r.feature}" for r in job.reacts) or "nothing"))
        if job.loop:
            print(f"loop       the last {job.loop} rendered frames fade into the first ({job.frames + job.loop} rendered)")
        print("first frame:")
        print_plan(p.plan, p.first_settings, objective=objective_for(p.plan, at0))
        print("each later frame:" + (" (from frame 1; the timeline switches at its keys)" if v["timeline"] else ""))
        steps = [at1["steps"]] if "steps" in at1 else None
        settings = p.settings if steps is None else p.plan.settings(p.size, octaves=p.job.octaves, steps=steps)
        print_plan(p.plan, settings, objective=objective_for(p.plan, at1))
        return 0
    result = api.write_zoom(args.input, args.output, resume=args.resume, show_progress=not args.quiet, prepared=p)
    if result.already_complete:
        print(f"dreamreel: {output} is already complete ({result.frames} frames); nothing to resume", file=sys.stderr)
        return 0
    print(f"wrote {output}: {result.frames} frames at {result.fps:g} fps ({result.seconds:.1f} s)", file=sys.stderr)
    return 0


def cmd_video(args) -> int:
    from .. import api
    from ..render.runtime import check_video_output

    output = check_video_output(args.output)
    source = Path(args.input)
    p = api.prepare_clip(source, preset=args.preset, **given(args))
    from ..render.segments import check_segments

    segments = check_segments(p.values, output, resume=args.resume, ray=args.ray)
    if args.dry_run:
        _check_outputs(p, output)
        info, clip, job = p.clip.info, p.clip, p.job
        audio = "audio" if info.has_audio else "no audio"
        vfr = ", variable frame rate" if info.variable_frame_rate else ""
        print(f"input      {source}  {info.size[0]}x{info.size[1]}, {info.n_frames} frames at {info.fps:.4g} fps, {audio}{vfr}")
        print(f"output     {output}  {'' if clip.exact else 'about '}{_frames_line(clip.frames, clip.fps, job.interpolate)}, "
              f"{clip.size[0]}x{clip.size[1]}" + ("  (draft: half the size, one step per frame)" if job.draft else ""))
        carry = "none (every frame on its own)" if job.flow == "none" else \
            f"{p.raft or job.flow}, blend {job.blend:g}, deflicker {job.deflicker:g}"
        print(f"flow       {carry}")
        if job.timeline is not None and (scheduled := job.timeline.describe()):
            print("schedules  " + "  ".join(f"{k} {s}" for k, s in scheduled.items()))
        if segments is not None:
            where = "on Ray" if args.ray is not None else "in worker processes"
            print(f"segments   {segments[0]}, each {segments[1]} frames early, cross-faded at the seams; {where}")
        print("each frame:")
        print_plan(p.plan, p.settings)
        return 0
    result = api.write_clip(source, args.output, resume=args.resume, show_progress=not args.quiet, prepared=p,
                            ray=args.ray)
    if result.already_complete:
        print(f"dreamreel: {output} is already complete ({result.frames} frames); nothing to resume", file=sys.stderr)
        return 0
    if result.stopped_early:
        print(f"dreamreel: warning: {result.stopped_early}; {output} has the {result.frames} frames before it", file=sys.stderr)
    audio = ", audio kept" if result.sidecar["audio"] else ""
    parts = f", {len(result.sidecar['segments'])} segments" if "segments" in result.sidecar else ""
    print(f"wrote {output}: {result.frames} frames at {result.fps:.4g} fps{audio}{parts} ({result.seconds:.1f} s)",
          file=sys.stderr)
    return 0


def cmd_models(args) -> int:
    from ..models import list_models

    for spec in list_models():
        print(f"{spec.name:20s} {spec.description}")
        print(f"{'':20s} default layer {' + '.join(spec.default_layers)}; weights: {spec.weights_source}")
    return 0


def cmd_layers(args) -> int:
    from ..models import get_spec

    spec = get_spec(args.model)
    print(f"{spec.name}: dreamable layers (features)")
    for name, channels in spec.layer_channels.items():
        note = spec.notes.get(name, "")
        mark = "  (default)" if name == spec.default_layer and "default" not in note else ""
        print(f"  {name:16s} {channels:5d}  {note}{mark}")
    print("  logits            1000  class targets: --target CLASS")
    return 0


def cmd_presets(args) -> int:
    from ..presets import available, load_preset

    for name in available():
        print(f"{name:28s} {load_preset(name).description}")
    return 0


def build_parser() -> Parser:
    from ..options import COMMAND_OPTIONS, VIDEO_DEFAULTS, VIDEO_DEFAULTS_NO_FLOW, ZOOM_DEFAULTS
    from .batch import register as register_batch
    from .reproduce import add_parser as register_reproduce

    parser = Parser(prog="dreamreel", description="Deep-dream stills, zoom videos, progress and activation animations.")
    parser.add_argument("--version", action="version", version=f"dreamreel {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show warnings as they come and the traceback of an unexpected error (or DREAMREEL_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("dream", help="dream a still image (or noise)", description="Dream a still image, octave by octave.")
    p.add_argument("input", metavar="INPUT", help="image file, or noise / noise:WxH (the article's uniform(0,1)/10+0.5)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png, .jpg); a sidecar OUT.json is written beside it")
    add_options(p, COMMAND_OPTIONS["dream"])
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dream)

    p = sub.add_parser("zoom", help="render a zoom dream video", description=(
        "Frame k+1 is frame k's dream, zoomed/rotated/shifted, then dreamt again. "
        "The first frame uses --first-octaves octaves; each later frame --octaves (default 1) and --steps (default 3)."))
    p.add_argument("input", metavar="INPUT", help="image file, or noise / noise:WxH")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="OUT.mp4, OUT.gif or a folder OUT/ of PNGs; OUT.json beside it")
    p.add_argument("--resume", action="store_true", help="continue an interrupted render from its last finished frame")
    add_options(p, COMMAND_OPTIONS["zoom"], defaults=ZOOM_DEFAULTS)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_zoom)

    p = sub.add_parser("video", help="dream a video clip, coherently along its motion", description=(
        "Dream a clip frame by frame. Each frame starts from its source frame plus the previous frame's dream "
        "detail, warped along the optical flow and weighted by --blend, then gets a few dream steps "
        f"(defaults per frame: --octaves 1 --steps {VIDEO_DEFAULTS['steps'][0]} --lr {VIDEO_DEFAULTS['lr'][0][0]:g}; "
        f"with --flow none, where each frame is dreamt from scratch: --steps {VIDEO_DEFAULTS_NO_FLOW['steps'][0]} and "
        "the dream --lr). The first frame is dreamt as if the clip had held still before it, so the dream does not "
        "fade in. Lower --lr or raise --blend for a steadier dream. "
        "The output keeps the clip's frame rate, size (unless --size) and audio track (MP4)."))
    p.add_argument("input", metavar="INPUT", help="video file (MP4, MOV, MKV, WebM, AVI, animated GIF, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.mp4 (with the source's audio), OUT.gif or a folder OUT/ of PNGs; OUT.json beside it")
    p.add_argument("--resume", action="store_true", help="continue an interrupted render from its last finished frame")
    add_options(p, COMMAND_OPTIONS["video"], defaults=VIDEO_DEFAULTS)
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the --segments on a Ray cluster (ADDRESS, RAY_ADDRESS, or a fresh local one); "
                        "pip install 'dreamreel[ray]'")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video)

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


def _partial_line(exc) -> str | None:
    part = outcome.partial if (outcome := outcome_of(exc)) is not None else None
    if part is None:
        return None
    if isinstance(exc, KeyboardInterrupt):
        word = "terminated" if interrupts.terminated(exc) else "interrupted"
        if part.note:
            return f"dreamreel: {word}: {part.note}"
        if not part.frames:
            return f"dreamreel: {word} before the first frame of {part.output} was finished; nothing written"
        return f"dreamreel: {word}: {part.kept_line()}; continue with --resume"
    if part.note:
        return f"dreamreel: {part.note}"
    if part.new > 0 or part.frames > part.new:
        return f"dreamreel: {part.kept_line()} (finished before the error); continue with --resume"
    return None


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the command; the exit status. ``exiting``: the process ends when this returns (the console script),
    so a signal that arrives after it is ignored rather than killing the interpreter on its way out."""
    interrupts.install()  # SIGTERM as Ctrl-C; a second signal never cuts the cleanup short
    try:
        return _main(argv)
    finally:
        interrupts.exiting() if exiting else interrupts.uninstall()




def _one_line(text: str) -> str:
    """Collapse ``text`` to one line of at most MAX_LINE characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_LINE else line[:MAX_LINE - 3] + "..."


def _error_line(exc: DreamError) -> str:
    """``dreamreel: error: MESSAGE (HINT)`` in one line of at most MAX_LINE characters: a long message (a long
    path) is shortened in the middle before the hint is."""
    message, hint = " ".join(exc.message.split()), " ".join((exc.hint or "").split())
    head, tail = "dreamreel: error: ", f" ({hint})" if hint else ""
    if len(tail) > MAX_LINE // 2:
        tail = tail[:MAX_LINE // 2 - 4] + "...)"
    room = MAX_LINE - len(head) - len(tail)
    if len(message) > room:
        half = (room - 3) // 2
        message = message[:half] + "..." + message[len(message) - (room - 3 - half):]
    return head + message + tail


def _main(argv: list[str] | None) -> int:
    """Run the command; every outcome is an exit code and short lines on stderr, never a traceback.

    Warnings (torch's, ...) are held back: an error prints only its one line, a success prints each warning
    on one line. An unexpected exception becomes one line (exit 2) naming its type; ``--debug`` or
    ``DREAMREEL_DEBUG=1`` shows the warnings as they come and the traceback instead.
    """
    import os
    import warnings

    parser = build_parser()
    args = parser.parse_args(with_negative_values(sys.argv[1:] if argv is None else list(argv)))
    debug = args.debug or os.environ.get("DREAMREEL_DEBUG", "") not in ("", "0")
    if debug:
        return _dispatch(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)  # Python hides these from users by default; so does dreamreel
        try:
            code = _dispatch(args)
        except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen input: one line, not a traceback
            first = (str(exc).strip().splitlines() or [""])[0]
            print(_one_line(f"dreamreel: error: {type(exc).__name__}: {first} (DREAMREEL_DEBUG=1 shows the "
                            "traceback)"), file=sys.stderr)
            return 2
    if code == 0:
        for message in dict.fromkeys(str(w.message) for w in caught):
            print(_one_line(f"dreamreel: warning: {message}"), file=sys.stderr)
    return code


def _dispatch(args) -> int:
    try:
        return args.func(args)
    except BrokenPipeError:  # `dreamreel layers | head`: the reader left; nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except DreamError as exc:
        if line := _partial_line(exc):
            print(line, file=sys.stderr)
        print(_error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        outcome = outcome_of(exc) or Outcome()
        for note in outcome.notes:
            print(f"dreamreel: interrupted: {note}", file=sys.stderr)
        line = _partial_line(exc) or (f"dreamreel: {outcome.summary}" if outcome.summary else None)
        if line:
            print(line, file=sys.stderr)
        else:
            print("dreamreel: terminated" if interrupts.terminated(exc) else "dreamreel: interrupted",
                  file=sys.stderr)
        return interrupts.exit_code(exc)
    except OSError as exc:
        from ..errors import os_error_message

        outcome = outcome_of(exc)
        part = outcome.partial if outcome is not None else None
        if part is not None and part.frames and (line := _partial_line(exc)):  # what is kept to --resume from
            print(line, file=sys.stderr)
        print(_one_line(f"dreamreel: error: {os_error_message(exc)}"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
