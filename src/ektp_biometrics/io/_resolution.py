"""Resampling to the working resolution."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ImageError
from ._policy import DEFAULT_READ_PARAMETERS, WORKING_DPI, ReadParameters
from ._prepare import check_size

__all__ = ["to_working_resolution", "check_dpi"]


def check_dpi(dpi: Any, params: ReadParameters = DEFAULT_READ_PARAMETERS, name: str = "dpi") -> float:
    """Return ``dpi`` as a float, or raise :class:`ImageError` unless it is a number in range."""
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)):
        raise ImageError(f"{name} must be a number of pixels per inch, got {dpi!r}")
    value = float(dpi)
    if not (params.min_dpi <= value <= params.max_dpi):  # also false for NaN
        raise ImageError(
            f"{name} = {dpi!r} is outside the supported {params.min_dpi:g}..{params.max_dpi:g} pixels per inch; "
            "pass the sensor's real resolution (a stored 72 or 96 dpi is usually a writer's default, "
            "not the scan's)"
        )
    return value


def to_working_resolution(
    image: np.ndarray,
    dpi: float,
    target_dpi: float = WORKING_DPI,
    *,
    params: ReadParameters = DEFAULT_READ_PARAMETERS,
) -> np.ndarray:
    """Resample an image scanned at ``dpi`` to ``target_dpi`` pixels per inch.

    Shrinking uses area averaging (``cv2.INTER_AREA``): every output pixel is the mean of the
    input it covers, a low-pass filter applied while decimating, so detail finer than the new
    pixel grid (ridges closer than 2 output pixels, pore and sensor noise) is damped instead of
    kept at full contrast as a false coarser pattern, as plain subsampling or bilinear/bicubic
    sampling at large factors would. Enlarging uses bicubic
    interpolation (``cv2.INTER_CUBIC``), which keeps the ridge profile smooth and sharper than
    bilinear; its small overshoot is saturated to 0..255. The new size is the old size times
    ``target_dpi / dpi``, rounded to the nearest pixel.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) ndarray of uint8
        Grey (or RGB) image.
    dpi : float
        Resolution of ``image`` in pixels per inch, 250..1000.
    target_dpi : float
        Resolution wanted, 250..1000; the library works at 500.
    params : ReadParameters
        Supported dpi range and size limits (checked on the result too).

    Returns
    -------
    ndarray of uint8
        ``image`` itself (no copy) when ``dpi == target_dpi``, else a new C-contiguous array.

    Raises
    ------
    ImageError
        If ``dpi`` or ``target_dpi`` is out of range, ``image`` is not uint8 grey or RGB, or the
        result would fall outside the size limits.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((560, 296), np.uint8)         # FVC2002 DB2 size, scanned at 569 dpi
    >>> to_working_resolution(image, 569).shape
    (492, 260)
    >>> to_working_resolution(image, 500) is image
    True
    """
    dpi = check_dpi(dpi, params)
    target_dpi = check_dpi(target_dpi, params, "target_dpi")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        what = f"dtype {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"expected a uint8 image array, got {what}; prepare it with as_image() first")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ImageError(f"expected an (M, N) grey or (M, N, 3) RGB image, got shape {image.shape}")
    check_size(image.shape[0], image.shape[1], params)
    if dpi == target_dpi:
        return image
    scale = target_dpi / dpi
    height = max(1, math.floor(image.shape[0] * scale + 0.5))
    width = max(1, math.floor(image.shape[1] * scale + 0.5))
    check_size(height, width, params, what=f"image resampled from {dpi:g} to {target_dpi:g} dpi")
    return _resample(np.ascontiguousarray(image), height, width, shrink=scale < 1.0)


def _resample(image: np.ndarray, height: int, width: int, *, shrink: bool) -> np.ndarray:
    import cv2

    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(image, (width, height), interpolation=interpolation))
