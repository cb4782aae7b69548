"""Options: one table of every command's options (dream, zoom, video, segments, output, recording, batch) and their parsers.

A value comes from an explicit flag or keyword, else the preset, else the command's default, else the
table's. Flags, presets, timelines and Python keywords all go through :func:`parse_value`, the one place
where values are checked. No torch here: ``dreamreel --help`` reads this table.
"""

from __future__ import annotations


import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DreamError
from .parsers import (MAX_SIDE, camera_degrees, choice, crf_value, flag_value, flow_choice,
                      gpu_share, nonneg_float, nonneg_int, parse_int_list, parse_octaves, parse_schedule, parse_shift,
                      parse_size, positive_float, positive_int, ranged_float, scheduled, seconds_value)
from .schedule import Schedule, ScheduleError, looks_like_schedule, parse_schedule_string


#: Colour space of the gradient step, and of --color-match (engine/conditioning.py implements them).
COLOR_MODES = ("rgb", "decorrelated", "luminance")
MATCH_MODES = ("none", "rgb", "decorrelated")
#: How a whole --layer is scored (engine/objectives.py): the article's sum, or the original DeepDream's squares.
LAYER_OBJECTIVES = ("sum", "square")

@dataclass(frozen=True)
class Option:
    """One option of any command: its flag (``--`` + key with ``-``), parser (the one place its values are
    checked), default, help, and group: dream, zoom, video, segments, output, recording or batch."""

    key: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None
    repeat: bool = False  # --layer A --layer B; a list in a preset
    group: str = "dream"
    switch: bool = False  # a flag without a value (--no-caption)
    file: str | None = None  # "reads": its value names a file the job reads; "writes": one the job writes
    parent: str | None = None  # the option it only means something beside (--tile-overlap: --tile)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


#: Per-frame dream defaults of ``video`` (explicit flags and presets win): one octave at the output size, few steps.
#: With flow, a frame continues the previous frame's dream (its detail carried along the motion), so it needs
#: only a small top-up. The top-up is what flickers: the gradient of a stride-32 network does not follow the
#: scene when it moves, so whatever a frame's steps add is partly new detail. Two half-size steps (lr 0.0075)
#: add detail that follows the scene better than one full step (their two jitters average out), so per unit of
#: dream they flicker half as much. With transformation robustness, lapnorm and the decorrelated step (the dream
#: defaults) the top-up follows the scene far better, so it can be twice as strong; a higher lr or more steps
#: buys strength only with flicker. Measurements: benchmarks/RESULTS.md ("Video defaults").
VIDEO_DEFAULTS = {"octaves": 1, "steps": [2], "lr": [(0.016, 0.016)]}
#: ``--flow none``: each frame is dreamt from scratch, so it needs full steps for the dream to show.
VIDEO_DEFAULTS_NO_FLOW = {"octaves": 1, "steps": [3]}
#: Each later zoom frame: one octave and 3 steps (the first frame gets --first-octaves).
ZOOM_DEFAULTS = {"octaves": 1, "steps": [3]}
#: How much of the previous frame's warped dream detail a frame starts from; the dream builds up to about
#: 1/(1-B) frames' worth of top-ups, and content entering the frame takes a few frames to catch up.
DEFAULT_BLEND = 0.985


def command_defaults(command: str, flow: str | None = None) -> dict[str, Any]:
    """The dream defaults a command changes (the CLI and the Python verbs share them)."""
    if command == "zoom":
        return dict(ZOOM_DEFAULTS)
    if command == "video":
        return dict(VIDEO_DEFAULTS_NO_FLOW if flow == "none" else VIDEO_DEFAULTS)
    return {}


