"""Reading stills into [0,1] tensors and writing them back, atomically."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import WRITE_ERRNOS, DreamError, writing_error

STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def to_float_rgb(array: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, RGB, RGBA, 8 or 16 bit, float) -> HxWx3 float32 in [0,1]; alpha is composited on white."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        f = a.astype(np.float32)
        f /= 255.0  # in place: one float copy of a huge image, not two
    elif a.dtype == np.uint16:
        f = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.integer):
        f = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    else:
        f = np.clip(a.astype(np.float32), 0.0, 1.0)
    if f.ndim == 2:
        f = f[:, :, None]
    if f.ndim != 3:
        raise ValueError(f"unexpected image shape {a.shape}")
    if f.shape[2] in (2, 4):  # gray+alpha or RGBA
        alpha = f[:, :, -1:]
        f = f[:, :, :-1] * alpha + (1.0 - alpha)
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    return np.ascontiguousarray(f[:, :, :3])


ARRAYS_ACCEPTED = ("give an HxW, HxWx3 or HxWx4 array or a (3,H,W) or (1,3,H,W) tensor, of uint8, uint16 or "
                   "floats in [0, 1]")


def _array_problem(a: np.ndarray) -> tuple[str, str] | None:
    """Why an HxW[xC] array cannot be an image (the problem, the hint), or None."""
    if a.ndim not in (2, 3) or a.ndim == 3 and a.shape[2] not in (3, 4):
        return f"it has {a.shape[2]} channels" if a.ndim == 3 else "it is not HxW, HxWx3 or HxWx4", ARRAYS_ACCEPTED
    if a.size == 0:
        return "it is empty", ARRAYS_ACCEPTED
    if a.dtype in (np.uint8, np.uint16):
        return None
    if not np.issubdtype(a.dtype, np.floating):
        return f"{a.dtype} values are not accepted", "convert it to uint8 or uint16, or to floats in [0, 1]"
    if not np.isfinite(a).all():
        return "it holds NaN or infinite values", ARRAYS_ACCEPTED
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > 1:
        hint = "divide it by 255 (an image in 0-255)" if lo >= 0 and hi <= 255 else "scale it to [0, 1]"
        return f"its values run from {lo:g} to {hi:g}, outside [0, 1]", hint
    return None


def image_array(image) -> np.ndarray:
    """A numpy array or torch tensor from Python, checked, as HxWx3 float32 in [0, 1]; anything else is a one-line
    DreamError saying what was given and what is accepted."""
    shape = tuple(getattr(image, "shape", ()))
    if isinstance(image, torch.Tensor):
        desc = f"{str(image.dtype).removeprefix('torch.')} tensor of shape {shape}"
        t = image.detach().cpu()
        if t.dim() == 4 and t.shape[0] != 1:
            raise DreamError(f"cannot use the {desc}: a batch of {t.shape[0]} images", "give one image at a time")
        if t.dim() not in (3, 4) or t.shape[-3] != 3:
            raise DreamError(f"cannot use the {desc}: it is not (3,H,W) or (1,3,H,W)", ARRAYS_ACCEPTED)
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        a = t.reshape(t.shape[-3:]).permute(1, 2, 0).numpy()
    else:
        a = np.asarray(image)
        desc = f"{a.dtype} array of shape {a.shape}"
    if problem := _array_problem(a):
        raise DreamError(f"cannot use the {desc}: {problem[0]}", problem[1])
    return to_float_rgb(a)


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(w, h) from an image file's header, without decoding it; None when the header cannot be read here."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - the full decoder (load_image) reports a bad file
        return None


def load_image(path: str | os.PathLike, compact: bool = False) -> torch.Tensor:
    """An image file -> (1,3,H,W) float32 tensor in [0,1]. Bad files raise DreamError.

    ``compact``: an 8-bit RGB or grey file comes back as its (1,3,H,W) uint8 pixels (a quarter of the float
    memory; a tiled dream converts it strip by strip); other files as float32.
    """
    import imageio.v3 as iio

    p = Path(path)
    if not p.exists():
        raise DreamError(f"input {str(p)!r} does not exist")
    if p.is_dir():
        raise DreamError(f"input {str(p)!r} is a folder, not an image", "use dreamreel batch for folders")
    try:
        array = iio.imread(p, index=0)
    except Exception:
        raise DreamError(f"cannot read {str(p)!r} as an image", "use a PNG, JPEG, WebP, BMP or TIFF file") from None
    if compact and array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3))):
        if min(array.shape[:2]) < 1:
            raise DreamError(f"{str(p)!r} is empty")
        rgb8 = array if array.ndim == 3 else np.repeat(array.reshape(*array.shape[:2], 1), 3, axis=2)
        rgb8 = np.require(rgb8, requirements=["C", "W"])  # writable: a copy only where imageio's was not
        return torch.from_numpy(rgb8).permute(2, 0, 1)[None]  # channels-last strides, no copy
    try:
        rgb = to_float_rgb(array)
    except ValueError as exc:
        raise DreamError(f"cannot use {str(p)!r}: {exc}") from None
    if min(rgb.shape[:2]) < 1:
        raise DreamError(f"{str(p)!r} is empty")
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1,3,H,W) or (3,H,W) tensor in [0,1] (any device) -> HxWx3 uint8 numpy array."""
    t = (image[0] if image.dim() == 4 else image).detach()
    out = torch.empty((t.shape[1], t.shape[2], 3), dtype=torch.uint8, device=t.device)
    rows = max(1, (1 << 22) // max(1, 3 * t.shape[2]))  # strip by strip: no full-size float temporaries
    for a in range(0, t.shape[1], rows):
        out[a : a + rows] = (t[:, a : a + rows].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    return out.cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float() / 255.0


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside ``path`` (same suffix); renamed onto ``path`` only if the block succeeds."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part{p.suffix}", dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a published file gets the usual mode
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in WRITE_ERRNOS:  # name the file asked for, not the temp file
            raise writing_error(exc, p) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_image(path: str | os.PathLike, image: torch.Tensor | np.ndarray) -> Path:
    import imageio.v3 as iio

    array = image if isinstance(image, np.ndarray) else to_uint8(image)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, array, extension=Path(path).suffix.lower())
    return Path(path)


def frame_uint8(frame) -> np.ndarray:
    """HxWx3 uint8 copy of ``frame`` (uint8/float in [0,1]/bool; HxW, HxWx1, HxWx3, HxWx4)."""
    if hasattr(frame, "detach"):  # a tensor: duck-typed, no torch import here
        frame = frame.detach().cpu().numpy()
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        raise ValueError(
            f"expected a channels-last HxWx3 frame, got shape {a.shape} "
            "(channels-first? transpose it to HxWxC)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 (or HxW, HxWx4) frame, got shape {a.shape}")
    if a.shape[-1] == 4:
        a = a[:, :, :3]  # drop alpha
    if a.dtype == np.uint8:
        a = a.copy()  # the caller may reuse its buffer while we encode in the background
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0)
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(f"integer frame values must be in [0, 255], got [{lo}, {hi}]")
        a = a.astype(np.uint8)
    else:
        raise TypeError(f"unsupported frame dtype {a.dtype}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def pad_even(a: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: replicate the last row/column instead of cropping."""
    ph, pw = a.shape[0] % 2, a.shape[1] % 2
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return a
