"""Turn user pictures into Fashion-MNIST-like 28x28 inputs.

The same preprocessing feeds every artifact type:
1. the first frame (GIF), turned upright as its EXIF orientation says (phone photos), alpha
   composited onto white (product photos sit on white);
2. grayscale, 16-bit images scaled to 8 bits;
3. invert if asked, or with `auto` when the border is brighter than mid-grey
   (Fashion-MNIST items are light on a dark background);
4. fit into 28x28 keeping the aspect ratio (area-averaging), centred on black.
"""

from __future__ import annotations

# Pillow, numpy internals are imported inside the functions that need them: importing this module
# (and `fmnist --help`) stays fast.
import os
import warnings
from enum import Enum
from pathlib import Path

import numpy as np

from fmnist_keras.contract import IMAGE_SHAPE, SIDE, grey_images
from fmnist_keras.errors import first_line

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)


class Invert(str, Enum):
    auto = "auto"
    yes = "yes"
    no = "no"


class ImageError(ValueError):
    """A file that cannot be turned into an input; the message names the problem."""


def _to_gray_u8(image) -> np.ndarray:
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


_EXIF_ORIENTATION = 0x0112


def _upright(image):
    """The picture as it is meant to be seen: a phone stores a photo sideways with an EXIF
    orientation tag, which browsers and photo viewers apply."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image) if image.getexif().get(_EXIF_ORIENTATION, 1) != 1 else image


def should_invert(gray: np.ndarray) -> bool:
    """Dark-on-light picture? Judged from the mean of the outermost pixel ring."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(border.mean()) > 127.5


def fit_to_input(gray: np.ndarray) -> np.ndarray:
    from PIL import Image

    height, width = gray.shape
    scale = SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.uint8)
    canvas = np.zeros(IMAGE_SHAPE, dtype=np.uint8)
    top, left = (SIDE - resized.shape[0]) // 2, (SIDE - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def load_image(path: Path, invert: Invert = Invert.auto) -> np.ndarray:
    """One picture file -> (28, 28) uint8, or ImageError."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_picture_file(path)
    too_big = f"over {MAX_PIXELS // 1_000_000} megapixels; refused unread"
    try:
        with warnings.catch_warnings():
            # Our own pixel limit decides; Pillow's warning would only add two stray lines.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(f"{path}: {width}x{height} is {too_big}")
                image.seek(0)
                image.load()
                gray = _to_gray_u8(_upright(image))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read (PNG, JPEG, BMP, GIF, ...)") from None
    except Image.DecompressionBombError:  # Pillow's own, larger limit, hit while reading the header
        raise ImageError(f"{path}: {too_big} (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: truncated or corrupt image ({first_line(exc)})") from None
    if invert is Invert.yes or (invert is Invert.auto and should_invert(gray)):
        gray = 255 - gray
    return fit_to_input(gray)


def _check_picture_file(path: Path) -> None:
    """A regular, non-empty file, or ImageError naming what it is instead."""
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a folder, not a picture")
        if not path.is_file():
            raise ImageError(_not_a_file(path))
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
    except OSError as exc:  # a name longer than the system allows, a permission, ...
        raise ImageError(f"{str(path)[:80]}: cannot be read ({os.strerror(exc.errno or 0)})") from None


def _not_a_file(path: Path) -> str:
    if path.exists():
        return f"{path}: not a regular file (a device, FIFO or socket); pass a picture file"
    return f"{path}: no such file"


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from the header alone, without reading the data."""
    from numpy.lib import format as npy

    with open(path, "rb") as f:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(f, max_header_size=10_000)
        return shape, dtype, f.tell()


def load_npy(path: Path) -> np.ndarray:
    """(N, 28, 28) or (N, 28, 28, 1) uint8 array file, N >= 1 -> (N, 28, 28) uint8.

    The header is checked against the file before any data is read, so a crafted
    header cannot ask for gigabytes of memory.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not a .npy file")
    if not path.is_file():
        raise ImageError(_not_a_file(path))
    expected = f"uint8 of shape (N, {SIDE}, {SIDE}) or (N, {SIDE}, {SIDE}, 1) with N >= 1"
    try:
        shape, dtype, offset = _npy_header(path)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types
        raise ImageError(f"{path}: not a .npy array file ({first_line(exc)})") from None
    if dtype != np.uint8 or len(shape) not in (3, 4) or tuple(shape[1:3]) != IMAGE_SHAPE or shape[3:] not in ((), (1,)):
        raise ImageError(f"{path}: expected {expected}, got {dtype} {shape}")
    if shape[0] == 0:
        raise ImageError(f"{path}: holds no images (shape {shape}); expected {expected}")
    if path.stat().st_size - offset < int(np.prod(shape)):
        raise ImageError(f"{path}: truncated: its header declares {shape} but the file is shorter")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable .npy array ({first_line(exc)})") from None
    return grey_images(array)
