"""The one input-preparation helper of the face package.

Policy: the face pipeline works on 8-bit RGB, C-contiguous.  Grey images are replicated to three
channels, RGBA loses alpha, and values are never rescaled: an array must already hold 0..255 grey
levels (uint8, or an integer/float array within that range, which is rounded).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import ImageError
from .params import DEFAULT_DETECTION

ImageLike = Any  # ndarray, str or os.PathLike


def _read_file(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        from ..io import read_image  # type: ignore[attr-defined]
    except ImportError:
        read_image = None
    if read_image is not None:
        try:
            return np.asarray(read_image(path, mode="rgb"))
        except TypeError:  # an io.read_image without colour support
            pass
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.seek(0)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError as exc:
        raise ImageError(f"{os.fspath(path)}: no such file") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"{os.fspath(path)}: not a readable image ({exc})") from exc


def as_rgb(image: ImageLike, *, what: str = "image") -> np.ndarray:
    """Return ``image`` as a C-contiguous (H, W, 3) uint8 RGB array, or raise :class:`ImageError`.

    Examples
    --------
    >>> as_rgb(np.zeros((60, 50), np.uint8)).shape
    (60, 50, 3)
    """
    if isinstance(image, (str, os.PathLike)):
        what = os.fspath(image)
        image = _read_file(image)
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what} must be a numpy array or a file path, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ImageError(f"{what} must be (H, W) grey or (H, W, 3|4) colour, got shape {image.shape}")
    height, width = image.shape[:2]
    params = DEFAULT_DETECTION
    if min(height, width) < params.min_side or max(height, width) > params.max_side:
        raise ImageError(
            f"{what} is {width}x{height} pixels; faces are processed in images from "
            f"{params.min_side} to {params.max_side} pixels a side"
        )
    if image.dtype != np.uint8:
        if image.dtype.kind not in "iuf":
            raise ImageError(f"{what} has dtype {image.dtype}; give 8-bit grey levels (uint8)")
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise ImageError(f"{what} contains NaN or infinite values")
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 255:
            raise ImageError(
                f"{what} holds values {low:g}..{high:g}; the face pipeline takes 0..255 grey levels "
                "and does not rescale (convert it to uint8 yourself)"
            )
        image = np.rint(image).astype(np.uint8) if image.dtype.kind == "f" else image.astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB to (H, W) float32 luma (ITU-R BT.601 weights), values 0..255."""
    return (rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)).astype(
        np.float32
    )
