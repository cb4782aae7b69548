"""What every render shares: the source, output checks, the loaded model (``Engine``), one dream with recorders,
and the dream's sidecar report."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..engine import Dreamer, DreamResult, DreamSettings, Size, Step, noise_image, pick_device
from ..errors import DreamError
from ..io.images import STILL_SUFFIXES, load_image
from ..models import create_model
from ..plan import DreamPlan


@dataclass
class Source:
    """Where the first frame comes from: an image file, or the article's noise."""

    path: Path | None
    noise_size: Size | None = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "noise" + (f":{self.noise_size[0]}x{self.noise_size[1]}" if self.noise_size else "")


def parse_source(text: str) -> Source:
    if text == "noise":
        return Source(None)
    if m := re.fullmatch(r"noise:(\d+)x(\d+)", text):
        w, h = int(m.group(1)), int(m.group(2))
        if w < 1 or h < 1:
            raise DreamError(f"bad noise size in {text!r}", "write noise:WxH, e.g. noise:299x299")
        return Source(None, (w, h))
    if text.startswith("noise:"):
        raise DreamError(f"bad noise size in {text!r}", "write noise or noise:WxH, e.g. noise:299x299")
    return Source(Path(text))


def load_source(source: Source, plan: DreamPlan, compact: bool = False) -> tuple[torch.Tensor | None, Size]:
    """The input tensor (None for noise: made once the output size is known) and the output size.

    ``compact``: an 8-bit file stays uint8 (a tiled dream reads it strip by strip; io.images.load_image)."""
    if source.path is None:
        return None, plan.output_size(source.noise_size)
    image = load_image(source.path, compact=compact)
    return image, plan.output_size((image.shape[-1], image.shape[-2]))


def check_outputs(inputs: Sequence[Path | None], outputs: Sequence[Path | None]) -> None:
    """Refuse an output that would overwrite an input, or two outputs on one path."""
    seen: dict[Path, Path] = {}
    ins = {p.resolve() for p in inputs if p is not None and p.exists()}
    for out in outputs:
        if out is None:
            continue
        r = out.resolve()
        if r in ins:
            raise DreamError(f"output {str(out)!r} is the input file", "choose another output path")
        if r in seen:
            raise DreamError(f"two outputs share the path {str(out)!r}")
        seen[r] = out


def check_video_output(path: Path) -> Path:
    """An output the encoders can write (.mp4, .gif or a folder), else a one-line DreamError."""
    from ..io.writer import kind_for

    try:
        kind_for(path)
    except ValueError as exc:
        raise DreamError(f"cannot write {str(path)!r}: {exc}") from None
    return path


def check_still_output(path: Path) -> None:
    if path.suffix.lower() not in STILL_SUFFIXES:
        raise DreamError(
            f"cannot write a still to {str(path)!r}: unknown image type {path.suffix or '(none)'!r}",
            "use .png or .jpg (videos come from dreamreel zoom, or --progress)",
        )
    if path.is_dir():
        raise DreamError(f"output {str(path)!r} is a folder")


def open_device(name: str) -> torch.device:
    """``--device`` resolved and checked usable here, else a one-line DreamError."""
    device = pick_device(name)
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise DreamError(f"device {name!r} is not usable here ({str(exc).splitlines()[0]})", "use --device cpu") from None
    return device


@dataclass
class Engine:
    """A loaded model with its bound objective and a ``Dreamer``; made once per render."""

    plan: DreamPlan
    dreamer: Dreamer
    device: torch.device
    spec: object
    objective: object

    @classmethod
    def load(cls, plan: DreamPlan) -> "Engine":
        device = open_device(plan.device)
        spec, model = create_model(plan.model, plan.weights, device)
        objective = plan.objective()
        return cls(plan, Dreamer(model, objective, device), device, spec, objective)


def progress_bar(total: int, desc: str, **kw) -> tqdm:
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, leave=False, **kw)


def run_dream(
    engine: Engine,
    image: torch.Tensor,
    settings: DreamSettings,
    *,
    seed: int,
    callbacks: Sequence[Callable[[Step], None]] = (),
    desc: str = "dream",
    show_progress: bool = True,
    evaluate_end: bool = True,
) -> DreamResult:
    """One dream with a progress bar and any recorders."""
    generator = torch.Generator().manual_seed(seed)
    total = sum(o.steps for o in settings.octaves)

    def callback(step: Step) -> None:
        for cb in callbacks:
            cb(step)

    with progress_bar(total, desc, disable=not show_progress) as bar:
        return engine.dreamer.dream(
            image, settings, callback=callback if callbacks else None, generator=generator, progress=bar.update,
            evaluate_end=evaluate_end,
        )


def dream_report(engine: Engine, settings: DreamSettings, result: DreamResult, seconds: float, **extra) -> dict:
    """The sidecar's content for one dream."""
    data = {
        "command": extra.pop("command", "dream"),
        **extra,
        "parameters": engine.plan.to_json(),
        "objective": repr(engine.objective),
        "seed": engine.plan.seed,
        "model": engine.spec.name,
        "weights": engine.plan.to_json()["weights_source"],
        "device": str(engine.device),
        "seconds": round(seconds, 3),
        "octaves": [
            {"size": list(o.size), "steps": o.steps, "objective_start": o.objective_start, "objective_end": o.objective_end}
            for o in result.octaves
        ],
    }
    if result.target_probability is not None:
        start, end = result.target_probability
        data["target_probability"] = {"class": engine.objective.targets()[0].label, "start": start, "end": end}
    return data


def first_frame(image: torch.Tensor | None, settings: DreamSettings, seed: int) -> torch.Tensor:
    """The input image, or the article's noise (seeded) made at the first octave's size, as the article starts."""
    if image is not None:
        return image
    return noise_image(settings.octaves[0].size, torch.Generator().manual_seed(seed))