OPTIONS: list[Option] = [
    Option("model", str, "efficientnet_lite0", "model (see: dreamreel models)", "M"),
    Option("weights", str, "default", "default (torchvision download / embedded), random (untrained), or a state-dict PATH", "W",
           file="reads"),
    Option("layer", str, [], "layer to dream: NAME, NAME:3,7 or NAME:0-7 (features), NAME@WEIGHT; repeat for several", "SPEC", True),
    Option("target", str, [], "class target: name or index, CLASS@WEIGHT; with --layer a directed dream", "CLASS[@W]", True),
    Option("layer_objective", choice(*LAYER_OBJECTIVES), "square", "how a whole layer is scored: square (the "
           "original DeepDream: amplifies what the layer already sees, so the picture decides what grows) or sum (the "
           "article's: every feature pushed alike)", "{square,sum}"),
    Option("size", parse_size, None, "output size: N (longer side, aspect kept) or WxH; default: the input's size", "N|WxH"),
    Option("octaves", parse_octaves, 4, "N octaves ending at the output size, or sizes S1,S2,...", "N|S1,S2,..."),
    Option("octave_scale", positive_float, 1.4, "size ratio between octaves when --octaves is a count", "F"),
    Option("steps", scheduled(parse_int_list), [10], "steps per octave (or one per octave: N1,N2,...)", "N|S"),
    Option("lr", scheduled(parse_schedule), [(0.03, 0.015)], "learning rate start[:end] per octave (or one per octave, comma-separated)", "A[:B]|S"),
    Option("sigma", scheduled(parse_schedule), [(0.5, 0.25)], "Gaussian blur sigma start[:end] in pixels; 0 = no smoothing", "A[:B]|S"),
    Option("smooth_every", positive_int, 1, "blur every K steps (1: every step; 5-10: the article's directed dream)", "K"),
    Option("jitter", nonneg_int, 16, "random shift of up to PX pixels per step (0: none, as in the article)", "PX"),
    Option("normalize", choice("mean-abs", "none"), "mean-abs", "gradient normalisation: mean-abs, or none (the article's raw step)", "{mean-abs,none}"),
    Option("octave_carry", choice("detail", "image"), "detail", "between octaves: add the dreamt detail to the resized source (detail) or resize the dream itself, as the article does (image)", "{detail,image}"),
    Option("view_scale", nonneg_float, 0.15, "transformation robustness: each step sees the image scaled by a random 1 +- F (0: off)", "F"),
    Option("view_rotate", nonneg_float, 10.0, "... and rotated by a random +- DEG degrees (0: off)", "DEG"),
    Option("lapnorm", nonneg_int, 4, "Laplacian-pyramid gradient normalisation over N bands (0: off)", "N"),
    Option("color", choice(*COLOR_MODES), "decorrelated", "colour space of the step: rgb, decorrelated (damps colour fringes) or luminance (keeps the colours)", "{rgb,decorrelated,luminance}"),
    Option("seed", int, 0, "random seed (noise, jitter)", "N"),
    Option("device", str, "auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps", "D"),
    # effects: engine/tiles.py, engine/guide.py, engine/masks.py
    Option("tile", nonneg_int, 0, "compute the gradient in tiles of PX pixels (memory bounded by the tile, for huge images); 0: whole image", "PX"),
    Option("tile_overlap", nonneg_int, None, "overlap of neighbouring tiles in pixels [default: tile/8]", "PX",
           parent="tile"),
    Option("guide", str, [], "guided dream: match the layer's features to IMAGE's (per position the best-matching one), @W weights it; repeat for several", "IMAGE[@W]", True,
           file="reads"),
    Option("guide_layer", str, None, "layer the guide is matched at [default: the first --layer's, else the model's default]", "NAME",
           parent="guide"),
    Option("mask", str, None, "dream only where MASK is white (grey: partly; black: the input exactly); a still or a video of masks", "MASK",
           file="reads"),
    Option("mask_feather", nonneg_float, 0.0, "soften the mask's edges over PX pixels, inside the white region", "PX",
           parent="mask"),
    # zoom
    Option("frames", positive_int, 48, "number of frames", "N", group="zoom"),
    Option("fps", positive_float, 12.0, "frames per second", "F", group="zoom"),
    Option("zoom", scheduled(positive_float), 1.04, "zoom per frame, >1 moves in; or a schedule "
           "'0:(1.0), 60:(1.04)' (any option marked S takes one: see README)", "Z|S", group="zoom"),
    Option("rotate", scheduled(float), 0.0, "rotation per frame in degrees, counterclockwise (Deforum: --angle)",
           "DEG|S", group="zoom"),
    Option("shift", parse_shift, (0.0, 0.0), "shift per frame in pixels", "DX,DY", group="zoom"),
    Option("shift_x", scheduled(float), None, "shift per frame in pixels to the right; overrides --shift's DX "
           "(Deforum: --translation-x)", "PX|S", group="zoom"),
    Option("shift_y", scheduled(float), None, "... down; overrides --shift's DY (Deforum: --translation-y)", "PX|S",
           group="zoom"),
    # the 3D camera (render/camera.py)
    Option("translation_z", scheduled(float), None, "3D camera: moves forward per frame, in 1/200 of the distance "
           "to the picture (Deforum's unit)", "Z|S", group="zoom"),
    Option("rotation_3d_x", scheduled(camera_degrees), None, "3D camera: tilts up per frame, degrees", "DEG|S",
           group="zoom"),
    Option("rotation_3d_y", scheduled(camera_degrees), None, "3D camera: turns right per frame, degrees", "DEG|S",
           group="zoom"),
    Option("rotation_3d_z", scheduled(camera_degrees), None, "3D camera: rolls per frame, degrees (the picture "
           "turns counterclockwise)", "DEG|S", group="zoom"),
    Option("fov", scheduled(positive_float), None, "3D camera: field of view across the shorter side, degrees "
           "[default: 40]", "DEG|S", group="zoom"),
    Option("depth", str, None, "3D camera: depth of the picture, a grey still or video (white near, black twice as "
           "far) with the output's aspect; default: a flat picture", "IMAGE|VIDEO", group="zoom",
           file="reads"),
    Option("parseq", str, None, "per-frame values from a Parseq render (its JSON's rendered_frames): zoom, angle, "
           "translation_x/y/z, rotation_3d_x/y/z, fov", "FILE.json", group="zoom", file="reads"),
    Option("timeline", str, None, "TOML keyframes: zoom/rotate/shift interpolated, layer/target/steps switched", "FILE", group="zoom",
           file="reads"),
    Option("first_octaves", parse_octaves, 3, "the first frame's octaves", "N|S1,...", group="zoom"),
    Option("color_match", choice(*MATCH_MODES), "rgb", "match every frame's per-channel colour mean and std to the "
           "first frame's (in RGB or the decorrelated colour space), so contrast and colour do not drift", "{rgb,decorrelated,none}", group="zoom"),
    Option("travel", nonneg_int, 24, "a zoom that travels: every N frames the dream leans toward the next class "
           "family (birds, buildings, fish, flowers, ...), so the content changes as it goes in; 0: off", "N", group="zoom"),
    Option("travel_weight", nonneg_float, 150.0, "weight of --travel's class-family term against the layer", "W", group="zoom"),
    Option("audio", str, None, "a track whose duration at --fps sets the frame count; muxed into an MP4", "TRACK", group="zoom",
           file="reads"),
    Option("react", str, None, "parameters following the --audio track: KEY=A:B[@onset] (A at silence, B at the loudest "
           "frame; @onset follows the attacks), KEY in zoom, rotate, shift_x, shift_y, the 3D keys, lr, sigma, steps", "KEY=A:B,...", group="zoom",
           parent="audio"),
    Option("loop", flag_value, False, "a seamless loop: the last frames fade into the first", group="zoom", switch=True),
    Option("loop_frames", positive_int, None, "frames of the --loop fade [default: a third of the frames]", "N", group="zoom",
           parent="loop"),
    # video
    Option("flow", flow_choice, "farneback", "optical flow that carries the dream from frame to frame: farneback (OpenCV, CPU, "
           "fast), raft / raft_small / raft_large (torchvision RAFT, weights from the torch hub cache), or none (every "
           "frame dreamt on its own)", "{farneback,raft,none}", group="video"),
    Option("blend", scheduled(ranged_float(0.0, 1.0)), DEFAULT_BLEND, "weight 0-1 of the previous frame's warped dream detail in "
           "the next frame's start (higher: steadier, stronger dream)", "B|S", group="video"),
    Option("start", seconds_value, 0.0, "first second of the clip to dream", "T", group="video"),
    Option("end", seconds_value, None, "second at which to stop (exclusive); default: the end", "T", group="video"),
    Option("every", positive_int, 1, "dream every N-th frame; the output plays at fps/N so it keeps the clip's timing", "N", group="video"),
    Option("deflicker", ranged_float(0.0, 1.0), None, "temporal filter of the dream's residual along the flow: 0 "
           "off, up to 1 (steadiest) [default: DEFAULT_DEFLICKER with a flow, 0 with --flow none]", "S", group="video"),
    # video --segments (render/segments.py)
    Option("segments", positive_int, None, "dream the clip as N segments side by side (worker processes, or Ray "
           "with --ray), joined into one MP4 with the source's audio", "N", group="segments"),
    Option("segment_overlap", nonneg_int, None, "each segment starts K frames early; those warm-up frames are "
           "cross-faded with the previous segment's last K so the seams do not pop [default: 4]", "K", group="segments",
           parent="segments"),
    # in-betweens and drafts (render/tween.py, render/preview.py): zoom and video
    Option("interpolate", positive_int, 1, "N-1 in-between frames after each dreamt frame, moved along the zoom's "
           "motion or the clip's flow; the file plays at N x the frame rate, as long (1: off)", "N", group="frames"),
    Option("draft", flag_value, False, "a quick check of the motion: half the width and height, one step per frame",
           group="frames", switch=True),
    # output
    Option("crf", crf_value, 18, "H.264 quality, lower is better", "Q", group="output"),
    # recording
    Option("progress", str, None, "optimisation-progress animation (.mp4, .gif or folder/)", "FILE", group="recording",
           file="writes"),
    Option("progress_every", int, 1, "record every K-th step", "K", group="recording"),
    Option("activations", str, None, "activation-over-time video (.mp4/.gif) and FILE.csv", "FILE", group="recording",
           file="writes"),
    Option("overlay", str, None, "activation heatmap over the image (.mp4, .gif or folder/)", "FILE", group="recording",
           file="writes"),
    Option("overlay_feature", int, None, "overlay one feature instead of the mean over features", "F", group="recording"),
    Option("video_fps", positive_float, 12.0, "frame rate of the recordings", "F", group="recording"),
    Option("no_caption", flag_value, False, "no octave/step caption on recorded frames", group="recording", switch=True),
    Option("preview", str, None, "rewrite this .jpg/.png with the latest frame and its number while rendering (zoom, "
           "video; render/preview.py)", "FILE", group="recording", file="writes"),
    Option("preview_every", positive_int, 10, "update --preview every K dreamt frames (and at the end)", "K",
           group="recording", parent="preview"),
    # batch
    Option("jobs", positive_int, 1, "worker processes", "N", group="batch"),
    # batch --ray (distributed.py)
    Option("cpus_per_item", positive_int, None, "CPUs (= torch threads) each Ray worker claims [default: the torch "
           "threads of a run without --ray, so the outputs are identical to it]", "N", group="batch"),
    Option("gpus_per_item", gpu_share, None, "GPUs each Ray worker claims; fractions pack several on one GPU (0.5: two "
           "per GPU) [default: 1 when the cluster has GPUs]", "G", group="batch"),
]
OPTION_KEYS = {o.key: o for o in OPTIONS}
#: Options whose value may change over the frames: a schedule string (or a timeline, --parseq, --react) sets it.
SCHEDULE_KEYS = ("zoom", "rotate", "shift_x", "shift_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
                 "rotation_3d_z", "fov", "lr", "sigma", "steps", "blend")
