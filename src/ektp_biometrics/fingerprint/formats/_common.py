"""Conversions shared by the template formats: input checks, rounding, units.

Every quantizer here rounds *half up* (``floor(v + 0.5)``) on float64 values computed from the
template's float32 fields, so a value exactly between two codes always goes to the larger one
and the result does not depend on numpy's round-half-to-even.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from ...errors import ConfigurationError, TemplateFormatError
from ..template import FingerprintTemplate

#: Centimetres per inch, exact by definition of the inch.
CM_PER_INCH = 2.54


def as_record_bytes(data: Any, format_name: str) -> bytes:
    """Return ``data`` as ``bytes`` or raise TemplateFormatError if it is not bytes-like."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TemplateFormatError(
        f"a {format_name} record must be bytes, bytearray or memoryview, got {type(data).__name__}"
        + ("; encode text first, e.g. text.encode('ascii')" if isinstance(data, str) else "")
    )


def check_template(template: Any) -> FingerprintTemplate:
    """Reject anything that is not a FingerprintTemplate with a ConfigurationError."""
    if not isinstance(template, FingerprintTemplate):
        raise ConfigurationError(f"expected a FingerprintTemplate, got {type(template).__name__}")
    return template


def check_options(given: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Raise ConfigurationError naming the unknown keyword arguments and the accepted ones."""
    allowed = tuple(allowed)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ConfigurationError(f"{what} does not accept {', '.join(unknown)}; accepted options: {accepted}")


def int_option(value: Any, name: str, low: int, high: int) -> int:
    """Validate an integer keyword option in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigurationError(f"{name} must be an integer, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ConfigurationError(f"{name}={int(value)} is outside {low}..{high}")
    return int(value)


def round_half_up(values: np.ndarray) -> np.ndarray:
    """Round float values to the nearest integer, halves upward, as int64."""
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5).astype(np.int64)


def dpi_to_ppcm(dpi: int) -> int:
    """Pixels per inch to the pixels per centimetre stored by ISO/ANSI (500 dpi -> 197).

    >>> dpi_to_ppcm(500), dpi_to_ppcm(1000)
    (197, 394)
    """
    return int(math.floor(dpi / CM_PER_INCH + 0.5))


def ppcm_to_dpi(ppcm: int) -> int:
    """Pixels per centimetre back to the nearest whole pixels per inch (197 -> 500).

    >>> ppcm_to_dpi(197), ppcm_to_dpi(394)
    (500, 1001)
    """
    return int(math.floor(ppcm * CM_PER_INCH + 0.5))


def reliability_to_quality(reliability: np.ndarray) -> np.ndarray:
    """Our reliability ``[0, 1]`` to the standards' minutia quality 0..100: ``floor(100 r + 0.5)``.

    ``100 r`` is first snapped to 1e-4, so a float32 reliability written as a decimal rounds as
    written (float32 0.005 is 0.00499999989, yet it gives 1, not 0).

    >>> reliability_to_quality(np.array([0.005, 0.125, 0.994, 1.0], dtype=np.float32)).tolist()
    [1, 13, 99, 100]
    """
    percent = np.round(np.asarray(reliability, dtype=np.float64) * 100.0, 4)
    return np.clip(round_half_up(percent), 0, 100)


def quality_to_reliability(quality: np.ndarray) -> np.ndarray:
    """Minutia quality 0..100 back to reliability ``q / 100``."""
    return np.asarray(quality, dtype=np.float64) / 100.0


def direction_degrees(direction: np.ndarray) -> np.ndarray:
    """Directions in radians (float32) to float64 degrees in ``[0, 360)``."""
    return np.mod(np.degrees(np.asarray(direction, dtype=np.float64)), 360.0)
