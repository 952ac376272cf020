"""The one input-preparation helper: in-memory arrays -> validated 2-D uint8 images."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import ImageError
from ._policy import DEFAULT_READ_PARAMETERS, ReadParameters

__all__ = ["as_image", "check_size"]


def check_size(height: int, width: int, params: ReadParameters, what: str = "image") -> None:
    """Raise :class:`ImageError` unless ``height`` x ``width`` is within ``params``' limits."""
    if height == 0 or width == 0:
        raise ImageError(f"the {what} is empty ({width} x {height} px); pass a captured image")
    if min(height, width) < params.min_side:
        raise ImageError(
            f"the {what} is {width} x {height} px, smaller than {params.min_side} px on a side: too little "
            "of the finger or face to work with; capture at a higher resolution or a larger area"
        )
    if max(height, width) > params.max_side or height * width > params.max_pixels:
        raise ImageError(
            f"the {what} is {width} x {height} px, larger than the limit of {params.max_side} px per side "
            f"and {params.max_pixels:,} pixels; crop it to the finger or face, or pass "
            "ReadParameters with larger limits if such images are expected"
        )


def as_image(
    image: Any,
    *,
    float_white: Optional[float] = None,
    params: ReadParameters = DEFAULT_READ_PARAMETERS,
) -> np.ndarray:
    """Validate an in-memory grey image and return it as a C-contiguous 2-D uint8 array.

    The dtype policy is explicit: ``uint8`` is taken as it is (no copy when it is already
    C-contiguous); floating point is accepted only when ``float_white`` says which value means
    white, so nothing is ever rescaled on a guess; every other dtype (bool, uint16, int64 ...)
    is refused, naming the dtype, because its grey scale is unknown.

    Parameters
    ----------
    image : (M, N) ndarray
        Grey levels, row-major, row 0 at the top.
    float_white : float, optional
        For floating-point input only: the value that stands for white, typically ``1.0`` or
        ``255.0``. Values must lie in ``[0, float_white]``; they are mapped linearly to 0..255 and
        rounded to the nearest integer.
    params : ReadParameters
        Size limits (:attr:`~ReadParameters.min_side`, :attr:`~ReadParameters.max_side`,
        :attr:`~ReadParameters.max_pixels`).

    Returns
    -------
    (M, N) ndarray of uint8
        ``image`` itself when it is already a C-contiguous uint8 array, else a new array.

    Raises
    ------
    ImageError
        If ``image`` is not a 2-D array, has an unsupported dtype, values outside
        ``[0, float_white]`` or NaN, or a size outside the limits.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((100, 120), np.uint8)
    >>> as_image(a) is a
    True
    >>> as_image(np.full((100, 120), 0.5), float_white=1.0)[0, 0]
    np.uint8(128)
    >>> as_image(np.zeros((100, 120), np.uint16))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ImageError: the image has dtype uint16; only uint8 grey levels are accepted ...
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(
            f"expected a numpy.ndarray image, got {type(image).__name__}; use read_image() for files "
            "and bytes, or numpy.asarray(..., dtype=numpy.uint8) for nested lists"
        )
    if image.ndim != 2:
        hint = " (a colour image: read it with read_image(..., allow_colour=True))" if image.ndim == 3 else ""
        raise ImageError(f"expected a 2-D grey image, got an array of shape {image.shape}{hint}")
    check_size(image.shape[0], image.shape[1], params)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype.kind == "f":
        if float_white is None:
            raise ImageError(
                f"the image has dtype {image.dtype}; floating-point grey levels are accepted only with "
                "float_white= saying which value means white (1.0 or 255.0), since guessing would "
                "rescale silently"
            )
        if not (np.isfinite(float_white) and float_white > 0):
            raise ImageError(f"float_white must be a positive finite number, got {float_white!r}")
        low, high = float(np.min(image)), float(np.max(image))  # NaN propagates into both
        if not (low >= 0.0 and high <= float_white):
            raise ImageError(
                f"the image's values span [{low:g}, {high:g}], outside [0, {float_white:g}] "
                "(or contain NaN); clip or rescale them explicitly, or pass the right float_white"
            )
        scaled = np.rint(image.astype(np.float64, copy=False) * (255.0 / float_white))
        return np.ascontiguousarray(scaled, dtype=np.uint8)
    raise ImageError(
        f"the image has dtype {image.dtype}; only uint8 grey levels are accepted (and floating point "
        "with float_white=). Convert explicitly, e.g. (image > 0).astype(numpy.uint8) * 255 for a "
        "mask or (image >> 8).astype(numpy.uint8) for 16-bit data, knowing what the values mean"
    )