#: Deforum's names for the same options (flags, keywords, presets, timelines and Parseq files take them).
ALIASES = {"angle": "rotate", "translation_x": "shift_x", "translation_y": "shift_y"}


def canonical_keys(values: dict[str, Any], where: Callable[[str], str] = lambda k: k) -> dict[str, Any]:
    """``values`` with Deforum's names (``angle``) under dreamreel's (``rotate``); both given is refused."""
    out = dict(values)
    for alias, key in ALIASES.items():
        if alias in out:
            if out.get(key) is not None and out[alias] is not None:
                raise DreamError(f"{where(alias)} and {where(key)} are the same option", "give one of them")
            value = out.pop(alias)
            if value is not None or key not in out:
                out[key] = value
    return out


def weight_schedule(spec: str, key: str) -> Schedule | None:
    """The schedule of a --layer/--target spec's weight (``block7@0:(1), 48:(0)``), or None (a number, or none)."""
    w = spec_weight(spec, key)
    return parse_schedule_string(w) if w is not None and looks_like_schedule(w) else None

STILL_RECORDING = ("progress", "progress_every", "activations", "overlay", "overlay_feature", "video_fps", "no_caption")
ZOOM_RECORDING = ("progress", "progress_every", "video_fps", "no_caption", "overlay", "overlay_feature", "preview",
                  "preview_every")
