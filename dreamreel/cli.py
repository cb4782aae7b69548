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


def _plan_from_args(args):
    from .options import merge_values, resolve_plan
    from .presets import load_preset

    preset = load_preset(args.preset) if args.preset else None
    values = merge_values(args, preset.values if preset else None)
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
    from .recorders import recording

    with recording(recorders):
        data = dream_still(plan, source, output, recorders=recorders, show_progress=not args.quiet)
    msg = f"wrote {output} ({data['seconds']:.1f} s)"
    if "target_probability" in data:
        tp = data["target_probability"]
        msg += f"; p({tp['class']}) {tp['start']:.3f} -> {tp['end']:.3f}"
    print(msg, file=sys.stderr)
    return 0


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
    from .options import add_dream_arguments

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
    except KeyboardInterrupt:
        print("dreamreel: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"dreamreel: error: {exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
