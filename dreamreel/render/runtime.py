"""What every render shares: the source, output checks, the loaded model (``Engine``), one dream with recorders,
and the dream's sidecar report."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..engine import Dreamer, DreamResult, DreamSettings, Size, Step, device_problem, noise_image, pick_device
from ..errors import DreamError, short_path
from ..io.images import STILL_SUFFIXES, image_size, load_image
from ..io.outputs import FRAME_FILE
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
    if source.path.is_file() and (header := image_size(source.path)):
        plan.output_size(header)  # a too-large output is refused before a huge input is decoded
    image = load_image(source.path, compact=compact)
    return image, plan.output_size((image.shape[-1], image.shape[-2]))




def check_path_text(text: str | os.PathLike, what: str) -> None:
    """Refuse a path with control characters (a newline, a tab, ESC ...): they never belong in a file name, and
    a newline would break every list a path is written into."""
    t = os.fspath(text)
    if any(ord(c) < 32 or ord(c) == 127 for c in t):
        raise DreamError(f"{what} {short_path(t)} holds a control character (a newline?)", "rename it")


def _resolved(path: Path, what: str) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise DreamError(f"{what} {short_path(path)} cannot be resolved ({exc.__class__.__name__}: a symlink loop?)") from None


def check_output_path(path: Path, *, folder: bool, what: str = "output") -> None:
    """An output that can be written where it is asked: no control characters, no broken or looping symlink, a
    folder where a folder is asked (a file where a file is), and a parent that is (or can become) a folder."""
    check_path_text(path, what)
    if path.is_symlink() and not path.exists():
        raise DreamError(f"{what} {short_path(path)} is a broken symlink (or a symlink loop)", "remove it or choose another path")
    _resolved(path, what)
    if folder and path.exists() and not path.is_dir():
        raise DreamError(f"{what} {short_path(path)} is a file, but a folder of PNG frames is asked",
                         "choose a folder name, or drop the trailing '/'")
    if not folder and path.is_dir():
        raise DreamError(f"{what} {short_path(path)} is a folder", "choose a file name")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            raise DreamError(f"{what} {short_path(path)}: {short_path(parent)} is a broken symlink")
        parent = parent.parent
    if not parent.is_dir():
        raise DreamError(f"cannot write {what} {short_path(path)}: {short_path(parent)} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DreamError(f"cannot write {what} {short_path(path)}: no permission to write in {short_path(parent)}")


def resume_folder(output: Path) -> Path:
    """Where a render of ``output`` keeps its resume checkpoint: ``.OUT.resume/`` beside it."""
    return output.parent / f".{output.name}.resume"


def check_outputs(inputs: Sequence[Path | str | None], outputs: Sequence[Path | None],
                  sidecars: Sequence[Path] = (), checkpoints: Sequence[Path] = ()) -> None:
    """Refuse an output, the sidecar of one of ``sidecars`` or the ``.OUT.resume/`` folder of one of
    ``checkpoints``, that would land on an input, on a folder output holding an input, or on another output.
    Paths are compared resolved (symlinks), and as files (hard links)."""
    from ..io.sidecar import sidecar_path

    labels = {sidecar_path(o): f"the sidecar of {short_path(o)}," for o in sidecars}
    outputs = [*outputs, *labels]
    seen: dict[Path, Path] = {}
    ins = [Path(p) for p in inputs if p is not None and str(p) != ""]
    for p in ins:
        check_path_text(p, "input")
    in_real = {_resolved(p, "input"): p for p in ins if p.exists()}
    in_stat = {(st.st_dev, st.st_ino): p for p in ins if p.is_file() for st in [p.stat()]}
    for out in checkpoints:
        _check_checkpoint(resume_folder(out), out, in_real)
    for out in outputs:
        if out is None:
            continue
        r = _resolved(out, "output")
        hit = in_real.get(r)
        if hit is None and out.is_file():
            st = out.stat()
            hit = in_stat.get((st.st_dev, st.st_ino))
        folder_hit = None if hit is not None else next(  # a frame file of a folder output is an input
            (p for real, p in in_real.items() if real.parent == r and FRAME_FILE.match(real.name)), None)
        if folder_hit is not None:
            raise DreamError(f"output folder {short_path(out)} holds the input {short_path(folder_hit)} among its frame files",
                             "choose another output folder")
        if hit is not None:
            what = f"{labels[out]} {short_path(out)}," if out in labels else f"output {short_path(out)}"
            raise DreamError(f"{what} would overwrite the input {short_path(hit)}", "choose another output path")
        if r in seen:
            raise DreamError(f"two outputs share the path {short_path(out)}", "choose other output names")
        seen[r] = out


def _check_checkpoint(folder: Path, out: Path, in_real: dict[Path, Path]) -> None:
    """The resume folder of ``out`` is written (state, last frame, partial output): it must be a folder or
    absent, and hold no input."""
    if folder.exists() and not folder.is_dir() or folder.is_symlink() and not folder.exists():
        raise DreamError(f"{short_path(folder)} is not a folder, but {short_path(out)} keeps its resume checkpoint there",
                         "remove it or choose another output path")
    r = _resolved(folder, "checkpoint folder")
    if hit := next((p for real, p in in_real.items() if real == r or r in real.parents), None):
        raise DreamError(f"the checkpoint folder {short_path(folder)} of {short_path(out)} holds the input "
                         f"{short_path(hit)}", "choose another output path, or move the input")


@contextlib.contextmanager
def output_lock(output: Path):
    """Hold ``.OUT.lock`` beside ``output`` while a render writes it: a second render (or --resume) of the same
    output is refused in one line. An flock dies with its process, so a killed render leaves no stale lock (its
    file is taken over); the file is removed on release."""
    import fcntl

    lock = output.absolute().parent / f".{output.name}.lock"
    made = [p for p in [lock.parent, *lock.parent.parents] if not p.exists()]
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            for p in made:
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise DreamError(f"{short_path(output)} is being written by another dreamreel"
                             + (f" (process {holder})" if holder.isdigit() else ""),
                             "wait for it to finish, or choose another output path") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:  # its holder removed it between our open and our lock
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
        for p in made:
            with contextlib.suppress(OSError):
                p.rmdir()  # only the folders this lock made, and only if nothing was written into them


def check_video_output(path: Path | str) -> Path:
    """An output the encoders can write (.mp4, .gif or a folder: a path ending in '/', an existing folder or a name
    without a suffix), else a one-line DreamError. A folder keeps its trailing '/' only in ``path``'s text: see
    :func:`folder_output`."""
    from ..io.outputs import kind_for

    check_path_text(path, "output")
    try:
        kind = kind_for(path)
    except ValueError as exc:
        raise DreamError(f"cannot write {short_path(path)}: {exc}") from None
    p = Path(path)
    check_output_path(p, folder=kind == "frames")
    return p


@contextlib.contextmanager
def folder_output(text: Path | str):
    """Yields ``Path(text)``. A folder output whose name has a suffix (``frames.v1/``) is only a folder by its
    trailing '/', which a Path drops: the folder is made here, just before the render, so that every later reader
    of the path sees a folder; it is removed again if the render leaves it empty."""
    from ..io.outputs import kind_for

    p = Path(text)
    made = False
    if kind_for(text) == "frames" and not p.exists() and p.suffix:
        p.mkdir(parents=True)
        made = True
    try:
        yield p
    finally:
        if made and p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def check_still_output(path: Path) -> None:
    check_path_text(path, "output")
    if path.suffix.lower() not in STILL_SUFFIXES:
        raise DreamError(
            f"cannot write a still to {short_path(path)}: unknown image type {path.suffix or '(none)'!r}",
            "use .png or .jpg (videos come from dreamreel zoom, or --progress)",
        )
    check_output_path(path, folder=False)


def open_device(name: str) -> torch.device:
    """``--device`` resolved and checked usable here, else a one-line DreamError."""
    if problem := device_problem(name):
        raise DreamError(f"device {name!r} is not usable here ({problem})", "use --device cpu")
    device = pick_device(name)
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        first = str(exc).splitlines()[0][:80]
        raise DreamError(f"device {name!r} is not usable here ({first})", "use --device cpu") from None
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