#: The option groups each command takes (group -> its keys, None: all of them): the CLI's flags and the Python
#: verbs' keywords. The groups in WRITTEN only mean something to a render that writes files.
COMMAND_OPTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "dream": {"dream": None, "recording": STILL_RECORDING},
    "zoom": {"zoom": None, "frames": None, "output": None, "dream": None, "recording": ZOOM_RECORDING},
    "video": {"video": None, "frames": None, "output": None, "dream": None,
              "recording": ("overlay", "overlay_feature", "preview", "preview_every"), "segments": None},
}
WRITTEN = ("output", "recording", "segments")


def command_keys(command: str, *, writes: bool = True) -> set[str]:
    """The option keys ``command`` takes; ``writes=False``: those a render that returns arrays can honour."""
    groups = {g: keys for g, keys in COMMAND_OPTIONS[command].items() if writes or g not in WRITTEN}
    return {o.key for o in OPTIONS if o.group in groups and (groups[o.group] is None or o.key in groups[o.group])}


# ---------------------------------------------------------------- the validation layer: ranges of every number
# After an option's parser, :func:`parse_value` checks every number in the parsed value (a schedule's pairs, a
# shift's two values, per-octave lists, a layer's @WEIGHT): finite, and inside the option's LIMITS. An option
# without a row still gets the finiteness check. Keep one row per option; new options add a row.


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and x == int(x) else f"{x:g}"


@dataclass(frozen=True)
class Limit:
    """The closed range ``lo..hi`` (``lo`` excluded when ``above``) that every number of an option's value must
    fall in; ``unit`` is said in the error's hint."""

    lo: float | None = None
    hi: float | None = None
    above: bool = False
    unit: str = ""

    def hint(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        lo, hi = _num(self.lo), _num(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"use {'more than ' if self.above else ''}{lo} to {hi}{u}"
        if self.lo is not None:
            return f"use a number {'>' if self.above else '>='} {lo}{u}"
        return f"use a number <= {hi}{u}"

    def holds(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.above else v < self.lo):
            return False
        return self.hi is None or v <= self.hi


MAX_SEED = 2**32 - 1
LIMITS: dict[str, Limit] = {
    "size": Limit(1, MAX_SIDE, unit="px"),
    "octaves": Limit(1, MAX_SIDE),  # a count (1-12, its parser) or sizes in px
    "octave_scale": Limit(1, 10),
    "steps": Limit(1, 100_000),
    "lr": Limit(0, 100),
    "sigma": Limit(0, 100, unit="px"),
    "smooth_every": Limit(1, 100_000),
    "jitter": Limit(0, MAX_SIDE, unit="px"),
    "seed": Limit(0, MAX_SEED),
    "frames": Limit(1, 1_000_000),
    "fps": Limit(0.1, 1000),
    "zoom": Limit(0.1, 10),
    "rotate": Limit(-360, 360, unit="degrees"),
    "shift": Limit(-MAX_SIDE, MAX_SIDE, unit="px"),
    "shift_x": Limit(-MAX_SIDE, MAX_SIDE, unit="px"),
    "shift_y": Limit(-MAX_SIDE, MAX_SIDE, unit="px"),
    "translation_z": Limit(-100, 100),  # 1/200 of the distance to the picture: at most half the way per frame
    "rotation_3d_x": Limit(-90, 90, unit="degrees"),
    "rotation_3d_y": Limit(-90, 90, unit="degrees"),
    "rotation_3d_z": Limit(-360, 360, unit="degrees"),
    "fov": Limit(1, 170, unit="degrees"),
    "first_octaves": Limit(1, MAX_SIDE),
    "blend": Limit(0, 1),
    "start": Limit(0, 1e7, unit="s"),
    "end": Limit(0, 1e7, unit="s"),
    "every": Limit(1, 100_000),
    "crf": Limit(0, 51),
    "progress_every": Limit(1, 100_000),
    "overlay_feature": Limit(0, 100_000),
    "video_fps": Limit(0.1, 1000),
    "jobs": Limit(1, 1024),
    "view_scale": Limit(0, 0.9),  # a fraction of the image
    "view_rotate": Limit(0, 180, unit="degrees"),
    "lapnorm": Limit(0, 12),  # pyramid levels
    "tile": Limit(0, MAX_SIDE, unit="px"),
    "tile_overlap": Limit(0, MAX_SIDE, unit="px"),
    "mask_feather": Limit(0, MAX_SIDE, unit="px"),
    "loop_frames": Limit(1, 1_000_000),
    "travel": Limit(0, 1_000_000),
    "travel_weight": Limit(0, 1000),  # a term weight, as after @
    "segments": Limit(1, 1024),
    "deflicker": Limit(0, 1),
    "interpolate": Limit(1, 16),
    "preview_every": Limit(1, 1_000_000),
    "segment_overlap": Limit(0, 1000),
    "cpus_per_item": Limit(1, 1024),
    "gpus_per_item": Limit(0, 64, above=True),
}
#: The weight in NAME@WEIGHT / CLASS@WEIGHT.
WEIGHT_LIMIT = Limit(-1000, 1000)
DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)


def guide_spec(text: str) -> tuple[str, str | None]:
    """A --guide ``IMAGE[@WEIGHT]`` as (image path, weight text or None); a path may itself hold an '@' when what
    follows the last one is not a number."""
    path, at, weight = text.rpartition("@")
    if not at:
        return text, None
    try:
        float(weight)
    except ValueError:
        return text, None
    return path, weight


def spec_weight(spec: str, key: str) -> str | None:
    """The WEIGHT text of a --layer (``NAME[:F]@W``), --target (``CLASS@W``) or --guide (``IMAGE@W``) spec, or None."""
    if key == "guide":
        return guide_spec(spec)[1]
    if "@" not in spec:
        return None
    return spec.partition("@")[2] if key == "layer" else spec.rpartition("@")[2]


def file_values(values: dict[str, Any], file: str = "reads") -> list[tuple[str, str]]:
    """``(key, path)`` of every file the merged option ``values`` name that the job reads (``file="reads"``) or
    writes (``"writes"``), from the table: an option whose value names a file says so (``Option.file``)."""
    out = []
    for o in OPTIONS:
        if o.file != file or not values.get(o.key):
            continue
        for v in values[o.key] if o.repeat else [values[o.key]]:
            path = guide_spec(str(v))[0].strip() if o.key == "guide" else str(v)
            if o.key == "weights" and path in ("default", "random"):
                continue
            out.append((o.key, path))
    return out


def check_parents(values: dict[str, Any], where: Callable[[str], str] | None = None) -> None:
    """Refuse an option set (not at its default) whose parent option is off: ``--tile-overlap`` without ``--tile``
    would be silently ignored."""
    name = where or (lambda k: OPTION_KEYS[k].flag)
    for o in OPTIONS:
        if o.parent is None or values.get(o.key) in (None, o.default) or values.get(o.parent):
            continue
        parent = OPTION_KEYS[o.parent]
        raise DreamError(f"{name(o.key)} needs {name(o.parent)}" + ("" if parent.switch else f" {parent.metavar}"))


def check_range(key: str, parsed: Any) -> None:
    """Raise ValueError (its text: the hint) unless every number in ``parsed`` is finite and within LIMITS[key]."""
    limit = LIMITS.get(key)
    for v in _numbers(parsed):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("not a finite number" + (f"; {limit.hint()}" if limit else ""))
        if limit and not limit.holds(v):
            raise ValueError(limit.hint())
    if key in ("layer", "target", "guide"):
        for spec in parsed:
            w = spec_weight(spec, key)
            if w is None:
                continue
            if looks_like_schedule(w):
                continue  # a schedule: checked frame by frame (specs_at)
            try:
                f = float(w)
            except ValueError:
                continue  # not a number: the objective's parser names it
            if not (f == f and WEIGHT_LIMIT.holds(f)):
                raise ValueError(f"the weight after @ must be a finite number, {WEIGHT_LIMIT.hint()[4:]}")
    if key == "device" and not DEVICE_RE.fullmatch(parsed):
        raise ValueError("use auto, cpu, cuda, cuda:N or mps")
DREAM_KEYS = tuple(o.key for o in OPTIONS if o.group == "dream")
#: What a preset may set: every dream, zoom, video and output option (recordings and batch workers are per run).
PRESET_KEYS = tuple(o.key for o in OPTIONS if o.group in ("dream", "zoom", "video", "output"))


def parse_value(key: str, value: Any, where: str) -> Any:
    """Parse one option value from a flag string, a preset/timeline value or a Python keyword; errors name ``where``.

    The one place where option values are checked.
    """
    o = OPTION_KEYS[key]
    if o.repeat:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        kinds = (str,) if key == "layer" else (str, int)  # a class target may be an index; a layer is a name
        if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in items):
            raise DreamError(f"{where}: {key} must be a string or a list of strings")
        parsed = [str(v) for v in items]
        if bad := [v for v in parsed if any(ord(c) < 32 or ord(c) == 127 for c in v)]:
            raise DreamError(f"{where}: {key} {bad[0]!r} holds a control character")
        if key in ("layer", "target"):
            for spec in parsed:
                try:
                    weight_schedule(spec, key)
                except ScheduleError as exc:  # the column counts from the weight's first character
                    raise DreamError(f"{where}: {key} {spec!r}: weight {exc}", exc.hint) from None
        try:
            check_range(key, parsed)
        except ValueError as exc:
            raise DreamError(f"{where}: bad {key} {bad_spec(key, parsed)!r}", str(exc)) from None
        return parsed
    if o.switch and isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (str, int, float, list, tuple)) and not isinstance(v, bool) for v in value):
            raise DreamError(f"{where}: bad value {value!r} for {key}")
        value = ",".join(str(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, (dict, set)):
        raise DreamError(f"{where}: bad value {value!r} for {key}")
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DreamError(f"{where}: bad value {text!r} for {key}", "it holds a control character (a newline?)")
    try:
        parsed = o.parse(text)
        check_range(key, parsed)
    except ScheduleError as exc:  # "--zoom: bad schedule at column 7: unknown name 'foo'"
        raise DreamError(f"{where}: {exc}", exc.hint) from None
    except (ValueError, OverflowError) as exc:
        hint = str(exc) or None
        if not hint and re.search(r"nan|inf", text, re.I):  # a parser that compares refuses NaN without words
            hint = "not a finite number" + (f"; {LIMITS[key].hint()}" if key in LIMITS else "")
        if where == o.flag and o.group != "dream":  # the command flags' wording: "bad value '2' for --blend"
            raise DreamError(f"bad value {text!r} for {where}", hint) from None
        raise DreamError(f"{where}: bad value {text!r} for {key}", hint) from None
    return parsed


def bad_spec(key: str, specs: Sequence[str]) -> str:
    """The first --layer/--target spec whose weight is out of range (for the error line)."""
    for spec in specs:
        w = spec_weight(spec, key)
        try:
            if w is not None and not (float(w) == float(w) and WEIGHT_LIMIT.holds(float(w))):
                return spec
        except ValueError:
            pass
    return specs[0] if specs else ""


#: Options that cannot work together: (option, option, why).
CONFLICTS = (
    ("activations", "tile", "a tiled dream never holds the whole image's activations"),
    ("overlay", "tile", "a tiled dream never holds the whole image's activations"),
)


def check_conflicts(values: dict[str, Any]) -> None:
    """Refuse two options set together that cannot both be honoured (one line naming both)."""
    for a, b, why in CONFLICTS:
        if values.get(a) and values.get(b):
            raise DreamError(f"{OPTION_KEYS[a].flag} does not work with {OPTION_KEYS[b].flag}",
                             f"{why}; leave one of them out")


def merge_values(given: dict[str, Any], preset: dict[str, Any] | None = None,
                 defaults: dict[str, Any] | None = None, *, where: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Given values (raw: flag strings or Python values; None = not given), else the preset's (parsed), else the
    command's defaults, else the built-in ones; every option of the table, parsed."""
    values = {}
    preset = preset or {}
    defaults = defaults or {}
    for o in OPTIONS:
        raw = given.get(o.key)
        if raw is not None:
            values[o.key] = parse_value(o.key, raw, where(o.key) if where else o.flag)
        elif o.key in preset:
            values[o.key] = preset[o.key]
        elif o.key in defaults:
            values[o.key] = defaults[o.key]
        else:
            values[o.key] = o.default
    check_parents(values, where)
    check_conflicts(values)
    return values
